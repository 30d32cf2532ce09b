"""The Graph API for one Instagram business account (Instagram API with Facebook Login),
played from account.json.

Shapes from python-facebook's recorded testdata: media with nested `comments` and
`replies.data` (tagged_user_medias_p1.json), `/tags` paged by `paging.cursors.after` only,
with no `next` link, `ig_hashtag_search` answering `{"data": [{"id"}]}`,
recently_searched_hashtags, and X-Business-Use-Case-Usage of type "instagram"
(headers.json). Hashtag media carry no `username`, as on Instagram.

Like Graph: the token is a bearer token (190 otherwise), a new hashtag beyond 30 unique ones
in the emulated week is refused (the error's code is UNCERTAIN: Meta documents the limit,
not its answer), `/{comment}/replies` posts a reply, and private replies go to the linked
Page's `/{page}/messages` (the account's own node answers `(#3) Application does not have
the capability to make this API call`, as it does with Facebook Login): once per comment,
within 7 days.
"""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime
from typing import Any

from mentionwatch.testing.meta import Usage, authorised, graph_error, paged
from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

ACCOUNT_ID = "17841400455970028"
PAGE_ID = "104738291022334"  # the Facebook Page the account is linked to
TOKEN = "EAAGm0PX4ZCpsBOinstaPebblebaseToken9QzR2ZBwXk4ZAZDZD"
NEWEST_MEDIA = "18027939643230671"
_VERSION = re.compile(r"^/v\d+\.\d+(/.*)$")


