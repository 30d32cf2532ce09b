"""An Instagram Business or Creator account, through the Graph API (Instagram API with
Facebook Login): comments on the account's own media, media it is tagged in, and,
optionally, hashtags.

Config (`[sources.instagram]`):
  user_id   the Instagram account's id (GET /{page-id}?fields=instagram_business_account).
  token     a user or Page token with instagram_basic, instagram_manage_comments and
            pages_read_engagement (+ instagram_manage_messages for private replies).
  page_id   the Facebook Page linked to the account: private replies go through it (the
            account's own node has no messages edge with Facebook Login).
  hashtags  hashtags whose recent media are read (needs Instagram Public Content Access).
            Instagram allows 30 unique hashtags per account in 7 days; mentionwatch counts
            them, and says so instead of searching a 31st.
  media     how many of the newest media have their comments read each poll (25).

@mentions in other accounts' captions and comments reach an app only as webhooks; a poller
cannot receive them, so they are found only when the account is tagged too. Comments and
tags are addressed to the account (kept even when they name no term); hashtag media are
matched against the terms like any search. Replies: `POST /{comment}/replies`; media you
are only tagged in and hashtag media cannot be commented on through the API (their page
opens). `reply --private` is the private reply: one message per comment, within 7 days.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from functools import partial
from typing import Any, ClassVar

from mentionwatch.http import SourceError
from mentionwatch.models import Job, Mention, Option, Page, Term, ThreadPost, iso
from mentionwatch.sources.base import Posted
from mentionwatch.sources.common import Anchor, Batch, Obj, Search, anchor, convert, dig, string
from mentionwatch.sources.graph import GraphSource, context, graph_id

COMMENT_FIELDS = "id,text,timestamp,username,like_count,from{id,username},parent_id"
COMMENT_WITH_REPLIES = f"{COMMENT_FIELDS},replies{{{COMMENT_FIELDS}}}"
MEDIA_FIELDS = "id,caption,media_type,permalink,timestamp,username,comments_count,like_count"
LIMIT = 50
HASHTAG_SLOTS = 30  # unique hashtags per account in 7 days
HASHTAG_WINDOW = 7 * 86400
HASHTAGS_KEY = "hashtags"  # state: {tag: when it was last searched}
# With Instagram Login (graph.instagram.com) the account's own node sends private replies.
INSTAGRAM_LOGIN_HOST = "graph.instagram.com"
COMMENT_LIMIT = 2200
MESSAGE_LIMIT = 1000


class Instagram(GraphSource):
    name = "instagram"
    default_base_url = "https://graph.facebook.com/v25.0"
    options: ClassVar[dict[str, Option]] = {
        "user_id": Option(str, help="the Instagram business account's id"),
        "token": Option(str, secret=True, help="an access token for the account"),
        "page_id": Option(str, help="the linked Facebook Page (private replies go through it)"),
        "hashtags": Option(list, default=[], help="hashtags whose recent media are read"),
        "media": Option(int, default=25, help="newest media whose comments are read"),
    }
    required = (("user_id", "token"),)
    can_reply = True
    reply_limit = COMMENT_LIMIT
    can_message = True
    message_limit = MESSAGE_LIMIT
    default_interval = 600.0
    token_help = (
        "get a new token (Graph API Explorer with instagram_basic and "
        "instagram_manage_comments) and set sources.instagram.token"
    )
    permissions: ClassVar[dict[str, str]] = {
        "messages": "instagram_manage_messages",
        "hashtag": "Instagram Public Content Access",
        "replies": "instagram_manage_comments",
    }

    @property
    def account(self) -> str:
        return graph_id(self.settings.get("user_id"), "sources.instagram.user_id")

    def jobs(self, terms: Sequence[Term]) -> list[Job]:
        owned = self.owned_jobs(terms, ["comments", "tags"])
        tags = [f"hashtag:{t}" for t in self._hashtags()]
        return owned + [Job(self.name, tag) for tag in tags] if owned else []

    def _hashtags(self) -> list[str]:
        names = (str(t).strip().lstrip("#").lower() for t in self.settings.get("hashtags") or [])
        # Instagram hashtags are letters, digits and underscores (no spaces, no emoji).
        return list(dict.fromkeys(n for n in names if n and n.replace("_", "").isalnum()))

    # Polling

    async def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        if job.scope == "comments":
            media = await self._recent_media()
            searches = [Search(f"media:{m['id']}", partial(self._comments, m), newest_first=False)
                        for m in media if m["comments"]]  # fmt: skip
        elif job.scope == "tags":
            listing = partial(self._media, f"{self.account}/tags", "tagged", {})
            searches = [Search("tags", listing, newest_first=False)]
        else:
            tag = job.scope.removeprefix("hashtag:")
            hashtag = await self._hashtag_id(tag)
            listing = partial(self._media, f"{hashtag}/recent_media", "hashtag",
                              {"user_id": self.account}, tag=tag)  # fmt: skip
            # recent_media: the last 24 h, in no particular order.
            searches = [Search("recent", listing, newest_first=False)]
        async for page in self.walk(searches, cursor):
            yield page

    async def _recent_media(self) -> list[dict[str, Any]]:
        limit = max(1, min(int(self.settings.get("media") or 25), 100))
        params = {"fields": "id,caption,permalink,timestamp,comments_count", "limit": limit}
        answer = await self.get(f"{self.account}/media", params, "reading the account's media")
        media = []
        for number, raw in enumerate(answer.array("data"), 1):
            item = Obj(raw, f"media {number}")
            media.append({"id": graph_id(item.need("id"), item.where),
                          "caption": item.string("caption", required=False),
                          "permalink": item.string("permalink", required=False),
                          "comments": item.count("comments_count")})  # fmt: skip
        return media

    async def _comments(
        self, media: dict[str, Any], lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        params = {"fields": COMMENT_WITH_REPLIES, "limit": LIMIT}
        number = 1
        path = f"{media['id']}/comments"
        async for items, after in self.pages(path, params, "comments", upper.id if upper else None):
            # Replies come nested under their comment: each is a mention of its own.
            flat = [c for item in items for c in [item, *_replies(item)]]
            mentions, problems = convert(flat, partial(self._comment, media=media), number)
            found = anchor(flat, lambda c: c.get("timestamp"))
            yield Batch(mentions, Anchor(found.at, after) if found else None, bool(after), problems)
            number += 1

    async def _media(
        self, path: str, kind: str, extra: dict[str, Any], lower: float, upper: Anchor | None,
        tag: str | None = None,
    ) -> AsyncGenerator[Batch, None]:  # fmt: skip
        params = {**extra, "fields": MEDIA_FIELDS, "limit": LIMIT}
        number = 1
        async for items, after in self.pages(path, params, kind, upper.id if upper else None):
            if tag:
                self._used_hashtag(tag)
            to_mention = partial(self._medium, kind=kind, tag=tag)
            mentions, problems = convert(items, to_mention, number)
            found = anchor(items, lambda m: m.get("timestamp"))
            yield Batch(mentions, Anchor(found.at, after) if found else None, bool(after), problems)
            number += 1

    def _comment(self, item: Obj, media: dict[str, Any]) -> Mention | None:
        comment_id = graph_id(item.need("id"), item.where)
        author = item.obj("from", required=False)
        if author is not None and author.string("id", required=False) == self.account:
            return None  # the account's own replies
        created = item.time("timestamp")
        assert created is not None
        username = item.string("username", required=False) or (
            author.string("username", required=False) if author else None
        )
        return Mention(
            source=self.name,
            native_id=comment_id,
            text=item.string("text", required=False) or "",
            created_at=created,
            url=media.get("permalink"),
            author=username,
            title=context(media.get("caption")),
            reach=item.count("like_count"),
            extra={
                "kind": "comment",
                "id": comment_id,
                "media_id": media["id"],
                "parent_id": item.string("parent_id", required=False),
            },
        )

    def _medium(self, item: Obj, kind: str, tag: str | None) -> Mention | None:
        media_id = graph_id(item.need("id"), item.where)
        created = item.time("timestamp")
        assert created is not None
        return Mention(
            source=self.name,
            native_id=media_id,
            text=item.string("caption", required=False) or "",
            created_at=created,
            url=item.string("permalink", required=False),
            # Hashtag results carry no username: Instagram does not tell who posted them.
            author=item.string("username", required=False),
            reach=item.count("like_count") + item.count("comments_count"),
            extra={
                "kind": kind,
                "id": media_id,
                "hashtag": tag,
                "media_type": item.string("media_type", required=False),
            },
        )

    # Hashtags: 30 unique ones in 7 days

    async def _hashtag_id(self, tag: str) -> str:
        ledger = self._hashtag_ledger()
        if tag not in ledger:
            recent = await self._recently_searched()
            if tag not in recent and len(set(recent) | set(ledger)) >= HASHTAG_SLOTS:
                used = ", ".join(f"#{t}" for t in sorted(set(recent) | set(ledger))[:5])
                raise SourceError(
                    f"{self.name}: #{tag} not searched: the account used its {HASHTAG_SLOTS} "
                    f"unique hashtags of the last 7 days ({used}, …); a slot frees up a week "
                    "after its first search"
                )
        cached = self.state.get(f"hashtag:{tag}")
        if cached:
            return graph_id(cached)
        answer = await self.get("ig_hashtag_search", {"user_id": self.account, "q": tag},
                                f"looking up #{tag}")  # fmt: skip
        found = answer.array("data")
        if not found:
            raise SourceError(f"{self.name}: Instagram knows no hashtag #{tag}")
        hashtag = graph_id(Obj(found[0], "hashtag 1").need("id"), "hashtag 1")
        self.state.set(f"hashtag:{tag}", hashtag)
        self._used_hashtag(tag)
        return hashtag

    async def _recently_searched(self) -> list[str]:
        answer = await self.get(f"{self.account}/recently_searched_hashtags",
                                {"limit": HASHTAG_SLOTS}, "reading the hashtags used")  # fmt: skip
        return [n.lower() for n in (string(dig(h, "name")) for h in answer.array("data")) if n]

    def _hashtag_ledger(self) -> dict[str, float]:
        try:
            ledger = json.loads(self.state.get(HASHTAGS_KEY) or "{}")
        except ValueError:
            ledger = {}
        cutoff = time.time() - HASHTAG_WINDOW
        return {t: w for t, w in ledger.items() if isinstance(w, int | float) and w > cutoff} \
            if isinstance(ledger, dict) else {}  # fmt: skip

    def _used_hashtag(self, tag: str) -> None:
        ledger = self._hashtag_ledger()
        if time.time() - ledger.get(tag, 0) > 3600:  # once an hour is precise enough
            self.state.set(HASHTAGS_KEY, json.dumps({**ledger, tag: time.time()}))

    def usage(self) -> str | None:
        meta = super().usage()
        if not self._hashtags():
            return meta
        used = len(self._hashtag_ledger())
        line = f"{used} of {HASHTAG_SLOTS} unique hashtags in the last 7 days"
        return f"{line}; {meta}" if meta else line

    # Checking, threads, replies

    async def check(self) -> str:
        me = await self.get(self.account, {"fields": "id,username"}, "reading the account")
        line = f"authenticated as @{me.string('username', required=False) or self.account}"
        if self._hashtags():
            recent = await self._recently_searched()
            line += f"; {len(recent)} of {HASHTAG_SLOTS} unique hashtags used in the last 7 days"
        return line

    async def thread(self, mention: Mention) -> list[ThreadPost]:
        parent = mention.extra.get("parent_id")
        if not parent:
            return []
        item = await self.get(graph_id(parent), {"fields": "text,username,timestamp"})
        return [ThreadPost("parent", item.string("text", required=False) or "",
                           item.string("username", required=False), mention.url,
                           iso(item.time("timestamp", required=False)))]  # fmt: skip

    def replies_by_api(self, mention: Mention) -> bool:
        # Tagged and hashtag media cannot be commented on through the API.
        return mention.extra.get("kind") == "comment"

    def _target(self, mention: Mention) -> str:
        """Instagram nests replies one level deep: a reply to a reply answers its comment."""
        return graph_id(mention.extra.get("parent_id") or mention.native_id)

    async def post_reply(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        answer = await self.post(f"{self._target(mention)}/replies", data={"message": text},
                                 doing="reply refused")  # fmt: skip
        return Posted(graph_id(answer.need("id"), "the new reply"), mention.url)

    async def find_reply(self, mention: Mention, text: str) -> Posted | None:
        answer = await self.get(f"{self._target(mention)}/replies",
                                {"fields": "id,text,from{id}", "limit": 50})  # fmt: skip
        for item in answer.array("data"):
            if (
                dig(item, "from", "id") == self.account
                and (string(dig(item, "text")) or "").strip() == text.strip()
            ):
                return Posted(graph_id(dig(item, "id")), mention.url)
        return None

    # Private replies

    def message_where(self, mention: Mention) -> str:
        who = f"@{mention.author}" if mention.author else "the author"
        return f"an Instagram private reply to {who} (one per comment)"

    def message_problem(self, mention: Mention) -> str | None:
        if mention.extra.get("kind") != "comment":
            return (
                f"{self.name}: only comments on your own media can get a private reply (Meta's "
                f"rule); reply by hand at {mention.url or 'the post'}"
            )
        window = self.window_problem(mention)
        if window:
            return window
        if not self.settings.get("page_id") and INSTAGRAM_LOGIN_HOST not in self.base_url:
            return (
                f"{self.name}: private replies go through the Facebook Page linked to the "
                f"account (with Facebook Login): set sources.{self.name}.page_id"
            )
        return None

    async def post_message(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        node = self.settings.get("page_id") or self.account
        return await self.private_reply(node, {"comment_id": graph_id(mention.native_id)}, text)


def _replies(item: Any) -> list[Any]:
    replies = dig(item, "replies", "data")
    return replies if isinstance(replies, list) else []


SOURCE = Instagram
