"""X (Twitter) API v2 recent search, with a hard cap on posts read, since every read is paid.

Config (`[sources.x]`):
  bearer_token        app-only token for search (required).
  user_token          OAuth 2.0 user token (scopes tweet.read tweet.write users.read) for
                      replies; optional.
  max_reads_per_poll  posts read per poll across all terms (default 100, at least 10, the
                      smallest page X serves). Terms are read one after another so the cap is
                      never overshot.

The cursor of a term is JSON: `since_id` is the newest post of a completely read range (the
first page's `meta.newest_id`, as X recommends). When the cap stops a poll in the middle of a
range, the cursor also keeps `until_id` (the oldest post read) and `newest_id` (the first
page's newest): the next poll first reads the gap between `since_id` and `until_id`, and only
then moves `since_id` to `newest_id` and reads what is newer. Posts may arrive late, never
lost; and no post is paid for twice. Every Page notes how many posts its job read.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, ClassVar

from mentionwatch.http import SourceError, error_detail
from mentionwatch.models import Job, Mention, Option, Page, ThreadPost, iso, parse_iso, utcnow
from mentionwatch.query import parse
from mentionwatch.sources.base import Posted, Source
from mentionwatch.text import unescape

MIN_PAGE, MAX_PAGE = 10, 100  # max_results bounds of recent search
MAX_QUERY = 512  # characters, self-serve recent search
WINDOW = timedelta(days=7) - timedelta(minutes=1)  # recent search refuses older start_time
URL_LENGTH = 23  # X counts every link as 23 characters (t.co)
_URL = re.compile(r"https?://\S+")
# twitter-text counts these code points as 1 and every other one (CJK, emoji…) as 2.
_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
TWEET_FIELDS = (
    "created_at,public_metrics,author_id,conversation_id,note_tweet,lang,referenced_tweets"
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
        "max_reads_per_poll": Option(int, default=100, help="posts read per poll, all terms"),
    }
    required = (("bearer_token",),)
    reply_limit = 280
    can_reply = True
    default_interval = 900.0  # every post read is billed: watch polls X every 15 min

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import asyncio  # lazily: config loading imports every source

        super().__init__(*args, **kwargs)
        self.base_url = self.base_url.rstrip("/")
        cap = self.settings.get("max_reads_per_poll")
        self.budget = max(MIN_PAGE, cap if isinstance(cap, int) else 100)
        # Jobs run concurrently; reading one term at a time spends the cap in config order.
        self.reading = asyncio.Lock()

    def _auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.get(key)}"}

    # Polling

    async def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        assert job.term is not None
        query = f"{parse(job.term.query).boolean()} -is:retweet"
        if len(query) > MAX_QUERY:
            raise SourceError(
                f"{self.name}: the query of term {job.term.name!r} is {len(query)} characters; "
                f"recent search allows {MAX_QUERY}: shorten it"
            )
        async with self.reading:
            reader = _Reader(self, query, load_cursor(cursor))
            try:
                await reader.run()
            except SourceError:
                # Save what was read (and paid for) before the failure, then report it.
                if reader.read:
                    yield reader.page(job.term.name)
                raise
            yield reader.page(job.term.name)

    async def search(self, params: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/2/tweets/search/recent"
        response = await self.http.request(
            "GET", url, params=params, headers=self._auth("bearer_token")
        )
        stale = _stale_bound(response)
        if stale:
            raise StaleBound(stale)
        data = self.http.json(response, url)
        if not isinstance(data, dict) or not isinstance(data.get("meta", {}), dict):
            raise SourceError(f"{self.name}: unexpected search response (not a JSON object)")
        if "data" not in data and data.get("errors"):
            # A 200 that carries only errors: the search did not run.
            raise SourceError(f"{self.name}: search failed: {_problem(data)}")
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
            raise SourceError(f"{self.name}: post lookup failed: {_problem(data)}")
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

    async def _me(self) -> dict[str, Any]:
        data = await self.http.get_json(
            f"{self.base_url}/2/users/me", headers=self._auth("user_token")
        )
        me = data.get("data") if isinstance(data, dict) else None
        if not isinstance(me, dict) or not me.get("id"):
            raise SourceError(f"{self.name}: unexpected /2/users/me response")
        return me

    def _refusal(self, response: Any, mention: Mention) -> str:
        reason = _problem(_json_or_none(response)) or error_detail(response)
        line = f"{self.name}: reply refused (HTTP {response.status_code}): {reason}"
        if response.status_code == 403 and _is_summon_refusal(reason):
            line += " — " + _SUMMON_HINT.format(link=self.reply_link(mention))
        return line


class StaleBound(SourceError):
    """Recent search refused a since_id or until_id older than its 7-day window."""

    def __init__(self, param: str) -> None:
        super().__init__(f"x: {param} is older than the recent search window")
        self.param = param


class _Reader:
    """One term's reading in one poll: the gap left by the last poll, then what is newer."""

    def __init__(self, source: X, query: str, cursor: dict[str, str]) -> None:
        self.source, self.query, self.cursor = source, query, cursor
        self.mentions: list[Mention] = []
        self.read = 0
        self.capped = False

    async def run(self) -> None:
        # Closing a gap leaves since_id at the newest post the capped poll saw; then read on.
        if self.cursor.get("until_id") and not await self._range():
            return
        await self._range()

    async def _range(self) -> bool:
        """Read from the cursor's bounds, newest first; True when the range was read to its end.

        The cursor is updated as pages arrive, so it is right wherever reading stops.
        """
        since, until = self.cursor.get("since_id"), self.cursor.get("until_id")
        newest = self.cursor.get("newest_id")  # only set when resuming a gap
        token = None
        while True:
            take = min(MAX_PAGE, self.source.budget)
            if take < MIN_PAGE:
                self.capped = True
                return False
            try:
                data = await self.source.search(self._params(since, until, token, take))
            except StaleBound as exc:
                # Not polled for a week: what lies before the window is out of reach.
                if exc.param == "since_id" and since and not token:
                    since = None  # read the whole window (start_time) instead
                    continue
                if exc.param == "until_id" and until and not token:
                    self.cursor = _bounds(since=newest or since)  # the gap is gone
                    return True
                raise
            posts = data.get("data") if isinstance(data.get("data"), list) else []
            meta = data.get("meta") or {}
            self.source.budget -= len(posts)
            self.read += len(posts)
            self.mentions += to_mentions(posts, data.get("includes"))
            newest = newest or _id(meta.get("newest_id")) or _max_id(posts)
            until = _id(meta.get("oldest_id")) or _min_id(posts) or until
            token = meta.get("next_token") if isinstance(meta.get("next_token"), str) else None
            if not token or not posts:
                self.cursor = _bounds(since=newest or since)
                return True
            self.cursor = _bounds(since=since, until=until, newest=newest)

    def _params(
        self, since: str | None, until: str | None, token: str | None, take: int
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "query": self.query,
            "max_results": take,
            "tweet.fields": TWEET_FIELDS,
            "expansions": "author_id",
            "user.fields": "username,name",
        }
        if since:
            params["since_id"] = since
        else:  # first poll: the lookback, within the 7 days recent search covers
            start = max(self.source.first_since(), utcnow() - WINDOW)
            params["start_time"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        if until:
            params["until_id"] = until
        if token:
            params["next_token"] = token
        return params

    def page(self, term: str) -> Page:
        note = "max_reads_per_poll reached; the rest waits" if self.capped else None
        cursor = json.dumps(self.cursor) if self.cursor else None
        return Page(self.mentions, cursor=cursor, note=note, reads=self.read)


def load_cursor(cursor: str | None) -> dict[str, str]:
    """The stored cursor: JSON bounds, or a bare since_id."""
    if not cursor:
        return {}
    if cursor.isdigit():
        return {"since_id": cursor}
    try:
        data = json.loads(cursor)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    bounds = _bounds(data.get("since_id"), data.get("until_id"), data.get("newest_id"))
    # A gap needs to know where to continue once it is closed.
    return bounds if "newest_id" in bounds or "until_id" not in bounds else {}


def _bounds(since: Any = None, until: Any = None, newest: Any = None) -> dict[str, str]:
    pairs = {"since_id": _id(since), "until_id": _id(until), "newest_id": _id(newest)}
    return {k: v for k, v in pairs.items() if v}


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


def to_mentions(posts: list[Any], includes: Any) -> list[Mention]:
    users = includes.get("users") if isinstance(includes, dict) else None
    by_id = {u.get("id"): u for u in users or [] if isinstance(u, dict)}
    found = (to_mention(p, by_id) for p in posts if isinstance(p, dict))
    return [m for m in found if m is not None]


def to_mention(post: dict[str, Any], users: dict[Any, dict[str, Any]]) -> Mention | None:
    post_id = _id(post.get("id"))
    note = post.get("note_tweet")
    # Posts over 280 characters carry a truncated `text`; the full one is in note_tweet.
    full = note.get("text") if isinstance(note, dict) else None
    text = full if isinstance(full, str) and full else post.get("text")
    if not post_id or not isinstance(text, str):
        return None
    try:
        created = parse_iso(post["created_at"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    user = users.get(post.get("author_id")) or {}
    username = user.get("username") if isinstance(user.get("username"), str) else None
    metrics = post.get("public_metrics") if isinstance(post.get("public_metrics"), dict) else {}
    return Mention(
        source="x",
        native_id=post_id,
        text=unescape(text) or "",  # X escapes &, < and > in post text
        created_at=created,
        url=post_url(post_id, username),
        author=username,
        author_name=unescape(user.get("name")) if isinstance(user.get("name"), str) else None,
        # Reach: likes plus reposts, the two public signals of how far a post travels.
        reach=_count(metrics, "like_count") + _count(metrics, "retweet_count"),
        reply_url=f"https://x.com/intent/post?in_reply_to={post_id}",
        extra={
            "id": post_id,
            "author_id": post.get("author_id"),
            "conversation_id": post.get("conversation_id"),
            "in_reply_to_id": _replied_to(post),
            "lang": post.get("lang"),
        },
    )


def post_url(post_id: str, username: str | None = None) -> str:
    if username:
        return f"https://x.com/{username}/status/{post_id}"
    return f"https://x.com/i/web/status/{post_id}"


def _id(value: Any) -> str | None:
    value = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    return value if value.isdigit() else None


def _max_id(posts: list[Any]) -> str | None:
    ids = [i for i in (_id(p.get("id")) for p in posts if isinstance(p, dict)) if i]
    return max(ids, key=int) if ids else None


def _min_id(posts: list[Any]) -> str | None:
    ids = [i for i in (_id(p.get("id")) for p in posts if isinstance(p, dict)) if i]
    return min(ids, key=int) if ids else None


def _count(metrics: dict[str, Any], key: str) -> int:
    value = metrics.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


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


def _problem(data: Any) -> str | None:
    """The reason from an X error body: a problem (`detail`, `title`) or an `errors` list."""
    if not isinstance(data, dict):
        return None
    errors = data.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else data
    if not isinstance(first, dict):
        return None
    for key in ("detail", "message", "title"):
        if isinstance(first.get(key), str) and first[key]:
            return first[key]
    return None


SOURCE = X
