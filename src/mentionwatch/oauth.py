"""OAuth 2.0 for sources that act as a user (YouTube, Google Play, Threads).

- A source declares one `Spec`: where the browser authorizes, where tokens come from, which
  scopes, and how the platform expects them. `options(spec)` are the config keys it adds
  (client id and secret, an optional refresh token obtained elsewhere, the endpoints, a
  registered redirect URI).
- `authorize()` is `mentionwatch auth NAME`: the authorization-code flow on loopback (RFC
  8252), with PKCE (S256) where the platform offers it and a random `state` always. The
  browser comes back to a one-shot server on 127.0.0.1; the address it ends on may also be
  pasted into the terminal (a browser on another machine, or a platform that only redirects
  to a registered https address, as Meta does). The code is exchanged at once.
- Some platforms hand out no refresh token but a token that renews itself (Meta's long-lived
  Threads token): `Spec.upgrade` swaps the first token for a long-lived one, `Spec.renew`
  trades a still-valid token for a fresh one once it is `renew_after` old. Both are a
  `Swap`, one GET with the current token.
- `Tokens` is what a source polls with: the stored access token while it has more than
  `MARGIN` left, else a refresh first; a 401 drops it and refreshes once.

Tokens live in the source's slice of the database (source_state, a 0600 file), registered
with the scrubber as soon as they are seen, and never printed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from mentionwatch import scrub
from mentionwatch.errors import SourceError, UsageError
from mentionwatch.models import Option
from mentionwatch.text import inert

if TYPE_CHECKING:
    import httpx

    from mentionwatch.config import Config
    from mentionwatch.sources.base import Source
    from mentionwatch.store import Store

STATE_KEY = "oauth"
MARGIN = 120.0  # seconds: a token closer than this to its expiry is refreshed first
DEFAULT_LIFETIME = 3600.0  # when the token answer names none
RENEW_PAUSE = 3600.0  # seconds between attempts to renew a token after one failed


@dataclass(frozen=True)
class Swap:
    """A GET that trades an access token for a new one: `grant_type` and `access_token` (and
    the client secret when `secret`) in the query, the answer shaped like a token answer.
    `path` is relative to the token endpoint, so a configured token_url moves it too."""

    path: str
    grant_type: str
    secret: bool = False


@dataclass(frozen=True)
class Spec:
    """How one platform hands out user tokens."""

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    scope_separator: str = " "
    pkce: bool = True  # the platform checks a code_verifier (S256)
    # More parameters of the authorization request (Google: offline access, a consent screen
    # every time, so a refresh token always comes back).
    authorize_params: tuple[tuple[str, str], ...] = ()
    refreshable: bool = True  # the platform issues refresh tokens
    callback_path: str = "/callback"
    console: str = ""  # where the user creates the OAuth client, for messages
    # False: the platform redirects only to an address registered for the app (Meta), so
    # `redirect_uri` must be configured; True: any http://127.0.0.1 port will do (RFC 8252).
    loopback: bool = True
    upgrade: Swap | None = None  # after the code exchange: the token swapped for a lasting one
    renew: Swap | None = None  # the token renews itself (no refresh token)
    renew_after: float = 0.0  # seconds: a token this old is renewed (Meta: at least 24 h)
    lifetime: float = DEFAULT_LIFETIME  # seconds, when a token answer names none


GOOGLE_AUTHORIZE = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN = "https://oauth2.googleapis.com/token"


def google(*scopes: str) -> Spec:
    """Google's endpoints (YouTube, Google Play): a Desktop client, offline access."""
    return Spec(
        GOOGLE_AUTHORIZE,
        GOOGLE_TOKEN,
        scopes,
        authorize_params=(("access_type", "offline"), ("prompt", "consent")),
        console="console.cloud.google.com → APIs & Services → Credentials → "
        "OAuth client ID (Desktop app)",
    )


def options(spec: Spec) -> dict[str, Option]:
    """The config keys every OAuth source takes."""
    keys = {
        "client_id": Option(str, help="OAuth client id (for 'mentionwatch auth')"),
        "client_secret": Option(str, secret=True, help="OAuth client secret"),
        "refresh_token": Option(
            str, secret=True, help="optional: a refresh token obtained elsewhere"
        ),
        "redirect_uri": Option(
            str, help="the redirect URI registered for the client (default: loopback)"
        ),
        "authorize_url": Option(str, default=spec.authorize_url, help="authorization endpoint"),
        "token_url": Option(str, default=spec.token_url, help="token endpoint"),
    }
    if not spec.refreshable:
        del keys["refresh_token"]
    return keys