class Platform(PlatformBase):
    name = "instagram"
    search_path = f"/instagram/v25.0/{NEWEST_MEDIA}/comments"
    items_path = "data"
    required_key = "id"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        data = self.fixture_json("account.json")
        self.account = data["account"]
        self.media: list[dict[str, Any]] = data["media"]
        self.tags: list[dict[str, Any]] = data["tags"]
        self.hashtags: dict[str, dict[str, Any]] = data["hashtags"]
        self.searched: list[dict[str, str]] = data["recently_searched"]
        self.usage = Usage("instagram", ACCOUNT_ID)
        self.expired = False
        self.replies_posted: list[dict[str, Any]] = []
        self.private_replies: list[dict[str, Any]] = []
        self.replied_privately: set[str] = set()
        self._ids = itertools.count(17900000000000001)

    def source_settings(self) -> dict[str, Any]:
        return {"base_url": f"{self.web.base_url(self.name)}/v25.0", "user_id": ACCOUNT_ID,
                "token": TOKEN, "page_id": PAGE_ID, "hashtags": ["pebblebase"]}  # fmt: skip

    def add_item(self, text: str, created: float) -> str:
        """A comment on the newest media, created at `created`."""
        comment = {"id": str(next(self._ids)), "text": text, "timestamp": _graph_time(created),
                   "username": "backlog.reader", "like_count": 0,
                   "from": {"id": "17841409999999999", "username": "backlog.reader"}}  # fmt: skip
        self.media[0]["comments"].append(comment)
        self.media[0]["comments_count"] += 1
        return f"instagram:{comment['id']}"

    # Routing

    def handle(self, request: Request) -> Response | None:
        match = _VERSION.match(request.path)
        if not match:
            return None
        denied = authorised(request, TOKEN, lambda: self.expired)
        parts = match.group(1).strip("/").split("/")
        response = denied or self.route(request, parts, f"https://graph.facebook.com{request.path}")
        if response is not None:
            response.headers.update(self.usage.headers())
        return response

    def route(self, request: Request, parts: list[str], base: str) -> Response | None:
        if parts == ["ig_hashtag_search"]:
            return self.hashtag_search(request)
        if len(parts) == 1 and request.method == "GET":
            return self.lookup(parts[0], request)
        if len(parts) != 2:
            return None
        node, edge = parts
        if node == ACCOUNT_ID and edge == "media":
            return paged(request, [_without(m, "comments") for m in self.media], base)
        if node == ACCOUNT_ID and edge == "tags":
            return paged(request, self.tags, base, next_link=False)
        if node == ACCOUNT_ID and edge == "recently_searched_hashtags":
            return json_response({"data": self.searched})
        if node == ACCOUNT_ID and edge == "messages":
            return graph_error(400, 3, "(#3) Application does not have the capability to make "
                               "this API call.")  # fmt: skip
        if node == PAGE_ID and edge == "messages" and request.method == "POST":
            return self.private_reply(request)
        if edge == "recent_media":
            found = next((h for h in self.hashtags.values() if h["id"] == node), None)
            if found is None or not request.arg("user_id"):
                return graph_error(400, 100, "(#100) The parameter user_id is required")
            return paged(request, found["recent_media"], base)
        media = next((m for m in self.media if m["id"] == node), None)
        if edge == "comments" and media is not None:
            with_replies = "replies" in (request.arg("fields") or "")
            comments = sorted(media["comments"], key=lambda c: c["timestamp"], reverse=True)
            shown = comments if with_replies else [_without(c, "replies") for c in comments]
            return paged(request, shown, base)
        comment = self.comment(node)
        if edge == "replies" and comment is not None:
            if request.method == "POST":
                return self.reply(request, comment)
            return paged(request, (comment.get("replies") or {}).get("data", []), base)
        return None

    # Reads

    def comment(self, node: str) -> dict[str, Any] | None:
        for media in self.media:
            for comment in media["comments"]:
                if comment["id"] == node:
                    return comment
                for reply in (comment.get("replies") or {}).get("data", []):
                    if reply["id"] == node:
                        return reply
        return None

    def lookup(self, node: str, request: Request) -> Response:
        if node == ACCOUNT_ID:
            return json_response(self.account)
        found = self.comment(node)
        if found is None:
            return graph_error(400, 100, f"(#100) Object with ID '{node}' does not exist")
        wanted = set((request.arg("fields") or "id").split(",")) | {"id"}
        return json_response({k: v for k, v in found.items() if k in wanted})

    def hashtag_search(self, request: Request) -> Response:
        tag = (request.arg("q") or "").lower()
        if not request.arg("user_id") or not tag:
            return graph_error(400, 100, "(#100) The parameters user_id and q are required")
        names = {h["name"] for h in self.searched}
        if tag not in names and len(names) >= 30:
            return graph_error(400, 24, "(#24) The number of unique hashtags searched in the last "
                               "7 days exceeds the limit of 30", 2207024)  # fmt: skip
        found = self.hashtags.get(tag)
        if tag not in names:
            self.searched.append({"name": tag, "id": found["id"] if found else "0"})
        return json_response({"data": [{"id": found["id"]}] if found else []})

    # Writes

    def reply(self, request: Request, comment: dict[str, Any]) -> Response:
        message = (request.form().get("message") or "").strip()
        if not message:
            return graph_error(400, 100, "(#100) The parameter message is required")
        if comment.get("parent_id"):
            return graph_error(400, 100, "(#100) Cannot reply to a reply")
        reply = {"id": str(next(self._ids)), "text": message, "timestamp": _graph_time(time.time()),
                 "username": self.account["username"], "like_count": 0, "parent_id": comment["id"],
                 "from": {"id": ACCOUNT_ID, "username": self.account["username"]}}  # fmt: skip
        comment.setdefault("replies", {"data": []})["data"].append(reply)
        self.replies_posted.append(reply)
        return json_response({"id": reply["id"]})

    def private_reply(self, request: Request) -> Response:
        body = request.json() or {}
        node = (body.get("recipient") or {}).get("comment_id")
        text = (body.get("message") or {}).get("text")
        comment = self.comment(node) if isinstance(node, str) else None
        if comment is None or not isinstance(node, str):
            return graph_error(400, 100, "(#100) Invalid comment_id parameter", 2018292)
        if not isinstance(text, str) or not text.strip() or len(text.encode()) > 1000:
            return graph_error(400, 100, "(#100) Param message[text] must be 1 to 1000 bytes")
        age = (
            time.time() - datetime.strptime(comment["timestamp"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
        )
        if age > 7 * 86400:
            return graph_error(400, 10, "(#10) This message is sent outside of allowed window.",
                               2018278)  # fmt: skip
        if node in self.replied_privately:
            return graph_error(400, 10900, "(#10900) Activity already replied to")
        self.replied_privately.add(node)
        answer = {"recipient_id": f"9{len(self.private_replies):015d}",
                  "message_id": f"aWdfZAG1f{next(self._ids)}"}  # fmt: skip
        self.private_replies.append({**answer, "to": node, "text": text})
        return json_response(answer)


def _without(item: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != key}


def _graph_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
