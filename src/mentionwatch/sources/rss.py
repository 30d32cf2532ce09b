"""Any RSS or Atom feed: blogs, Google Alerts, hnrss. Every entry is matched locally."""

from __future__ import annotations

import calendar
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from mentionwatch.http import SourceError, error_detail, redact_url
from mentionwatch.models import Job, Mention, Option, Page, Term, from_epoch, utcnow
from mentionwatch.sources.base import Source
from mentionwatch.text import html_to_text, unescape


class Rss(Source):
    name = "rss"
    options: ClassVar[dict[str, Option]] = {"feeds": Option(list, default=[], help="feed URLs")}

    def missing_credentials(self) -> str | None:
        if not self.settings.get("feeds"):
            return f"{self.name}: no feeds: set sources.{self.name}.feeds to a list of feed URLs"
        return None

    def jobs(self, terms: Sequence[Term]) -> list[Job]:
        if not any(t.applies_to(self.name) for t in terms):
            return []
        return [Job(self.name, url) for url in self.settings.get("feeds") or []]

    async def check(self) -> str:
        feeds = self.settings.get("feeds") or []
        for url in feeds:
            async for _page in self.fetch(Job(self.name, url), None):
                pass
        return f"{len(feeds)} feed(s) readable"

    async def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        url = job.scope
        previous = json.loads(cursor) if cursor else {}
        headers = {}
        if previous.get("etag"):
            headers["If-None-Match"] = previous["etag"]
        if previous.get("modified"):
            headers["If-Modified-Since"] = previous["modified"]
        response = await self.http.request("GET", url, headers=headers)
        if response.status_code == 304:
            yield Page([], note="unchanged")
            return
        if response.status_code >= 400:
            raise SourceError(
                f"{self.name}: HTTP {response.status_code} from {redact_url(url)}: "
                f"{error_detail(response)}"
            )
        import feedparser

        # Relative links resolve against the feed's own (final, after redirects) address, which
        # feedparser only knows from Content-Location when it is handed bytes.
        headers = {**response.headers, "content-location": str(response.url)}
        parsed = feedparser.parse(response.content, response_headers=headers)
        if parsed.bozo and not parsed.entries:
            reason = type(parsed.get("bozo_exception")).__name__
            raise SourceError(f"{self.name}: {redact_url(url)} is not a readable feed ({reason})")
        mentions = [m for m in (to_mention(e) for e in parsed.entries) if m is not None]
        validators = {
            "etag": response.headers.get("etag"),
            "modified": response.headers.get("last-modified"),
        }
        yield Page(mentions, cursor=json.dumps({k: v for k, v in validators.items() if v}))


def to_mention(entry: Any) -> Mention | None:
    link = unwrap_google(entry.get("link") or "")
    title = html_to_text(entry.get("title")) or None
    contents = entry.get("content") or []
    body = contents[0].get("value") if contents else entry.get("summary")
    text = html_to_text(body)
    if not (title or text):
        return None
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    created = from_epoch(calendar.timegm(stamp)) if stamp else utcnow()
    native_id = link if _is_google(entry.get("link")) else (entry.get("id") or link)
    if not native_id:
        digest = hashlib.sha256(f"{title}\n{entry.get('published', '')}".encode()).hexdigest()
        native_id = digest[:32]
    # RSS 2.0's <author> is "email (Name)": feedparser splits it into author_detail.
    detail = entry.get("author_detail") or {}
    author = unescape(detail.get("name") or entry.get("author")) or None
    return Mention(
        source="rss",
        native_id=native_id,
        text=text,
        created_at=created,
        url=link or None,
        author=author,
        author_name=author,
        title=title,
        reply_url=entry.get("comments") or link or None,
    )


def _is_google(link: str | None) -> bool:
    parts = urlsplit(link or "")
    return parts.netloc.endswith("google.com") and parts.path == "/url"


def unwrap_google(link: str) -> str:
    """Google Alerts links point at google.com/url?...&url=<target>; return the target."""
    if _is_google(link):
        target = parse_qs(urlsplit(link).query).get("url", [""])[0]
        if target.startswith(("http://", "https://")):
            return target
    return link


SOURCE = Rss
