"""Bluesky's XRPC API as the bsky.social entryway serves it (/xrpc/<nsid>), from posts.json.

Like the real service: searchPosts needs a session (401 AuthMissing without one), an expired
access token answers 400 ExpiredToken, refreshSession takes the refresh token and rotates
both, search is loose (matches inside words, ignores exclusions, also looks at link cards)
and filters `since` (inclusive) on sortAt, every answer carries RateLimit-* headers (reset as
epoch seconds), and createRecord validates the reply record.

Chat (chat.bsky.convo.getConvoForMembers, sendMessage, getMessages) is proxied to the chat
service only with the `atproto-proxy: did:web:api.bsky.chat#bsky_chat` header, and only for
a session of an app password with direct-message access (`chat_allowed`): any other answers
400 InvalidToken "Bad token scope", as the PDS does. Recipients in `chat_refusals` answer
with that XRPC error (MessagesDisabled, NotFollowedBySender…). Shapes from the lexicons
(chat/bsky/convo/defs.json: convoView, messageView).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

HANDLE = "pebblebase.bsky.social"
APP_PASSWORD = "pbpb-7x2k-m9q4-w3n8"
DID = "did:plc:pebblebaseteam4x7k2q"
_POST = "app.bsky.feed.post"
_CHAT_REFUSALS = {
    "MessagesDisabled": "recipient has disabled incoming messages",
    "NotFollowedBySender": "recipient requires incoming messages to come from someone they follow",
}


class Platform(PlatformBase):
    name = "bluesky"
    search_path = "/bluesky/xrpc/app.bsky.feed.searchPosts"
    items_path = "posts"
    required_key = "uri"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.access: dict[str, bool] = {}  # access token -> still valid
        self.refresh: set[str] = set()
        self.logins = 0
        self.refreshes = 0
        self.extra_posts: list[dict[str, Any]] = []  # tests add new or edge-case posts here
        self.records: list[dict[str, Any]] = []  # posts created through createRecord
        # Posts the AppView drops after paging (blocked authors, hidden tags): like the real
        # one, the page then holds fewer than `limit` posts though a cursor follows.
        self.hidden: set[str] = set()
        self.write_errors: list[tuple[int, dict[str, str]]] = []  # next createRecord answers
        self.chat_allowed = True  # the app password was created with access to DMs
        self.privileged: set[str] = set()  # access tokens of such a password
        self.chat_refusals: dict[str, str] = {}  # recipient did -> XRPC error name
        self.chats: dict[str, list[dict[str, Any]]] = {}  # convo id -> messages, oldest first

    def add_item(self, text: str, created: float) -> str:
        """A post created at `created` and indexed now (later, for a late one)."""
        rkey = f"3zz{len(self.extra_posts):010d}"
        did = "did:plc:backlogreader000000000"
        uri = f"at://{did}/{_POST}/{rkey}"
        self.extra_posts.append({
            "uri": uri, "cid": f"bafyreibacklog{rkey}",
            "author": {"did": did, "handle": "backlog.bsky.social", "displayName": "Backlog"},
            "record": {"$type": _POST, "text": text, "createdAt": _iso(created)},
            "replyCount": 0, "repostCount": 0, "likeCount": 1, "quoteCount": 0,
            "indexedAt": _iso(time.time()),
        })  # fmt: skip
        return f"bluesky:{uri}"

    def expire_access(self) -> None:
        self.access = dict.fromkeys(self.access, False)

    def source_settings(self) -> dict[str, Any]:
        return {"base_url": self.web.base_url(self.name), "handle": HANDLE,
                "app_password": APP_PASSWORD}  # fmt: skip

    def handle(self, request: Request) -> Response | None:
        nsid = request.path.removeprefix("/xrpc/")
        if nsid == "com.atproto.server.createSession" and request.method == "POST":
            return self.create_session(request)
        if nsid == "com.atproto.server.refreshSession" and request.method == "POST":
            return self.refresh_session(request)
        routes = {
            ("GET", "com.atproto.server.getSession"): self.get_session,
            ("GET", "app.bsky.feed.searchPosts"): self.search,
            ("GET", "app.bsky.feed.getPosts"): self.get_posts,
            ("POST", "com.atproto.repo.createRecord"): self.create_record,
            ("GET", "com.atproto.repo.listRecords"): self.list_records,
            ("GET", "chat.bsky.convo.getConvoForMembers"): self.convo_for_members,
            ("POST", "chat.bsky.convo.sendMessage"): self.send_message,
            ("GET", "chat.bsky.convo.getMessages"): self.get_messages,
        }
        route = routes.get((request.method, nsid))
        if route is None:
            return None
        denied = self.authorise(request) or self.chat_denied(request, nsid)
        response = denied or route(request)
        response.headers.update(
            {
                "RateLimit-Limit": "3000",
                "RateLimit-Remaining": "2987",
                "RateLimit-Reset": str(int(time.time()) + 240),
                "RateLimit-Policy": "3000;w=300",
            }
        )
        return response

    # Sessions

    def create_session(self, request: Request) -> Response:
        body = request.json() or {}
        if (body.get("identifier"), body.get("password")) != (HANDLE, APP_PASSWORD):
            return _error(401, "AuthenticationRequired", "Invalid identifier or password")
        self.logins += 1
        return json_response(self.new_session())

    def refresh_session(self, request: Request) -> Response:
        token = _bearer(request)
        if token not in self.refresh:
            return _error(400, "ExpiredToken", "Token has expired")
        self.refresh.discard(token)  # refresh tokens are single-use
        self.refreshes += 1
        return json_response(self.new_session())

    def new_session(self) -> dict[str, Any]:
        scope = "com.atproto.appPassPrivileged" if self.chat_allowed else "com.atproto.appPass"
        access, refresh = _jwt(scope, 7200), _jwt("com.atproto.refresh", 7776000)
        self.access[access] = True
        if self.chat_allowed:
            self.privileged.add(access)
        self.refresh.add(refresh)
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": HANDLE,
            "did": DID,
            "email": "team@pebblebase.io",
            "emailConfirmed": True,
            "active": True,
        }

    def authorise(self, request: Request) -> Response | None:
        token = _bearer(request)
        if token is None:
            return _error(401, "AuthMissing", "Authentication Required")
        if token not in self.access:
            return _error(401, "InvalidToken", "Token could not be verified")
        if not self.access[token]:
            return _error(400, "ExpiredToken", "Token has expired")
        return None

    def chat_denied(self, request: Request, nsid: str) -> Response | None:
        if not nsid.startswith("chat.bsky."):
            return None
        if request.headers.get("atproto-proxy") != "did:web:api.bsky.chat#bsky_chat":
            return _error(501, "MethodNotImplemented", "Method Not Implemented")
        if _bearer(request) not in self.privileged:
            return _error(400, "InvalidToken", "Bad token scope")
        return None

    def get_session(self, request: Request) -> Response:
        return json_response({"handle": HANDLE, "did": DID, "active": True})

    # Reads

    def posts(self) -> list[dict[str, Any]]:
        return self.fixture_json("posts.json")["posts"] + self.extra_posts

    def search(self, request: Request) -> Response:
        query = request.arg("q") or ""
        if not query.strip():
            return _error(400, "InvalidRequest", 'Error: Params must have the property "q"')
        words = re.findall(r"\w+", re.sub(r'-"[^"]*"|-\S+', " ", query).lower())
        since, until = _when(request.arg("since")), _when(request.arg("until"))
        hits = []
        for post in self.posts():
            sort_at = _sort_at(post)
            if since and (sort_at is None or sort_at < since):
                continue
            if until and (sort_at is None or sort_at >= until):
                continue
            if all(w in _haystack(post) for w in words):
                hits.append(post)
        # sort=latest orders by sortAt, like `since` and `until`.
        hits.sort(key=lambda p: _sort_at(p) or datetime.min.replace(tzinfo=UTC), reverse=True)
        limit = min(int(request.arg("limit", "25") or 25), 100)
        start = int(request.arg("cursor", "0") or 0)
        page = [p for p in hits[start : start + limit] if p.get("uri") not in self.hidden]
        body: dict[str, Any] = {"posts": page, "hitsTotal": len(hits)}
        if start + limit < len(hits):
            body["cursor"] = str(start + limit)
        return json_response(body)

    def get_posts(self, request: Request) -> Response:
        """Posts by at:// uri (at most 25), in the order asked; unknown ones are left out."""
        uris = request.query.get("uris") or []
        if not uris:
            return _error(400, "InvalidRequest", 'Error: Params must have the property "uris"')
        if len(uris) > 25:
            return _error(400, "InvalidRequest", "Error: uris must not have more than 25 elements")
        # Posts search does not find (the team's own thread starters) live in thread.json.
        known = {p.get("uri"): p for p in self.posts() + self.fixture_json("thread.json")["posts"]}
        return json_response({"posts": [known[u] for u in uris if u in known]})

    def list_records(self, request: Request) -> Response:
        if request.arg("repo") not in (DID, HANDLE):
            return _error(400, "InvalidRequest", "Could not find repo")
        limit = min(int(request.arg("limit", "50") or 50), 100)
        wanted = [r for r in reversed(self.records) if r["collection"] == request.arg("collection")]
        return json_response(
            {"records": [{k: r[k] for k in ("uri", "cid", "value")} for r in wanted[:limit]]}
        )

    # Chat

    def convo_for_members(self, request: Request) -> Response:
        members = request.query.get("members") or []
        if not members:
            return _error(400, "InvalidRequest", 'Error: Params must have the property "members"')
        other = next((m for m in members if m != DID), DID)
        if other in self.chat_refusals:
            name = self.chat_refusals[other]
            return _error(400, name, _CHAT_REFUSALS.get(name, name))
        convo = "3l" + base64.b32encode(other.encode()).decode().lower().rstrip("=")[-11:]
        self.chats.setdefault(convo, [])
        members_view = [{"did": DID, "handle": HANDLE}, {"did": other, "handle": "someone.test"}]
        view = {"id": convo, "rev": "22222222fuaaa", "members": members_view, "muted": False,
                "status": "request", "unreadCount": 0}  # fmt: skip
        return json_response({"convo": view})

    def send_message(self, request: Request) -> Response:
        body = request.json() or {}
        convo, text = body.get("convoId"), (body.get("message") or {}).get("text")
        if convo not in self.chats:
            return _error(400, "InvalidRequest", "Convo not found")
        if not isinstance(text, str) or not text or len(text) > 1000 or len(text.encode()) > 10000:
            return _error(400, "InvalidRequest", "Input/message/text must not be longer than "
                          "1000 graphemes")  # fmt: skip
        number = len(self.chats[convo])
        message = {"id": f"3lmsg{number:08d}{convo[-4:]}", "rev": f"2222222{number:06d}",
                   "text": text, "sender": {"did": DID}, "sentAt": _iso(time.time())}  # fmt: skip
        self.chats[convo].append(message)
        return json_response(message)

    def get_messages(self, request: Request) -> Response:
        convo = request.arg("convoId")
        if convo not in self.chats:
            return _error(400, "InvalidRequest", "Convo not found")
        return json_response({"messages": list(reversed(self.chats[convo]))})

    # Writes

    def create_record(self, request: Request) -> Response:
        body = request.json() or {}
        if self.write_errors:
            status, error = self.write_errors.pop(0)
            return _error(status, error["error"], error["message"])
        if body.get("repo") not in (DID, HANDLE):
            return _error(401, "InvalidToken", "Token does not match the repo")
        record = body.get("record") or {}
        problem = _invalid_post(body.get("collection"), record)
        if problem:
            return _error(400, "InvalidRequest", f"Invalid {_POST} record: {problem}")
        rkey = f"3lbr{len(self.records) + 1:09d}"
        uri = f"at://{DID}/{_POST}/{rkey}"
        cid = "bafyreireply" + secrets.token_hex(22)
        self.records.append({"uri": uri, "cid": cid, "value": record, "collection": _POST})
        return json_response(
            {
                "uri": uri,
                "cid": cid,
                "commit": {"cid": "bafyreicommit" + secrets.token_hex(20), "rev": rkey},
                "validationStatus": "valid",
            }
        )


