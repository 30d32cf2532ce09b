"""The one place HTTP happens: shared client, per-host limits, retries, rate-limit waits, and
the limits that keep a hostile server from hurting a poll.

- Bodies are streamed and capped (`MAX_BODY_BYTES`), counting decompressed bytes, with gzip
  and deflate decoded here in bounded steps, so a 256 MB gzip bomb stops after the cap.
- At most one response larger than `LARGE_BODY_BYTES` is alive at a time per poll: a task
  holds that turn until it makes its next request or ends, so a poll's memory stays bounded
  however many sources send large pages at once.
- Redirects are followed here (at most `MAX_REDIRECTS`, loops named). Credentials never
  follow a redirect to another origin: auth headers and `auth=` are dropped, and a 307/308
  that would re-send a request body (a login form, a password) elsewhere is refused.
- Rate limits: Retry-After and each platform's reset headers; a host whose limit is used up
  is not called again before its reset. Every wait goes through `Http.wait`: sleep, or raise
  `RateLimited` when the wait is longer than `max_wait`.

httpx is imported only here (and lazily by callers), so commands that never touch the network
start fast.
"""

from __future__ import annotations

import json
import re
import sys
import time
import weakref
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from mentionwatch import __version__, scrub
from mentionwatch.errors import SourceError

if TYPE_CHECKING:
    import asyncio

    import httpx

    from mentionwatch.config import PollSettings

DEFAULT_USER_AGENT = f"mentionwatch/{__version__} (command-line mention monitor; +https://pypi.org/project/mentionwatch/)"
RETRY_STATUSES = {429, 500, 502, 503, 504}
NO_RETRY_MARKERS = (
    "usage-capped",
    "throttle_violation",
    "ACCESS_LIMIT_REACHED",
    "RATE_LIMIT_EXCEEDED",
)
_SECRET_PARAMS = {"key", "token", "access_token", "password", "client_secret", "api_key", "apikey"}
# Reset headers, in the order they are trusted. Their formats differ by platform (seconds
# until, epoch seconds, or an ISO datetime); reset_delay() tells them apart.
_RESET_HEADERS = ("retry-after", "x-ratelimit-reset", "ratelimit-reset", "x-rate-limit-reset")
_REMAINING_HEADERS = ("x-ratelimit-remaining", "x-rate-limit-remaining", "ratelimit-remaining")

# A page of 100 GitHub issues with long bodies is a few MB; nothing a source reads is
# legitimately larger. Counted after decompression.
MAX_BODY_BYTES = 8 * 2**20
# Bodies up to this size are read concurrently; a larger one waits for the poll's one turn.
LARGE_BODY_BYTES = 2**20
# Parsed JSON can take many times its size in objects: a large body with more containers or
# values than any real page (100 items of a few hundred fields) is refused before parsing.
MAX_JSON_CONTAINERS = 100_000
MAX_JSON_VALUES = 500_000
MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
_BODY_ARGS = ("json", "data", "content", "files")
# Headers that carry credentials: never sent on to another origin.
_CREDENTIAL_HEADER = re.compile(
    r"authorization|cookie|token|secret|session|api-?key|password", re.IGNORECASE
)
_CHUNK = 64 * 1024
# GitHub's secondary limit without a Retry-After: "wait at least one minute".
SECONDARY_LIMIT_WAIT = 60.0
# No platform's limit resets later than a day away (YouTube's and Yelp's: the next midnight):
# a longer wait, or an infinite one (`Retry-After: inf`), comes from a broken or hostile
# header and is taken as a day, so `watch` tries the source again.
MAX_WAIT = 86400.0
# Meta (Facebook Pages, Instagram, Threads) reports how much of a rolling budget a caller has
# used as percentages in X-App-Usage and X-Business-Use-Case-Usage. Near the top, calls stop
# until the estimated time to regain access (or a quarter of an hour): a throttled caller's
# calls still count, and the lock-out only grows.
META_USAGE_HEADERS = ("x-app-usage", "x-business-use-case-usage")
META_BACKOFF_PERCENT = 95.0
META_THROTTLE_WAIT = 900.0
# Graph error codes that mean "throttled": app, user, Page, custom, and the business use
# case ones (80001 Pages, 80002 Instagram, …).
META_THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
# Google's APIs (YouTube, Google Play) name the reason of an error. A rate limit per minute or
# per user (errors[].reason rateLimitExceeded, userRateLimitExceeded; a 429's ErrorInfo says
# RATE_LIMIT_EXCEEDED) passes: it is retried with backoff. A spent daily quota does not pass
# before its reset: it is not retried (YouTube waits for midnight Pacific).
GOOGLE_RATE_LIMITED = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"}
)
GOOGLE_QUOTA_SPENT = frozenset({"quotaExceeded", "dailyLimitExceeded"})


