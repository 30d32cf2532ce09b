"""Bluesky through an app-password session on the PDS (or the bsky.social entryway), which
proxies app.bsky.feed.searchPosts to the AppView: public search answers 403 nowadays.

createSession is limited to 30 logins per 5 minutes per account, so the session is kept in the
source state and renewed with refreshSession when the access token expires.

Private messages (`reply --private`) go through the same PDS to Bluesky's chat service
(chat.bsky.convo.*, with the `atproto-proxy` header naming it). They need an app password
created with access to direct messages; any other is refused with "Bad token scope".
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from mentionwatch import scrub
from mentionwatch.http import SourceError
from mentionwatch.models import Job, Mention, Option, Page, ThreadPost, utcnow
from mentionwatch.query import Query, parse
from mentionwatch.sources.base import Posted, Source
from mentionwatch.sources.common import (
    Anchor,
    Batch,
    Malformed,
    Obj,
    Search,
    anchor,
    convert,
    dig,
    fit,
    page_of,
    parse_time,
    string,
)
from mentionwatch.text import clean

if TYPE_CHECKING:
    import httpx

APP = "https://bsky.app"
POST = "app.bsky.feed.post"
SESSION_KEY = "session"
LIMIT = 100  # the lexicon's maximum
MAX_PAGES = 10  # per search and poll; a longer backlog waits as a gap for the next poll
# `since` filters on sortAt (the earlier of createdAt and indexedAt), and posts reach the
# search index a little after that: each poll reads this far back past the newest post seen.
OVERLAP_SECONDS = 600
# `q` has no documented limit; longer ones are split like on the platforms that have one.
MAX_QUERY = 512
REFRESHABLE = {"ExpiredToken", "InvalidToken"}
OWN_REPLIES_SCANNED = 50
CHAT_PROXY = {"atproto-proxy": "did:web:api.bsky.chat#bsky_chat"}
CHAT_LIMIT = 1000  # graphemes (and 10,000 bytes) per chat message
# What the PDS answers for a session that may not use chat: an app password made without
# direct-message access ("Bad token scope" in 2024, "Bad token method" since 2025).
NO_CHAT_ACCESS = ("Bad token scope", "Bad token method")
CHAT_REFUSALS = {
    "MessagesDisabled": "{who} does not accept chat messages",
    "NotFollowedBySender": "{who} accepts chat messages only from accounts they follow",
    "BlockedActor": "a block stands between you and {who}",
    "RecipientNotFound": "{who} has no chat account",
}


class Bluesky(Source):
    name = "bluesky"
    default_base_url = "https://bsky.social"
    options: ClassVar[dict[str, Option]] = {
        "handle": Option(str, help="your handle, e.g. pebblebase.bsky.social"),
        "app_password": Option(str, secret=True, help="an app password (Settings → App passwords)"),
    }
    required = (("handle", "app_password"),)
    reply_limit = 300  # graphemes
    can_reply = True
    can_message = True
    message_limit = CHAT_LIMIT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import asyncio  # lazily: config loading imports every source

        super().__init__(*args, **kwargs)
        # Jobs of one poll run concurrently: one login or refresh serves them all.
        self._session_lock = asyncio.Lock()

    # Polling

    overlap = OVERLAP_SECONDS
    max_pages = MAX_PAGES

    def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        assert job.term is not None
        # searchPosts documents no OR: one search per alternative.
        queries = fit(parse(job.term.query), MAX_QUERY, _rendered, source=self.name,
                      term=job.term.name, together=False)  # fmt: skip
        return self.walk([Search(q, partial(self._listing, q)) for q in queries], cursor)

    async def _listing(
        self, query: str, lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        params: dict[str, Any] = {"q": query, "sort": "latest", "since": _iso(_at(lower)),
                                  "limit": LIMIT}  # fmt: skip
        if upper is not None:  # `until` is exclusive: a second more keeps posts of that second
            params["until"] = _iso(_at(upper.at + 1))
        page = 1
        while True:
            data = page_of(await self._xrpc("GET", "app.bsky.feed.searchPosts", params=params),
                           "the search answer")  # fmt: skip
            posts = data.array("posts")
            mentions, problems = convert(posts, to_mention, page)
            # Only a missing cursor ends the results: the AppView drops posts of blocked or
            # hidden accounts after paging, so a page may hold fewer than `limit` posts.
            next_cursor = data.string("cursor", required=False)
            more = bool(next_cursor) and bool(posts) and next_cursor != params.get("cursor")
            yield Batch(mentions, anchor(posts, _sort_at), more, problems)
            if not more:
                return
            params["cursor"] = next_cursor
            page += 1

    # Session and requests

    async def _xrpc(self, method: str, nsid: str, *, retry: bool = True, **kwargs: Any) -> Any:
        """An authenticated XRPC call; an expired access token is refreshed once."""
        return self.http.json(await self._call(method, nsid, retry=retry, **kwargs))

    async def _call(
        self, method: str, nsid: str, *, retry: bool = True, headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:  # fmt: skip
        url = f"{self.base_url}/xrpc/{nsid}"
        for attempt in range(2):
            session = await self._session()
            sent = {**(headers or {}), "Authorization": f"Bearer {session['accessJwt']}"}
            response = await self.http.request(method, url, headers=sent, retry=retry, **kwargs)
            # A session without chat access is not stale: renewing it changes nothing.
            if attempt or _error_name(response) not in REFRESHABLE or _no_chat_access(response):
                break
            await self._refresh(session)
        return response

    async def _session(self) -> dict[str, Any]:
        async with self._session_lock:
            return self._saved_session() or await self._login()

    def _saved_session(self) -> dict[str, Any] | None:
        try:
            saved = json.loads(self.state.get(SESSION_KEY) or "null")
        except ValueError:
            return None
        # A session of another account (the handle was changed in the config) is not ours.
        if not isinstance(saved, dict) or saved.get("for") != self._handle():
            return None
        keys = ("accessJwt", "refreshJwt", "did", "handle")
        if not all(isinstance(saved.get(k), str) for k in keys):
            return None
        scrub.register(saved["accessJwt"], saved["refreshJwt"])
        return saved

    def _handle(self) -> str:
        return str(self.settings.get("handle") or "").strip().removeprefix("@").lower()

    async def _login(self) -> dict[str, Any]:
        url = f"{self.base_url}/xrpc/com.atproto.server.createSession"
        body = {"identifier": self._handle(), "password": self.settings.get("app_password")}
        response = await self.http.request("POST", url, json=body)
        if response.status_code >= 400:
            hint = (
                "the account asks for an email code: use an app password"
                if _error_name(response) == "AuthFactorTokenRequired"
                else f"check sources.{self.name}.handle and sources.{self.name}.app_password"
            )
            raise self.http.error(response, "login failed", hint)
        return self._keep(self.http.json(response))

    async def _refresh(self, stale: dict[str, Any]) -> None:
        async with self._session_lock:
            current = self._saved_session()
            if current and current["accessJwt"] != stale["accessJwt"]:
                return  # another job already renewed it
            url = f"{self.base_url}/xrpc/com.atproto.server.refreshSession"
            headers = {"Authorization": f"Bearer {stale['refreshJwt']}"}
            response = await self.http.request("POST", url, headers=headers)
            if response.status_code >= 400:
                # The refresh token expired or was revoked too: log in again.
                self.state.set(SESSION_KEY, None)
                await self._login()
                return
            self._keep(self.http.json(response, url))

    def _keep(self, data: Any) -> dict[str, Any]:
        keys = ("accessJwt", "refreshJwt", "did", "handle")
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in keys):
            raise SourceError(f"{self.name}: the session answer lacks tokens, did or handle")
        scrub.register(data["accessJwt"], data["refreshJwt"])
        session = {"for": self._handle(), **{k: data[k] for k in keys}}
        self.state.set(SESSION_KEY, json.dumps(session))
        return session

    async def check(self) -> str:
        data = await self._xrpc("GET", "com.atproto.server.getSession")
        if not isinstance(data, dict) or not isinstance(data.get("handle"), str):
            raise SourceError(f"{self.name}: getSession did not name the account")
        return f"authenticated as @{data['handle']} ({data.get('did')})"

    # Thread

    async def thread(self, mention: Mention) -> list[ThreadPost]:
        """The post this one replies to, and the thread's first post when that is another one:
        one getPosts call (authenticated like search) for both."""
        parent = _ref(mention.extra.get("parent"))[0]
        root = _ref(mention.extra.get("root"))[0]
        if not _uri_parts(parent):
            return []
        wanted = {"parent": parent}
        if _uri_parts(root) and root != parent:
            wanted["root"] = root
        data = await self._xrpc("GET", "app.bsky.feed.getPosts",
                                params={"uris": list(wanted.values())})  # fmt: skip
        posts = data.get("posts") if isinstance(data, dict) else None
        if not isinstance(posts, list):
            raise SourceError(f"{self.name}: unexpected response shape (no 'posts' list)")
        # Deleted or hidden posts are left out of the answer: they are skipped here too.
        by_uri = {
            p["uri"]: p for p in posts if isinstance(p, dict) and isinstance(p.get("uri"), str)
        }
        found = [_thread_post(relation, by_uri.get(uri)) for relation, uri in wanted.items()]
        return [p for p in found if p is not None]

    # Replies

    def reply_length(self, text: str) -> int:
        return grapheme_count(text)

    def reply_problem(self, mention: Mention) -> str | None:
        missing = self.missing_credentials()
        if missing:
            return missing
        if not _strong_ref(mention.extra.get("uri"), mention.extra.get("cid")):
            return f"{self.name}: this mention has no post uri and cid to reply to"
        return None

    async def post_reply(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        parent = _strong_ref(mention.extra["uri"], mention.extra["cid"])
        # A reply to a reply stays in the original thread: its root is the parent's root.
        root = mention.extra.get("root") or parent
        session = await self._session()
        record = {
            "$type": POST,
            "text": text,
            "createdAt": _iso(utcnow()),
            "reply": {"root": root, "parent": parent},
        }
        body = {"repo": session["did"], "collection": POST, "record": record}
        # Not idempotent: a timeout must not resend (find_reply looks for it instead).
        data = await self._xrpc("POST", "com.atproto.repo.createRecord", json=body, retry=False)
        uri = data.get("uri") if isinstance(data, dict) else None
        if not isinstance(uri, str):
            raise SourceError(f"{self.name}: the reply was accepted but no uri came back")
        return Posted(uri, post_url(session["handle"], uri))

    async def find_reply(self, mention: Mention, text: str) -> Posted | None:
        """Our newest records in our own repo (no AppView delay), looking for this reply."""
        session = await self._session()
        params = {"repo": session["did"], "collection": POST, "limit": OWN_REPLIES_SCANNED}
        data = await self._xrpc("GET", "com.atproto.repo.listRecords", params=params)
        records = data.get("records") if isinstance(data, dict) else None
        for item in records if isinstance(records, list) else []:
            value = item.get("value") if isinstance(item, dict) else None
            if not isinstance(value, dict) or not isinstance(item.get("uri"), str):
                continue
            parent = (value.get("reply") or {}).get("parent") or {}
            if parent.get("uri") == mention.extra.get("uri") and value.get("text") == text:
                return Posted(item["uri"], post_url(session["handle"], item["uri"]))
        return None

    # Chat (`reply --private`)

    def message_length(self, text: str) -> int:
        return grapheme_count(text)

    def message_where(self, mention: Mention) -> str:
        return f"a Bluesky chat message to @{mention.author}"

    def message_problem(self, mention: Mention) -> str | None:
        missing = self.missing_credentials()
        if missing:
            return missing
        if not str(mention.extra.get("did") or "").startswith("did:"):
            return f"{self.name}: this mention has no author did to send a chat message to"
        return None

    async def post_message(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        convo = await self._convo(mention)
        body = {"convoId": convo, "message": {"text": text}}
        # Not idempotent: a timeout must not resend (find_message looks for it instead).
        response = await self._call("POST", "chat.bsky.convo.sendMessage", json=body,
                                    headers=CHAT_PROXY, retry=False)  # fmt: skip
        sent = page_of(self._chat_answer(response, mention), "the sendMessage answer")
        return Posted(sent.need("id"), _chat_url(convo))

    async def find_message(self, mention: Mention, text: str) -> Posted | None:
        """The newest messages of the conversation with the author, looking for ours."""
        session = await self._session()
        convo = await self._convo(mention)
        response = await self._call("GET", "chat.bsky.convo.getMessages", headers=CHAT_PROXY,
                                    params={"convoId": convo, "limit": 50})  # fmt: skip
        messages = self._chat_answer(response, mention).get("messages")
        for message in messages if isinstance(messages, list) else []:
            if (
                isinstance(message, dict)
                and dig(message, "sender", "did") == session["did"]
                and message.get("text") == text
                and isinstance(message.get("id"), str)
            ):
                return Posted(message["id"], _chat_url(convo))
        return None

    async def _convo(self, mention: Mention) -> str:
        """The id of the one-to-one conversation with the mention's author (made if new)."""
        response = await self._call("GET", "chat.bsky.convo.getConvoForMembers",
                                    params={"members": [mention.extra["did"]]},
                                    headers=CHAT_PROXY)  # fmt: skip
        convo = page_of(self._chat_answer(response, mention), "the getConvoForMembers answer")
        found = convo.obj("convo")
        assert found is not None
        return str(found.need("id"))

    def _chat_answer(self, response: httpx.Response, mention: Mention) -> Any:
        """The JSON of a chat call, or its refusal said plainly."""
        if response.status_code < 400:
            return self.http.json(response)
        if _no_chat_access(response):
            raise SourceError(
                f"{self.name}: this app password does not allow direct messages: create one "
                "with access to your direct messages ticked (Settings → Privacy and security → "
                f"App passwords) and set it as sources.{self.name}.app_password"
            )
        refusal = CHAT_REFUSALS.get(_error_name(response) or "")
        if refusal:
            who = f"@{mention.author}" if mention.author else "the author"
            raise SourceError(f"{self.name}: {refusal.format(who=who)}; reply in public instead")
        raise self.http.refused(response, "chat message refused")


