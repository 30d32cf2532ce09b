"""The Yelp Places API (api.yelp.com/v3): a business and its three review excerpts.

Played from reviews.json. Calls need `Authorization: Bearer KEY`; errors are Yelp's
`{"error": {"code", "description"}}` (TOKEN_MISSING, TOKEN_INVALID, BUSINESS_NOT_FOUND,
ACCESS_LIMIT_REACHED). Every answer carries the daily plan's RateLimit-* headers; set
`daily_left` to make calls run out.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

KEY = "pebbleYelpKey-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEF"
BUSINESS = "pebble-cafe-san-francisco"
_YELP = re.compile(r"\{\{yelp:(\d+)([hd])\}\}")


def yelp_error(status: int, code: str, description: str) -> Response:
    return json_response({"error": {"code": code, "description": description}}, status)


class Platform(PlatformBase):
    name = "yelp"
    search_path = f"/yelp/v3/businesses/{BUSINESS}/reviews"
    items_path = "reviews"
    required_key = "id"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.daily_left = 300
        self.extra: list[dict[str, Any]] = []
        self._fixture: dict[str, Any] | None = None

    def source_settings(self) -> dict[str, Any]:
        return {
            "base_url": f"{self.web.base_url(self.name)}/v3",
            "api_key": KEY,
            "businesses": [BUSINESS],
        }

    def add_item(self, text: str, created: float) -> str:
        review_id = f"backlog{len(self.extra):06d}"
        self.extra.append(
            {
                "id": review_id,
                "url": f"https://www.yelp.com/biz/{BUSINESS}?hrid={review_id}",
                "text": text,
                "rating": 3,
                "time_created": _local(created),
                "user": {
                    "id": "u",
                    "profile_url": "https://www.yelp.com/user_details?userid=u",
                    "name": "Back L.",
                },
            }
        )
        return f"yelp:{review_id}"

    def handle(self, request: Request) -> Response | None:
        if not request.path.startswith("/v3/businesses/"):
            return None
        if "authorization" not in request.headers:
            return yelp_error(
                400,
                "TOKEN_MISSING",
                "An access token must be supplied in order to use this endpoint.",
            )
        if request.headers["authorization"] != f"Bearer {KEY}":
            return yelp_error(401, "TOKEN_INVALID", "Invalid access token or authorization header.")
        reset = datetime.fromtimestamp(time.time() // 86400 * 86400 + 86400, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S+00:00"
        )
        headers = {"RateLimit-DailyLimit": "300", "RateLimit-ResetTime": reset}
        if self.daily_left <= 0:
            response = yelp_error(
                429,
                "ACCESS_LIMIT_REACHED",
                "You've reached the access limit for this client. Please email api@yelp.com for assistance",  # noqa: E501
            )
            response.headers.update({**headers, "RateLimit-Remaining": "0"})
            return response
        self.daily_left -= 1
        headers["RateLimit-Remaining"] = str(self.daily_left)
        response = self.business(request.path.removeprefix("/v3/businesses/"))
        response.headers.update(headers)
        return response

    def business(self, rest: str) -> Response:
        if self._fixture is None:  # filled once: a review's time does not move
            self._fixture = _filled(self.fixture_text("reviews.json"))
        name, _, reviews = rest.partition("/")
        data = self._fixture.get(name)
        if data is None:
            return yelp_error(
                404, "BUSINESS_NOT_FOUND", "The requested business could not be found."
            )
        if not reviews:
            return json_response(
                {
                    "id": "WavvLdfdP6g8aZTtbBQHTw",
                    "alias": name,
                    "name": "Pebble Cafe",
                    "review_count": data["total"],
                    "rating": 4.0,
                }
            )
        found = sorted(data["reviews"] + self.extra, key=lambda r: r["time_created"], reverse=True)[
            :3
        ]
        return json_response(
            {
                "total": data["total"],
                "possible_languages": data["possible_languages"],
                "reviews": found,
            }
        )


def _local(stamp: float) -> str:
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(stamp, ZoneInfo("America/Los_Angeles")).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


def _filled(text: str) -> Any:
    import json

    unit = {"h": 3600, "d": 86400}
    text = _YELP.sub(lambda m: _local(time.time() - int(m[1]) * unit[m[2]]), text)
    data = json.loads(text)
    data.pop("_origin", None)
    return data
