"""Product Hunt API v2 (GraphQL): the newest launches, matched locally.

There is no keyword search over posts (`topics(query:)` matches topic names only), so
`posts(order: NEWEST, postedAfter:)` is read newest first and every term is matched against
the name, tagline and description. Since 2023-03 the API redacts other people: names come
back "[REDACTED]" and ids "0", so a post's author is left unknown (`author_redacted`), never
made up. No mutation posts comments: replies open the post. The budget is 6,250 complexity
points per 15 minutes, reported in X-Rate-Limit-* headers (Reset in seconds).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, ClassVar

from mentionwatch.http import SourceError, message_in
from mentionwatch.models import Job, Mention, Option, Page, Term, iso
from mentionwatch.sources.base import Source
from mentionwatch.sources.common import Anchor, Batch, Obj, Search, anchor, convert, dig, page_of
from mentionwatch.text import clean

REDACTED = "[REDACTED]"
_CLOCK_SLACK = 60.0  # seconds: a launch stamped by a clock a little ahead still falls under
PAGE = 20
QUERY = (
    "query Newest($after: String, $postedAfter: DateTime, $postedBefore: DateTime) {\n"
    f"  posts(first: {PAGE}, order: NEWEST, after: $after, postedAfter: $postedAfter,\n"
    "        postedBefore: $postedBefore) {\n"
    "    edges { cursor node { id name tagline description url slug votesCount commentsCount\n"
    "      createdAt website user { id username name } topics(first: 5) { edges { node { name } } } } }\n"  # noqa: E501
    "    pageInfo { endCursor hasNextPage }\n"
    "  }\n"
    "}"
)


class ProductHunt(Source):
    name = "producthunt"
    default_base_url = "https://api.producthunt.com/v2"
    options: ClassVar[dict[str, Option]] = {
        "token": Option(
            str, secret=True, help="a developer token (api.producthunt.com/v2/oauth/applications)"
        ),
    }
    required = (("token",),)
    overlap = 600.0
    max_pages = 5
    default_interval = 900.0

    def jobs(self, terms: Sequence[Term]) -> list[Job]:
        return [Job(self.name, "newest")] if any(t.applies_to(self.name) for t in terms) else []

    async def _query(self, variables: dict[str, Any], query: str = QUERY) -> Obj:
        response = await self.http.request(
            "POST",
            f"{self.base_url}/api/graphql",
            json={"query": query, "variables": variables},
            headers={
                "Authorization": f"Bearer {self.settings.get('token')}",
                "Accept": "application/json",
            },
        )
        data = page_of(self.http.json(response), "the GraphQL answer")
        if data.get("data") is None and data.get("errors"):  # a 200 that carries only errors
            raise SourceError(f"{self.name}: the query failed: {message_in(data.get('errors'))}")
        payload = data.obj("data")
        assert payload is not None
        return payload

    def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        return self.walk([Search("newest", self._newest)], cursor)

    async def _newest(self, lower: float, upper: Anchor | None) -> AsyncGenerator[Batch, None]:
        from mentionwatch.models import from_epoch

        # Every walk fixes its upper bound, so the listing under it stays the same while new
        # launches arrive, and its GraphQL cursor stays valid: a backlog continued by the next
        # poll resumes after the last post read (kept in the anchor as "postedBefore|cursor"),
        # however many posts share one second.
        before, _, after = (upper.id or "").partition("|") if upper else ("", "", "")
        variables: dict[str, Any] = {"postedAfter": iso(from_epoch(lower))}
        if before and after:
            variables.update(postedBefore=before, after=after)
        elif upper is not None:
            variables["postedBefore"] = iso(from_epoch(upper.at + 1))
        else:
            variables["postedBefore"] = iso(from_epoch(time.time() + _CLOCK_SLACK))
        page = 1
        while True:
            posts = (await self._query(variables)).obj("posts")
            assert posts is not None
            edges = posts.array("edges")
            nodes = [dig(e, "node") if isinstance(e, dict) else e for e in edges]
            mentions, problems = convert(edges, lambda edge: to_mention(edge.obj("node")), page)  # type: ignore[arg-type]
            info = posts.obj("pageInfo", required=False)
            more = bool(info and info.get("hasNextPage") is True and nodes)
            oldest = anchor(nodes, lambda n: n.get("createdAt"))
            end = info.get("endCursor") if info else None
            if oldest is not None and isinstance(end, str) and end:
                oldest = Anchor(oldest.at, f"{variables['postedBefore']}|{end}")
            yield Batch(mentions, oldest, more, problems)
            if not more or info is None:
                return
            variables["after"] = info.string("endCursor")
            page += 1

    async def check(self) -> str:
        viewer = await self._query({}, "query { viewer { user { username } } }")
        name = dig(viewer.data, "viewer", "user", "username")
        who = f" as {name}" if isinstance(name, str) and name != REDACTED else ""
        return f"token works{who}; the newest launches are read (other people's names are redacted by Product Hunt)"  # noqa: E501


def to_mention(post: Obj) -> Mention:
    post_id = post.need("id")
    url = post.need("url")
    user = post.obj("user", required=False)
    username = user.string("username", required=False) if user else None
    redacted = username in (None, REDACTED) or (user is not None and user.get("id") == "0")
    name = clean(post.string("name")) or None
    tagline = clean(post.string("tagline", required=False))
    description = clean(post.string("description", required=False))
    text = "\n".join(x for x in (tagline, description) if x)
    topics = [
        dig(e, "node", "name")
        for e in dig(post.data, "topics", "edges") or []
        if isinstance(e, dict)
    ]
    return Mention(
        source="producthunt",
        native_id=post_id,
        text=text,
        created_at=post.time("createdAt"),  # type: ignore[arg-type]
        url=url,
        author=None if redacted else username,
        author_name=None if redacted else (user.string("name", required=False) if user else None),
        title=name,
        reach=post.count("votesCount") + post.count("commentsCount"),
        reply_url=url,
        extra={
            "kind": "post",
            "author_redacted": redacted,
            "website": post.string("website", required=False),
            "topics": [t for t in topics if isinstance(t, str)],
            "comments_count": post.count("commentsCount"),
        },
    )


SOURCE = ProductHunt