def _chat_url(convo: str) -> str:
    return f"{APP}/messages/{convo}"


def _no_chat_access(response: httpx.Response) -> bool:
    if _error_name(response) != "InvalidToken":
        return False
    return any(marker.encode() in response.content[:2000] for marker in NO_CHAT_ACCESS)


def _rendered(query: Query) -> str:
    return query.quoted_alternatives()[0]


def _sort_at(post: Any) -> datetime | None:
    """Bluesky's sortAt: the earlier of indexedAt and the client-declared createdAt (which can
    lie, even be in the future)."""
    stamps = [parse_time(post.get("indexedAt")), parse_time(dig(post, "record", "createdAt"))]
    known = [s for s in stamps if s is not None]
    return min(known) if known else None


def to_mention(post: Obj) -> Mention | None:
    uri, cid = post.need("uri"), post.need("cid")
    parts = _uri_parts(uri)
    if not parts:
        raise Malformed(f'{post.where} has "uri": {uri[:60]!r}, not an at:// post URI')
    author, record = post.obj("author"), post.obj("record")
    assert author is not None and record is not None
    indexed = post.time("indexedAt")
    assert indexed is not None
    # createdAt is written by the client, and PDSes used to accept any string: the AppView
    # serves such records as they are, and sorts them by indexedAt. So does this.
    declared = parse_time(record.get("createdAt")) or indexed
    did, rkey = parts
    author.need("did")
    handle: str | None = author.need("handle")
    # "handle.invalid" marks a handle that no longer resolves: the did is the stable name.
    handle = None if handle == "handle.invalid" else handle
    text = clean(record.string("text"))
    reply = record.obj("reply", required=False)
    url = post_url(handle, uri)
    return Mention(
        source="bluesky",
        native_id=uri,
        text=text,
        # createdAt is declared by the client and can lie: like Bluesky's sortAt, take the
        # earlier of it and indexedAt.
        created_at=min(indexed, declared),
        url=url,
        author=handle or did,
        author_name=clean(author.string("displayName", required=False)) or None,
        # Reach: likes plus reposts (a repost shows the post to another audience).
        reach=post.count("likeCount") + post.count("repostCount"),
        reply_url=url,
        extra={
            "uri": uri,
            "cid": cid,
            "did": did,
            "rkey": rkey,
            "root": _strong_ref(*_ref(reply.get("root") if reply else None)),
            "parent": _strong_ref(*_ref(reply.get("parent") if reply else None)),
            "indexed_at": _iso(indexed),
            "reply_count": post.count("replyCount"),
            "quote_count": post.count("quoteCount"),
        },
        searchable="\n".join([text, *_links(record.data)]),
    )