@dataclass
class Tokens:
    """A source's user token: stored, refreshed before it expires, renewed once on a 401."""

    source: Source
    spec: Spec
    _lock: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.source.name

    def client(self) -> tuple[str, str] | None:
        cid, secret = (self.source.settings.get(k) for k in ("client_id", "client_secret"))
        return (cid, secret) if cid and secret else None

    def saved(self) -> dict[str, Any]:
        """The stored record, if it belongs to the configured client."""
        try:
            record = json.loads(self.source.state.get(STATE_KEY) or "{}")
        except ValueError:
            return {}
        if not isinstance(record, dict):
            return {}
        client = self.client()
        if client and record.get("client_id") not in (None, client[0]):
            return {}  # authorized with another client: its tokens are not ours
        scrub.register(*(v for k, v in record.items() if k.endswith("_token") and v))
        return record

    def refresh_token(self) -> str | None:
        token = self.saved().get("refresh_token") or self.source.settings.get("refresh_token")
        return token if isinstance(token, str) and token else None

    def authorized(self) -> bool:
        record = self.saved()
        return bool(self.refresh_token() or record.get("access_token"))

    def missing(self) -> str | None:
        """Why the source cannot act as the user yet, or None."""
        if not self.client():
            return f"set sources.{self.name}.client_id and client_secret" + (
                f" ({self.spec.console})" if self.spec.console else ""
            )
        if not self.authorized():
            if not self.spec.refreshable:
                return f"run 'mentionwatch auth {self.name}'"
            return f"run 'mentionwatch auth {self.name}' (or set sources.{self.name}.refresh_token)"
        return None

    def status(self) -> str:
        """What `sources` says about the authorization (never a token)."""
        record = self.saved()
        left = float(record.get("expires_at") or 0) - time.time()
        if self.missing():
            return f"not authorized: {self.missing()}"
        token = record.get("access_token")
        if token and left > 0:
            renew = ", renewed automatically" if self.refresh_token() or self.spec.renew else ""
            failed = record.get("renew_failed")
            note = f"; the last renewal failed: {failed}" if isinstance(failed, str) else ""
            return f"authorized (access token valid for {_span(left)}{renew}){note}"
        if self.spec.renew is not None or not self.refresh_token():
            return f"not authorized: {self._expired(record)}"
        return "authorized (a new access token is fetched on the next call)"

    def _expired(self, record: dict[str, Any]) -> str:
        ended = float(record.get("expires_at") or 0)
        when = f" on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(ended))}" if ended else ""
        return f"the authorization expired{when}: run 'mentionwatch auth {self.name}' again"

    async def bearer(self) -> str:
        """A valid access token: the stored one, or a refreshed one."""
        import asyncio  # lazily: config loading imports every source

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            record = self.saved()
            token = record.get("access_token")
            left = float(record.get("expires_at") or 0) - time.time()
            if self.spec.renew is not None:
                return await self._renewed(record, token if isinstance(token, str) else "", left)
            if isinstance(token, str) and left > MARGIN:
                return token
            return await self._refresh(record)

    async def rejected(self, token: str) -> None:
        """The platform refused `token` (401): forget it, unless it was already replaced."""
        record = self.saved()
        if record.get("access_token") == token:
            record.pop("access_token", None)
            record["expires_at"] = 0
            self.source.state.set(STATE_KEY, json.dumps(record))

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A call as the user: the bearer token, and on a 401 one refresh and one retry."""
        headers = dict(kwargs.pop("headers", None) or {})
        for attempt in range(2):
            token = await self.bearer()
            headers["Authorization"] = f"Bearer {token}"
            response = await self.source.http.request(method, url, headers=headers, **kwargs)
            if response.status_code != 401 or attempt or not self.refresh_token():
                return response
            await self.rejected(token)
        return response

    async def _refresh(self, record: dict[str, Any]) -> str:
        refresh = self.refresh_token()
        if not refresh or not self.client():
            raise SourceError(
                f"{self.name}: not authorized: {self.missing() or 'no refresh token'}"
            )
        client_id, secret = self.client() or ("", "")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": client_id,
            "client_secret": secret,
        }
        answer = await exchange(self.source, form, "renewing the access token")
        self.source.state.set(STATE_KEY, json.dumps(_record(answer, client_id, refresh, self.spec)))
        return str(answer["access_token"])

    async def _renewed(self, record: dict[str, Any], token: str, left: float) -> str:
        """A self-renewing token (`Spec.renew`): kept until `renew_after` old, then traded for
        a fresh one while it is still valid. A failed renewal keeps the token it has (and
        `sources` says so); an expired one cannot be renewed at all."""
        assert self.spec.renew is not None
        if not token or left <= 0:
            raise SourceError(f"{self.name}: {self._expired(record)}")
        now = time.time()
        age = now - float(record.get("obtained_at") or now)
        tried = float(record.get("renew_tried_at") or 0)
        if left > MARGIN and (age < self.spec.renew_after or now - tried < RENEW_PAUSE):
            return token
        try:
            answer = await swap(self.source, self.spec.renew, token, "renewing the access token")
        except SourceError as exc:
            if left <= MARGIN:
                raise
            # The token still works: keep it, say why in `sources`, try again later.
            record.update(renew_failed=str(exc).split(": ", 1)[-1], renew_tried_at=now)
            self.source.state.set(STATE_KEY, json.dumps(record))
            return token
        renewed = _record(answer, str(record.get("client_id") or ""), None, self.spec)
        self.source.state.set(STATE_KEY, json.dumps({**renewed, "scope": record.get("scope")}))
        return str(answer["access_token"])


async def exchange(source: Source, form: dict[str, str], doing: str) -> dict[str, Any]:
    """POST to the token endpoint; the answer (with an access_token) or a SourceError."""
    return await _token_call(source, "POST", _token_url(source), doing, data=form)


async def swap(source: Source, how: Swap, token: str, doing: str) -> dict[str, Any]:
    """Trade `token` for a new one (`Spec.upgrade`, `Spec.renew`): the token answer."""
    params = {"grant_type": how.grant_type, "access_token": token}
    if how.secret:
        params["client_secret"] = str(source.settings.get("client_secret") or "")
    return await _token_call(source, "GET", urljoin(_token_url(source), how.path), doing,
                             params=params)  # fmt: skip


def _token_url(source: Source) -> str:
    return str(source.settings.get("token_url") or (source.oauth.token_url if source.oauth else ""))


async def _token_call(
    source: Source, method: str, url: str, doing: str, **kwargs: Any
) -> dict[str, Any]:
    response = await source.http.request(
        method, url, headers={"Accept": "application/json"}, **kwargs
    )
    if response.status_code >= 400:
        data = _json(response)
        error = data.get("error")
        # OAuth's invalid_grant (Google), Graph's 190 (Meta): the grant itself is gone.
        if error == "invalid_grant" or (isinstance(error, dict) and error.get("code") == 190):
            reason = "invalid_grant" if error == "invalid_grant" else "OAuthException 190"
            raise SourceError(
                f"{source.name}: {doing}: the authorization was revoked or has expired "
                f"({reason}): run 'mentionwatch auth {source.name}' again"
            )
        raise source.http.error(
            response, doing, f"check sources.{source.name}.client_id and client_secret"
        )
    answer = _json(response)
    token = answer.get("access_token")
    scrub.register(*(v for k, v in answer.items() if k.endswith("_token") and isinstance(v, str)))
    if not isinstance(token, str) or not token:
        raise SourceError(
            f"{source.name}: {doing}: the token endpoint answered without an access_token"
        )
    return answer


def _span(seconds: float) -> str:
    """A time left, in the unit that reads best: '59 days', '5 h', '12 min'."""
    if seconds >= 2 * 86400:
        return f"{round(seconds / 86400)} days"
    if seconds >= 2 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 60)} min"


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = json.loads(response.content)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _record(
    answer: dict[str, Any], client_id: str, refresh: str | None, spec: Spec
) -> dict[str, Any]:
    given = answer.get("expires_in")
    if isinstance(given, str) and given.isdigit():  # some answers quote their numbers
        given = int(given)
    lifetime = spec.lifetime
    if isinstance(given, int | float) and not isinstance(given, bool) and given > 0:
        lifetime = float(given)
    return {
        "client_id": client_id,
        "access_token": answer["access_token"],
        # Google answers a refresh without a new refresh token: the old one stays valid.
        "refresh_token": answer.get("refresh_token") or refresh,
        "expires_at": time.time() + lifetime,
        "scope": answer.get("scope"),
        "obtained_at": time.time(),
    }


# The flow `mentionwatch auth NAME` runs


def pkce_pair() -> tuple[str, str]:
    """A code verifier (RFC 7636: 43-128 characters) and its S256 challenge."""
    import base64
    import hashlib  # here, as secrets below: only `mentionwatch auth` needs them (~3 ms)
    import secrets

    verifier = secrets.token_urlsafe(64)[:96]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class _Callback:
    """What the browser brought back to the loopback server."""

    state: str
    path: str
    params: dict[str, str] | None = None
    event: Any = None


_DONE_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>mentionwatch</title>"
    b"<p>mentionwatch is authorized. You can close this tab and go back to the terminal."
)
_FAILED_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>mentionwatch</title>"
    b"<p>Authorization did not complete; the terminal says why."
)


def _serve_callback(callback: _Callback, port: int) -> Any:
    """A one-shot HTTP server on 127.0.0.1 that waits for the redirect back from the browser."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != callback.path or callback.params is not None:
                self.send_error(404)
                return
            params = {k: v[0] for k, v in parse_qs(parts.query).items()}
            ok = params.get("state") == callback.state and "code" in params
            # A request without our state is not the browser we sent (another page, a probe).
            if params.get("state") != callback.state:
                self.send_error(400, "unexpected request")
                return
            callback.params = params
            body = _DONE_PAGE if ok else _FAILED_PAGE
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            callback.event.set()

    try:
        server = HTTPServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on 127.0.0.1:{port} for the browser's answer ({exc.strerror}); "
            "pick another --port"
        ) from None
    callback.event = threading.Event()
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


