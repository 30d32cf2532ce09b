"""X API v2 (api.x.com/2), played from posts.json.

Like X: recent search needs the app bearer token, honours since_id, until_id, start_time,
max_results (10-100) and next_token, returns newest first with per-page meta, and matches
keywords against the text and the expanded links (so `pebblebase` finds a post whose only
link goes to pebblebasegardens.example: the local matcher must reject it). Posting needs the
user token and only works when the replied-to post mentions us (the 2026 "summon" rule).
Every post returned by a search is counted in `reads`, as X bills them. Direct messages
(/2/dm_conversations/with/:id/messages, and its dm_events) need the user token; an author
in `dm_closed` refuses them with 403. The DM answers' shapes are copied from tweepy's
recorded cassette test_manage_and_lookup_direct_messages.yaml.
"""

from __future__ import annotations

import base64
import itertools
import re
import time
from datetime import UTC, datetime
from typing import Any

from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

BEARER = "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3DEUifiRBkKG5E2Xz"
USER_TOKEN = "bWFzdGVyLXVzZXItdG9rZW4tZm9yLXBlYmJsZWJhc2U6MTcxNzAwMDA6MTphYzox"
ME = {"id": "1717000000000000001", "name": "Pebblebase", "username": "pebblebase"}
UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401,
                "detail": "Unauthorized"}  # fmt: skip
