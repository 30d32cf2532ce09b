"""What the three Meta emulators share (Threads, Facebook, Instagram): Graph's error
envelope, its cursor paging, its usage headers and its token check.

Shapes are copied from recorded answers: sns-sdks/python-facebook's testdata (comments_p1.json
with `paging.cursors` and `paging.next`, error_data.json, instagram/headers.json for
X-Business-Use-Case-Usage) and the error messages Meta documents (190 with subcode 463 for
an expired token, `(#10)` for a missing permission).
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from mentionwatch.testing.oauth import AuthServer
from mentionwatch.testing.server import Request, Response, json_response


def graph_error(
    status: int, code: int, message: str, subcode: int | None = None, **extra: Any
) -> Response:
    body: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        body["error_subcode"] = subcode
    body.update(extra)
    body["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
    return json_response({"error": body}, status)


def expired_token() -> Response:
    return graph_error(
        400, 190, "Error validating access token: Session has expired on Tuesday, 01-Jul-25 "
        "10:00:00 PDT. The current time is Wednesday, 02-Jul-25 09:00:00 PDT.", 463,
    )  # fmt: skip


def no_permission(what: str = "this action") -> Response:
    return graph_error(403, 10, f"(#10) Application does not have permission for {what}")


def cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"QVFIU:{offset}".encode()).decode().rstrip("=")


def offset_of(value: str | None) -> int | None:
    """The offset a cursor stands for; None for one this server never made."""
    if not value:
        return 0
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except ValueError:
        return None
    prefix, _, number = text.partition(":")
    return int(number) if prefix == "QVFIU" and number.isdigit() else None


def paged(
    request: Request, items: list[Any], base: str, default_limit: int = 25, max_limit: int = 100,
    next_link: bool = True,
) -> Response:  # fmt: skip
    """A page of `items` after the request's `after` cursor, Graph style: `paging.cursors`
    on every page with items, and a `next` link (absolute, with the query) while more
    follow; `next_link=False` plays edges that give cursors only. An unknown cursor is
    `(#100) Invalid cursor`."""
    start = offset_of(request.arg("after"))
    if start is None:
        return graph_error(400, 100, "(#100) The after parameter is not a valid cursor")
    limit = min(int(request.arg("limit", str(default_limit)) or default_limit), max_limit)
    page = items[start : start + limit]
    body: dict[str, Any] = {"data": page}
    if page:
        paging: dict[str, Any] = {
            "cursors": {"before": cursor(start), "after": cursor(start + len(page))}
        }
        if start + limit < len(items) and next_link:
            query = {k: v[0] for k, v in request.query.items() if k != "after"}
            paging["next"] = f"{base}?{urlencode({**query, 'after': cursor(start + len(page))})}"
        body["paging"] = paging
    return json_response(body)


class Usage:
    """The usage headers Meta sends, with a percentage tests can raise."""

    def __init__(self, kind: str, owner: str) -> None:
        self.kind, self.owner = kind, owner
        self.percent = 7
        self.regain_minutes = 0

    def headers(self) -> dict[str, str]:
        import json

        entry = {"type": self.kind, "call_count": self.percent, "total_cputime": 3,
                 "total_time": 4}  # fmt: skip
        entry["estimated_time_to_regain_access"] = self.regain_minutes
        app = {"call_count": max(1, self.percent // 2), "total_cputime": 1, "total_time": 1}
        return {
            "X-App-Usage": json.dumps(app),
            "X-Business-Use-Case-Usage": json.dumps({self.owner: [entry]}),
        }


def authorised(
    request: Request, token: str, expired: Callable[[], bool], auth: MetaAuth | None = None
) -> Response | None:
    """None for the right bearer token (or one `auth` issued); Graph's 190 error otherwise."""
    header = request.headers.get("authorization", "")
    if auth is not None and header.removeprefix("Bearer ") in auth.born:
        return auth.refusal(header.removeprefix("Bearer "))
    if header != f"Bearer {token}":
        return graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
    if expired():
        return expired_token()
    return None


LONG_LIVED = 5183944  # seconds: Meta's example answer (60 days, less a little)


