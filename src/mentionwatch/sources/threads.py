"""Threads (Meta): keyword search for every term, and replies, with a user access token.

Config (`[sources.threads]`):
  client_id, client_secret, redirect_uri
                        the Threads app id and secret and a redirect URI registered for the
                        app: `mentionwatch auth threads` then gets a long-lived token (60
                        days) and renews it once a day while it is used.
  token                 or: a long-lived Threads user access token obtained elsewhere (scopes
                        below; not renewed). A token from `mentionwatch auth` wins.
  max_searches_per_day  keyword searches mentionwatch makes in any 24 hours (default 2,200:
                        Meta's limit per user, shared by every app the user authorised).

`GET /keyword_search?q=…&search_type=RECENT&since=…` walks newest first back to the newest
post the last poll saw, minus an overlap. Every search that finds something counts against
the 2,200-a-day budget (empty ones do not, says Meta); mentionwatch keeps its own count, and
once it is spent the rest of the searches wait, as a gap in the cursor, like X's read cap.
Until Meta approves threads_keyword_search for the app, search finds the account's own
posts only. Threads' API has no direct messages.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar

from mentionwatch.models import Job, Mention, Option, Page, iso
from mentionwatch.oauth import Spec, Swap
from mentionwatch.oauth import options as oauth_options
from mentionwatch.query import Query, parse
from mentionwatch.sources.base import Posted
from mentionwatch.sources.common import (
    Anchor,
    Batch,
    Obj,
    Search,
    anchor,
    convert,
    dig,
    fit,
    string,
)
from mentionwatch.sources.graph import GraphSource, graph_id

FIELDS = "id,text,media_type,permalink,timestamp,username,has_replies,is_quote_post,is_reply"
LIMIT = 100  # results per keyword search page
DAILY_SEARCHES = 2200  # per user, rolling 24 h, across all apps (Meta, January 2026)
WINDOW = 86400
FIRST_SINCE = 1688540400  # the oldest `since` keyword search accepts (Threads' launch)
MAX_QUERY = 512  # no documented limit; longer terms are split like elsewhere
REPLY_LIMIT = 500  # characters of a post
SEARCHES_KEY = "searches"  # state: when each counted search was made (epoch seconds)
CAPPED = "the keyword search budget is spent; the rest waits"

# Meta's Threads login (developers.facebook.com/docs/threads/get-started): the authorization
# window on threads.com (threads.net answers with a redirect that can drop the query), the
# code traded for a short-lived token (1 h), that swapped for a long-lived one (60 days),
# which renews itself while unexpired and at least 24 h old. No refresh tokens, no PKCE
# (UNCERTAIN: neither Meta's docs nor its sample app send a code_challenge), and redirects
# only to an address registered for the app (https; an http loopback one: UNCERTAIN, Meta's
# dashboard refused it in fbsamples/threads_api#32).
OAUTH = Spec(
    "https://threads.com/oauth/authorize",
    "https://graph.threads.net/oauth/access_token",
    # search, reply (a published reply post), find a reply after a timeout
    scopes=(
        "threads_basic",
        "threads_keyword_search",
        "threads_manage_replies",
        "threads_content_publish",
        "threads_read_replies",
    ),
    scope_separator=",",
    pkce=False,
    refreshable=False,
    loopback=False,
    upgrade=Swap("../access_token", "th_exchange_token", secret=True),
    renew=Swap("../refresh_access_token", "th_refresh_token"),
    renew_after=86400.0,
    lifetime=60 * 86400.0,  # the long-lived token's, should an answer leave expires_in out
    console="developers.facebook.com/apps → your app → Use cases → Access the Threads API → "
    "Settings: Redirect Callback URLs",
)


class Threads(GraphSource):
    name = "threads"
    default_base_url = "https://graph.threads.net/v1.0"
    oauth = OAUTH
    options: ClassVar[dict[str, Option]] = {
        "token": Option(str, secret=True, help="a long-lived Threads user access token"),
        "max_searches_per_day": Option(
            int, default=DAILY_SEARCHES, help="keyword searches in any 24 hours"
        ),
        **oauth_options(OAUTH),
    }
    can_reply = True
    reply_limit = REPLY_LIMIT
    no_messages = (
        "has no direct messages in its API (Meta offers none for Threads): reply in public"
    )
    # Each page is one search of a small daily budget: few pages per poll, polled gently.
    overlap = 600.0
    max_pages = 5
    default_interval = 900.0
    token_help = "run 'mentionwatch auth threads' (or set a new long-lived sources.threads.token)"
    permissions: ClassVar[dict[str, str]] = {
        "keyword_search": "threads_keyword_search",
        "threads": "threads_manage_replies and threads_content_publish",
        "replies": "threads_manage_replies",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import asyncio  # lazily: config loading imports every source

        super().__init__(*args, **kwargs)
        cap = self.settings.get("max_searches_per_day")
        self.budget = (
            min(DAILY_SEARCHES, cap) if isinstance(cap, int) and cap > 0 else DAILY_SEARCHES
        )
        self.counting = asyncio.Lock()  # terms search concurrently; the count is one

    # Polling

    def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        assert job.term is not None
        # No operators are documented for `q`: one search per alternative, the local matcher
        # applies exclusions.
        queries = fit(parse(job.term.query), MAX_QUERY, _rendered, source=self.name,
                      term=job.term.name, together=False)  # fmt: skip
        return self.walk([Search(q, partial(self._listing, q)) for q in queries], cursor)

    async def _listing(
        self, query: str, lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        now = int(time.time())
        since = max(int(lower), FIRST_SINCE)
        params: dict[str, Any] = {"q": query, "search_type": "RECENT", "fields": FIELDS,
                                  "limit": LIMIT, "since": since}  # fmt: skip
        if upper is not None:  # `until` is exclusive: a second more keeps that second's posts
            params["until"] = min(int(upper.at) + 1, now)
        if params["since"] >= params.get("until", now):
            return
        if self._left() < 1:
            yield Batch([], None, True, note=self._capped_note())
            return
        number = 1
        async for items, after in self.pages("keyword_search", params, "keyword search"):
            if items:  # Meta counts only searches that found something
                await self._count()
            mentions, problems = convert(items, to_mention, number)
            oldest = anchor(items, lambda p: p.get("timestamp"), lambda p: p.get("id"))
            capped = bool(after) and self._left() < 1
            note = self._capped_note() if capped else None
            yield Batch(mentions, oldest, bool(after), problems, note=note)
            if capped:
                return
            number += 1

    # The daily budget

    def _ledger(self) -> list[float]:
        try:
            stamps = json.loads(self.state.get(SEARCHES_KEY) or "[]")
        except ValueError:
            stamps = []
        cutoff = time.time() - WINDOW
        return [s for s in stamps if isinstance(s, int | float) and s > cutoff] \
            if isinstance(stamps, list) else []  # fmt: skip

    def _left(self) -> int:
        return self.budget - len(self._ledger())

    async def _count(self) -> None:
        async with self.counting:
            self.state.set(SEARCHES_KEY, json.dumps([*self._ledger(), round(time.time(), 1)]))

    def _capped_note(self) -> str:
        ledger = self._ledger()
        frees = datetime.fromtimestamp(min(ledger) + WINDOW, UTC) if ledger else None
        when = (
            f" (the oldest counted search leaves the 24 h window at {iso(frees)})" if frees else ""
        )
        return f"{CAPPED}: {len(ledger)} of {self.budget} searches used in 24 h{when}"

    def usage(self) -> str | None:
        meta = super().usage()
        line = f"{len(self._ledger())} of {self.budget} keyword searches in the last 24 h"
        return f"{line}; {meta}" if meta else line

    # Checking, replies

    async def check(self) -> str:
        me = await self.get("me", {"fields": "id,username,recently_searched_keywords"},
                            "reading the account")  # fmt: skip
        line = f"authenticated as @{me.string('username', required=False) or '?'}"
        ours = f"{len(self._ledger())} of {self.budget} keyword searches counted here in 24 h"
        if "recently_searched_keywords" not in me.data:  # a field Meta may drop (UNCERTAIN)
            return f"{line}; {ours}"
        cutoff = (time.time() - WINDOW) * 1000
        stamps = [dig(s, "timestamp") for s in me.array("recently_searched_keywords")]
        recent = [t for t in stamps if isinstance(t, int | float) and t > cutoff]
        return (
            f"{line}; {len(recent)} keyword searches in the last 24 h across all apps (Meta "
            f"allows {DAILY_SEARCHES}); {ours}"
        )

    async def post_reply(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        # A text reply is published in the same call (auto_publish_text): one write, so a
        # timeout leaves one thing to look for.
        form = {"media_type": "TEXT", "text": text, "reply_to_id": graph_id(mention.native_id),
                "auto_publish_text": "true"}  # fmt: skip
        answer = await self.post("me/threads", data=form, doing="reply refused")
        post = graph_id(answer.need("id"), "the new reply")
        link = await self.get(post, {"fields": "permalink"})
        return Posted(post, link.string("permalink", required=False))

    async def find_reply(self, mention: Mention, text: str) -> Posted | None:
        answer = await self.get("me/replies", {"fields": "id,text,permalink,replied_to",
                                               "limit": 25})  # fmt: skip
        for item in answer.array("data"):
            if (
                dig(item, "replied_to", "id") == mention.native_id
                and (string(dig(item, "text")) or "").strip() == text.strip()
            ):
                return Posted(graph_id(dig(item, "id")), string(dig(item, "permalink")))
        return None


def _rendered(query: Query) -> str:
    return " ".join(query.alternatives[0])


def to_mention(post: Obj) -> Mention | None:
    post_id = graph_id(post.need("id"), post.where)
    created = post.time("timestamp")
    assert created is not None
    # Search results never carry `owner`: the username is all there is of the author.
    username = post.string("username", required=False)
    kind = "reply" if post.flag("is_reply") else "quote" if post.flag("is_quote_post") else "post"
    return Mention(
        source="threads",
        native_id=post_id,
        text=post.string("text", required=False) or "",
        created_at=created,
        url=post.string("permalink", required=False),
        author=username,
        reach=None,  # no like or reply counts outside the insights API
        extra={
            "kind": kind,
            "id": post_id,
            "media_type": post.string("media_type", required=False),
            "has_replies": post.flag("has_replies"),
        },
    )


SOURCE = Threads
