"""Product Hunt's API v2 (api.producthunt.com/v2/api/graphql): `posts(order: NEWEST)` and
`viewer`.

Played from posts.json; the GraphQL query is not parsed, only its variables (after,
postedAfter, postedBefore) are honoured, in pages of 20. Every answer carries
X-Rate-Limit-Limit/Remaining/Reset (Reset in seconds); a bad token gets the API's
`{"data": null, "errors": [{"error": "invalid_oauth_token", …}]}` and a spent budget a 429
with `rate_limit_reached` (as recorded in producthunt/producthunt-api issue #336).
"""

from __future__ import annotations

import base64
import time
from typing import Any

from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

TOKEN = "pebblePhDevToken-0000000000000000000000000"
PAGE = 20


class Platform(PlatformBase):
    name = "producthunt"
    search_path = "/producthunt/v2/api/graphql"
    items_path = "data.posts.edges"
    required_key = "node"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.extra: list[dict[str, Any]] = []
        self.points_left = 6250

    def source_settings(self) -> dict[str, Any]:
        return {"base_url": f"{self.web.base_url(self.name)}/v2", "token": TOKEN}

    def add_item(self, text: str, created: float) -> str:
        post_id = str(900_000 + len(self.extra))
        self.extra.append(
            {
                "id": post_id,
                "name": text,
                "tagline": text,
                "description": "",
                "url": f"https://www.producthunt.com/posts/backlog-{post_id}",
                "votesCount": 0,
                "commentsCount": 0,
                "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
                "user": {"id": "0", "username": "[REDACTED]", "name": "[REDACTED]"},
            }
        )
        return f"producthunt:{post_id}"

    def handle(self, request: Request) -> Response | None:
        if request.path != "/v2/api/graphql" or request.method != "POST":
            return None
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return json_response(
                {
                    "data": None,
                    "errors": [
                        {
                            "error": "invalid_oauth_token",
                            "error_description": "Please supply a valid access token. Refer to our api documentation about how to authorize and authenticate your requests.",  # noqa: E501
                        }
                    ],
                },
                401,
            )
        headers = {"X-Rate-Limit-Limit": "6250", "X-Rate-Limit-Reset": "900"}
        if self.points_left <= 0:
            body = {
                "data": None,
                "errors": [
                    {
                        "error": "rate_limit_reached",
                        "error_description": "Sorry. You have exceeded the API rate limit, please try again later.",  # noqa: E501
                        "details": {"limit": 6250, "remaining": self.points_left, "reset_in": 900},
                    }
                ],
            }
            return Response(429, body, {**headers, "X-Rate-Limit-Remaining": "0"})
        self.points_left -= 25
        headers["X-Rate-Limit-Remaining"] = str(self.points_left)
        query = (request.json() or {}).get("query") or ""
        if "viewer" in query:
            return Response(
                200, {"data": {"viewer": {"user": {"username": "pebble_founder"}}}}, headers
            )
        variables = (request.json() or {}).get("variables") or {}
        after, before = variables.get("postedAfter") or "", variables.get("postedBefore") or "9"
        posts = sorted(
            (
                p
                for p in self.fixture_json("posts.json")["posts"] + self.extra
                if after <= p["createdAt"] < before
            ),
            key=lambda p: p["createdAt"],
            reverse=True,
        )
        start = int(base64.b64decode(variables["after"]).decode()) if variables.get("after") else 0
        shown = posts[start : start + PAGE]
        edges = [
            {"cursor": base64.b64encode(str(start + i + 1).encode()).decode(), "node": p}
            for i, p in enumerate(shown)
        ]
        info = {
            "endCursor": edges[-1]["cursor"] if edges else None,
            "hasNextPage": start + PAGE < len(posts),
        }
        return Response(200, {"data": {"posts": {"edges": edges, "pageInfo": info}}}, headers)