def authorize(
    config: Config,
    store: Store,
    name: str,
    *,
    port: int = 0,
    open_browser: bool = True,
    timeout: float = 300.0,
    say: Callable[[str], None] = print,
) -> str:
    """Run the authorization-code flow for source `name`; store its tokens; a line saying so."""
    import asyncio

    from mentionwatch.http import open_client
    from mentionwatch.poller import build_source
    from mentionwatch.sources import registry

    cls = registry().get(name)
    if cls is None or cls.oauth is None:
        able = [n for n, c in registry().items() if c.oauth is not None]
        raise UsageError(f"{name} needs no authorization here (sources that do: {', '.join(able)})")
    settings = config.sources.get(name)
    if settings is None:
        raise UsageError(f"add a [sources.{name}] table with client_id and client_secret first")
    spec = cls.oauth
    source = build_source(settings, config, store, client=None)
    tokens = Tokens(source, spec)
    client = tokens.client()
    if client is None:
        raise UsageError(f"{name}: {tokens.missing()}")
    configured = str(settings.get("redirect_uri") or "")
    if not configured and not spec.loopback:
        raise UsageError(
            f"{name}: set sources.{name}.redirect_uri to a redirect URI registered for your app"
            + (f" ({spec.console})" if spec.console else "")
        )
    listen = _loopback(configured) if configured else (port, spec.callback_path)
    if configured and listen and port and port != listen[0]:
        raise UsageError(
            f"--port {port} differs from the port of sources.{name}.redirect_uri ({configured})"
        )
    import secrets

    verifier, challenge = pkce_pair()
    callback = _Callback(state=secrets.token_urlsafe(24), path=listen[1] if listen else "")
    server = _serve_callback(callback, listen[0]) if listen else None
    try:
        redirect = configured or (
            f"http://127.0.0.1:{server.server_address[1]}{spec.callback_path}" if server else ""
        )
        query = {
            "response_type": "code",
            "client_id": client[0],
            "redirect_uri": redirect,
            "scope": spec.scope_separator.join(spec.scopes),
            "state": callback.state,
            **dict(spec.authorize_params),
        }
        if spec.pkce:
            query.update(code_challenge=challenge, code_challenge_method="S256")
        base = settings.get("authorize_url") or spec.authorize_url
        url = f"{base}{'&' if '?' in base else '?'}{urlencode(query)}"
        back = (
            f"mentionwatch waits {round(timeout)} s for it to come back to {redirect}, or for "
            "the address the browser ends on, pasted here"
            if server
            else f"then paste here the address the browser ends on ({redirect}?…, even if the "
            f"page does not load) or just its code; mentionwatch waits {round(timeout)} s"
        )
        say(f"{name}: open this address in a browser and allow access; {back}:")
        print(url, flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        if not _wait(callback, timeout, listening=server is not None):
            raise UsageError(
                f"{name}: no answer from the browser within {round(timeout)} s (or the input "
                "ended); nothing changed (run the command again)"
            )
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    params = callback.params or {}
    if params.get("state", callback.state) != callback.state:
        raise UsageError(
            f"{name}: the pasted address is not the answer to this request (its state differs: "
            "from an older attempt?); nothing changed (run the command again)"
        )
    if "code" not in params:
        reason = params.get("error") or "no code came back"
        detail = params.get("error_description")
        reason = inert(f"{reason}: {detail}" if detail and detail != reason else reason)[:200]
        raise SourceError(f"{name}: authorization refused: {reason}; nothing changed")

    async def run() -> dict[str, Any]:
        async with open_client(config.poll) as http_client:
            live = build_source(settings, config, store, http_client)
            form = {
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": redirect,
                "client_id": client[0],
                "client_secret": client[1],
            }
            if spec.pkce:
                form["code_verifier"] = verifier
            answer = await exchange(live, form, "exchanging the authorization code")
            if spec.upgrade is None:
                return answer
            lasting = await swap(live, spec.upgrade, answer["access_token"],
                                 "swapping for a long-lived token")  # fmt: skip
            return {"scope": answer.get("scope"), **lasting}

    answer = asyncio.run(run())
    record = _record(answer, client[0], None, spec)
    if spec.refreshable and not record["refresh_token"]:
        say(
            f"{name}: warning: no refresh token came back, so this authorization lasts only as "
            "long as the access token; revoke mentionwatch's access in your account and run this "
            "again"
        )
    store.set_state(name, STATE_KEY, json.dumps(record))
    granted = record.get("scope") or spec.scope_separator.join(spec.scopes)
    lasts = f" (valid {_span(record['expires_at'] - time.time())})" if spec.renew else ""
    return (
        f"{name}: authorized (scopes: {granted}); the token{lasts} is kept in {store.path} and "
        "renewed automatically"
    )


def _loopback(redirect: str) -> tuple[int, str] | None:
    """(port, path) to listen on when `redirect` is a plain-http loopback address, else None:
    the browser's answer is then pasted (https, or another host)."""
    parts = urlsplit(redirect)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
        return None
    try:
        port = parts.port
    except ValueError:
        port = None
    return (port, parts.path or "/") if port else None


def _wait(callback: _Callback, timeout: float, *, listening: bool) -> bool:
    """Wait for the browser's answer: the loopback server's, or a line pasted on stdin (the
    address the browser ended on, or only the code). False when the time ran out."""
    import select
    import sys

    deadline = time.monotonic() + timeout
    reading = _readable(sys.stdin)
    if not reading and not listening:  # input without a file descriptor: read it as it is
        callback.params = _pasted(sys.stdin.readline())
        return callback.params is not None
    while time.monotonic() < deadline:
        if listening and callback.event.wait(0 if reading else 0.1):
            return True
        if not reading:
            if not listening:
                return False  # the input ended and no server listens: nothing can come
            continue
        ready, _, _ = select.select([sys.stdin], [], [], 0.1)
        if not ready:
            continue
        line = sys.stdin.readline()
        if not line:  # end of input: only the browser can answer now
            reading = False
            continue
        pasted = _pasted(line)
        if pasted is not None:
            callback.params = pasted
            return True
    return False


def _readable(stream: Any) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _pasted(line: str) -> dict[str, str] | None:
    """The answer in a pasted line: the query of a redirected address, or a bare code (Meta
    appends `#_` to its redirects, which a copy may keep)."""
    text = line.strip()
    if not text:
        return None
    if "://" in text or "=" in text:
        query = urlsplit(text).query if "://" in text else text.lstrip("?")
        params = {k: v[0] for k, v in parse_qs(query.split("#", 1)[0]).items()}
        # An address without our state could be anyone's: treat it as not ours.
        params.setdefault("state", "")
        return params
    return {"code": text.removesuffix("#_")}


def forget(store: Store, name: str) -> bool:
    """Remove a source's stored tokens; True when there were any."""
    had = store.get_state(name, STATE_KEY) is not None
    store.set_state(name, STATE_KEY, None)
    return had
