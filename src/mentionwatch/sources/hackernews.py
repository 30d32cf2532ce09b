"""Hacker News through the Algolia search API (no account needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from mentionwatch.http import SourceError
from mentionwatch.models import Job, Mention, Page, ThreadPost, from_epoch, parse_iso
from mentionwatch.query import parse
from mentionwatch.sources.base import Source
from mentionwatch.text import html_to_text, unescape

ITEM_URL = "https://news.ycombinator.com/item?id={}"
# Items can reach the index a little after their creation time, and several can share one
# second: each poll looks back this far past the newest item seen and dedupes.
OVERLAP_SECONDS = 300
HITS_PER_PAGE = 100
MAX_PAGES = 10  # Algolia stops at 1000 hits anyway


class HackerNews(Source):
    name = "hackernews"
    default_base_url = "https://hn.algolia.com/api/v1"

    async def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        assert job.term is not None
        since = int(cursor) if cursor else int(self.first_since().timestamp())
        newest = since
        # Algolia has no OR: one search per alternative, with every atom quoted so the
        # last word is not prefix-matched.
        for query in parse(job.term.query).quoted_alternatives():
            async for hits in self._pages(query, since - OVERLAP_SECONDS):
                mentions = [m for m in map(to_mention, hits) if m is not None]
                newest = max([newest, *(int(m.created_at.timestamp()) for m in mentions)])
                yield Page(mentions)
        yield Page([], cursor=str(newest))

    async def check(self) -> str:
        data = await self.http.get_json(
            f"{self.base_url}/search_by_date", params={"query": "test", "hitsPerPage": 1}
        )
        if not isinstance(data, dict) or "hits" not in data:
            raise SourceError(f"{self.name}: unexpected response shape (no 'hits' list)")
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
            hits = data.get("hits") if isinstance(data, dict) else None
            if not hits or not isinstance(hits[0], dict):
                return []
            hit = hits[0]
            body = "\n".join(x for x in (unescape(hit.get("title")),
                                          html_to_text(hit.get("story_text"))) if x)  # fmt: skip
            return [ThreadPost("parent", body, unescape(hit.get("author")), ITEM_URL.format(story),
                               hit.get("created_at"))]  # fmt: skip
        item = await self.http.get_json(f"{self.base_url}/items/{parent}")
        if not isinstance(item, dict):
            raise SourceError(f"{self.name}: unexpected response shape for item {parent}")
        return [ThreadPost("parent", html_to_text(item.get("text")), unescape(item.get("author")),
                           ITEM_URL.format(parent), item.get("created_at"))]  # fmt: skip

    async def _pages(self, query: str, since: int) -> AsyncIterator[list[dict[str, Any]]]:
        for page in range(MAX_PAGES):
            data = await self.http.get_json(
                f"{self.base_url}/search_by_date",
                params={
                    "query": query,
                    "tags": "(story,comment)",
                    "numericFilters": f"created_at_i>={since}",
                    "hitsPerPage": HITS_PER_PAGE,
                    "page": page,
                },
            )
            if not isinstance(data, dict) or not isinstance(data.get("hits"), list):
                raise SourceError(f"{self.name}: unexpected response shape (no 'hits' list)")
            yield [h for h in data["hits"] if isinstance(h, dict)]
            pages = data.get("nbPages")
            if not isinstance(pages, int) or page + 1 >= pages:
                return


def to_mention(hit: dict[str, Any]) -> Mention | None:
    object_id = str(hit.get("objectID") or "")
    if not object_id.isdigit():
        return None
    created = _created(hit)
    if created is None:
        return None
    tags = hit.get("_tags") or []
    is_comment = "comment" in tags or hit.get("comment_text") is not None
    text = html_to_text(hit.get("comment_text") if is_comment else hit.get("story_text"))
    own_title = None if is_comment else unescape(hit.get("title"))
    title = unescape(hit.get("story_title")) if is_comment else own_title
    link = hit.get("url") if not is_comment else None
    story_id = hit.get("story_id") or _story_from_tags(tags) or (None if is_comment else object_id)
    points = hit.get("points")
    return Mention(
        source="hackernews",
        native_id=object_id,
        text=text,
        created_at=created,
        url=ITEM_URL.format(object_id),
        author=unescape(hit.get("author")),
        title=title,
        reach=points if isinstance(points, int) else None,
        reply_url=_reply_url(object_id, story_id) if is_comment else ITEM_URL.format(object_id),
        extra={
            "kind": "comment" if is_comment else "story",
            "story_id": str(story_id) if story_id else None,
            "parent_id": str(hit["parent_id"]) if hit.get("parent_id") else None,
            "link": link,
            "num_comments": hit.get("num_comments"),
        },
        # A comment's story title is context, not something the commenter wrote.
        searchable="\n".join(x for x in (own_title, text, link) if x),
    )


def _created(hit: dict[str, Any]) -> Any:
    stamp = hit.get("created_at_i")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        return from_epoch(stamp)
    if isinstance(hit.get("created_at"), str):
        try:
            return parse_iso(hit["created_at"])
        except ValueError:
            return None
    return None


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