@dataclass
class MetaAuth(AuthServer):
    """Meta's login for Threads (developers.facebook.com/docs/threads/get-started): the
    authorization window redirects only to a registered URI, with `#_` after the query; the
    code becomes a short-lived token (`POST /oauth/access_token` → `{access_token, user_id}`,
    1 h), swapped for a long-lived one (`GET /access_token?grant_type=th_exchange_token`, with
    the app secret), which renews itself (`GET /refresh_access_token?grant_type=
    th_refresh_token`) while unexpired and at least 24 h old. Errors in Graph's envelope;
    the codes for a bad code (100/36008), a bad secret (1) and a revoked grant (190/458)
    are Facebook Login's, the refusal of a token under a day old is UNCERTAIN."""

    scope_separator: str = ","
    denied: tuple[tuple[str, str], ...] = (
        ("error", "access_denied"), ("error_reason", "user_denied"),
        ("error_description", "Permissions error"),
    )  # fmt: skip
    fragment: str = "#_"
    code_prefix: str = "AQB"
    born: dict[str, float] = field(default_factory=dict)  # token -> when it was issued
    long: set[str] = field(default_factory=set)  # the long-lived ones
    revoked: bool = False  # the user removed the app in their Threads settings

    def age(self, seconds: float) -> None:
        """Every token issued so far becomes `seconds` older (and nearer its expiry)."""
        self.born = {t: at - seconds for t, at in self.born.items()}
        self.access = {t: at - seconds for t, at in self.access.items()}

    def refusal(self, token: str) -> Response | None:
        """None for a valid token this server issued; Graph's 190 error otherwise."""
        if self.revoked:
            return graph_error(400, 190, "Error validating access token: The user has not "
                               "authorized application 990602627938098.", 458)  # fmt: skip
        if self.access.get(token, 0.0) <= time.time():
            return expired_token()
        return None

    def handle_token(self, request: Request) -> Response:
        form = {**{k: v[0] for k, v in request.query.items()}, **request.form()}
        if form.get("client_id") != self.client_id:
            return graph_error(400, 101, "Error validating application. Invalid application ID.")
        if form.get("client_secret") != self.client_secret:
            return graph_error(400, 1, "Error validating client secret.")
        if form.get("grant_type") != "authorization_code":
            return graph_error(400, 100, "Unsupported grant_type")
        found = self.codes.pop(form.get("code", ""), None)
        if found is None or found[0] != form.get("redirect_uri"):
            return graph_error(400, 100, "Error validating verification code. Please make sure "
                               "your redirect_uri is identical to the one you used in the OAuth "
                               "dialog request", 36008)  # fmt: skip
        token = self._issue(3600, "THAAshort")
        return json_response({"access_token": token, "user_id": 25034521987654321})

    def handle_exchange(self, request: Request) -> Response:
        if request.arg("grant_type") != "th_exchange_token":
            return graph_error(400, 100, "Unsupported grant_type")
        if request.arg("client_secret") != self.client_secret:
            return graph_error(400, 1, "Error validating client secret.")
        return self._swap(request.arg("access_token") or "", short=True)

    def handle_refresh(self, request: Request) -> Response:
        if request.arg("grant_type") != "th_refresh_token":
            return graph_error(400, 100, "Unsupported grant_type")
        token = request.arg("access_token") or ""
        if token in self.long and time.time() - self.born.get(token, 0.0) < 86400:
            return graph_error(400, 100, "(#100) The access token can be refreshed only when "
                               "it is at least 24 hours old")  # fmt: skip
        return self._swap(token, short=False)

    def _swap(self, token: str, *, short: bool) -> Response:
        if token not in self.born or (token in self.long) == short:
            return graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        refused = self.refusal(token)
        if refused is not None:
            return refused
        fresh = self._issue(LONG_LIVED, "THAAlong")
        self.long.add(fresh)
        return json_response({"access_token": fresh, "token_type": "bearer",
                              "expires_in": LONG_LIVED})  # fmt: skip

    def _issue(self, lifetime: float, prefix: str) -> str:
        token = prefix + secrets.token_urlsafe(48)
        self.born[token] = time.time()
        self.access[token] = time.time() + lifetime
        self.issued.append(token)
        return token
