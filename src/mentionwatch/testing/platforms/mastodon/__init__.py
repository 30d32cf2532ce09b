"""Mastodon instances, played from instances/*.json.

`/mastodon/api/...` is the home instance (mastodon.social, where the token belongs);
`/mastodon/instances/<host>/api/...` is another instance (instances/<host>.json), which knows
some of the same posts under its own local ids.

Like Mastodon: hashtag timelines are public and honour min_id/since_id/max_id, and a page that
is not empty carries a `Link` header (rel="next" with max_id, rel="prev" with min_id); statuses
in `hidden` are left out after the page is cut to `limit` (as Mastodon leaves out statuses it
cannot load, and other servers filter after paging), so a page may be short with more behind
it; status search
needs a valid token and matches loosely (word prefixes, so `pebblebase` finds `pebblebased`);
`resolve=true` fetches a remote post and gives it a local id; replies are recorded in
`posted`, honour Idempotency-Key and the instance's max_characters.
"""

from __future__ import annotations

import html
import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

TOKEN = "mstdn-test-token-4b9e2c7a"
INVALID = {"error": "The access token is invalid"}
NOT_FOUND = {"error": "Record not found"}
_PREFIX = re.compile(r"^/instances/([\w.-]+)(/.*)$")
_TAG = re.compile(r"^/api/v1/timelines/tag/([^/]+)$")
_CONTEXT = re.compile(r"^/api/v1/statuses/(\d+)/context$")


