"""DEV / Forem's API (dev.to/api): `/api/articles/latest`, newest first.

Played from articles.json. Unversioned calls get `Warning: 299 - "This endpoint is part of
the V0 (beta) API…"` as Forem answers; a wrong api-key is a 401 `{"error": "unauthorized",
"status": 401}`; more than `per_second` calls a second get 429 with Retry-After (Forem's
rack_attack.rb).
"""

from __future__ import annotations

import time
from typing import Any

from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

KEY = "pebbleDevToApiKey0000000"
V1 = "application/vnd.forem.api-v1+json"


class Platform(PlatformBase):
    name = "devto"
    search_path = "/devto/api/articles/latest"
    items_path = ""
    required_key = "url"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.extra: list[dict[str, Any]] = []
        self.per_second = 3
        self.hits: list[float] = []

    def source_settings(self) -> dict[str, Any]:
        return {"base_url": f"{self.web.base_url(self.name)}/api", "api_key": KEY}

    def add_item(self, text: str, created: float) -> str:
        article_id = 9_000_000 + len(self.extra)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
        self.extra.append(
            {
                "type_of": "article",
                "id": article_id,
                "title": text,
                "description": "",
                "url": f"https://dev.to/backlog/{article_id}",
                "comments_count": 0,
                "public_reactions_count": 0,
                "published_timestamp": stamp,
                "published_at": stamp,
                "tag_list": [],
                "user": {"name": "Backlog", "username": "backlog", "user_id": 1},
            }
        )
        return f"devto:{article_id}"

    def handle(self, request: Request) -> Response | None:
        if request.path != "/api/articles/latest":
            return None
        key = request.headers.get("api-key")
        if key is not None and key != KEY:
            return json_response({"error": "unauthorized", "status": 401}, 401)
        now = time.time()
        self.hits = [t for t in self.hits if now - t < 1]
        if len(self.hits) >= self.per_second:
            return json_response(
                {"error": "Rate limit reached, try again in 1 seconds", "status": 429},
                429,
                **{"Retry-After": "1"},
            )
        self.hits.append(now)
        page, size = int(request.arg("page") or 1), min(int(request.arg("per_page") or 30), 1000)
        articles = sorted(
            self.fixture_json("articles.json")["articles"] + self.extra,
            key=lambda a: a["published_timestamp"],
            reverse=True,
        )
        headers = (
            {}
            if request.headers.get("accept") == V1
            else {
                "Warning": '299 - "This endpoint is part of the V0 (beta) API. To start using the V1 endpoints add the `Accept` header and set it to `application/vnd.forem.api-v1+json`."'  # noqa: E501
            }
        )
        return Response(200, articles[(page - 1) * size : page * size], headers)
