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
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

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


def authorised(request: Request, token: str, expired: Callable[[], bool]) -> Response | None:
    """None for the right bearer token; Graph's 190 error otherwise."""
    header = request.headers.get("authorization", "")
    if header != f"Bearer {token}":
        return graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
    if expired():
        return expired_token()
    return None