APP_ONLY_FORBIDDEN = {
    "title": "Unsupported Authentication",
    "detail": "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  "
    "Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
    "type": "https://api.twitter.com/2/problems/unsupported-authentication",
    "status": 403,
}
NOT_SUMMONED = {
    "detail": "Reply to this conversation is not allowed because you have not been mentioned "
    "or otherwise engaged by the author of the post you are replying to.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
DM_CLOSED = {
    "title": "Forbidden",
    "type": "about:blank",
    "status": 403,
    "detail": "You cannot send messages to this user.",
}
_USER_POSTS = re.compile(r"^/2/users/(\d+)/tweets$")
_DM = re.compile(r"^/2/dm_conversations/with/(\d+)/(messages|dm_events)$")
_POST = re.compile(r"^/2/tweets/(\d+)$")
_DEFAULT_FIELDS = ("id", "text", "edit_history_tweet_ids")
TWEPOCH_MS = 1288834974657


class Platform(PlatformBase):
    name = "x"
    search_path = "/x/2/tweets/search/recent"
    items_path = "data"
    required_key = "id"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.extra_posts: list[dict[str, Any]] = []  # tests add posts (or odd items) here
        self.posted: list[dict[str, Any]] = []  # replies received
        self.reads = 0  # posts returned by searches: what X would bill
        self.fail_paging = False  # answer 503 to every request for a later page
        # The oldest post id recent search still accepts as since_id/until_id (set by tests to
        # play "a cursor older than the 7-day window"): X answers a smaller one with 400.
        self.oldest_bound_id: int | None = None
        self._ids = itertools.count(1859900000000000001)
        self.messages: list[dict[str, Any]] = []  # direct messages received, oldest first
        self.dm_closed: set[str] = set()  # user ids that do not accept our messages

    def add_item(self, text: str, created: float) -> str:
        """A post whose id is a snowflake of its creation time, as X makes them."""
        post_id = str(((int(created * 1000) - TWEPOCH_MS) << 22) + len(self.extra_posts))
        self.extra_posts.append({
            "id": post_id, "text": text, "author_id": "2244994945", "lang": "en",
            "created_at": datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conversation_id": post_id, "edit_history_tweet_ids": [post_id],
            "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 1,
                               "quote_count": 0},
        })  # fmt: skip
        return f"x:{post_id}"

    def source_settings(self) -> dict[str, Any]:
        return {"base_url": self.web.base_url(self.name), "bearer_token": BEARER,
                "user_token": USER_TOKEN}  # fmt: skip

    def handle(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization")
        if request.path == "/2/tweets/search/recent":
            return self.search(request) if auth == f"Bearer {BEARER}" else _limited(
                UNAUTHORIZED, 401)  # fmt: skip
        if request.path == "/2/usage/tweets":
            if auth != f"Bearer {BEARER}":
                return _limited(UNAUTHORIZED, 401)
            usage = {"project_id": "1780000000", "project_cap": "3000000", "cap_reset_day": 6,
                     "project_usage": str(2413 + self.reads)}  # fmt: skip
            return _limited({"data": usage})
        lookup = _POST.match(request.path)
        if lookup and request.method == "GET":
            if auth not in (f"Bearer {BEARER}", f"Bearer {USER_TOKEN}"):
                return _limited(UNAUTHORIZED, 401)
            return self.lookup(request, lookup.group(1))
        if auth == f"Bearer {BEARER}" and request.path.startswith(
            ("/2/users", "/2/tweets", "/2/dm_")
        ):
            return _limited(APP_ONLY_FORBIDDEN, 403)
        if auth != f"Bearer {USER_TOKEN}":
            return _limited(UNAUTHORIZED, 401)
        if request.path == "/2/users/me":
            return _limited({"data": ME})
        if request.path == "/2/tweets" and request.method == "POST":
            return self.post(request)
        dm = _DM.match(request.path)
        if dm and dm.group(2) == "messages" and request.method == "POST":
            return self.direct_message(request, dm.group(1))
        if dm and dm.group(2) == "dm_events" and request.method == "GET":
            mine = [m for m in reversed(self.messages) if m["participant"] == dm.group(1)]
            events = [{k: v for k, v in m.items() if k != "participant"} for m in mine]
            meta = {"result_count": len(events)}
            return _limited({"data": events, "meta": meta} if events else {"meta": meta})
        if _USER_POSTS.match(request.path):
            since = int(request.arg("since_id", "0") or 0)
            mine = [p for p in reversed(self.posted) if int(p["id"]) > since]
            return _limited({"data": mine, "meta": {"result_count": len(mine)}} if mine else
                            {"meta": {"result_count": 0}})  # fmt: skip
        return None

    def posts(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        data = self.fixture_json("posts.json")
        return data["data"] + self.extra_posts, data["includes"]["users"]

    def lookup(self, request: Request, post_id: str) -> Response:
        """GET /2/tweets/:id: only the fields asked for (id, text and edit history by
        default); an unknown id is a 200 with a resource-not-found error, as on X."""
        posts, users = self.posts()
        extra = self.fixture_json("thread.json")
        posts, users = posts + extra["data"], users + extra["includes"]["users"]
        post = next((p for p in posts if isinstance(p, dict) and p.get("id") == post_id), None)
        if post is None:
            return _limited({"errors": [{
                "value": post_id, "detail": f"Could not find tweet with id: [{post_id}].",
                "title": "Not Found Error", "resource_type": "tweet", "parameter": "id",
                "resource_id": post_id,
                "type": "https://api.twitter.com/2/problems/resource-not-found"}]})  # fmt: skip
        self.reads += 1
        wanted = (request.arg("tweet.fields") or "").split(",")
        body: dict[str, Any] = {
            "data": {k: v for k, v in post.items() if k in _DEFAULT_FIELDS or k in wanted}
        }
        if "author_id" in (request.arg("expansions") or "").split(","):
            user_fields = {"id", "name", "username", *(request.arg("user.fields") or "").split(",")}
            authors = [u for u in users if u["id"] == post.get("author_id")]
            body["includes"] = {"users": [{k: v for k, v in u.items() if k in user_fields}
                                          for u in authors]}  # fmt: skip
        return _limited(body)

    def search(self, request: Request) -> Response:
        if self.fail_paging and request.arg("next_token"):
            # From the front end, so without rate-limit headers: http.py would read their
            # window reset as a rate-limit wait.
            return json_response({"title": "Service Unavailable", "detail": "Service "
                                  "Unavailable", "type": "about:blank", "status": 503},
                                 503)  # fmt: skip
        size = int(request.arg("max_results", "10") or 10)
        if not 10 <= size <= 100:
            return _limited(_invalid(f"The `max_results` query parameter value [{size}] is not "
                                     "between 10 and 100"), 400)  # fmt: skip
        for name in ("since_id", "until_id"):
            bound = request.arg(name)
            if self.oldest_bound_id and bound and int(bound) < self.oldest_bound_id:
                after = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(time.time() - 7 * 86400))
                body = _invalid(
                    f"'{name}' must be a tweet id created after {after}. Please use "
                    f"a '{name}' that is larger than {self.oldest_bound_id}"
                )
                body["errors"][0]["parameters"] = {name: [bound]}
                return _limited(body, 400)
        posts, users = self.posts()
        query = request.arg("query", "") or ""
        hits = [p for p in posts if isinstance(p, dict) and _matches(p, query)]
        hits = [p for p in hits if _in_bounds(p, request)]
        hits.sort(key=lambda p: int(p["id"]), reverse=True)
        offset = _offset(request.arg("next_token"))
        page = hits[offset : offset + size]
        self.reads += len(page)
        if not page:
            return _limited({"meta": {"result_count": 0}})
        meta = {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"],
                "result_count": len(page)}  # fmt: skip
        if offset + size < len(hits):
            meta["next_token"] = base64.b32encode(f"o{offset + size}".encode()).decode().lower()
        authors = {p.get("author_id") for p in page}
        includes = {"users": [u for u in users if u["id"] in authors]}
        return _limited({"data": page, "includes": includes, "meta": meta})

    def post(self, request: Request) -> Response:
        body = request.json() or {}
        text = body.get("text") or ""
        if len(text) > 280:
            return _limited({"detail": "Your Tweet text is too long. For more information on how "
                             "Twitter determines text length see "
                             "https://github.com/twitter/twitter-text.", "type": "about:blank",
                             "title": "Forbidden", "status": 403}, 403)  # fmt: skip
        parent_id = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        parent = next((p for p in self.posts()[0] if p.get("id") == parent_id), None)
        if parent_id and parent is None:
            return _limited(_invalid("The Post you are replying to has been deleted."), 400)
        if parent is not None and f"@{ME['username']}" not in parent["text"].lower():
            return _limited(NOT_SUMMONED, 403)
        post_id = str(next(self._ids))
        post: dict[str, Any] = {"id": post_id, "text": text, "edit_history_tweet_ids": [post_id],
                                "created_at": _now()}  # fmt: skip
        if parent_id:
            post["referenced_tweets"] = [{"type": "replied_to", "id": parent_id}]
        self.posted.append(post)
        return _limited({"data": {k: post[k] for k in ("id", "text", "edit_history_tweet_ids")}},
                        201)  # fmt: skip

    def direct_message(self, request: Request, participant: str) -> Response:
        text = (request.json() or {}).get("text") or ""
        if not text.strip() or len(text) > 10_000:
            return _limited(_invalid("The `text` field must be between 1 and 10000 characters"),
                            400)  # fmt: skip
        if participant in self.dm_closed:
            return _limited(DM_CLOSED, 403)
        event_id = str(next(self._ids))
        conversation = f"{ME['id']}-{participant}"
        self.messages.append({
            "id": event_id, "event_type": "MessageCreate", "text": text, "sender_id": ME["id"],
            "dm_conversation_id": conversation, "created_at": _now(), "participant": participant,
        })  # fmt: skip
        body = {"data": {"dm_conversation_id": conversation, "dm_event_id": event_id}}
        return _limited(body, 201)


def _matches(post: dict[str, Any], query: str) -> bool:
    """Keywords and phrases with OR and -negation, against text and expanded links."""
    links = [u.get("expanded_url", "") for u in (post.get("entities") or {}).get("urls", [])]
    haystack = " ".join([post.get("text") or "", *links]).lower()
    query = query.replace("-is:retweet", " ")
    excluded = re.findall(r'-"([^"]+)"|-(\w+)', query)
    if any((a or b).lower() in haystack for a, b in excluded):
        return False
    positive = re.sub(r'-"[^"]+"|-\w+', " ", query)
    alternatives = re.findall(r'"([^"]+)"|(\w+)', positive.replace(" OR ", " "))
    return any((a or b).lower() in haystack for a, b in alternatives if (a or b) != "OR")


def _in_bounds(post: dict[str, Any], request: Request) -> bool:
    since, until = request.arg("since_id"), request.arg("until_id")
    if since and int(post["id"]) <= int(since):
        return False
    if until and int(post["id"]) >= int(until):
        return False
    start = request.arg("start_time")
    return not (start and not since and post["created_at"] < start)


def _offset(token: str | None) -> int:
    if not token:
        return 0
    return int(base64.b32decode(token.upper().encode()).decode()[1:])


def _invalid(message: str) -> dict[str, Any]:
    return {"errors": [{"parameters": {}, "message": message}], "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request"}  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _limited(body: Any, status: int = 200) -> Response:
    """X's rate-limit headers: the reset is epoch seconds."""
    return json_response(
        body,
        status,
        **{
            "x-rate-limit-limit": "450",
            "x-rate-limit-remaining": "449",
            "x-rate-limit-reset": str(int(time.time()) + 900),
        },
    )
