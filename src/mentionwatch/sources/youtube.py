"""YouTube Data API v3: comments on the founder's channel, new videos matching a term (and
their comments), replies with comments.insert.

- The channel (`channel_id`): `commentThreads?allThreadsRelatedToChannelId=` newest first,
  every comment and reply on the channel and its videos (1 unit a page). They are the
  founder's own: each belongs to every term, named or not.
- Terms: `search.list` for videos (`order=date`, `publishedAfter`), then the comments of the
  videos found in the last week. Searches have their own small daily bucket (100 calls since
  2026-06-01; before, 100 units each of the 10,000): mentionwatch spends at most
  `searches_per_day`, spread evenly over the day and the terms, and counts the other units
  against `units_per_day`. The counts reset at midnight Pacific, as YouTube's do; a
  `quotaExceeded` answer stops that kind of call until then.
- Reads use the API key when there is one, else the OAuth token; replies always need OAuth
  (`mentionwatch auth youtube`, scope youtube.force-ssl).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from mentionwatch.http import SourceError, google_reason
from mentionwatch.models import Job, Mention, Option, Page, Term, iso
from mentionwatch.oauth import Tokens, google
from mentionwatch.oauth import options as oauth_options
from mentionwatch.query import Query, parse
from mentionwatch.sources.base import Posted, Source
from mentionwatch.sources.common import (
    Anchor,
    Batch,
    Obj,
    OutOfReach,
    Search,
    anchor,
    convert,
    dig,
    fit,
    page_of,
)
from mentionwatch.text import unescape

if TYPE_CHECKING:
    import httpx

WATCH = "https://www.youtube.com/watch?v="
SCOPE = "https://www.googleapis.com/auth/youtube.force-ssl"
COSTS = {"list": 1, "insert": 50}  # units per call (search.list has its own bucket)
MAX_QUERY = 500  # q has no documented limit; long terms are split like elsewhere
VIDEO_DAYS = 7  # comments of videos found this recently are read again
VIDEOS_PER_POLL = 10  # and at most this many videos' comments per search
QUOTA_KEY, VIDEOS_KEY = "quota", "videos"


def pacific_day(now: float | None = None) -> tuple[str, float]:
    """Today's date in Pacific time, and the seconds until its midnight (YouTube's reset)."""
    from zoneinfo import ZoneInfo

    moment = datetime.fromtimestamp(
        time.time() if now is None else now, ZoneInfo("America/Los_Angeles")
    )
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.date().isoformat(), (midnight - moment).total_seconds()


class YouTube(Source):
    name = "youtube"
    default_base_url = "https://www.googleapis.com/youtube/v3"
    oauth = google(SCOPE)
    options: ClassVar[dict[str, Option]] = {
        "api_key": Option(str, secret=True, help="API key for reads (search, public comments)"),
        "channel_id": Option(str, help="your channel (UC…): its comments are read"),
        "searches_per_day": Option(int, default=100, help="search.list calls a day, all terms"),
        "units_per_day": Option(int, default=10_000, help="other quota units a day"),
        **oauth_options(google(SCOPE)),
    }
    reply_limit = 10_000  # characters of a comment
    can_reply = True
    overlap = 900.0  # search and comment threads index minutes late
    max_pages = 5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokens = Tokens(self, google(SCOPE))

    def _setting(self, key: str, default: int) -> int:
        value = self.settings.get(key)
        return value if isinstance(value, int) and value >= 0 else default

    def missing_credentials(self) -> str | None:
        if not self.settings.get("api_key") and self.tokens.missing():
            return (
                f"{self.name}: missing credentials: set sources.{self.name}.api_key, or "
                f"client_id and client_secret and {self.tokens.missing()}"
            )
        return None

    def jobs(self, terms: Sequence[Term]) -> list[Job]:
        mine = [t for t in terms if t.applies_to(self.name)]
        if not mine:
            return []
        jobs = (
            [Job(self.name, t.name, t) for t in mine]
            if self._setting("searches_per_day", 100)
            else []
        )
        self._searching = max(1, len(jobs))  # the day's searches are shared among these terms
        channel = self.settings.get("channel_id")
        return ([Job(self.name, f"channel:{channel}", owned=True)] if channel else []) + jobs

    # Quota

    def _quota(self) -> dict[str, Any]:
        try:
            quota = json.loads(self.state.get(QUOTA_KEY) or "{}")
        except ValueError:
            quota = {}
        day, _ = pacific_day()
        if not isinstance(quota, dict) or quota.get("day") != day:
            quota = {"day": day, "units": 0, "searches": 0, "blocked": []}
        return quota

    async def _spend(self, kind: str, cost: int = 1) -> None:
        """Count one call against its bucket, or raise RateLimited until midnight Pacific."""
        quota = self._quota()
        bucket, limit = (
            ("searches", self._setting("searches_per_day", 100))
            if kind == "search"
            else ("units", self._setting("units_per_day", 10_000))
        )
        _, reset = pacific_day()
        if bucket in quota["blocked"]:
            await self.http.wait(
                reset + 60, f"YouTube's daily {bucket} quota is used up (quotaExceeded)"
            )
        if quota[bucket] + cost > limit:
            await self.http.wait(
                reset + 60,
                f"{quota[bucket]} of {limit} {bucket} spent today "
                f"(sources.{self.name}.{bucket}_per_day)",
            )
        quota[bucket] += cost
        self.state.set(QUOTA_KEY, json.dumps(quota))

    def _blocked(self, kind: str) -> None:
        quota = self._quota()
        bucket = "searches" if kind == "search" else "units"
        quota["blocked"] = sorted({*quota["blocked"], bucket})
        self.state.set(QUOTA_KEY, json.dumps(quota))

    def usage(self) -> str | None:
        quota = self._quota()
        _, reset = pacific_day()
        blocked = (
            f"; {' and '.join(quota['blocked'])} used up (quotaExceeded)"
            if quota["blocked"]
            else ""
        )
        return (
            f"{quota['searches']} of {self._setting('searches_per_day', 100)} searches and "
            f"{quota['units']} of {self._setting('units_per_day', 10_000)} units used today"
            f"{blocked}; resets at midnight Pacific (in {round(reset / 3600, 1)} h)"
        )

    # Requests

    async def _call(
        self,
        kind: str,
        path: str,
        params: dict[str, Any],
        *,
        user: bool = False,
        method: str = "GET",
        json_body: Any = None,
    ) -> httpx.Response:
        """One API call, counted; the key for reads when there is one, else the user's token."""
        await self._spend(kind, COSTS.get(kind, 1))
        url = f"{self.base_url}{path}"
        retry = method == "GET"
        if self.settings.get("api_key") and not user:
            response = await self.http.request(
                method, url, params={**params, "key": self.settings.get("api_key")}, retry=retry
            )
        else:
            body = {} if json_body is None else {"json": json_body}
            response = await self.tokens.request(method, url, params=params, retry=retry, **body)
        if response.status_code == 403 and google_reason(response) in (
            "quotaExceeded",
            "dailyLimitExceeded",
        ):
            self._blocked(kind)
            _, reset = pacific_day()
            await self.http.wait(
                reset + 60, f"YouTube's daily quota is used up ({google_reason(response)})"
            )
        return response

    async def _get(
        self, kind: str, path: str, params: dict[str, Any], doing: str, skip: tuple[str, ...] = ()
    ) -> Obj | None:
        """The answer, read strictly; None for an error whose reason is in `skip`."""
        response = await self._call(kind, path, params)
        if response.status_code >= 400 and google_reason(response) in skip:
            return None
        if response.status_code == 400 and google_reason(response) == "invalidPageToken":
            raise OutOfReach(
                f"{doing}: the rest of an earlier backlog could not be resumed "
                "(YouTube no longer accepts its page token)"
            )
        if response.status_code >= 400:
            raise self.http.error(response, doing)
        return page_of(self.http.json(response), f"the {path.lstrip('/')} answer")

    # Polling

    def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        if job.term is None:
            channel = job.scope.removeprefix("channel:")
            listing = partial(self._threads, {"allThreadsRelatedToChannelId": channel})
            return self.walk([Search("threads", listing)], cursor)
        return self._search_job(job.term, cursor)

    async def _search_job(self, term: Term, cursor: str | None) -> AsyncIterator[Page]:
        if not self._search_due(term.name):
            if self.state.get(f"comments_due:{term.name}"):
                yield await self._video_comments()
                self.state.set(f"comments_due:{term.name}", None)
            return  # paced: this term's next search comes later today (see usage())
        queries = fit(parse(term.query), MAX_QUERY, Query.boolean, source=self.name, term=term.name)
        searches = [Search(f"videos:{q}", partial(self._videos, q)) for q in queries]
        self.state.set(f"searched:{term.name}", str(time.time()))
        async for page in self.walk(searches, cursor):
            yield page
        # The comments of the videos found lately: their own page, which moves no cursor (a
        # video found today may hold comments older than anything the last poll read). Read
        # with each search, and again on the next poll when a read failed.
        self.state.set(f"comments_due:{term.name}", "1")
        yield await self._video_comments()
        self.state.set(f"comments_due:{term.name}", None)

    _searching = 1

    def _search_due(self, term: str) -> bool:
        """Searches spread evenly over the day: each term at most every 24 h / its share."""
        share = max(1, self._setting("searches_per_day", 100) // self._searching)
        try:
            last = float(self.state.get(f"searched:{term}") or 0)
        except ValueError:
            last = 0.0
        return time.time() - last >= 86_400 / share - 30

    async def _threads(
        self, filters: dict[str, str], lower: float, upper: Anchor | None, title: str | None = None
    ) -> AsyncGenerator[Batch, None]:
        token = upper.id if upper else None
        page = 1
        while True:
            params = {
                "part": "snippet,replies",
                "order": "time",
                "maxResults": 100,
                "textFormat": "plainText",
                **filters,
                **({"pageToken": token} if token else {}),
            }
            data = await self._get(
                "list",
                "/commentThreads",
                params,
                "reading comment threads",
                skip=("commentsDisabled", "videoNotFound"),
            )
            if data is None:  # comments turned off, or the video is gone
                return
            items = data.array("items")
            mentions, problems = convert(items, partial(_thread_mentions, title=title), page)
            token = data.string("nextPageToken", required=False)
            stamp = lambda i: dig(i, "snippet", "topLevelComment", "snippet", "publishedAt")  # noqa: E731
            oldest = anchor(items, stamp)
            if oldest is not None:
                oldest = Anchor(oldest.at, token)
            yield Batch(mentions, oldest, bool(token), problems)
            if not token:
                return
            page += 1

    async def _videos(
        self, query: str, lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        params: dict[str, Any] = {
            "part": "snippet",
            "q": query,
            "type": "video",
            "order": "date",
            "maxResults": 50,
            "publishedAfter": _rfc3339(lower),
        }
        if upper is not None:
            params["publishedBefore"] = _rfc3339(upper.at + 1)
        page = 1
        while True:
            data = await self._get("search", "/search", params, "searching videos")
            assert data is not None
            items = data.array("items")
            mentions, problems = convert(items, _video, page)
            self._remember(mentions)
            token = data.string("nextPageToken", required=False)
            oldest = anchor(items, lambda i: dig(i, "snippet", "publishedAt"))
            yield Batch(mentions, oldest, bool(token and items), problems)
            if not (token and items):
                return
            params["pageToken"] = token
            page += 1

    def _remember(self, videos: list[Mention]) -> None:
        """Videos found by a search: their comments are read for a week."""
        known = self._watched()
        for video in videos:
            known[video.native_id] = {"title": video.title, "at": time.time()}
        self.state.set(VIDEOS_KEY, json.dumps(known))

    def _watched(self) -> dict[str, Any]:
        try:
            known = json.loads(self.state.get(VIDEOS_KEY) or "{}")
        except ValueError:
            return {}
        cutoff = time.time() - VIDEO_DAYS * 86_400
        return (
            {k: v for k, v in known.items() if isinstance(v, dict) and v.get("at", 0) > cutoff}
            if isinstance(known, dict)
            else {}
        )

    async def _video_comments(self) -> Page:
        """The newest page of comments of each video found lately (the newest videos first)."""
        videos = sorted(self._watched().items(), key=lambda kv: kv[1].get("at", 0), reverse=True)
        mentions: list[Mention] = []
        problems: list[str] = []
        for video_id, info in videos[:VIDEOS_PER_POLL]:
            title = info.get("title") if isinstance(info.get("title"), str) else None
            async for batch in self._threads({"videoId": video_id}, 0.0, None, title):
                mentions += batch.mentions
                problems += batch.problems
                break  # one page a video and poll
        return Page(mentions, None, problems=problems)

    # Checking and replying

    async def check(self) -> str:
        if not self.tokens.missing():
            response = await self._call(
                "list", "/channels", {"part": "snippet", "mine": "true"}, user=True
            )
            title = dig(self.http.json(response), "items", 0, "snippet", "title")
            return f"authorized as the channel {title!r}; replies work; {self.usage()}"
        channel = self.settings.get("channel_id")
        params = (
            {"part": "snippet", "id": channel}
            if channel
            else {"part": "id", "chart": "mostPopular", "maxResults": 1}
        )
        data = self.http.json(
            await self._call("list", "/channels" if channel else "/videos", params)
        )
        title = dig(data, "items", 0, "snippet", "title")
        what = f"the channel {title!r} found" if channel and title else "the API key works"
        if channel and not title:
            raise SourceError(
                f"{self.name}: no channel {channel!r} (check sources.{self.name}.channel_id)"
            )
        return f"{what}; replies need 'mentionwatch auth {self.name}'; {self.usage()}"

    def reply_problem(self, mention: Mention) -> str | None:
        missing = self.tokens.missing()
        if missing:
            return f"{self.name}: replying needs OAuth: {missing}"
        if mention.extra.get("can_reply") is False:
            return (
                f"{self.name}: replies are turned off for this comment thread (canReply is false)"
            )
        if not (mention.extra.get("thread_id") or mention.extra.get("kind") == "video"):
            return f"{self.name}: this mention has no comment thread to reply to"
        return None

    async def post_reply(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        if mention.extra.get("kind") == "video":  # a new top-level comment under the video
            path = "/commentThreads"
            body: dict[str, Any] = {
                "snippet": {
                    "videoId": mention.native_id,
                    "topLevelComment": {"snippet": {"textOriginal": text}},
                }
            }
        else:  # YouTube threads are one level deep: a reply to a reply answers its thread
            path = "/comments"
            body = {"snippet": {"parentId": mention.extra["thread_id"], "textOriginal": text}}
        response = await self._call(
            "insert", path, {"part": "snippet"}, user=True, method="POST", json_body=body
        )
        if response.status_code >= 400:
            raise self.http.refused(
                response, f"reply refused ({google_reason(response) or 'error'})"
            )
        posted = self.http.json(response)
        comment_id = dig(posted, "id")
        if not isinstance(comment_id, str):
            raise SourceError(f"{self.name}: the reply was posted but the answer has no comment id")
        return Posted(
            comment_id, _url(mention.extra.get("video_id") or mention.native_id, comment_id)
        )

    async def find_reply(self, mention: Mention, text: str) -> Posted | None:
        """Our comment with this text in the thread (or under the video), if it got there."""
        if self.reply_problem(mention):
            return None
        if mention.extra.get("kind") == "video":
            path, params = (
                "/commentThreads",
                {
                    "part": "snippet",
                    "videoId": mention.native_id,
                    "order": "time",
                    "maxResults": 50,
                    "textFormat": "plainText",
                },
            )
        else:
            path, params = (
                "/comments",
                {
                    "part": "snippet",
                    "parentId": mention.extra["thread_id"],
                    "maxResults": 100,
                    "textFormat": "plainText",
                },
            )
        data = self.http.json(await self._call("list", path, params, user=True))
        items = dig(data, "items") or []
        for item in items if isinstance(items, list) else []:
            snippet = (
                dig(item, "snippet", "topLevelComment", "snippet") or dig(item, "snippet") or {}
            )
            mine = self.settings.get("channel_id")
            author = dig(snippet, "authorChannelId", "value")
            if (
                isinstance(snippet, dict)
                and (snippet.get("textOriginal") or "").strip() == text.strip()
                and (not mine or author == mine)
            ):
                comment_id = str(dig(item, "id"))
                return Posted(
                    comment_id, _url(mention.extra.get("video_id") or mention.native_id, comment_id)
                )
        return None


def _rfc3339(stamp: float) -> str:
    return iso(datetime.fromtimestamp(max(0.0, stamp), UTC)) or ""


def _url(video_id: str, comment_id: str | None = None) -> str:
    return f"{WATCH}{video_id}" + (f"&lc={comment_id}" if comment_id else "")


def _video(item: Obj) -> Mention:
    ident = item.obj("id")
    snippet = item.obj("snippet")
    assert ident is not None and snippet is not None
    video_id = ident.need("videoId")
    title = unescape(snippet.string("title", required=False)) or None  # search HTML-escapes
    url = _url(video_id)
    return Mention(
        source="youtube",
        native_id=video_id,
        created_at=snippet.time("publishedAt"),  # type: ignore[arg-type]
        text=unescape(snippet.string("description", required=False)) or "",
        url=url,
        author=snippet.string("channelTitle", required=False),
        title=title,
        reply_url=url,
        extra={
            "kind": "video",
            "video_id": video_id,
            "channel_id": snippet.string("channelId", required=False),
        },
    )


def _thread_mentions(item: Obj, title: str | None = None) -> list[Mention]:
    """A thread's top-level comment and the replies that came with it."""
    snippet = item.obj("snippet")
    assert snippet is not None
    top = snippet.obj("topLevelComment")
    assert top is not None
    thread_id = item.need("id")
    video_id = snippet.string("videoId", required=False)
    context = {
        "thread_id": thread_id,
        "can_reply": snippet.get("canReply") is not False,
        "replies": snippet.count("totalReplyCount"),
    }
    found = [_comment(top, video_id, context, "comment", title)]
    replies = item.obj("replies", required=False)
    for number, raw in enumerate(replies.array("comments", required=False) if replies else [], 1):
        found.append(
            _comment(Obj(raw, f"{item.where} reply {number}"), video_id, context, "reply", title)
        )
    return found


def _comment(
    comment: Obj, video_id: str | None, context: dict[str, Any], kind: str, title: str | None
) -> Mention:
    snippet = comment.obj("snippet")
    assert snippet is not None
    comment_id = comment.need("id")
    video_id = video_id or snippet.string("videoId", required=False)
    text = (
        snippet.string("textOriginal", required=False)
        or snippet.string("textDisplay", required=False)
        or ""
    )
    author = snippet.string("authorDisplayName", required=False)
    channel = snippet.obj("authorChannelId", required=False)
    url = _url(video_id, comment_id) if video_id else None
    return Mention(
        source="youtube",
        native_id=comment_id,
        text=unescape(text) or "",
        created_at=snippet.time("publishedAt"),  # type: ignore[arg-type]
        url=url,
        author=author,
        author_name=author,
        title=title,
        reach=snippet.count("likeCount") + (context["replies"] if kind == "comment" else 0),
        reply_url=url,
        extra={
            "kind": "comment",
            "comment_kind": kind,
            "video_id": video_id,
            **context,
            "author_channel_id": channel.string("value", required=False) if channel else None,
        },
        # A comment under a video found for a term is about what the video is about.
        searchable="\n".join(x for x in (title, text) if x) if title else None,
    )


SOURCE = YouTube
