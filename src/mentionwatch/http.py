"""The one place HTTP happens: shared client, per-host limits, retries and rate-limit waits.

httpx is imported only here (and lazily by callers), so commands that never touch the network
start fast.
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mentionwatch import __version__, scrub
from mentionwatch.errors import SourceError

if TYPE_CHECKING:
    import asyncio

    import httpx

    from mentionwatch.config import PollSettings

DEFAULT_USER_AGENT = f"mentionwatch/{__version__} (command-line mention monitor; +https://pypi.org/project/mentionwatch/)"
RETRY_STATUSES = {429, 500, 502, 503, 504}
NO_RETRY_MARKERS = ("usage-capped", "throttle_violation")
_SECRET_PARAMS = {"key", "token", "access_token", "password", "client_secret", "api_key", "apikey"}
# Reset headers, in the order they are trusted. Their formats differ by platform (seconds
# until, epoch seconds, or an ISO datetime); reset_delay() tells them apart.
_RESET_HEADERS = ("retry-after", "x-ratelimit-reset", "ratelimit-reset", "x-rate-limit-reset")


class RateLimited(SourceError):
    """The platform asked us to wait longer than we are willing to."""

    wait: float | None = None  # seconds until the limit resets (watch delays the source)


class Uncertain(SourceError):
    """A write got no answer: the platform may or may not have accepted it."""


def redact_url(url: str) -> str:
    """A URL safe for messages: secret-looking query parameters replaced with ***."""
    parts = urlsplit(str(url))
    query = [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*,:()\"'"), fragment=""))


def reset_delay(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait according to Retry-After or a platform's rate-limit reset header.

    Reddit sends seconds-until, X, GitHub and Bluesky an epoch, Mastodon an ISO datetime, and
    Retry-After may be seconds or an HTTP date; a large number can only be an epoch.
    """
    now = time.time() if now is None else now
    for name in _RESET_HEADERS:
        raw = headers.get(name)
        if not raw:
            continue
        raw = raw.strip()
        try:
            number = float(raw)
        except ValueError:
            moment = _parse_when(raw)
            if moment is None:
                continue
            return max(0.0, moment - now)
        return max(0.0, number - now if number > 1_000_000_000 else number)
    return None


def _parse_when(raw: str) -> float | None:
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def error_detail(response: httpx.Response) -> str:
    """The platform's own reason from an error body, in one short line."""
    ctype = response.headers.get("content-type", "")
    body = scrub.scrub(response.text)[:4000]  # before cutting: no half secret survives
    if "html" in ctype or body.lstrip()[:1] == "<":
        title = re.search(r"<title[^>]*>(.*?)</title>", body, re.I | re.S)
        hint = f" ({' '.join(title.group(1).split())[:80]})" if title else ""
        return f"got an HTML page instead of JSON{hint}: blocked, or the service is down"
    try:
        data = json.loads(body)
    except ValueError:
        return " ".join(body.split())[:160] or "empty body"
    return _message_from_json(data) or " ".join(body.split())[:160]


def _message_from_json(data: Any) -> str | None:
    if isinstance(data, dict):
        name, message = data.get("error"), data.get("message") or data.get("error_description")
        if isinstance(name, str) and isinstance(message, str) and name != message:
            return f"{name}: {message}"  # XRPC and OAuth errors: a name and a message
        for key in ("message", "error_message", "detail", "error_description", "title", "error"):
            value = data.get(key)
            if isinstance(value, str) and value:
                more = data.get("message") if key == "error" else None
                return f"{value}: {more}" if isinstance(more, str) and more != value else value
            if isinstance(value, dict | list):
                found = _message_from_json(value)
                if found:
                    return found
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            return _message_from_json(errors[0]) or str(errors[0])[:160]
    if isinstance(data, list) and data:
        return _message_from_json(data[0]) or " ".join(str(x) for x in data)[:160]
    return None


def open_client(settings: PollSettings) -> httpx.AsyncClient:
    import httpx

    scrub.guard_logging()
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
        headers={"User-Agent": settings.user_agent or DEFAULT_USER_AGENT},
        follow_redirects=True,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        # Every credential a request carries is known to the scrubber before it is sent.
        event_hooks={"request": [scrub.note_request]},
    )