def _thread_post(relation: str, post: Any) -> ThreadPost | None:
    if not isinstance(post, dict) or not isinstance(post.get("uri"), str):
        return None
    handle, did = string(dig(post, "author", "handle")), string(dig(post, "author", "did"))
    handle = None if handle == "handle.invalid" else handle
    created = parse_time(dig(post, "record", "createdAt")) or parse_time(post.get("indexedAt"))
    return ThreadPost(
        relation,
        clean(string(dig(post, "record", "text"))),
        handle or did,
        post_url(handle, post["uri"]),
        _iso(created) if created else None,
    )


def post_url(handle: str | None, uri: str) -> str | None:
    """https://bsky.app/profile/{handle or did}/post/{rkey}."""
    parts = _uri_parts(uri)
    if not parts:
        return None
    did, rkey = parts
    profile = handle if handle and handle != "handle.invalid" else did
    return f"{APP}/profile/{profile}/post/{rkey}"


def _uri_parts(uri: Any) -> tuple[str, str] | None:
    """(did, rkey) of an at:// post URI, or None."""
    if not isinstance(uri, str) or not uri.startswith("at://"):
        return None
    pieces = uri[5:].split("/")
    if len(pieces) != 3 or pieces[1] != POST or not pieces[0] or not pieces[2]:
        return None
    return pieces[0], pieces[2]


