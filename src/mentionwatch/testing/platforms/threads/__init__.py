"""The Threads API (graph.threads.net/v1.0), played from posts.json.

Like Threads: a user token as bearer (190 otherwise), `/keyword_search` with `q`,
`search_type` TOP or RECENT, `since`/`until` (Unix seconds, `since` at least 1688540400, `since
< until <= now`), `limit` up to 100, results with the fields of the docs' example (no
`owner`), paged by `paging.cursors`; searches that find something are counted in `searches`
(`recently_searched_keywords` on `/me` lists them, with another app's search from 3 h ago),
and past `search_quota` they are refused (the code, 613, is UNCERTAIN: Meta documents the
budget, not its refusal). `own_posts_only` plays an app without threads_keyword_search
approval. Replies: `POST /me/threads` with `reply_to_id` and `auto_publish_text=true` (from
Meta's Postman collection, fbsamples/threads_api), or a container published with
`/me/threads_publish`; `/me/replies` lists them with `replied_to`.

Meta's login for `mentionwatch auth threads` (testing/meta.MetaAuth): `/oauth/authorize` (on
threads.com in life), `POST /oauth/access_token`, `GET /access_token` (the long-lived swap),
`GET /refresh_access_token`; the API takes the tokens it issued as well as `TOKEN`.
"""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime
from typing import Any

from mentionwatch.sources.threads import OAUTH
from mentionwatch.testing.meta import MetaAuth, authorised, graph_error, no_permission, paged
from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

TOKEN = "THAAGpbPebblebaseLongLivedUserToken2ZBx7QdK9mZCeVhL0ZDZD"
CLIENT_ID = "990602627938098"  # the Threads app id of Meta's docs example
CLIENT_SECRET = "a1b2C3D4e5f6PebbleThreadsSecret"
REDIRECT = "https://127.0.0.1:8977/callback"  # registered for the app (Meta wants https)
FIRST_SINCE = 1688540400
_VERSION = re.compile(r"^/v\d+\.\d+(/.*)$")


