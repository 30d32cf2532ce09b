"""Reddit: the OAuth token endpoint (www.reddit.com/api/v1/access_token, served at
/reddit/api/v1/access_token) and the Data API (oauth.reddit.com, served under /reddit/oauth).

Like Reddit, the search is loose (it matches inside words and ignores exclusions), text is
HTML-escaped unless raw_json=1, generic User-Agents are blocked with an HTML page, a request
without a token gets 403 and an expired token 401, every API answer carries the
X-Ratelimit-* headers (reset in seconds until), and reply rejections arrive as HTTP 200 with
json.errors. Messages: /api/compose answers `{"json": {"errors": []}}` and nothing else
(recorded in praw's TestRedditor.test_message cassette), the message then heads
/message/sent; users in `pm_restricted` answer RESTRICTED_TO_PM ("User doesn't accept
direct messages. Try sending a chat request instead.", as reported since Reddit moved
messages to chat).
"""

from __future__ import annotations

import base64
import html
import re
import secrets
import time
from typing import Any

from mentionwatch.testing.server import (
    HTML_BLOCKED,
    PlatformBase,
    Request,
    Response,
    json_response,
)

CLIENT_ID = "pb-client-id"
CLIENT_SECRET = "pb-client-secret-9f8e7d"
USERNAME = "pebblebase_team"
PASSWORD = "hunter2-correct-horse"
_ESCAPED = ("title", "selftext", "body", "link_title")
HTML_TOO_MANY = "<!doctype html><html><head><title>Too Many Requests</title></head></html>"