class Http:
    """One source's view of the shared client: its name in errors, shared per-host limits."""

    def __init__(
        self,
        source: str,
        client: httpx.AsyncClient,
        settings: PollSettings,
        host_limits: dict[str, asyncio.Semaphore],
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.source = source
        self.client = client
        self.settings = settings
        self.host_limits = host_limits
        self.notify = notify or (lambda message: print(message, file=sys.stderr))

    def _limit(self, url: str) -> asyncio.Semaphore:
        import asyncio  # lazily: config loading imports every source

        host = urlsplit(url).netloc
        if host not in self.host_limits:
            self.host_limits[host] = asyncio.Semaphore(self.settings.per_host)
        return self.host_limits[host]

    async def request(
        self, method: str, url: str, *, retry: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """Send a request, retrying timeouts, 429 and 5xx; other statuses go to the caller.

        Raises SourceError once retries are used up, or RateLimited when the platform wants a
        wait longer than `max_wait`. Pass retry=False for a write that is not idempotent: a
        timeout then raises at once, since the platform may have accepted it.
        """
        import asyncio  # lazily: config loading imports every source

        import httpx

        attempt = 0
        while True:
            try:
                async with self._limit(url):
                    response = await self.client.request(method, url, **kwargs)
                    await response.aread()
            except httpx.TransportError as exc:
                kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
                # A write that got no answer may have been accepted; one never sent was not.
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                last = attempt >= self.settings.retries or not retry
                if last and sent and method not in ("GET", "HEAD"):
                    raise Uncertain(
                        f"{self.source}: {method} {redact_url(url)} {kind} with no answer; "
                        "the platform may have accepted it"
                    ) from None
                if last:
                    raise SourceError(
                        f"{self.source}: request to {redact_url(url)} {kind} after "
                        f"{attempt + 1} attempts ({type(exc).__name__})"
                    ) from None
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                continue
            if not retry or not self._should_retry(response):
                return response
            wait = self._wait_hint(response)
            if wait is not None and wait > self.settings.max_wait:
                limited = RateLimited(
                    f"{self.source}: rate limited by {urlsplit(url).netloc} (HTTP "
                    f"{response.status_code}: {error_detail(response)}); the limit resets in "
                    f"{_human(wait)}, try again then"
                )
                limited.wait = wait
                raise limited
            if attempt >= self.settings.retries:
                raise SourceError(
                    f"{self.source}: HTTP {response.status_code} from {redact_url(url)} after "
                    f"{attempt + 1} attempts: {error_detail(response)}"
                )
            delay = wait + 0.5 if wait is not None else self._backoff(attempt)
            if delay >= 5:
                self.notify(f"{self.source}: rate limited, waiting {_human(delay)}")
            await asyncio.sleep(delay)
            attempt += 1

    def _wait_hint(self, response: httpx.Response) -> float | None:
        """How long the platform asks us to wait. A rate-limit reset header only means that
        on a 429 or an exhausted limit: X sends one on every response, 503s included."""
        limited = response.status_code == 429 or response.headers.get(
            "x-ratelimit-remaining", response.headers.get("x-rate-limit-remaining")
        ) in ("0", "0.0")
        if limited:
            return reset_delay(response.headers)
        return reset_delay({"retry-after": response.headers.get("retry-after")})

    def _should_retry(self, response: httpx.Response) -> bool:
        # Refusals that a retry only prolongs: X's "usage-capped" (the credits are gone) and
        # Stack Exchange's "throttle_violation" (an IP ban that repeats extend).
        if response.status_code in (429, 502) and any(
            marker in response.text[:2000] for marker in NO_RETRY_MARKERS
        ):
            return False
        if response.status_code in RETRY_STATUSES:
            return True
        # GitHub signals an exhausted primary limit with 403 and remaining 0.
        return (
            response.status_code == 403
            and response.headers.get("x-ratelimit-remaining") == "0"
            and reset_delay(response.headers) is not None
        )

    def _backoff(self, attempt: int) -> float:
        return self.settings.backoff * (2**attempt) * (0.75 + random.random() / 2)

    async def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET and decode JSON, or raise SourceError with the platform's reason."""
        response = await self.request("GET", url, **kwargs)
        return self.json(response, url)

    def json(self, response: httpx.Response, url: str | None = None) -> Any:
        where = redact_url(url or str(response.request.url))
        if response.status_code >= 400:
            raise SourceError(
                f"{self.source}: HTTP {response.status_code} from {where}: {error_detail(response)}"
            )
        try:
            return response.json()
        except ValueError:
            ctype = response.headers.get("content-type", "unknown type")
            if "html" in ctype or response.text.lstrip()[:1] == "<":
                reason = f"got an HTML page ({ctype}) where JSON was expected"
            else:
                reason = "the JSON body is malformed or truncated"
            raise SourceError(f"{self.source}: {reason} from {where}") from None


def _human(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
