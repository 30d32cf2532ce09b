"""OAuth 2.0 for sources that act as a user (YouTube and Google Play; Threads declares its own).

- A source declares one `Spec`: where the browser authorizes, where tokens come from, which
  scopes, and how the platform expects them. `options(spec)` are the config keys it adds
  (client id and secret, an optional refresh token obtained elsewhere, the endpoints).
- `authorize()` is `mentionwatch auth NAME`: the authorization-code flow on loopback (RFC
  8252), with PKCE (S256) where the platform offers it and a random `state` always. The
  browser comes back to a one-shot server on 127.0.0.1; the code is exchanged at once.
- `Tokens` is what a source polls with: the stored access token while it has more than
  `MARGIN` left, else a refresh first; a 401 drops it and refreshes once.

Tokens live in the source's slice of the database (source_state, a 0600 file), registered
with the scrubber as soon as they are seen, and never printed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from mentionwatch import scrub
from mentionwatch.errors import SourceError, UsageError
from mentionwatch.models import Option

if TYPE_CHECKING:
    import httpx

    from mentionwatch.config import Config
    from mentionwatch.sources.base import Source
    from mentionwatch.store import Store

STATE_KEY = "oauth"
MARGIN = 120.0  # seconds: a token closer than this to its expiry is refreshed first
DEFAULT_LIFETIME = 3600.0  # when the token answer names none


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
    return {
        "client_id": Option(str, help="OAuth client id (for 'mentionwatch auth')"),
        "client_secret": Option(str, secret=True, help="OAuth client secret"),
        "refresh_token": Option(
            str, secret=True, help="optional: a refresh token obtained elsewhere"
        ),
        "authorize_url": Option(str, default=spec.authorize_url, help="authorization endpoint"),
        "token_url": Option(str, default=spec.token_url, help="token endpoint"),
    }


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
            return f"run 'mentionwatch auth {self.name}' (or set sources.{self.name}.refresh_token)"
        return None

    def status(self) -> str:
        """What `sources` says about the authorization (never a token)."""
        record = self.saved()
        left = float(record.get("expires_at") or 0) - time.time()
        if self.missing():
            return f"not authorized: {self.missing()}"
        if record.get("access_token") and left > 0:
            renew = ", renewed automatically" if self.refresh_token() else ""
            return f"authorized (access token valid {round(left / 60)} more min{renew})"
        return "authorized (a new access token is fetched on the next call)"

    async def bearer(self) -> str:
        """A valid access token: the stored one, or a refreshed one."""
        import asyncio  # lazily: config loading imports every source

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            record = self.saved()
            token = record.get("access_token")
            if (
                isinstance(token, str)
                and float(record.get("expires_at") or 0) > time.time() + MARGIN
            ):
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
        self.source.state.set(STATE_KEY, json.dumps(_record(answer, client_id, refresh)))
        return str(answer["access_token"])


async def exchange(source: Source, form: dict[str, str], doing: str) -> dict[str, Any]:
    """POST to the token endpoint; the answer (with an access_token) or a SourceError."""
    url = source.settings.get("token_url") or (source.oauth.token_url if source.oauth else "")
    response = await source.http.request(
        "POST", url, data=form, headers={"Accept": "application/json"}
    )
    if response.status_code >= 400:
        data = _json(response)
        if data.get("error") == "invalid_grant":
            raise SourceError(
                f"{source.name}: {doing}: the authorization was revoked or has expired "
                f"(invalid_grant): run 'mentionwatch auth {source.name}' again"
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


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = json.loads(response.content)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _record(answer: dict[str, Any], client_id: str, refresh: str | None) -> dict[str, Any]:
    lifetime = answer.get("expires_in")
    lifetime = (
        float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else DEFAULT_LIFETIME
    )
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
    verifier, challenge = pkce_pair()
    callback = _Callback(state=secrets.token_urlsafe(24), path=spec.callback_path)
    server = _serve_callback(callback, port)
    try:
        redirect = f"http://127.0.0.1:{server.server_address[1]}{spec.callback_path}"
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
        say(
            f"{name}: open this address in a browser and allow access "
            f"(waiting {round(timeout)} s for it to come back to {redirect}):"
        )
        print(url, flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        if not callback.event.wait(timeout):
            raise UsageError(
                f"{name}: no answer from the browser within {round(timeout)} s; "
                "nothing changed (run the command again)"
            )
    finally:
        server.shutdown()
        server.server_close()
    params = callback.params or {}
    if "code" not in params:
        reason = params.get("error_description") or params.get("error") or "no code came back"
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
            return await exchange(live, form, "exchanging the authorization code")

    answer = asyncio.run(run())
    record = _record(answer, client[0], None)
    if spec.refreshable and not record["refresh_token"]:
        say(
            f"{name}: warning: no refresh token came back, so this authorization lasts only as "
            "long as the access token; revoke mentionwatch's access in your account and run this "
            "again"
        )
    store.set_state(name, STATE_KEY, json.dumps(record))
    granted = record.get("scope") or spec.scope_separator.join(spec.scopes)
    return (
        f"{name}: authorized (scopes: {granted}); the token is kept in {store.path} and "
        "renewed automatically"
    )


def forget(store: Store, name: str) -> bool:
    """Remove a source's stored tokens; True when there were any."""
    had = store.get_state(name, STATE_KEY) is not None
    store.set_state(name, STATE_KEY, None)
    return had
