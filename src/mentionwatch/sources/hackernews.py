"""Hacker News through the Algolia search API (no account needed)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from functools import partial
from typing import Any
from urllib.parse import quote

from mentionwatch.http import SourceError
from mentionwatch.models import Job, Mention, Page, ThreadPost
from mentionwatch.query import Query, parse
from mentionwatch.sources.base import Source
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
    string,
)
from mentionwatch.text import html_to_text, unescape

ITEM_URL = "https://news.ycombinator.com/item?id={}"
# Items reach the index a little after their creation time (usually within a minute), and
# several can share one second: each poll reads this far back past the newest item seen.
OVERLAP_SECONDS = 600
HITS_PER_PAGE = 100
MAX_PAGES = 20  # per search and poll; a longer backlog waits as a gap for the next poll
QUERY_HITS = 1000  # Algolia pages through at most this many hits of one query
MAX_QUERY_BYTES = 512  # Algolia's limit on `query` (bytes, not characters)


class HackerNews(Source):
    name = "hackernews"
    no_messages = (
        "has no private messages: reply in public on the thread, or write to an address the "
        "author put in their profile (news.ycombinator.com/user?id=NAME)"
    )
    default_base_url = "https://hn.algolia.com/api/v1"

    overlap = OVERLAP_SECONDS
    max_pages = MAX_PAGES

    def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        assert job.term is not None
        # Algolia has no OR: one search per alternative, with every atom quoted so the
        # last word is not prefix-matched.
        queries = fit(
            parse(job.term.query), MAX_QUERY_BYTES, _rendered, source=self.name,
            term=job.term.name, size=lambda q: len(q.encode()), together=False,
        )  # fmt: skip
        return self.walk([Search(q, partial(self._listing, q)) for q in queries], cursor)

    async def _listing(
        self, query: str, lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        """Hits newest first from `upper` back to `lower`; past Algolia's 1000 hits per query,
        a new query continues from the oldest hit read."""
        top = upper.at if upper else None
        while True:
            filters = [f"created_at_i>={int(lower)}"]
            if top is not None:
                filters.append(f"created_at_i<={int(top)}")
            oldest, cut = None, False
            for page in range(QUERY_HITS // HITS_PER_PAGE):
                params = {
                    "query": query,
                    "tags": "(story,comment)",
                    "numericFilters": ",".join(filters),
                    "hitsPerPage": HITS_PER_PAGE,
                    "page": page,
                }
                answer = await self.http.get_json(f"{self.base_url}/search_by_date", params=params)
                data = page_of(answer, "the search answer")
                hits = data.array("hits")
                mentions, problems = convert(hits, to_mention, page + 1)
                oldest = anchor(hits, lambda h: h.get("created_at_i") or h.get("created_at"))
                pages, total = data.integer("nbPages", required=True), data.integer("nbHits")
                more = bool(pages) and page + 1 < (pages or 0)
                # Algolia stops paging after 1000 hits, though more match.
                cut = not more and bool(hits) and (total or 0) > (page + 1) * HITS_PER_PAGE
                yield Batch(mentions, oldest, more or cut, problems)
                if not more:
                    break
            if not cut or oldest is None or oldest.at == top:
                return
            top = oldest.at

    async def check(self) -> str:
        data = await self.http.get_json(
            f"{self.base_url}/search_by_date", params={"query": "test", "hitsPerPage": 1}
        )
        page_of(data, "the search answer").array("hits")
        return "Algolia search answers (no account needed)"

    async def thread(self, mention: Mention) -> list[ThreadPost]:
        """The comment or story a comment replies to (its story title is already stored)."""
        parent, story = mention.extra.get("parent_id"), mention.extra.get("story_id")
        if mention.extra.get("kind") != "comment" or not parent:
            return []
        if parent == story:
            # items/<story> would return the whole comment tree; a tag search returns the story.
            data = await self.http.get_json(
                f"{self.base_url}/search", params={"tags": f"story,story_{story}", "hitsPerPage": 1}
            )
            hit = dig(data, "hits", 0)
            if not isinstance(hit, dict):
                return []
            parts = (
                unescape(string(hit.get("title"))),
                html_to_text(string(hit.get("story_text"))),
            )
            body = "\n".join(x for x in parts if x)
            author = unescape(string(hit.get("author")))
            when = string(hit.get("created_at"))
            return [ThreadPost("parent", body, author, ITEM_URL.format(story), when)]
        item = await self.http.get_json(f"{self.base_url}/items/{parent}")
        if not isinstance(item, dict):
            raise SourceError(f"{self.name}: the answer for item {parent} is not an object")
        text, author = html_to_text(string(item.get("text"))), unescape(string(item.get("author")))
        url, when = ITEM_URL.format(parent), string(item.get("created_at"))
        return [ThreadPost("parent", text, author, url, when)]


def _rendered(query: Query) -> str:
    return query.quoted_alternatives()[0]


def to_mention(hit: Obj) -> Mention | None:
    object_id = hit.need("objectID")
    if not object_id.isdigit():
        raise Malformed(f'{hit.where} has "objectID": {object_id!r}, not an item number')
    created = hit.time("created_at_i", required=False) or hit.time("created_at")
    assert created is not None
    tags = hit.array("_tags")
    is_comment = "comment" in tags or hit.get("comment_text") is not None
    text = html_to_text(hit.string("comment_text" if is_comment else "story_text", required=False))
    own_title = None if is_comment else unescape(hit.string("title", required=False))
    title = unescape(hit.string("story_title", required=False)) if is_comment else own_title
    link = hit.string("url", required=False) if not is_comment else None
    story = hit.integer("story_id")
    story_id = story or _story_from_tags(tags) or (None if is_comment else object_id)
    parent = hit.integer("parent_id")
    return Mention(
        source="hackernews",
        native_id=object_id,
        text=text,
        created_at=created,
        url=ITEM_URL.format(object_id),
        author=unescape(hit.need("author")),
        title=title,
        reach=hit.integer("points"),
        reply_url=_reply_url(object_id, story_id) if is_comment else ITEM_URL.format(object_id),
        extra={
            "kind": "comment" if is_comment else "story",
            "story_id": str(story_id) if story_id else None,
            "parent_id": str(parent) if parent else None,
            "link": link,
            "num_comments": hit.integer("num_comments"),
        },
        # A comment's story title is context, not something the commenter wrote.
        searchable="\n".join(x for x in (own_title, text, link) if x),
    )


def _story_from_tags(tags: list[Any]) -> str | None:
    for tag in tags:
        if isinstance(tag, str) and tag.startswith("story_") and tag[6:].isdigit():
            return tag[6:]
    return None


def _reply_url(object_id: str, story_id: object) -> str:
    if not story_id:
        return f"https://news.ycombinator.com/reply?id={object_id}"
    goto = quote(f"item?id={story_id}#{object_id}", safe="")
    return f"https://news.ycombinator.com/reply?id={object_id}&goto={goto}"


SOURCE = HackerNews