def _ref(value: Any) -> tuple[Any, Any]:
    return (value.get("uri"), value.get("cid")) if isinstance(value, dict) else (None, None)


def _strong_ref(uri: Any, cid: Any) -> dict[str, str] | None:
    if isinstance(uri, str) and uri.startswith("at://") and isinstance(cid, str) and cid:
        return {"uri": uri, "cid": cid}
    return None


def _links(record: dict[str, Any]) -> list[str]:
    """Link targets the text only abbreviates: facet links and an external embed's card."""
    found = []
    facets = record.get("facets")
    for facet in facets if isinstance(facets, list) else []:
        features = dig(facet, "features")
        for feature in features if isinstance(features, list) else []:
            if isinstance(dig(feature, "uri"), str):
                found.append(feature["uri"])
    external = dig(record, "embed", "external")
    found += [string(dig(external, k)) or "" for k in ("uri", "title")]
    return [x for x in found if x]


def _at(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


def _iso(moment: datetime) -> str:
    """Milliseconds and a trailing Z, the form Bluesky's own clients write."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _error_name(response: httpx.Response) -> str | None:
    """The XRPC error name ({"error": "ExpiredToken", "message": …}) of a 4xx answer."""
    if response.status_code < 400:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    name = data.get("error") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def grapheme_count(text: str) -> int:
    """User-perceived characters, as Bluesky counts its 300-grapheme limit (approximately:
    the stdlib has no segmentation). Marks, joiners, variation selectors, skin tones and emoji
    tags extend the character before them, a ZWJ glues the next one on, regional indicators
    pair into flags, and CR LF is one."""
    count, previous, open_flag = 0, "", False
    for char in text:
        pairs_flag = open_flag and _regional(char)
        joins = bool(previous) and (
            _extends(char) or previous == "\u200d" or pairs_flag or previous + char == "\r\n"
        )
        count += not joins
        open_flag = _regional(char) and not pairs_flag
        previous = char
    return count


def _extends(char: str) -> bool:
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or code == 0x200D
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


SOURCE = Bluesky