class RateLimited(SourceError):
    """The platform asked us to wait longer than we are willing to."""

    wait: float | None = None  # seconds until the limit resets (watch delays the source)


class Uncertain(SourceError):
    """A write got no answer: the platform may or may not have accepted it."""


class TooLarge(SourceError):
    """A response (or its JSON) is larger than a poll accepts."""


def redact_url(url: str) -> str:
    """A URL safe for messages: secret-looking query parameters replaced with ***."""
    parts = urlsplit(str(url))
    query = [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*,:()\"'"), fragment=""))


def _without_secrets(url: str) -> str:
    """A redirect target without secret-looking query parameters (an API key the server
    copied into the Location): they stay with the origin they were meant for."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() not in _SECRET_PARAMS]  # fmt: skip
    return urlunsplit(parts._replace(query=urlencode(query)))


def endpoint(url: Any) -> str:
    """Scheme, host and path of a URL: where a request went, without its (long) query."""
    parts = urlsplit(str(url))
    return urlunsplit(parts._replace(query="", fragment=""))


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


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


def _limit_used_up(headers: Any) -> bool:
    for name in _REMAINING_HEADERS:
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return float(raw) < 1
        except ValueError:
            return False
    return False


def meta_usage(headers: Any) -> tuple[float, float] | None:
    """(the highest percentage used, seconds until access is regained) from Meta's usage
    headers, or None without them. X-App-Usage is `{"call_count": 12, "total_cputime": 3,
    "total_time": 5}`; X-Business-Use-Case-Usage maps an id to a list of such objects, each
    with `estimated_time_to_regain_access` in minutes."""
    found: list[dict[str, Any]] = []
    for name in META_USAGE_HEADERS:
        raw = headers.get(name)
        if not raw or len(raw) > 20_000:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if isinstance(data, dict) and "call_count" in data:
            found.append(data)
        elif isinstance(data, dict):  # {"<page id>": [{"type": "pages", …}]}
            lists = [v for v in data.values() if isinstance(v, list)]
            found += [e for entries in lists for e in entries if isinstance(e, dict)]
    if not found:
        return None
    numbers = [float(v) for e in found for k, v in e.items()
               if k in ("call_count", "total_cputime", "total_time") and _is_number(v)]  # fmt: skip
    regain = [e["estimated_time_to_regain_access"] for e in found
              if _is_number(e.get("estimated_time_to_regain_access"))]  # fmt: skip
    minutes = max([float(m) for m in regain] or [0.0])
    return max(numbers or [0.0]), max(0.0, minutes) * 60


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def meta_wait(headers: Any) -> float | None:
    """Seconds to stop calling Meta when its usage headers say the budget is (nearly) used
    up; None while there is room."""
    usage = meta_usage(headers)
    if usage is None:
        return None
    percent, regain = usage
    if regain > 0:
        return regain
    return META_THROTTLE_WAIT if percent >= META_BACKOFF_PERCENT else None


def _graph_throttled(response: httpx.Response) -> bool:
    """A Graph error whose code means throttled (`(#32) Page request limit reached`)."""
    if response.status_code < 400 or b'"code"' not in response.content[:4000]:
        return False
    try:
        error = json.loads(response.content).get("error")
    except (ValueError, AttributeError, RecursionError):
        return False
    return isinstance(error, dict) and error.get("code") in META_THROTTLE_CODES


def google_reasons(response: httpx.Response) -> list[str]:
    """The reasons a Google API error names, most specific first: errors[].reason (quotaExceeded,
    commentTextTooLong…), details[].reason (ErrorInfo's RATE_LIMIT_EXCEEDED…), then its status
    (PERMISSION_DENIED…). The envelope: {"error": {"code", "message", "errors": [{"domain",
    "reason", "message"}], "status", "details": [{"@type", "reason", "metadata"}]}}."""
    if response.status_code < 400 or len(response.content) > LARGE_BODY_BYTES:
        return []
    try:
        error = json.loads(response.content).get("error")
    except (ValueError, AttributeError, RecursionError):
        return []
    if not isinstance(error, dict):
        return []
    listed = [e.get("reason") for key in ("errors", "details") if isinstance(error.get(key), list)
              for e in error[key] if isinstance(e, dict)]  # fmt: skip
    return [r for r in [*listed, error.get("status")] if isinstance(r, str)]


def google_reason(response: httpx.Response) -> str | None:
    """The most specific reason of a Google API error, or None."""
    return next(iter(google_reasons(response)), None)


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
    found = message_in(data) or " ".join(body.split())
    return " ".join(found.split())[:300]


def message_in(data: Any) -> str | None:
    """The reason in every error shape the platforms use: Stack Exchange's error_name and
    error_message, XRPC's and OAuth's error and message, GitHub's message and errors[],
    X's problem detail or errors[], Mastodon's error."""
    if isinstance(data, list):
        if not data:
            return None
        return message_in(data[0]) or " ".join(str(x) for x in data)[:160]
    if not isinstance(data, dict):
        return None
    graph = data.get("error")
    if isinstance(graph, dict) and isinstance(graph.get("message"), str) and "code" in graph:
        return _graph_message(graph)
    if isinstance(data.get("error_message"), str):
        name, number = data.get("error_name"), data.get("error_id")
        head = f"{name} ({number})" if name and number is not None else name or number
        return f"{head}: {data['error_message']}" if head is not None else data["error_message"]
    if isinstance(data.get("code"), str) and isinstance(data.get("description"), str):
        return f"{data['code']}: {data['description']}"  # Yelp's {"error": {code, description}}
    name, message = data.get("error"), data.get("message") or data.get("error_description")
    if isinstance(name, str) and isinstance(message, str) and name != message:
        return f"{name}: {message}"  # XRPC and OAuth errors: a name and a message
    errors = data.get("errors")
    first = message_in(errors[0]) if isinstance(errors, list) and errors else None
    for key in ("detail", "message", "error_description", "title", "error"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return f"{value}: {first}" if first and first != value else value
        if isinstance(value, dict | list):
            found = message_in(value)
            if found:
                return found
    if first:
        return first
    code = data.get("code")
    return code if isinstance(code, str) else None


def _graph_message(error: dict[str, Any]) -> str:
    """Meta's Graph error as one line, its codes first as Meta writes them (`(#100) …`; the
    message is often long, and a line is cut at its end): the message, and the user-facing
    explanation when there is one."""
    message = error["message"]
    user = error.get("error_user_msg")
    if isinstance(user, str) and user and user not in message:
        message = f"{message}: {user}"
    code, sub = error.get("code"), error.get("error_subcode")
    if not isinstance(code, int | str) or isinstance(code, bool):
        return message
    sub_text = f", subcode {sub}" if isinstance(sub, int | str) and sub else ""
    head = f"(#{code})"
    if message.startswith(head):
        return f"(#{code}{sub_text}){message[len(head) :]}"
    return f"(#{code}{sub_text}) {message}"


@dataclass
class _Shared:
    """What every source of one poll shares: per-host concurrency, when each host may be
    called again, and the one turn for a large body."""

    host_limits: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    # (source, host) -> monotonic time: a limit belongs to one platform account.
    not_before: dict[tuple[str, str], float] = field(default_factory=dict)
    large: asyncio.Lock | None = None
    large_holder: asyncio.Task[Any] | None = None


_SHARED: weakref.WeakKeyDictionary[Any, _Shared] = weakref.WeakKeyDictionary()


def _shared(client: Any, host_limits: dict[str, asyncio.Semaphore]) -> _Shared:
    if client is None:  # a source built only to describe itself: it never sends
        return _Shared(host_limits)
    shared = _SHARED.get(client)
    if shared is None:
        shared = _SHARED[client] = _Shared(host_limits)
    return shared


def connect_timeout(settings: PollSettings) -> float:
    """How long a connection may take to open: the request timeout, at most 10 s."""
    return min(settings.timeout, 10.0)


def open_client(settings: PollSettings) -> httpx.AsyncClient:
    import httpx

    scrub.guard_logging()
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.timeout, connect=connect_timeout(settings)),
        # Only what _Decoder can decode in bounded steps.
        headers={
            "User-Agent": settings.user_agent or DEFAULT_USER_AGENT,
            "Accept-Encoding": "gzip, deflate",
        },
        follow_redirects=False,  # Http follows them itself, without credentials elsewhere
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
        self.shared = _shared(client, host_limits)
        self.notify = notify or (lambda message: print(message, file=sys.stderr))

    def _limit(self, url: str) -> asyncio.Semaphore:
        import asyncio  # lazily: config loading imports every source

        host = urlsplit(url).netloc
        limits = self.shared.host_limits
        if host not in limits:
            limits[host] = asyncio.Semaphore(self.settings.per_host)
        return limits[host]

    async def wait(self, seconds: float, why: str) -> None:
        """Sleep `seconds` (saying so when it is long), or raise RateLimited naming `why`
        when the wait is longer than `max_wait`."""
        import asyncio  # lazily: config loading imports every source

        if not seconds > 0:  # NaN too
            return
        seconds = min(seconds, MAX_WAIT)
        if seconds > self.settings.max_wait:
            limited = RateLimited(
                f"{self.source}: {why}; it resets in {_human(seconds)}, try again then"
            )
            limited.wait = seconds
            raise limited
        if seconds >= 5:
            self.notify(f"{self.source}: {why}, waiting {_human(seconds)}")
        await asyncio.sleep(seconds)

    async def request(
        self, method: str, url: str, *, retry: bool = True, max_bytes: int | None = None,
        **kwargs: Any,
    ) -> httpx.Response:  # fmt: skip
        """Send a request, retrying timeouts, 429 and 5xx; other statuses go to the caller.

        Raises SourceError once retries are used up, or RateLimited when the platform wants a
        wait longer than `max_wait`. Pass retry=False for a write that is not idempotent: a
        timeout then raises at once, since the platform may have accepted it. The body is
        read in full (at most `max_bytes`, default MAX_BODY_BYTES) before this returns.
        """
        import asyncio  # lazily: config loading imports every source

        import httpx

        self._release_large_turn()  # this task's previous large body has been dealt with
        attempt = 0
        while True:
            await self._host_turn(url)
            try:
                async with self._limit(url):
                    response = await self._follow(method, url, max_bytes or MAX_BODY_BYTES, kwargs)
            except httpx.TransportError as exc:
                kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
                if isinstance(exc, httpx.RemoteProtocolError):
                    kind = "was cut off"  # the connection closed before the body ended
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
            self._note_limit(url, response)
            if not retry or not self._should_retry(response):
                return response
            wait = self._wait_hint(response)
            why = (
                f"rate limited by {urlsplit(url).netloc} (HTTP {response.status_code}: "
                f"{error_detail(response)})"
            )
            if wait is not None and wait > self.settings.max_wait:
                await self.wait(wait, why)  # raises RateLimited
            if attempt >= self.settings.retries:
                raise SourceError(
                    f"{self.source}: HTTP {response.status_code} from {redact_url(url)} after "
                    f"{attempt + 1} attempts: {error_detail(response)}"
                )
            delay = wait + 0.5 if wait is not None else self._backoff(attempt)
            await self.wait(delay, "rate limited" if wait is not None else "retrying")
            attempt += 1

    # Redirects and bodies

    async def _follow(
        self, method: str, url: str, max_bytes: int, kwargs: dict[str, Any]
    ) -> httpx.Response:
        """Send, following redirects; credentials stay with the origin they were meant for."""
        seen = {url}
        first = url
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._fetch(method, url, max_bytes, kwargs)
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            target = urljoin(str(response.request.url), location)
            if target in seen:
                raise SourceError(
                    f"{self.source}: redirect loop: {endpoint(first)} leads back to "
                    f"{endpoint(target)}; the server (or a proxy) is misconfigured"
                )
            seen.add(target)
            kwargs = dict(kwargs)
            kwargs.pop("params", None)  # the Location is the whole next URL
            if response.status_code in (307, 308):
                if origin(target) != origin(url) and any(k in kwargs for k in _BODY_ARGS):
                    raise SourceError(
                        f"{self.source}: {endpoint(url)} redirected a {method} with a body to "
                        f"another origin ({endpoint(target)}); not re-sending it there (it may "
                        "hold credentials): check the configured base_url"
                    )
            else:  # 301, 302, 303: the next request is a GET without a body, as browsers do
                method = "GET" if method != "HEAD" else method
                for key in _BODY_ARGS:
                    kwargs.pop(key, None)
            if origin(target) != origin(url):
                target = _without_secrets(target)
                kwargs.pop("auth", None)
                kwargs["headers"] = {
                    k: v for k, v in (kwargs.get("headers") or {}).items()
                    if not _CREDENTIAL_HEADER.search(k)
                }  # fmt: skip
            url = target
        raise SourceError(
            f"{self.source}: more than {MAX_REDIRECTS} redirects from {endpoint(first)}; "
            "the server (or a proxy) is misconfigured"
        )

    async def _fetch(
        self, method: str, url: str, max_bytes: int, kwargs: dict[str, Any]
    ) -> httpx.Response:
        """One request; the body streamed in, decoded and capped."""
        import asyncio  # lazily: config loading imports every source

        import httpx

        options = dict(kwargs)
        auth = options.pop("auth", None)
        request = self.client.build_request(method, url, **options)
        # httpx's timeouts are per read, so a server that trickles its answer a byte at a
        # time (a slow loris) would hold a poll forever. The head gets what httpx's timeouts
        # allow a head sent at once (a pooled connection, opening it, one read); the body, up
        # to MAX_BODY_BYTES, a minute or four timeouts.
        timeout = self.settings.timeout
        try:
            async with asyncio.timeout(connect_timeout(self.settings) + 2 * timeout):
                response = await self.client.send(
                    request, auth=auth, stream=True, follow_redirects=False
                )
        except TimeoutError:
            raise httpx.ReadTimeout("the answer's head took too long", request=request) from None
        try:
            async with asyncio.timeout(max(60.0, 4 * timeout)):
                body = await self._read(response, max_bytes)
        except TimeoutError:
            raise httpx.ReadTimeout("the body took too long", request=request) from None
        finally:
            await response.aclose()
        skip = {"content-encoding", "content-length", "transfer-encoding"}
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in skip]
        return httpx.Response(
            response.status_code, headers=headers, content=body, request=request,
            extensions=response.extensions,
        )  # fmt: skip

    async def _read(self, response: httpx.Response, max_bytes: int) -> bytes:
        where = endpoint(response.request.url)
        declared = response.headers.get("content-length", "")
        decoder = _Decoder(response.headers.get("content-encoding", ""), self.source, where)
        if declared.isdigit() and int(declared) > max_bytes and decoder.identity:
            raise self._too_large(where, max_bytes)
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw(_CHUNK):
            for piece in decoder.decode(raw):
                size += len(piece)
                if size > max_bytes or response.num_bytes_downloaded > max_bytes:
                    raise self._too_large(where, max_bytes, compressed=not decoder.identity)
                if size > LARGE_BODY_BYTES:
                    await self._large_turn()
                chunks.append(piece)
        chunks.append(decoder.finish())
        return b"".join(chunks)

    def _too_large(self, where: str, limit: int, compressed: bool = False) -> TooLarge:
        unpacked = " once decompressed" if compressed else ""
        return TooLarge(
            f"{self.source}: the response from {where} is larger than {limit // 2**20} MB"
            f"{unpacked}; refused (a broken or hostile server, or a proxy in the way)"
        )

    async def _large_turn(self) -> None:
        """Wait for the poll's one turn to hold a large body. Bounded by the request timeout:
        a turn held by a task that waits on this one must not deadlock the poll."""
        import asyncio  # lazily: config loading imports every source

        task = asyncio.current_task()
        shared = self.shared
        if task is None or shared.large_holder is task:
            return
        if shared.large is None:
            shared.large = asyncio.Lock()
        try:
            await asyncio.wait_for(shared.large.acquire(), timeout=self.settings.timeout)
        except TimeoutError:
            return
        shared.large_holder = task
        task.add_done_callback(self._released)

    def _release_large_turn(self) -> None:
        import asyncio  # lazily: config loading imports every source

        task = asyncio.current_task()
        if task is not None and self.shared.large_holder is task:
            task.remove_done_callback(self._released)
            self._released(task)

    def _released(self, task: asyncio.Task[Any]) -> None:
        shared = self.shared
        if shared.large_holder is task and shared.large is not None:
            shared.large_holder = None
            shared.large.release()

    # Rate limits

    async def _host_turn(self, url: str) -> None:
        """A host whose limit the last answer said is used up is not called before its reset."""
        host = urlsplit(url).netloc
        wait = self.shared.not_before.get((self.source, host), 0.0) - time.monotonic()
        if wait > 0:
            await self.wait(wait, f"rate limit of {host} used up")

    def _note_limit(self, url: str, response: httpx.Response) -> None:
        delay = None
        if _limit_used_up(response.headers):
            delay = reset_delay({k: response.headers.get(k) for k in _RESET_HEADERS[1:]})
        delay = delay or meta_wait(response.headers)
        if delay:
            key = (self.source, urlsplit(url).netloc)
            self.shared.not_before[key] = time.monotonic() + delay

    def _wait_hint(self, response: httpx.Response) -> float | None:
        """How long the platform asks us to wait. A rate-limit reset header only means that
        on a 429 or an exhausted limit: X sends one on every response, 503s included."""
        if response.status_code == 429 or _limit_used_up(response.headers):
            return reset_delay(response.headers) or meta_wait(response.headers)
        if _graph_throttled(response):
            return meta_wait(response.headers) or META_THROTTLE_WAIT
        wait = reset_delay({"retry-after": response.headers.get("retry-after")})
        if wait is None and _secondary_limit(response):
            return SECONDARY_LIMIT_WAIT
        return wait

    def _should_retry(self, response: httpx.Response) -> bool:
        # Google's reasons first: its per-minute limit's ErrorInfo says RATE_LIMIT_EXCEEDED,
        # which from App Store Connect means a spent hour.
        reasons = google_reasons(response) if response.status_code in (403, 429) else []
        if GOOGLE_QUOTA_SPENT.intersection(reasons):
            return False
        if GOOGLE_RATE_LIMITED.intersection(reasons):
            return True
        # Refusals that a retry only prolongs: X's "usage-capped" (the credits are gone),
        # Stack Exchange's "throttle_violation" (an IP ban that repeats extend) and Yelp's
        # "ACCESS_LIMIT_REACHED" (the day's calls are spent), App Store Connect's
        # "RATE_LIMIT_EXCEEDED" (a rolling hour is spent).
        if response.status_code in (429, 502) and any(
            marker.encode() in response.content[:2000] for marker in NO_RETRY_MARKERS
        ):
            return False
        if response.status_code in RETRY_STATUSES or _graph_throttled(response):
            return True
        # GitHub signals an exhausted primary limit with 403 and remaining 0, and its
        # secondary limit with 403 and a retry-after header or only a message.
        return response.status_code == 403 and (
            (_limit_used_up(response.headers) and reset_delay(response.headers) is not None)
            or _secondary_limit(response)
        )

    def _backoff(self, attempt: int) -> float:
        import random  # here: reading a config that sets up sources never needs it

        return self.settings.backoff * (2**attempt) * (0.75 + random.random() / 2)

    # Decoding and errors

    async def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET and decode JSON, or raise SourceError with the platform's reason."""
        response = await self.request("GET", url, **kwargs)
        return self.json(response)

    def json(self, response: httpx.Response, url: str | None = None) -> Any:
        """The JSON body of a successful answer; SourceError with the platform's reason for
        an error status, an HTML page, a truncated body or an oversized structure."""
        where = endpoint(url or response.request.url)
        if response.status_code >= 400:
            raise self.error(response)
        body = response.content
        if len(body) > LARGE_BODY_BYTES and (
            body.count(b"{") + body.count(b"[") > MAX_JSON_CONTAINERS
            or body.count(b",") > MAX_JSON_VALUES
        ):
            raise TooLarge(
                f"{self.source}: the JSON from {where} holds more values than any real page; "
                "refused (a broken or hostile server)"
            )
        try:
            return json.loads(body)
        except RecursionError:
            raise TooLarge(f"{self.source}: the JSON from {where} is nested too deeply") from None
        except ValueError:
            ctype = response.headers.get("content-type", "unknown type")
            if "html" in ctype or body.lstrip()[:1] == b"<":
                reason = f"got an HTML page ({ctype}) where JSON was expected"
            else:
                reason = "the JSON body is malformed or truncated"
            raise SourceError(f"{self.source}: {reason} from {where}") from None

    def refused(self, response: httpx.Response, what: str = "reply refused") -> SourceError:
        """The one line for a refused write: `source: reply refused (HTTP 403): reason`."""
        return SourceError(
            f"{self.source}: {what} (HTTP {response.status_code}): {error_detail(response)}"
        )

    def error(self, response: httpx.Response, doing: str = "", hint: str = "") -> SourceError:
        """The one line for a refused request: `source: doing: HTTP 401 from URL: reason (hint)`."""
        head = f"{self.source}: {doing}: " if doing else f"{self.source}: "
        tail = f" ({hint})" if hint else ""
        return SourceError(
            f"{head}HTTP {response.status_code} from {endpoint(response.request.url)}: "
            f"{error_detail(response)}{tail}"
        )


