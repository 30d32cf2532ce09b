"""Lobsters (lobste.rs): `/newest.json` and `/newest/page/N.json`, 25 stories a page.

Played from newest.json. Every answer carries Rack::Attack's RateLimit-* headers; after
`per_minute` requests a minute it answers 429 "Throttled, sleep(1) between hits" as
lobsters/lobsters:config/initializers/rack_attack.rb does (RateLimit-Reset an epoch).
"""

from __future__ import annotations

import re
import time
from typing import Any

from mentionwatch.testing.server import PlatformBase, Request, Response

_PAGE = re.compile(r"/newest(?:/page/(\d+))?\.json")
PER_PAGE = 25


class Platform(PlatformBase):
    name = "lobsters"
    search_path = "/lobsters/newest.json"
    items_path = ""
    required_key = "short_id"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.extra: list[dict[str, Any]] = []
        self.per_minute = 30
        self.hits: list[float] = []

    def add_item(self, text: str, created: float) -> str:
        short_id = f"bk{len(self.extra):04d}"
        self.extra.append(
            {
                "short_id": short_id,
                "short_id_url": f"https://lobste.rs/s/{short_id}",
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000-00:00", time.gmtime(created)),
                "title": text,
                "url": "",
                "score": 1,
                "flags": 0,
                "comment_count": 0,
                "description": "",
                "description_plain": "",
                "submitter_user": "backlog",
                "tags": ["programming"],
                "comments_url": f"https://lobste.rs/s/{short_id}/backlog",
            }
        )
        return f"lobsters:{short_id}"

    def handle(self, request: Request) -> Response | None:
        match = _PAGE.fullmatch(request.path)
        if not match:
            return None
        now = time.time()
        self.hits = [t for t in self.hits if now - t < 60]
        reset = str(int(now // 60 * 60 + 60))
        headers = {"RateLimit-Limit": str(self.per_minute), "RateLimit-Reset": reset}
        if len(self.hits) >= self.per_minute:
            return Response(
                429,
                "Throttled, sleep(1) between hits\n",
                {**headers, "RateLimit-Remaining": "0"},
                "text/plain",
            )
        self.hits.append(now)
        headers["RateLimit-Remaining"] = str(self.per_minute - len(self.hits))
        page = int(match.group(1) or 1)
        stories = sorted(
            self.fixture_json("newest.json")["stories"] + self.extra,
            key=lambda s: s["created_at"],
            reverse=True,
        )
        return Response(200, stories[(page - 1) * PER_PAGE : page * PER_PAGE], headers)
