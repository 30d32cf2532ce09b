"""Algolia's Hacker News search API (hn.algolia.com/api/v1), played from hits.json.

Like Algolia, the search prefix-matches every word and ignores quotes' strictness, so a
search for `pebblebase` also returns `pebblebased`: the client must verify matches itself.
"""

from __future__ import annotations

import html
import re
import time
from typing import Any

from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

_FILTER = re.compile(r"^(created_at_i|points|num_comments)(>=|<=|>|<|=)(\d+)$")
_SEARCHABLE = ("title", "story_text", "comment_text", "url", "author")


class Platform(PlatformBase):
    name = "hackernews"
    search_path = "/hackernews/api/v1/search_by_date"
    items_path = "hits"
    required_key = "objectID"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.extra_hits: list[dict[str, Any]] = []  # tests add hostile or edge-case hits here

    def add_item(self, text: str, created: float) -> str:
        object_id = str(70_000_000 + len(self.extra_hits))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(created))
        self.extra_hits.append({
            "objectID": object_id, "created_at_i": int(created), "created_at": stamp,
            "author": "backlog_reader", "title": None, "url": None, "story_text": None,
            "comment_text": f"<p>{html.escape(text)}</p>", "points": None, "num_comments": None,
            "story_id": 41230000, "story_title": "Ask HN: what are you using?",
            "parent_id": 41230000, "_tags": ["comment", "author_backlog_reader", "story_41230000"],
        })  # fmt: skip
        return f"hackernews:{object_id}"

    def hits(self) -> list[dict[str, Any]]:
        return self.fixture_json("hits.json")["hits"] + self.extra_hits

    def source_settings(self) -> dict[str, Any]:
        return {"base_url": f"{self.web.base_url(self.name)}/api/v1"}

    def handle(self, request: Request) -> Response | None:
        if request.path in ("/api/v1/search_by_date", "/api/v1/search"):
            return self.search(request)
        match = re.fullmatch(r"/api/v1/items/(\d+)", request.path)
        if match:
            for hit in self.hits():
                if hit["objectID"] == match.group(1):
                    return json_response(_item(hit))
        return None

    def search(self, request: Request) -> Response:
        query = request.arg("query", "") or ""
        excluded = [p.lower() for p in re.findall(r'-"([^"]+)"|-(\S+)', query) for p in p if p]
        positive = re.sub(r'-"[^"]+"|-\S+', " ", query).replace('"', " ").lower().split()
        hits = [h for h in self.hits() if _matches(h, positive, excluded)]
        hits = [h for h in hits if _tags_ok(h, request.arg("tags"))]
        for expr in (request.arg("numericFilters") or "").split(","):
            hits = [h for h in hits if _numeric_ok(h, expr.strip())]
        hits.sort(key=lambda h: h["created_at_i"], reverse=True)
        per_page = min(int(request.arg("hitsPerPage", "20") or 20), 1000)
        page = int(request.arg("page", "0") or 0)
        pages = (len(hits) + per_page - 1) // per_page
        return json_response(
            {
                "hits": hits[page * per_page : (page + 1) * per_page],
                "page": page,
                "nbHits": len(hits),
                "nbPages": pages,
                "hitsPerPage": per_page,
                "exhaustiveNbHits": True,
                "processingTimeMS": 1,
                "query": query,
                "params": "&".join(f"{k}={v[0]}" for k, v in request.query.items()),
            }
        )


def _item(hit: dict[str, Any]) -> dict[str, Any]:
    """The items/<id> shape: one `text` field for stories and comments, and the reply tree."""
    is_comment = "comment" in hit.get("_tags", [])
    return {
        "id": int(hit["objectID"]),
        "created_at": hit.get("created_at"),
        "created_at_i": hit.get("created_at_i"),
        "type": "comment" if is_comment else "story",
        "author": hit.get("author"),
        "title": hit.get("title"),
        "url": hit.get("url"),
        "text": hit.get("comment_text") if is_comment else hit.get("story_text"),
        "points": hit.get("points"),
        "parent_id": hit.get("parent_id"),
        "story_id": hit.get("story_id"),
        "children": [],
        "options": [],
    }


def _matches(hit: dict[str, Any], words: list[str], excluded: list[str]) -> bool:
    haystack = " ".join(str(hit.get(k) or "") for k in _SEARCHABLE).lower()
    tokens = re.findall(r"\w+", haystack)
    if any(e in haystack for e in excluded):
        return False
    # Algolia's prefixLast plus typo tolerance, approximated: every query word starts a token.
    return all(any(t.startswith(w) for t in tokens) for w in re.findall(r"\w+", " ".join(words)))


def _tags_ok(hit: dict[str, Any], tags: str | None) -> bool:
    if not tags:
        return True
    for group in re.findall(r"\(([^)]*)\)|([^,()]+)", tags):
        wanted = [t for t in (group[0] or group[1]).split(",") if t]
        if wanted and not set(wanted) & set(hit.get("_tags", [])):
            return False
    return True


def _numeric_ok(hit: dict[str, Any], expr: str) -> bool:
    if not expr:
        return True
    match = _FILTER.match(expr)
    if not match:
        return True
    field, op, value = match.group(1), match.group(2), int(match.group(3))
    actual = hit.get(field)
    if actual is None:
        return False
    return {
        ">=": actual >= value, "<=": actual <= value, ">": actual > value,
        "<": actual < value, "=": actual == value,
    }[op]  # fmt: skip
