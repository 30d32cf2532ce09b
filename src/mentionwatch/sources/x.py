"""X (Twitter) API v2 recent search, with a hard cap on posts read, since every read is paid.

Config (`[sources.x]`):
  bearer_token        app-only token for search (required).
  user_token          OAuth 2.0 user token (scopes tweet.read tweet.write users.read, and
                      dm.read dm.write for `reply --private`) for replies; optional.
  max_reads_per_poll  new posts read per poll across all terms (default 100, at least 10, the
                      smallest page X serves). Terms are read one after another so the cap is
                      never overshot.

Each search reads newest first from now back to `start_time` = the newest post it saw minus a
minute (X makes posts searchable about 30 s after they are created, sometimes later; a post
re-read within 24 hours is not billed again, nor counted against the cap). When the
cap stops a search midway, the cursor keeps the gap (`until_id`, the oldest post read) and
the next poll reads it before anything newer: posts may arrive late, never lost. Every Page
notes how many posts it read.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar

from mentionwatch.http import SourceError, error_detail, message_in
from mentionwatch.models import Job, Mention, Option, Page, ThreadPost, iso, parse_iso, utcnow
from mentionwatch.query import Query, parse
from mentionwatch.sources.base import Posted, Source
from mentionwatch.sources.common import (
    Anchor,
    Batch,
    Malformed,
    Obj,
    OutOfReach,
    Search,
    anchor,
    convert,
    dig,
    fit,
    page_of,
    parse_time,
    string,
)
from mentionwatch.text import unescape

MIN_PAGE, MAX_PAGE = 10, 100  # max_results bounds of recent search
MAX_QUERY = 512  # characters, self-serve recent search
WINDOW = timedelta(days=7) - timedelta(minutes=1)  # recent search refuses older start_time
OVERLAP_SECONDS = 60
MAX_PAGES = 1000  # the read budget is what stops a poll
CAPPED = "max_reads_per_poll reached; the rest waits"
TWEPOCH_MS = 1288834974657  # X's snowflake ids hold their creation time above 22 bits
URL_LENGTH = 23  # X counts every link as 23 characters (t.co)
_URL = re.compile(r"https?://\S+")
# twitter-text counts these code points as 1 and every other one (CJK, emoji…) as 2.
_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
TWEET_FIELDS = (
    "created_at,public_metrics,author_id,conversation_id,note_tweet,lang,referenced_tweets"
)
DM_LIMIT = 10_000  # characters of a direct message
_DM_CLOSED_HINT = (
    "they may accept direct messages only from accounts they follow: reply in public instead"
)
_SUMMON_HINT = (
    "X lets self-serve apps reply only to posts whose author mentioned or quoted your "
    "account; reply by hand at {link}"
)


class X(Source):
    name = "x"
    default_base_url = "https://api.x.com"
    options: ClassVar[dict[str, Option]] = {
        "bearer_token": Option(str, secret=True, help="app-only bearer token (search)"),
        "user_token": Option(str, secret=True, help="OAuth 2.0 user token (replies)"),
        "max_reads_per_poll": Option(int, default=100, help="new posts read per poll, all terms"),
    }
    required = (("bearer_token",),)
    reply_limit = 280
    can_reply = True
    can_message = True
    message_limit = DM_LIMIT
    default_interval = 900.0  # every post read is billed: watch polls X every 15 min

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import asyncio  # lazily: config loading imports every source

        super().__init__(*args, **kwargs)
        self.base_url = self.base_url.rstrip("/")
        cap = self.settings.get("max_reads_per_poll")
        self.budget = max(MIN_PAGE, cap if isinstance(cap, int) else 100)
        # Jobs run concurrently; reading one term at a time spends the cap in config order.
        self.reading = asyncio.Lock()

    def legacy_mark(self, cursor: str) -> float | None:
        return _legacy_mark(cursor)

    def _auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.get(key)}"}

    # Polling

    overlap = OVERLAP_SECONDS
    max_pages = MAX_PAGES

    async def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        assert job.term is not None
        queries = fit(parse(job.term.query), MAX_QUERY, _rendered, source=self.name,
                      term=job.term.name)  # fmt: skip
        searches = [Search(q, partial(self._listing, q)) for q in queries]
        async with self.reading:
            async for page in self.walk(searches, cursor):
                yield page

    async def _listing(
        self, query: str, lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        window = (utcnow() - WINDOW).timestamp()
        note = None
        if lower < window - 600:  # more than a few minutes out of reach: say so
            note = f"posts before {iso(_at(window))} are beyond recent search's 7 days"
        params: dict[str, Any] = {
            "query": query,
            "tweet.fields": TWEET_FIELDS,
            "expansions": "author_id",
            "user.fields": "username,name",
            "start_time": _at(max(lower, window)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if upper is not None and upper.id:
            params["until_id"] = upper.id
        read = 0
        while True:
            take = min(MAX_PAGE, self.budget)
            if take < MIN_PAGE:
                if not read:  # nothing read at all: the cap was spent by an earlier term
                    yield Batch([], None, True, note=CAPPED)
                return
            try:
                data = await self.search({**params, "max_results": take})
            except StaleBound as exc:
                if exc.param == "until_id":
                    raise OutOfReach(
                        f"posts older than {upper and iso(_at(upper.at))} were not read before "
                        "they left recent search's 7 days"
                    ) from None
                raise
            posts = data.array("data", required=False, nullable=False)  # absent: no results
            # X bills a post once a day: the overlap re-read since the last poll is not new.
            fresh = [p for p in posts if _newer(p, lower + OVERLAP_SECONDS)]
            self.budget -= len(fresh)
            read += len(posts)
            users = _users(data.get("includes"))
            mentions, problems = convert(posts, partial(to_mention, users=users))
            meta = data.obj("meta", required=False)
            token = meta.string("next_token", required=False) if meta else None
            more = bool(token and posts)
            capped = more and self.budget < MIN_PAGE
            oldest = anchor(posts, lambda p: p.get("created_at"), lambda p: p.get("id"))
            yield Batch(mentions, oldest, more, problems, len(posts), CAPPED if capped else note)
            note = None
            if not more:
                return
            params["next_token"] = token

    async def search(self, params: dict[str, Any]) -> Obj:
        url = f"{self.base_url}/2/tweets/search/recent"
        response = await self.http.request(
            "GET", url, params=params, headers=self._auth("bearer_token")
        )
        stale = _stale_bound(response)
        if stale:
            raise StaleBound(stale)
        data = page_of(self.http.json(response), "the search answer")
        if "data" not in data.data and data.get("errors"):
            # A 200 that carries only errors: the search did not run.
            raise SourceError(f"{self.name}: search failed: {message_in(data.data)}")
        return data

    # Thread

    async def thread(self, mention: Mention) -> list[ThreadPost]:
        """The post a reply answers, looked up with the app bearer token. X bills this as one
        post read (pay-per-use); it is not counted against max_reads_per_poll, which caps
        polling. The conversation's first post would be a second billed read: not fetched."""
        parent = _id(mention.extra.get("in_reply_to_id"))
        if not parent:
            return []
        url = f"{self.base_url}/2/tweets/{parent}"
        params = {"tweet.fields": "created_at,author_id,note_tweet", "expansions": "author_id",
                  "user.fields": "username"}  # fmt: skip
        data = await self.http.get_json(url, params=params, headers=self._auth("bearer_token"))
        if not isinstance(data, dict):
            raise SourceError(f"{self.name}: unexpected post lookup response (not a JSON object)")
        post = data.get("data")
        if not isinstance(post, dict):
            if _gone(data.get("errors")):
                return []  # deleted, or its author went private: nothing to show
            raise SourceError(f"{self.name}: post lookup failed: {message_in(data)}")
        return [_thread_post(post, _users(data.get("includes")))]

    # Checking and replying

    async def check(self) -> str:
        usage = await self.http.get_json(
            f"{self.base_url}/2/usage/tweets", headers=self._auth("bearer_token")
        )
        data = usage.get("data") if isinstance(usage, dict) else None
        if not isinstance(data, dict):
            raise SourceError(f"{self.name}: unexpected usage response")
        line = (
            f"bearer token works: {data.get('project_usage', '?')} of "
            f"{data.get('project_cap', '?')} posts read this billing cycle"
        )
        if not self.settings.get("user_token"):
            return f"{line}; no user_token, so no replies"
        me = await self._me()
        return f"{line}; replies as @{me.get('username', '?')}"

    def reply_length(self, text: str) -> int:
        """X's weighted count (twitter-text): links 23, CJK and emoji 2, the rest 1."""
        text = _URL.sub("x" * URL_LENGTH, text)
        return sum(1 if any(a <= ord(c) <= b for a, b in _LIGHT) else 2 for c in text)

    def reply_problem(self, mention: Mention) -> str | None:
        if not self.settings.get("user_token"):
            return (
                f"{self.name}: replying needs a user token (an app bearer token cannot post): "
                f"set sources.{self.name}.user_token"
            )
        return None

    async def post_reply(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        url = f"{self.base_url}/2/tweets"
        body = {"text": text, "reply": {"in_reply_to_tweet_id": mention.native_id}}
        # No idempotency key on X: never resend a post on our own.
        response = await self.http.request(
            "POST", url, json=body, headers=self._auth("user_token"), retry=False
        )
        if response.status_code >= 400:
            raise SourceError(self._refusal(response, mention))
        data = self.http.json(response, url)
        posted = data.get("data") if isinstance(data, dict) else None
        if not isinstance(posted, dict) or not posted.get("id"):
            raise SourceError(f"{self.name}: the reply was sent but the answer has no post id")
        return Posted(str(posted["id"]), post_url(str(posted["id"])))

    async def find_reply(self, mention: Mention, text: str) -> Posted | None:
        """Our own timeline since the mention (not search: its index lags behind)."""
        if self.reply_problem(mention):
            return None
        me = await self._me()
        data = await self.http.get_json(
            f"{self.base_url}/2/users/{me['id']}/tweets",
            params={
                "since_id": mention.native_id,
                "max_results": 20,
                "tweet.fields": "referenced_tweets,created_at",
            },
            headers=self._auth("user_token"),
        )
        posts = data.get("data") if isinstance(data, dict) else None
        for post in posts if isinstance(posts, list) else []:
            if (
                isinstance(post, dict)
                and _replies_to(post, mention.native_id)
                and _comparable(unescape(post.get("text")) or "") == _comparable(text)
            ):
                return Posted(str(post["id"]), post_url(str(post["id"]), me.get("username")))
        return None

    # Direct messages (one-to-one, the "legacy" DMs the v2 API sends)

    def message_where(self, mention: Mention) -> str:
        return f"a direct message to @{mention.author or mention.extra.get('author_id')} on X"

    def message_problem(self, mention: Mention) -> str | None:
        if not self.settings.get("user_token"):
            return (
                f"{self.name}: direct messages need a user token with the dm.write scope (an "
                f"app bearer token cannot send them): set sources.{self.name}.user_token"
            )
        if not _id(mention.extra.get("author_id")):
            return f"{self.name}: this mention has no author id to send a direct message to"
        return None

    async def post_message(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        author = mention.extra["author_id"]
        url = f"{self.base_url}/2/dm_conversations/with/{author}/messages"
        # No idempotency key here either: a timeout is Uncertain, and find_message looks.
        response = await self.http.request(
            "POST", url, json={"text": text}, headers=self._auth("user_token"), retry=False
        )
        if response.status_code >= 400:
            line = str(self.http.refused(response, "direct message refused"))
            raise SourceError(
                f"{line} — {_DM_CLOSED_HINT}" if response.status_code == 403 else line
            )
        data = page_of(self.http.json(response, url), "the direct message answer").obj("data")
        assert data is not None
        return _dm_posted(
            data.need("dm_event_id"), data.string("dm_conversation_id", required=False)
        )

    async def find_message(self, mention: Mention, text: str) -> Posted | None:
        """Our newest events in the one-to-one conversation with the author (each event read
        is billed, so only after a message got no answer)."""
        if self.message_problem(mention):
            return None
        me = await self._me()
        author = mention.extra["author_id"]
        data = await self.http.get_json(
            f"{self.base_url}/2/dm_conversations/with/{author}/dm_events",
            params={"dm_event.fields": "id,text,sender_id,dm_conversation_id,created_at",
                    "event_types": "MessageCreate", "max_results": 20},
            headers=self._auth("user_token"),
        )  # fmt: skip
        events = data.get("data") if isinstance(data, dict) else None
        for event in events if isinstance(events, list) else []:
            if (
                isinstance(event, dict)
                and event.get("sender_id") == me["id"]
                and _comparable(string(event.get("text")) or "") == _comparable(text)
                and _id(event.get("id"))
            ):
                return _dm_posted(str(event["id"]), string(event.get("dm_conversation_id")))
        return None

    async def _me(self) -> dict[str, Any]:
        data = await self.http.get_json(
            f"{self.base_url}/2/users/me", headers=self._auth("user_token")
        )
        me = data.get("data") if isinstance(data, dict) else None
        if not isinstance(me, dict) or not me.get("id"):
            raise SourceError(f"{self.name}: unexpected /2/users/me response")
        return me

    def _refusal(self, response: Any, mention: Mention) -> str:
        line = str(self.http.refused(response))
        if response.status_code == 403 and _is_summon_refusal(error_detail(response)):
            line += " — " + _SUMMON_HINT.format(link=self.reply_link(mention))
        return line


class StaleBound(SourceError):
    """Recent search refused a since_id or until_id older than its 7-day window."""

    def __init__(self, param: str) -> None:
        super().__init__(f"x: {param} is older than the recent search window")
        self.param = param


def _newer(post: Any, stamp: float) -> bool:
    created = parse_time(dig(post, "created_at"))
    return created is None or created.timestamp() > stamp


def _rendered(query: Query) -> str:
    return f"{query.boolean()} -is:retweet"


def _at(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


def _legacy_mark(cursor: str) -> float | None:
    """A cursor of an earlier release held post ids (`{"since_id": …}`): X's ids carry their
    creation time."""
    try:
        data = json.loads(cursor)
    except ValueError:
        return None
    since = data.get("since_id") if isinstance(data, dict) else data
    if isinstance(since, str | int) and str(since).isdigit():
        return ((int(since) >> 22) + TWEPOCH_MS) / 1000
    return None


def _users(includes: Any) -> dict[Any, dict[str, Any]]:
    users = includes.get("users") if isinstance(includes, dict) else None
    return {u.get("id"): u for u in users or [] if isinstance(u, dict)}


def _thread_post(post: dict[str, Any], users: dict[Any, dict[str, Any]]) -> ThreadPost:
    note = post.get("note_tweet")
    full = note.get("text") if isinstance(note, dict) else None
    text = full if isinstance(full, str) and full else post.get("text")
    username = (users.get(post.get("author_id")) or {}).get("username")
    username = username if isinstance(username, str) and username else None
    post_id = _id(post.get("id"))
    try:
        created = iso(parse_iso(post["created_at"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        created = None
    return ThreadPost(
        "parent",
        unescape(text) or "" if isinstance(text, str) else "",
        username,
        post_url(post_id, username) if post_id else None,
        created,
    )


def _gone(errors: Any) -> bool:
    """Only "not found" or "not authorized" (a protected author) errors."""
    kinds = ("resource-not-found", "not-authorized-for-resource")
    return (
        isinstance(errors, list)
        and bool(errors)
        and all(isinstance(e, dict) and str(e.get("type", "")).endswith(kinds) for e in errors)
    )


def to_mention(post: Obj, users: dict[Any, dict[str, Any]]) -> Mention | None:
    post_id = post.need("id")
    if not post_id.isdigit():
        raise Malformed(f'{post.where} has "id": {post_id[:30]!r}, not a post id')
    # Posts over 280 characters carry a truncated `text`; the full one is in note_tweet.
    note = post.obj("note_tweet", required=False)
    full = note.string("text", required=False) if note else None
    text = full or post.string("text")
    created = post.time("created_at")
    assert created is not None
    user = users.get(post.string("author_id", required=False)) or {}
    username = string(user.get("username"))
    metrics = post.obj("public_metrics", required=False)
    return Mention(
        source="x",
        native_id=post_id,
        text=unescape(text) or "",  # X escapes &, < and > in post text
        created_at=created,
        url=post_url(post_id, username),
        author=username,
        author_name=unescape(string(user.get("name"))),
        # Reach: likes plus reposts, the two public signals of how far a post travels.
        reach=(metrics.count("like_count") + metrics.count("retweet_count")) if metrics else 0,
        reply_url=f"https://x.com/intent/post?in_reply_to={post_id}",
        extra={
            "id": post_id,
            "author_id": post.string("author_id", required=False),
            "conversation_id": post.string("conversation_id", required=False),
            "in_reply_to_id": _replied_to(post.data),
            "lang": post.string("lang", required=False),
        },
    )


def _dm_posted(event_id: str, conversation: str | None) -> Posted:
    """A sent direct message: its event id, and the conversation on x.com."""
    return Posted(event_id, f"https://x.com/messages/{conversation}" if conversation else None)


def post_url(post_id: str, username: str | None = None) -> str:
    if username:
        return f"https://x.com/{username}/status/{post_id}"
    return f"https://x.com/i/web/status/{post_id}"


def _id(value: Any) -> str | None:
    value = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    return value if value.isdigit() else None


def _replied_to(post: dict[str, Any]) -> str | None:
    """The id of the post this one replies to (referenced_tweets type replied_to)."""
    refs = post.get("referenced_tweets")
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, dict) and ref.get("type") == "replied_to" and _id(ref.get("id")):
            return _id(ref.get("id"))
    return None


def _replies_to(post: dict[str, Any], post_id: str) -> bool:
    refs = post.get("referenced_tweets")
    return isinstance(refs, list) and any(
        isinstance(r, dict) and r.get("type") == "replied_to" and r.get("id") == post_id
        for r in refs
    )


def _comparable(text: str) -> str:
    """Text with links masked (X rewrites them to t.co) and spacing folded."""
    return " ".join(_URL.sub("<link>", text).split())


def _is_summon_refusal(reason: str) -> bool:
    """X's wording for this refusal is not documented: look for its gist, or a bare 403."""
    lowered = reason.lower().strip()
    return lowered in ("", "forbidden") or any(
        word in lowered for word in ("mentioned", "engaged", "summon")
    )


def _stale_bound(response: Any) -> str | None:
    """'since_id' or 'until_id' when X refused it as older than the search window (HTTP 400,
    "'since_id' must be a tweet id created after …"), else None."""
    if response.status_code != 400:
        return None
    data = _json_or_none(response)
    errors = data.get("errors") if isinstance(data, dict) else None
    for error in errors if isinstance(errors, list) else []:
        message = error.get("message") if isinstance(error, dict) else None
        if not isinstance(message, str) or "must be a tweet id created after" not in message:
            continue
        for param in ("since_id", "until_id"):
            if param in message or param in (error.get("parameters") or {}):
                return param
    return None


def _json_or_none(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


SOURCE = X
