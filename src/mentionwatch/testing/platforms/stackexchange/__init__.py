"""The Stack Exchange API 2.3 (api.stackexchange.com/2.3): /search/excerpts, /questions/{ids}
and /info.

Played from sites/<site>.json (search_excerpt items). Like the real search, `q` matches words
inside longer words, so `pebblebase` also finds `pebblebased`: the client verifies matches.
Every answer has the wrapper's quota fields; `backoff_next` adds a `backoff` to the next one.
Errors use the API's own body (error_id, error_name, error_message) and statuses.
"""

from __future__ import annotations

import re
from typing import Any

from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

KEY = "pebbleKey0fTheApp(("  # the one app key this API accepts (real keys look like this)
_QUESTIONS = re.compile(r"^/2\.3/questions/(\d+(?:;\d+)*)$")
# search_excerpt fields a question object does not have.
_EXCERPT_ONLY = ("item_type", "excerpt", "question_score", "is_accepted", "has_accepted_answer",
                 "equivalent_tag_search")  # fmt: skip


class Platform(PlatformBase):
    name = "stackexchange"
    search_path = "/stackexchange/2.3/search/excerpts"
    items_path = "items"
    required_key = "question_id"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.extra_items: list[dict[str, Any]] = []  # tests add hostile or edge-case items
        self.backoff_next: int | None = None  # seconds to ask for in the next answer
        self.used = 0

    def add_item(self, text: str, created: float) -> str:
        question_id = 90_000_000 + len(self.extra_items)
        self.extra_items.append({
            "item_type": "question", "question_id": question_id, "title": text,
            "body": f"<p>{text}</p>", "excerpt": text, "creation_date": int(created),
            "last_activity_date": int(created), "score": 0, "answer_count": 0,
            "is_answered": False, "tags": ["databases"],
            "owner": {"user_id": 4242, "display_name": "backlog reader", "reputation": 1},
        })  # fmt: skip
        return f"stackexchange:stackoverflow:{question_id}"

    def source_settings(self) -> dict[str, Any]:
        return {"base_url": f"{self.web.base_url(self.name)}/2.3", "key": KEY}

    def handle(self, request: Request) -> Response | None:
        questions = _QUESTIONS.match(request.path)
        if request.path not in ("/2.3/search/excerpts", "/2.3/info") and not questions:
            return _error(404, "no_method", "no method found with this name")
        key = request.arg("key")
        if key is not None and key != KEY:
            return _error(400, "bad_parameter", "key")
        site = request.arg("site")
        if not site:
            return _error(400, "bad_parameter", "site is required")
        if not (self.folder / "sites" / f"{site}.json").is_file():
            return _error(400, "bad_parameter", f"No site found for name `{site}`")
        self.used += 1
        if request.path == "/2.3/info":
            return self._wrap(request, [{"total_questions": 24181722, "api_revision": "2026.7"}])
        if questions:
            return self.questions(request, site, questions.group(1).split(";"))
        return self.search(request, site)

    def questions(self, request: Request, site: str, ids: list[str]) -> Response:
        """Question objects by id (up to 100), from the site's question excerpts: `body` only
        with filter=withbody, as with the default filter; unknown ids are left out."""
        if len(ids) > 100:
            return _error(400, "bad_parameter", "ids")
        excerpts = self.fixture_json(f"sites/{site}.json")["items"] + self.extra_items
        by_id = {str(i.get("question_id")): i for i in excerpts if i.get("item_type") == "question"}
        domain = "stackoverflow.com" if site == "stackoverflow" else f"{site}.com"
        found = []
        for question_id in ids:
            if question_id not in by_id:
                continue
            item = {k: v for k, v in by_id[question_id].items() if k not in _EXCERPT_ONLY}
            if request.arg("filter") != "withbody":
                item.pop("body", None)
            slug = "-".join(re.findall(r"[a-z0-9]+", str(item.get("title", "")).lower()))[:80]
            item.update(view_count=412, content_license="CC BY-SA 4.0",
                        link=f"https://{domain}/questions/{question_id}/{slug}")  # fmt: skip
            found.append(item)
        return self._wrap(request, found)

    def search(self, request: Request, site: str) -> Response:
        items = self.fixture_json(f"sites/{site}.json")["items"] + self.extra_items
        words = re.findall(r"\w+", (request.arg("q") or "").lower())
        since = int(request.arg("fromdate") or 0)
        until = int(request.arg("todate") or 2**62)
        found = [
            i
            for i in items
            if since <= _created(i) <= until and all(w in _searchable(i) for w in words)
        ]
        found.sort(key=_created, reverse=True)
        size = min(int(request.arg("pagesize") or 30), 100)
        page = int(request.arg("page") or 1)
        return self._wrap(
            request, found[(page - 1) * size : page * size], has_more=page * size < len(found)
        )

    def _wrap(self, request: Request, items: list[Any], has_more: bool = False) -> Response:
        quota = 10000 if request.arg("key") else 300
        body: dict[str, Any] = {"items": items, "has_more": has_more, "quota_max": quota,
                                "quota_remaining": quota - self.used}  # fmt: skip
        if self.backoff_next:
            body["backoff"], self.backoff_next = self.backoff_next, None
        return json_response(body)


def _created(item: dict[str, Any]) -> int:
    value = item.get("creation_date")
    return value if isinstance(value, int) else 0


def _searchable(item: dict[str, Any]) -> str:
    return f"{item.get('title') or ''} {item.get('body') or ''}".lower()


def _error(status: int, name: str, message: str) -> Response:
    return json_response({"error_id": status, "error_message": message, "error_name": name}, status)
