"""The Graph API for one Facebook Page (graph.facebook.com/v25.0), played from page.json.

Like Graph: every call needs the Page token as a bearer token (190 otherwise, or once
`expired`), edges page with `paging.cursors` and a `next` link, `since` filters on creation
time, a post's comments come with `filter=stream` (replies too) newest first with
`order=reverse_chronological`, ids are `{post}_{comment}`, and every answer carries
X-App-Usage and X-Business-Use-Case-Usage (raise `usage.percent`, or set
`usage.regain_minutes`, to play a Page near its limit; `throttled` answers `(#32) Page
request limit reached`).

Writes: `POST /{comment or post}/comments` answers `{"id"}` (python-facebook's
create_resp.json); `POST /{page}/messages` with `recipient.comment_id` or `post_id` is the
private reply: once per item (a second is `(#10900) Activity already replied to`, code from
Meta's Send API error list, UNCERTAIN), within 7 days (`(#10) This message is sent outside
of allowed window`, subcode 2018278), then `can_reply_privately` turns false.
"""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime
from typing import Any

from mentionwatch.testing.meta import Usage, authorised, graph_error, no_permission, paged
from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

PAGE_ID = "104738291022334"
PAGE_TOKEN = "EAAGm0PX4ZCpsBOpebblebasePageToken7fK2ZBq9ZCxLw3ZAZDZD"
NEWEST_POST = "104738291022334_880011223344551"
_VERSION = re.compile(r"^/v\d+\.\d+(/.*)$")