class Platform(PlatformBase):
    name = "mastodon"
    search_path = "/mastodon/api/v1/timelines/tag/pebblebase"
    items_path = ""  # a timeline answer is the list of statuses
    required_key = "uri"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.posted: list[dict[str, Any]] = []  # replies received, as stored statuses
        self.extra_statuses: list[dict[str, Any]] = []  # tests add odd items to the home one
        self.resolved: dict[str, dict[str, Any]] = {}  # remote posts fetched by resolve=true
        self.hashtags_need_login = False  # Mastodon 4.5 timelines_access = authenticated
        self.hidden: set[str] = set()  # status ids dropped from timeline pages after paging
        self.max_characters = 500
        self._ids = itertools.count(113600000000000001)
        self._idempotent: dict[str, dict[str, Any]] = {}

    def add_item(self, text: str, created: float) -> str:
        """A #pebblebase status on the home instance; its id is made from its creation time
        (milliseconds above 16 bits), as Mastodon makes the ids of federated posts."""
        status_id = str((int(created * 1000) << 16) + len(self.extra_statuses))
        uri = f"https://mastodon.social/users/backlog/statuses/{status_id}"
        self.extra_statuses.append({
            "id": status_id, "created_at": datetime.fromtimestamp(created, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.000Z"), "in_reply_to_id": None, "visibility": "public",
            "uri": uri, "url": f"https://mastodon.social/@backlog/{status_id}",
            "content": f"<p>{html.escape(text)} #pebblebase</p>", "spoiler_text": "",
            "reblog": None, "tags": [{"name": "pebblebase"}], "replies_count": 0,
            "reblogs_count": 0, "favourites_count": 1,
            "account": {"id": "990001", "username": "backlog", "acct": "backlog",
                        "display_name": "Backlog", "url": "https://mastodon.social/@backlog"},
        })  # fmt: skip
        return f"mastodon:{uri}"

    def source_settings(self) -> dict[str, Any]:
        base = self.web.base_url(self.name)
        return {"base_url": base, "token": TOKEN, "instances": [f"{base}/instances/fosstodon.org"]}

    def handle(self, request: Request) -> Response | None:
        host, path = "home", request.path
        match = _PREFIX.match(path)
        if match:
            host, path = match.group(1), match.group(2)
            if not (self.folder / "instances" / f"{host}.json").is_file():
                return None
        data = self.instance(host)
        authed = self._authorized(request, host)
        if authed is False:
            return _limited(INVALID, 401)
        tag = _TAG.match(path)
        if tag and request.method == "GET":
            if self.hashtags_need_login and not authed:
                return _limited(INVALID, 401)
            return self.timeline(data["statuses"], tag.group(1).lower(), request)
        context = _CONTEXT.match(path)
        if context and request.method == "GET":
            return self.context(data["statuses"], context.group(1))
        if path == "/api/v2/instance":
            instance = data["instance"]
            instance["configuration"]["statuses"]["max_characters"] = self.max_characters
            return _limited(instance)
        if host != "home":
            return None
        return self.home_api(request, path, data, authed)

    def home_api(
        self, request: Request, path: str, data: dict[str, Any], authed: bool | None
    ) -> Response | None:
        if path == "/api/v2/search" and request.method == "GET":
            return self.search(request, data["statuses"], authed)
        if not authed:
            return _limited(INVALID, 401)
        if path == "/api/v1/accounts/verify_credentials":
            return _limited(data["me"])
        if path == "/api/v1/statuses" and request.method == "POST":
            return self.post(request, data)
        return None

    def context(self, statuses: list[dict[str, Any]], status_id: str) -> Response:
        """Public for a public status, like Mastodon: ancestors root first, then descendants
        (direct replies, enough for find_reply)."""
        by_id = _by_id(statuses)
        if status_id not in by_id:
            return _limited(NOT_FOUND, 404)
        ancestors: list[dict[str, Any]] = []
        parent = by_id[status_id].get("in_reply_to_id")
        while parent in by_id and len(ancestors) < 40:
            ancestors.insert(0, by_id[parent])
            parent = by_id[parent].get("in_reply_to_id")
        replies = [s for s in statuses if s.get("in_reply_to_id") == status_id]
        return _limited({"ancestors": ancestors, "descendants": replies})

    def instance(self, host: str) -> dict[str, Any]:
        data = self.fixture_json(f"instances/{host}.json")
        if host == "home":
            data["statuses"] += self.extra_statuses + list(self.resolved.values()) + self.posted
        return data

    def _authorized(self, request: Request, host: str) -> bool | None:
        """None: no token sent; False: a wrong one (or one from another instance)."""
        header = request.headers.get("authorization")
        if header is None:
            return None
        return host == "home" and header == f"Bearer {TOKEN}"

    def timeline(self, statuses: list[dict[str, Any]], tag: str, request: Request) -> Response:
        tagged = [s for s in statuses if tag in _tags(s)]
        page = [s for s in _paginate(tagged, request) if s["id"] not in self.hidden]
        if not page and tag not in {t for s in statuses for t in _tags(s)}:
            return _limited(NOT_FOUND, 404)
        if not page:  # Mastodon sends no pagination headers for an empty page
            return _limited(page)
        here = f"{self.web.base_url(self.name)}{request.path}"
        newest, oldest = page[0]["id"], page[-1]["id"]
        link = f'<{here}?max_id={oldest}>; rel="next", <{here}?min_id={newest}>; rel="prev"'
        return _limited(page, link=link)

    def search(self, request: Request, statuses: list[Any], authed: bool | None) -> Response:
        query = request.arg("q", "") or ""
        if request.arg("resolve") == "true" and query.startswith("https://"):
            if not authed:
                return _limited(INVALID, 401)
            found = self.resolve(query, statuses)
            return _limited({"accounts": [], "statuses": found, "hashtags": []})
        if not authed:  # "full text search is not available to unauthenticated users"
            return _limited({"accounts": [], "statuses": [], "hashtags": []})
        words = re.findall(r"\w+", re.sub(r'-"[^"]*"|-\S+', " ", query).lower())
        hits = [s for s in statuses if words and _loosely_matches(s, words)]
        page = _paginate(hits, request, int(request.arg("offset", "0") or 0))
        return _limited({"accounts": [], "statuses": page, "hashtags": []})

    def resolve(self, url: str, statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for status in statuses:
            if url in (status.get("uri"), status.get("url")):
                return [status]
        # Not known here yet: fetch it from its instance, as federation would.
        for path in (self.folder / "instances").glob("*.*.json"):
            host = path.name.removesuffix(".json")
            for status in self.fixture_json(f"instances/{path.name}")["statuses"]:
                if url in (status["uri"], status["url"]):
                    copy = {**status, "id": str(next(self._ids))}
                    acct = f"{status['account']['username']}@{host}"
                    copy["account"] = {**status["account"], "acct": acct}
                    # One local copy per remote post, as Mastodon keeps: teammates resolving
                    # it at the same moment get the same id (a second copy replaced the
                    # first, and a reply to the first's id was refused 404).
                    return [self.resolved.setdefault(status["uri"], copy)]
        return []

    def post(self, request: Request, data: dict[str, Any]) -> Response:
        key = request.headers.get("idempotency-key")
        if key and key in self._idempotent:
            return _limited(self._idempotent[key])
        fields = request.form() if "form" in request.headers.get("content-type", "") else (
            request.json() or {})  # fmt: skip
        text = (fields.get("status") or "").strip()
        if not text:
            return _limited({"error": "Validation failed: Text can't be blank"}, 422)
        # Mastodon counts a mention as its username only (links as 23: not needed here).
        if len(re.sub(r"(@\w+)@[\w.-]+\w", r"\1", text)) > self.max_characters:
            limit = self.max_characters
            return _limited({"error": f"Validation failed: Text character limit of {limit} "
                                      "exceeded"}, 422)  # fmt: skip
        parent = fields.get("in_reply_to_id")
        if parent and parent not in _by_id(data["statuses"]):
            return _limited(NOT_FOUND, 404)
        status = self._status(text, parent, data["me"])
        visibility = fields.get("visibility") or "public"
        if visibility not in ("public", "unlisted", "private", "direct"):
            return _limited({"error": "Validation failed: Visibility is not included in the list"},
                            422)  # fmt: skip
        status["visibility"] = visibility
        self.posted.append(status)
        if key:
            self._idempotent[key] = status
        return _limited(status)

    def _status(self, text: str, parent: str | None, me: dict[str, Any]) -> dict[str, Any]:
        status_id = str(next(self._ids))
        # Mastodon renders "@user@host" as a link showing only "@user".
        body = re.sub(
            r"@(\w+)(@[\w.-]+\w)?",
            r'<span class="h-card"><a href="#" class="u-url mention">@<span>\1</span></a></span>',
            html.escape(text),
        )
        return {
            "id": status_id,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "in_reply_to_id": parent,
            "visibility": "public",
            "uri": f"https://mastodon.social/users/{me['username']}/statuses/{status_id}",
            "url": f"https://mastodon.social/@{me['username']}/{status_id}",
            "content": f"<p>{body}</p>",
            "reblog": None,
            "account": me,
            "tags": [],
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
        }


def _by_id(statuses: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The statuses this instance knows by id: a boost's boosted status is one of them (it
    has its own id here, the one a reply to it names)."""
    known = {s["reblog"]["id"]: s["reblog"] for s in statuses if isinstance(s.get("reblog"), dict)}
    return known | {s["id"]: s for s in statuses}


def _tags(status: dict[str, Any]) -> set[str]:
    """A status's own hashtags: a boost has none (Mastodon keeps them on the boosted status),
    so boosts never appear in hashtag timelines, as in Mastodon's TagFeed."""
    return {t["name"].lower() for t in status.get("tags") or [] if isinstance(t, dict)}


def _loosely_matches(status: dict[str, Any], words: list[str]) -> bool:
    if status.get("reblog"):  # Mastodon's search index leaves boosts out
        return False
    text = re.sub(r"<[^>]+>", " ", status.get("content") or "")
    tokens = re.findall(r"\w+", text.lower())
    return all(any(t.startswith(w) for t in tokens) for w in words)


def _paginate(
    statuses: list[dict[str, Any]], request: Request, offset: int = 0
) -> list[dict[str, Any]]:
    """Newest first; min_id gives the page right after it, since_id the newest above it."""
    limit = min(int(request.arg("limit", "20") or 20), 40)
    ordered = sorted(statuses, key=lambda s: int(s["id"]), reverse=True)
    if request.arg("max_id"):
        ordered = [s for s in ordered if int(s["id"]) < int(request.arg("max_id") or 0)]
    if request.arg("since_id"):
        ordered = [s for s in ordered if int(s["id"]) > int(request.arg("since_id") or 0)]
    if request.arg("min_id"):
        after = [s for s in ordered if int(s["id"]) > int(request.arg("min_id") or 0)]
        return after[-limit:]
    return ordered[offset : offset + limit]


def _limited(body: Any, status: int = 200, link: str | None = None) -> Response:
    """Every Mastodon response carries its rate-limit window; the reset is an ISO datetime."""
    reset = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "297",
               "X-RateLimit-Reset": reset}  # fmt: skip
    return json_response(body, status, **headers, **({"Link": link} if link else {}))