def _invalid_post(collection: Any, record: dict[str, Any]) -> str | None:
    if collection != _POST or record.get("$type") != _POST:
        return "Record/$type must be app.bsky.feed.post"
    text = record.get("text")
    if not isinstance(text, str):
        return 'Record must have the property "text"'
    # The real limit counts graphemes; code points are close enough for these fixtures.
    if len(text) > 300 or len(text.encode()) > 3000:
        return "Record/text must not be longer than 300 graphemes"
    if not isinstance(record.get("createdAt"), str) or _when(record["createdAt"]) is None:
        return "Record/createdAt must be an valid atproto datetime (both RFC-3339 and ISO-8601)"
    reply = record.get("reply")
    if reply is not None:
        for side in ("root", "parent"):
            ref = (reply or {}).get(side) or {}
            if not str(ref.get("uri", "")).startswith("at://") or not ref.get("cid"):
                return f'Record/reply/{side} must have the properties "uri" and "cid"'
    return None


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _jwt(scope: str, lifetime: int) -> str:
    """A token that looks like the real ones (ES256K JWTs); only the server checks it."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {"scope": scope, "sub": DID, "aud": "did:web:bsky.social", "iat": now,
              "exp": now + lifetime, "jti": secrets.token_hex(8)}  # fmt: skip
    return f"{part({'typ': 'at+jwt', 'alg': 'ES256K'})}.{part(claims)}.{secrets.token_urlsafe(48)}"


def _error(status: int, name: str, message: str) -> Response:
    return json_response({"error": name, "message": message}, status)


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sort_at(post: dict[str, Any]) -> datetime | None:
    record = post["record"] if isinstance(post.get("record"), dict) else {}
    stamps = [_when(post.get("indexedAt")), _when(record.get("createdAt"))]
    present = [s for s in stamps if s is not None]
    return min(present) if present else None


def _haystack(post: dict[str, Any]) -> str:
    record = post["record"] if isinstance(post.get("record"), dict) else {}
    external = ((record.get("embed") or {}).get("external")) or {}
    parts = [record.get("text"), external.get("uri"), external.get("title")]
    return " ".join(str(p) for p in parts if p).lower()
