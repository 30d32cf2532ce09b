"""Lobsters (lobste.rs): the newest stories, matched locally.

Lobsters' search is HTML only (and searching by URL needs a login since 2026-02), so the JSON
listing `/newest.json` (`/newest/page/N.json`, 25 stories a page) is read newest first back to
the last poll, and every term is matched against title, link and description. No API for
replies: the story's comment page opens. Lobsters throttles per IP (4/s, 30/min, 100/10 min)
and sends RateLimit-* headers whose reset may be seconds or an epoch (http.py reads both); it
throttles some User-Agents to a request a day, so mentionwatch's own honest one is kept.
`submitter_user` is a username string since 2024-03 (an object before): both are read.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, ClassVar

from mentionwatch.models import Job, Mention, Option, Page, Term
from mentionwatch.sources.base import Source
from mentionwatch.sources.common import (
    Anchor,
    Batch,
    Malformed,
    Obj,
    Search,
    anchor,
    convert,
    describe,
    dig,
)
from mentionwatch.text import clean, html_to_text

PAGES = 10  # 250 stories: a few days of Lobsters


class Lobsters(Source):
    name = "lobsters"
    default_base_url = "https://lobste.rs"
    options: ClassVar[dict[str, Option]] = {}
    overlap = 120.0
    max_pages = PAGES
    default_interval = 600.0  # a few stories an hour

    def jobs(self, terms: Sequence[Term]) -> list[Job]:
        return [Job(self.name, "newest")] if any(t.applies_to(self.name) for t in terms) else []

    def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        return self.walk([Search("newest", self._newest)], cursor)

    async def _newest(self, lower: float, upper: Anchor | None) -> AsyncGenerator[Batch, None]:
        start = int(upper.id) if upper and upper.id and upper.id.isdigit() else 1
        for number in range(start, start + PAGES):
            path = "/newest.json" if number == 1 else f"/newest/page/{number}.json"
            stories = self.http.json(await self.http.request("GET", f"{self.base_url}{path}"))
            if not isinstance(stories, list):
                raise Malformed(
                    f"the {path} answer is {describe(stories)} where a list of stories belongs"
                )
            mentions, problems = convert(stories, to_mention, number)
            oldest = anchor(stories, lambda s: s.get("created_at"))
            yield Batch(
                mentions, oldest and Anchor(oldest.at, str(number + 1)), bool(stories), problems
            )
            if not stories:
                return

    async def check(self) -> str:
        stories = self.http.json(await self.http.request("GET", f"{self.base_url}/newest.json"))
        return f"newest stories readable ({len(stories) if isinstance(stories, list) else 0} on the first page)"  # noqa: E501


def _submitter(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    name = dig(value, "username")
    return name if isinstance(name, str) else None


def to_mention(story: Obj) -> Mention:
    short_id = story.need("short_id")
    comments = story.string("comments_url", required=False) or story.string(
        "short_id_url", required=False
    )
    link = story.string("url", required=False) or None
    title = clean(story.string("title")) or None
    text = story.string("description_plain", required=False)
    text = (
        clean(text)
        if text is not None
        else html_to_text(story.string("description", required=False))
    )
    return Mention(
        source="lobsters",
        native_id=short_id,
        text=text,
        created_at=story.time("created_at"),  # type: ignore[arg-type]
        url=comments or link,
        author=_submitter(story.get("submitter_user")),
        title=title,
        reach=story.integer("score"),
        reply_url=comments,
        extra={
            "kind": "story",
            "link": link,
            "tags": [t for t in story.array("tags", required=False) if isinstance(t, str)],
            "comment_count": story.count("comment_count"),
        },
        searchable="\n".join(x for x in (title, text, link) if x),
    )


SOURCE = Lobsters
