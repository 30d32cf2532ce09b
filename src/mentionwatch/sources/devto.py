"""DEV (dev.to) and other Forem sites: the newest articles, matched locally.

There is no full-text search in Forem's API, so `/api/articles/latest` (newest first, 30 a
page) is read back to the last poll and every term is matched against the title, the
description and the tags. The API is versioned by its Accept header (`application/
vnd.forem.api-v1+json`; unversioned calls get a Warning: 299). No API posts comments:
replies open the article. GETs are limited to 3 a second per IP, with Retry-After on 429.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import ClassVar

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
)
from mentionwatch.text import clean

ACCEPT = "application/vnd.forem.api-v1+json"
PER_PAGE = 100
PAGES = 5


class DevTo(Source):
    name = "devto"
    default_base_url = "https://dev.to/api"
    options: ClassVar[dict[str, Option]] = {
        "api_key": Option(str, secret=True, help="optional api-key header (higher limits)"),
    }
    overlap = 300.0
    max_pages = PAGES

    def jobs(self, terms: Sequence[Term]) -> list[Job]:
        return [Job(self.name, "latest")] if any(t.applies_to(self.name) for t in terms) else []

    def _headers(self) -> dict[str, str]:
        key = self.settings.get("api_key")
        return {"Accept": ACCEPT, **({"api-key": key} if key else {})}

    def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        return self.walk([Search("latest", self._latest)], cursor)

    async def _latest(self, lower: float, upper: Anchor | None) -> AsyncGenerator[Batch, None]:
        start = int(upper.id) if upper and upper.id and upper.id.isdigit() else 1
        for page in range(start, start + PAGES):
            params = {"page": page, "per_page": PER_PAGE}
            response = await self.http.request(
                "GET", f"{self.base_url}/articles/latest", params=params, headers=self._headers()
            )
            articles = self.http.json(response)
            if not isinstance(articles, list):
                raise Malformed(
                    f"the /articles/latest answer is {describe(articles)} where a list of articles belongs"  # noqa: E501
                )
            mentions, problems = convert(articles, to_mention, page)
            oldest = anchor(
                articles, lambda a: a.get("published_timestamp") or a.get("published_at")
            )
            yield Batch(
                mentions,
                oldest and Anchor(oldest.at, str(page + 1)),
                len(articles) >= PER_PAGE,
                problems,
            )
            if len(articles) < PER_PAGE:
                return

    async def check(self) -> str:
        response = await self.http.request(
            "GET",
            f"{self.base_url}/articles/latest",
            params={"per_page": 1},
            headers=self._headers(),
        )
        self.http.json(response)
        return "newest articles readable" + (
            " (with an api key)" if self.settings.get("api_key") else ""
        )


def to_mention(article: Obj) -> Mention:
    article_id = article.integer("id", required=True)
    url = article.need("url")
    user = article.obj("user", required=False)
    tags = article.get("tag_list")
    tags = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
    title = clean(article.string("title")) or None
    text = clean(article.string("description", required=False))
    published = article.time("published_timestamp", required=False) or article.time("published_at")
    return Mention(
        source="devto",
        native_id=str(article_id),
        text=text,
        created_at=published,  # type: ignore[arg-type]
        url=url,
        author=user.string("username", required=False) if user else None,
        author_name=user.string("name", required=False) if user else None,
        title=title,
        reach=article.count("public_reactions_count") + article.count("comments_count"),
        reply_url=url,
        extra={"kind": "article", "tags": tags, "comments_count": article.count("comments_count")},
        searchable="\n".join(x for x in (title, text, " ".join(f"#{t}" for t in tags)) if x),
    )


SOURCE = DevTo