class Platform(PlatformBase):
    name = "facebook"
    search_path = f"/facebook/v25.0/{NEWEST_POST}/comments"
    items_path = "data"
    required_key = "id"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        data = self.fixture_json("page.json")
        self.page = data["page"]
        self.posts: list[dict[str, Any]] = data["posts"]
        self.edges: dict[str, list[dict[str, Any]]] = {
            "tagged": data["tagged"], "visitor_posts": data["visitor_posts"]}  # fmt: skip
        self.usage = Usage("pages", PAGE_ID)
        self.expired = False
        self.throttled = False
        self.comments_posted: list[dict[str, Any]] = []  # comments made as the Page
        self.private_replies: list[dict[str, Any]] = []  # Messenger messages sent
        self._ids = itertools.count(1300000000000001)

    def source_settings(self) -> dict[str, Any]:
        return {"base_url": f"{self.web.base_url(self.name)}/v25.0", "page_id": PAGE_ID,
                "token": PAGE_TOKEN}  # fmt: skip

    def add_item(self, text: str, created: float) -> str:
        """A comment on the newest post, created at `created`."""
        post = self.posts[0]
        comment = {
            "id": f"{post['id'].split('_')[1]}_{next(self._ids)}", "message": text,
            "created_time": _graph_time(created), "like_count": 0, "comment_count": 0,
            "from": {"name": "Backlog Reader", "id": "7102030405069999"},
            "permalink_url": f"https://www.facebook.com/{post['id']}?comment_id={len(post['comments'])}",
            "can_reply_privately": True,
        }  # fmt: skip
        post["comments"].append(comment)
        post["updated_time"] = _graph_time(max(created, time.time()))
        return f"facebook:{comment['id']}"

    # Routing

    def handle(self, request: Request) -> Response | None:
        match = _VERSION.match(request.path)
        if not match:
            return None
        denied = authorised(request, PAGE_TOKEN, lambda: self.expired)
        if denied is None and self.throttled:
            denied = graph_error(400, 32, "(#32) Page request limit reached", is_transient=True)
        response = denied or self.route(request, match.group(1).strip("/").split("/"))
        if response is not None:
            response.headers.update(self.usage.headers())
        return response

    def route(self, request: Request, parts: list[str]) -> Response | None:
        base = f"https://graph.facebook.com{request.path}"
        if len(parts) == 1 and request.method == "GET":
            return self.lookup(parts[0], request)
        if len(parts) != 2:
            return None
        node, edge = parts
        if node == PAGE_ID and edge == "posts" and request.method == "GET":
            posts = [{k: v for k, v in p.items() if k != "comments"} for p in self.posts]
            return paged(request, _newest_first(posts), base)
        if node == PAGE_ID and edge in self.edges and request.method == "GET":
            return paged(request, _since(request, _newest_first(self.edges[edge])), base)
        if node == PAGE_ID and edge == "messages" and request.method == "POST":
            return self.private_reply(request)
        if edge == "comments":
            target = self.find(node)
            if target is None:
                return _no_object(node)
            if request.method == "POST":
                return self.comment(request, node)
            return paged(request, self.comments(target, request), base)
        return None

    # Reads

    def find(self, node: str) -> dict[str, Any] | None:
        everything = [*self.posts, *self.edges["visitor_posts"], *self.edges["tagged"]]
        everything += [c for p in self.posts for c in p["comments"]] + self.comments_posted
        return next((o for o in everything if o.get("id") == node), None)

    def comments(self, target: dict[str, Any], request: Request) -> list[dict[str, Any]]:
        if "comments" in target:  # a Page post
            found = list(target["comments"])
        else:  # a comment: its replies
            found = [c for p in self.posts for c in p["comments"]
                     if (c.get("parent") or {}).get("id") == target["id"]]  # fmt: skip
        if request.arg("filter") != "stream":  # toplevel (the default): no replies
            found = [c for c in found if not c.get("parent")]
        found.sort(key=lambda c: c["created_time"],
                   reverse=request.arg("order") == "reverse_chronological")  # fmt: skip
        return _since(request, found)

    def lookup(self, node: str, request: Request) -> Response:
        if node == PAGE_ID:
            return json_response(self.page)
        found = self.find(node)
        if found is None:
            return _no_object(node)
        wanted = set((request.arg("fields") or "id").split(",")) | {"id"}
        return json_response({k: v for k, v in found.items() if k in wanted})

    # Writes

    def comment(self, request: Request, node: str) -> Response:
        message = (request.form().get("message") or "").strip()
        if not message:
            return graph_error(400, 100, "(#100) The parameter message is required")
        if len(message) > 8000:
            return graph_error(400, 100, "(#100) Param message must be at most 8000 characters")
        post = next((p for p in self.posts if p["id"] == node), None)
        owner = post or next(
            (p for p in self.posts for c in p["comments"] if c["id"] == node), None
        )
        post_id = (owner or {"id": f"{PAGE_ID}_{node.split('_')[-1]}"})["id"]
        new_id = f"{post_id.split('_')[-1]}_{next(self._ids)}"
        comment = {
            "id": new_id, "message": message, "created_time": _graph_time(time.time()),
            "from": {"name": self.page["name"], "id": PAGE_ID}, "like_count": 0,
            "comment_count": 0, "can_reply_privately": False,
            "permalink_url": f"https://www.facebook.com/{post_id}?comment_id={new_id.split('_')[1]}",
        }  # fmt: skip
        if owner is not None and post is None:
            comment["parent"] = {"id": node}
        self.comments_posted.append(comment)
        if owner is not None:
            owner["comments"].append(comment)
        return json_response({"id": new_id})

    def private_reply(self, request: Request) -> Response:
        body = request.json() or {}
        recipient, text = body.get("recipient") or {}, (body.get("message") or {}).get("text")
        node = recipient.get("comment_id") or recipient.get("post_id")
        if not isinstance(text, str) or not text.strip():
            return graph_error(400, 100, "(#100) Message cannot be empty", 2018034)
        if len(text) > 2000:
            return graph_error(400, 100, "(#100) Length of param message[text] must be less "
                               "than or equal to 2000")  # fmt: skip
        target = self.find(node) if isinstance(node, str) else None
        if target is None or target in self.edges["tagged"]:
            side = "comment_id" if "comment_id" in recipient else "post_id"
            return graph_error(400, 100, f"(#100) Invalid {side} parameter", 2018292)
        if _age(target) > 7 * 86400:
            return graph_error(400, 10, "(#10) This message is sent outside of allowed window.",
                               2018278)  # fmt: skip
        if not target.get("can_reply_privately", True):
            return graph_error(400, 10900, "(#10900) Activity already replied to")
        if (target.get("from") or {}).get("id") == "blocked-messages":
            return no_permission("this action")
        target["can_reply_privately"] = False
        message = {"recipient_id": f"2799{len(self.private_replies):012d}",
                   "message_id": f"m_pebble{next(self._ids)}"}  # fmt: skip
        self.private_replies.append({**message, "to": node, "text": text})
        return json_response(message)


def _graph_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _parse(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").timestamp()


def _age(item: dict[str, Any]) -> float:
    return time.time() - _parse(item["created_time"])


def _newest_first(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda i: _parse(i["created_time"]), reverse=True)


def _since(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    since = request.arg("since")
    if not since or not since.isdigit():
        return items
    return [i for i in items if _parse(i["created_time"]) >= int(since)]


def _no_object(node: str) -> Response:
    return graph_error(
        400, 100, f"(#100) Object with ID '{node}' does not exist, cannot be loaded due to missing "
        "permissions, or does not support this operation", 33,
    )  # fmt: skip