def _secondary_limit(response: httpx.Response) -> bool:
    """GitHub's secondary rate limit: 403 or 429 with retry-after, or only its message."""
    if response.status_code not in (403, 429):
        return False
    return bool(response.headers.get("retry-after")) or (
        b"secondary rate limit" in response.content[:2000].lower()
    )


class _Decoder:
    """Content-Encoding decoded in bounded steps: each piece is at most `_CHUNK` bytes, so a
    small compressed chunk can never expand into gigabytes at once."""

    def __init__(self, encoding: str, source: str, where: str) -> None:
        self.encoding = encoding.strip().lower()
        self.identity = self.encoding in ("", "identity")
        if not self.identity and self.encoding not in ("gzip", "x-gzip", "deflate"):
            raise SourceError(
                f"{source}: {where} answered in Content-Encoding {encoding!r}, which was not "
                "asked for"
            )
        self.source, self.where = source, where
        self._zlib: Any = None
        self._started = False

    def _new(self) -> Any:
        wbits = zlib.MAX_WBITS | 16 if "gzip" in self.encoding else zlib.MAX_WBITS
        return zlib.decompressobj(wbits)

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self.identity:
            yield data
            return
        while data:
            if self._zlib is None:
                self._zlib = self._new()
            try:
                piece = self._zlib.decompress(data, _CHUNK)
            except zlib.error:
                if self.encoding == "deflate" and not self._started:
                    # Some servers send raw deflate without the zlib header.
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._started = True
                    continue
                raise SourceError(
                    f"{self.source}: the {self.encoding} body from {self.where} is corrupt"
                ) from None
            self._started = True
            if piece:
                yield piece
            if self._zlib.unconsumed_tail:
                data = self._zlib.unconsumed_tail
            elif self._zlib.eof and self._zlib.unused_data[:2] == b"\x1f\x8b":
                data = self._zlib.unused_data  # another gzip member follows
                self._zlib = None
            else:
                data = b""

    def finish(self) -> bytes:
        return b"" if self._zlib is None else self._zlib.flush()


def _human(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