class Platform(PlatformBase):
    name = "reddit"
    search_path = "/reddit/oauth/search"
    items_path = "data.children"
    required_key = "data.name"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.tokens: dict[str, str | None] = {}  # valid access token -> username (None: app-only)
        self.logins = 0
        self.extra_posts: list[dict[str, Any]] = []  # tests add new or edge-case things here
        self.extra_comments: list[dict[str, Any]] = []  # new comments in subreddit streams
        self.replies: list[dict[str, Any]] = []
        self.reply_errors: list[list[Any]] = []  # the next reply is refused with these
        self.messages: list[dict[str, Any]] = []  # sent through /api/compose, oldest first
        self.pm_restricted: set[str] = set()  # usernames that only take chat requests
        self.remaining = 600.0
        self.reset_seconds = 412

    def add_item(self, text: str, created: float) -> str:
        post_id = f"1zz{len(self.extra_posts):05d}"
        self.extra_posts.append({"kind": "t3", "data": {
            "id": post_id, "name": f"t3_{post_id}", "title": text, "selftext": "",
            "permalink": f"/r/SideProject/comments/{post_id}/backlog/",
            "url": f"https://www.reddit.com/r/SideProject/comments/{post_id}/backlog/",
            "author": "backlog_reader", "subreddit": "SideProject", "created_utc": float(created),
            "score": 1, "num_comments": 0, "is_self": True, "locked": False,
        }})  # fmt: skip
        return f"reddit:t3_{post_id}"

    def add_comment(self, subreddit: str, text: str, created: float) -> str:
        """A new comment at the top of r/<subreddit>/comments."""
        comment_id = f"zc{len(self.extra_comments):05d}"
        self.extra_comments.append({"kind": "t1", "data": {
            "id": comment_id, "name": f"t1_{comment_id}", "body": text,
            "author": "backlog_reader", "subreddit": subreddit, "created_utc": float(created),
            "link_id": "t3_1gq7k2a", "parent_id": "t3_1gq7k2a", "link_title": "A thread",
            "permalink": f"/r/{subreddit}/comments/1gq7k2a/_/{comment_id}/", "score": 1,
        }})  # fmt: skip
        return f"reddit:t1_{comment_id}"

    def expire_tokens(self) -> None:
        self.tokens.clear()

    # Routing

    def source_settings(self) -> dict[str, Any]:
        base = self.web.base_url(self.name)
        credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                       "username": USERNAME, "password": PASSWORD}  # fmt: skip
        return {"base_url": f"{base}/oauth", "auth_url": base, **credentials}

    def handle(self, request: Request) -> Response | None:
        if _generic_agent(request.headers.get("user-agent", "")):
            return Response(403, HTML_BLOCKED, content_type="text/html; charset=utf-8")
        if request.path == "/api/v1/access_token" and request.method == "POST":
            return self.access_token(request)
        if not request.path.startswith("/oauth/"):
            return None
        user, denied = self.authorise(request)
        if denied:
            return denied
        if self.remaining < 1:
            response: Response | None = Response(429, HTML_TOO_MANY, content_type="text/html")
        else:
            response = self.api(request, request.path.removeprefix("/oauth"), user)
        if response is not None:
            self.remaining = max(0.0, self.remaining - 1)
            response.headers.update(
                {
                    "x-ratelimit-used": str(int(600 - self.remaining)),
                    "x-ratelimit-remaining": f"{self.remaining:.1f}",
                    "x-ratelimit-reset": str(self.reset_seconds),
                }
            )
        return response

    def api(self, request: Request, path: str, user: str | None) -> Response | None:
        if path in ("/search", "/search.json", "/r/all/search", "/r/all/search.json"):
            return self.search(request)
        match = re.fullmatch(r"/r/([\w]+)/comments(?:\.json)?/?", path)
        if match:
            return self.listing(request, self.comments(match.group(1)))
        match = re.fullmatch(r"/user/([\w-]+)/comments(?:\.json)?/?", path)
        if match:
            mine = [r for r in self.replies if r["data"]["author"] == match.group(1)]
            return self.listing(request, list(reversed(mine)))
        if path in ("/api/info", "/api/info.json") and request.method == "GET":
            return self.info(request)
        if path == "/api/v1/me":
            return json_response({"name": user, "id": "k2x9q", "link_karma": 12})
        if path == "/api/comment" and request.method == "POST":
            return self.comment(request, user)
        if path in ("/api/compose", "/api/compose/") and request.method == "POST":
            return self.compose(request, user)
        if re.fullmatch(r"/message/sent(?:\.json)?/?", path):
            return self.listing(request, list(reversed(self.messages)))
        return None

    # Auth

    def access_token(self, request: Request) -> Response:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return json_response({"message": "Unauthorized", "error": 401}, 401)
        form = request.form()
        grant = form.get("grant_type")
        if grant == "password":
            if (form.get("username"), form.get("password")) != (USERNAME, PASSWORD):
                return json_response({"error": "invalid_grant"})  # HTTP 200, as Reddit does
            user = USERNAME
        elif grant == "client_credentials":
            user = None
        else:
            return json_response({"error": "unsupported_grant_type"}, 400)
        self.logins += 1
        token = f"{self.logins}-{secrets.token_urlsafe(18)}"
        self.tokens[token] = user
        return json_response(
            {"access_token": token, "token_type": "bearer", "expires_in": 3600, "scope": "*"}
        )

    def authorise(self, request: Request) -> tuple[str | None, Response | None]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None, json_response({"message": "Forbidden", "error": 403}, 403)
        if token not in self.tokens:
            return None, json_response(
                {"message": "Unauthorized", "error": 401},
                401,
                **{"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'},
            )
        return self.tokens[token], None

    # Reads

    def things(self, name: str) -> list[dict[str, Any]]:
        return self.fixture_json(name)["data"]["children"]

    def posts(self) -> list[dict[str, Any]]:
        return self.things("posts.json") + self.extra_posts

    def comments(self, subreddit: str) -> list[dict[str, Any]]:
        found = self.things("comments.json") + self.extra_comments
        found = [c for c in found if c["data"]["subreddit"].lower() == subreddit.lower()]
        return sorted(found, key=lambda c: c["data"].get("created_utc") or 0, reverse=True)

    def info(self, request: Request) -> Response:
        """Things by fullname (id=t1_…,t3_…), as a Listing in the order asked; unknown ones
        are left out. thread.json holds posts and comments no search or listing finds."""
        known = {
            t["data"].get("name"): t
            for t in self.posts() + self.things("comments.json") + self.things("thread.json")
            + self.replies
        }  # fmt: skip
        names = [n for n in (request.arg("id") or "").split(",") if n]
        found = [known[n] for n in names if n in known]
        if request.arg("raw_json") != "1":
            found = [_escaped(t) for t in found]
        return json_response(
            {
                "kind": "Listing",
                "data": {"after": None, "before": None, "dist": len(found), "modhash": None,
                         "geo_filter": "", "children": found},
            }
        )  # fmt: skip

    def search(self, request: Request) -> Response:
        alternatives = _alternatives(request.arg("q", "") or "")
        hits = [p for p in self.posts() if _loosely(p["data"], alternatives)]
        if request.arg("sort") == "new":
            hits.sort(key=lambda p: p["data"].get("created_utc") or 0, reverse=True)
        return self.listing(request, hits)

    def listing(self, request: Request, things: list[dict[str, Any]]) -> Response:
        limit = min(int(request.arg("limit", "25") or 25), 100)
        after = request.arg("after")
        names = [t["data"].get("name") for t in things]
        start = names.index(after) + 1 if after in names else 0
        page = things[start : start + limit]
        more = start + limit < len(things)
        if request.arg("raw_json") != "1":
            page = [_escaped(t) for t in page]
        return json_response(
            {
                "kind": "Listing",
                "data": {
                    "after": page[-1]["data"].get("name") if page and more else None,
                    "before": None,
                    "dist": len(page),
                    "modhash": None,
                    "children": page,
                },
            }
        )

    # Writes

    def comment(self, request: Request, user: str | None) -> Response:
        form = request.form()
        if user is None:
            return _errors(["USER_REQUIRED", "Please log in to do that.", None])
        if self.reply_errors:
            return _errors(self.reply_errors.pop(0))
        text, parent = form.get("text", ""), form.get("thing_id", "")
        if not text.strip():
            return _errors(["NO_TEXT", "we need something here", "text"])
        if len(text) > 10_000:
            return _errors(["TOO_LONG", "this is too long (max: 10000)", "text"])
        known = {t["data"].get("name"): t["data"] for t in self.posts()}
        for sub in ("SideProject", "webdev"):
            known.update({t["data"]["name"]: t["data"] for t in self.comments(sub)})
        target = known.get(parent)
        if target is None:
            return _errors(["INVALID_THING_ID", "that thing doesn't exist", "thing_id"])
        if target.get("locked"):
            return _errors(["THREAD_LOCKED", "Comments are locked.", "parent"])
        comment_id = f"m{len(self.replies) + 1:06d}"
        link_id = parent if parent.startswith("t3_") else target.get("link_id")
        thing = {
            "kind": "t1",
            "data": {
                "id": comment_id,
                "name": f"t1_{comment_id}",
                "parent_id": parent,
                "link_id": link_id,
                "author": user,
                "body": text,
                "subreddit": target.get("subreddit"),
                "created_utc": float(int(time.time())),
                "score": 1,
                "permalink": f"/r/{target.get('subreddit')}/comments/{link_id[3:]}/_/{comment_id}/",
            },
        }
        self.replies.append(thing)
        return json_response({"json": {"errors": [], "data": {"things": [thing]}}})

    def compose(self, request: Request, user: str | None) -> Response:
        form = request.form()
        if user is None:
            return _errors(["USER_REQUIRED", "Please log in to do that.", None])
        to, subject, text = form.get("to", ""), form.get("subject", ""), form.get("text", "")
        if not subject.strip():
            return _errors(["NO_SUBJECT", "please enter a subject", "subject"])
        if len(subject) > 100:
            return _errors(["TOO_LONG", "this is too long (max: 100)", "subject"])
        if not text.strip():
            return _errors(["NO_TEXT", "we need something here", "text"])
        if to in self.pm_restricted:
            return _errors(["RESTRICTED_TO_PM", "User doesn't accept direct messages. Try sending "
                            "a chat request instead.", "to"])  # fmt: skip
        message_id = f"2{len(self.messages) + 1:06d}"
        self.messages.append({"kind": "t4", "data": {
            "id": message_id, "name": f"t4_{message_id}", "author": user, "dest": to,
            "subject": subject, "body": text, "created_utc": float(int(time.time())),
            "was_comment": False, "new": False,
        }})  # fmt: skip
        return json_response({"json": {"errors": []}})


def _generic_agent(agent: str) -> bool:
    return not agent or agent.lower().startswith(("python-httpx", "python-requests", "curl/"))


def _alternatives(query: str) -> list[list[str]]:
    """The words of each OR alternative; exclusions are ignored, like a loose search engine."""
    query = re.sub(r'-"[^"]*"|-\S+', " ", query).replace("(", " ").replace(")", " ")
    return [re.findall(r"\w+", alt.lower()) for alt in re.split(r"\bOR\b", query)]


def _loosely(data: dict[str, Any], alternatives: list[list[str]]) -> bool:
    """Matches inside words too (pebblebase finds pebblebased)."""
    haystack = " ".join(str(data.get(k) or "") for k in ("title", "selftext", "url")).lower()
    return any(alt and all(w in haystack for w in alt) for alt in alternatives)


def _escaped(thing: dict[str, Any]) -> dict[str, Any]:
    data = {k: html.escape(v, quote=False) if k in _ESCAPED and isinstance(v, str) else v
            for k, v in thing["data"].items()}  # fmt: skip
    return {**thing, "data": data}


def _errors(*errors: list[Any]) -> Response:
    return json_response({"json": {"errors": list(errors)}})