class Platform(PlatformBase):
    name = "threads"
    search_path = "/threads/v1.0/keyword_search"
    items_path = "data"
    required_key = "id"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.expired = False
        self.own_posts_only = False
        self.search_quota = 2200
        self.searches: list[tuple[str, float]] = []  # (q, when) of searches that found posts
        self.extra_posts: list[dict[str, Any]] = []
        self.containers: dict[str, dict[str, Any]] = {}
        self.published: list[dict[str, Any]] = []  # replies made, as posts
        self.reply_refusals: set[str] = set()  # posts whose authors limit who may reply
        self._ids = itertools.count(18099000000000001)
        self.auth = MetaAuth(CLIENT_ID, CLIENT_SECRET, OAUTH.scopes, registered=(REDIRECT,))

    def source_settings(self) -> dict[str, Any]:
        base = self.web.base_url(self.name)
        return {"base_url": f"{base}/v1.0", "token": TOKEN, **self.oauth_settings()}

    def oauth_settings(self) -> dict[str, Any]:
        base = self.web.base_url(self.name)
        return {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uri": REDIRECT,
                "authorize_url": f"{base}/oauth/authorize",
                "token_url": f"{base}/oauth/access_token"}  # fmt: skip

    def add_item(self, text: str, created: float) -> str:
        post_id = str(next(self._ids))
        self.extra_posts.append({
            "id": post_id, "text": text, "media_type": "TEXT_POST",
            "permalink": f"https://www.threads.net/@backlog.reader/post/DB{post_id[-8:]}",
            "timestamp": _graph_time(created), "username": "backlog.reader",
            "has_replies": False, "is_quote_post": False, "is_reply": False,
        })  # fmt: skip
        return f"threads:{post_id}"

    def fixture(self) -> dict[str, Any]:
        return self.fixture_json("posts.json")

    def posts(self) -> list[dict[str, Any]]:
        return self.fixture()["posts"] + self.extra_posts + self.published

    # Routing

    def handle(self, request: Request) -> Response | None:
        login = {
            ("GET", "/oauth/authorize"): self.auth.handle_authorize,
            ("POST", "/oauth/access_token"): self.auth.handle_token,
            ("GET", "/access_token"): self.auth.handle_exchange,
            ("GET", "/refresh_access_token"): self.auth.handle_refresh,
        }.get((request.method, request.path))
        if login is not None:
            return login(request)
        match = _VERSION.match(request.path)
        if not match:
            return None
        denied = authorised(request, TOKEN, lambda: self.expired, self.auth)
        return denied or self.route(request, match.group(1).strip("/"))

    def route(self, request: Request, path: str) -> Response | None:
        base = f"https://graph.threads.net{request.path}"
        if path == "keyword_search" and request.method == "GET":
            return self.keyword_search(request, base)
        if path == "me" and request.method == "GET":
            return self.me(request)
        if path == "me/threads" and request.method == "POST":
            return self.create(request)
        if path == "me/threads_publish" and request.method == "POST":
            return self.publish(request.arg("creation_id") or request.form().get("creation_id"))
        if path == "me/replies" and request.method == "GET":
            return paged(request, list(reversed(self.published)), base)
        if path == "me/threads_publishing_limit":
            usage = {"reply_quota_usage": len(self.published),
                     "reply_config": {"quota_total": 1000, "quota_duration": 86400}}  # fmt: skip
            return json_response({"data": [usage]})
        if "/" not in path and request.method == "GET":
            found = next((p for p in self.posts() if p["id"] == path), None)
            if found is None:
                return graph_error(400, 100, f"(#100) Object with ID '{path}' does not exist")
            wanted = set((request.arg("fields") or "id").split(",")) | {"id"}
            return json_response({k: v for k, v in found.items() if k in wanted})
        return None

    # Reads

    def me(self, request: Request) -> Response:
        me = dict(self.fixture()["me"])
        if "recently_searched_keywords" in (request.arg("fields") or ""):
            other_app = [
                {"query": "pebblebase pricing", "timestamp": int((time.time() - 3 * 3600) * 1000)}
            ]
            ours = [{"query": q, "timestamp": int(at * 1000)} for q, at in self.searches]
            me["recently_searched_keywords"] = other_app + ours
        return json_response(me)

    def keyword_search(self, request: Request, base: str) -> Response:
        query = (request.arg("q") or "").strip().lower()
        if not query:
            return graph_error(400, 100, "(#100) The parameter q is required")
        if request.arg("search_type", "TOP") not in ("TOP", "RECENT"):
            return graph_error(400, 100, "(#100) Param search_type must be one of {TOP, RECENT}")
        now = time.time()
        since, until = _epoch(request.arg("since")), _epoch(request.arg("until"))
        if since is not None and since < FIRST_SINCE:
            return graph_error(400, 100, f"(#100) Param since must be at least {FIRST_SINCE}")
        if (until is not None and until > now + 1) or (since and until and since >= until):
            return graph_error(400, 100, "(#100) Params since and until must satisfy since < "
                               "until <= now")  # fmt: skip
        words = re.findall(r"\w+", query)
        hits = [p for p in self.posts() if all(w in (p.get("text") or "").lower() for w in words)]
        if self.own_posts_only:
            hits = [p for p in hits if p.get("username") == self.fixture()["me"]["username"]]
        hits = [p for p in hits if (since is None or _time(p) >= since)
                and (until is None or _time(p) < until)]  # fmt: skip
        hits.sort(key=_time, reverse=True)
        if hits:
            counted = [at for _, at in self.searches if at > now - 86400]
            if len(counted) >= self.search_quota:
                return graph_error(400, 613, "(#613) Calls to this api have exceeded the rate "
                                   "limit.", is_transient=False)  # fmt: skip
            self.searches.append((query, now))
        return paged(request, hits, base)

    # Writes

    def create(self, request: Request) -> Response:
        form = {**{k: v[0] for k, v in request.query.items()}, **request.form()}
        text = form.get("text") or ""
        if form.get("media_type") != "TEXT":
            return graph_error(400, 100, "(#100) Param media_type must be TEXT for a text post")
        if not text.strip() or len(text) > 500:
            return graph_error(400, 100, "(#100) Param text must be 1 to 500 characters")
        parent = form.get("reply_to_id")
        if parent and parent not in {p["id"] for p in self.posts()}:
            return graph_error(400, 100, f"(#100) Object with ID '{parent}' does not exist")
        if parent in self.reply_refusals:
            return no_permission("replying to this post: its author limits who can reply")
        container = str(next(self._ids))
        self.containers[container] = {"text": text, "reply_to_id": parent}
        if form.get("auto_publish_text") == "true":
            return self.publish(container)
        return json_response({"id": container})

    def publish(self, container: str | None) -> Response:
        made = self.containers.pop(container or "", None)
        if made is None:
            return graph_error(400, 100, "(#100) Param creation_id is not a valid container")
        me = self.fixture()["me"]
        post_id = str(next(self._ids))
        self.published.append({
            "id": post_id, "text": made["text"], "media_type": "TEXT_POST",
            "permalink": f"https://www.threads.net/@{me['username']}/post/DR{post_id[-8:]}",
            "timestamp": _graph_time(time.time()), "username": me["username"],
            "is_reply": bool(made["reply_to_id"]), "is_quote_post": False, "has_replies": False,
            "replied_to": {"id": made["reply_to_id"]} if made["reply_to_id"] else None,
        })  # fmt: skip
        return json_response({"id": post_id})


def _graph_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _time(post: dict[str, Any]) -> float:
    return datetime.strptime(post["timestamp"], "%Y-%m-%dT%H:%M:%S%z").timestamp()


def _epoch(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return datetime.fromisoformat(value).timestamp()
