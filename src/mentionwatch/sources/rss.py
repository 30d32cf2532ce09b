"""Any RSS or Atom feed: blogs, Google Alerts, hnrss. Every entry is matched locally."""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from mentionwatch.http import SourceError, error_detail, redact_url
from mentionwatch.models import Job, Mention, Option, Page, Term, from_epoch, iso, utcnow
from mentionwatch.sources.base import Source
from mentionwatch.sources.common import parse_time
from mentionwatch.text import html_to_text, unescape


class Rss(Source):
    name = "rss"
    no_messages = "is a feed, with no messages: reply where the entry was published"
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
        previous = _load(cursor)
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
        damage = _damage(parsed, response.content)
        if not parsed.entries and not parsed.get("version"):
            # feedparser reads a well-formed web page served as text/html (a site's home
            # page, a login or consent page) as a feed of nothing, with a benign complaint.
            damage = _not_a_feed(response, damage)
        if damage and not parsed.entries:
            raise SourceError(f"{self.name}: {redact_url(url)} is not a readable feed ({damage})")
        pairs = [(entry, to_mention(entry)) for entry in parsed.entries]
        mentions = [m for _, m in pairs if m is not None]
        problems = []
        if damage:  # a feed cut off mid-way: what came before the damage is kept
            kept = len(parsed.entries)
            problems.append(f"{redact_url(url)} is cut off or malformed ({damage}); kept the "
                            f"{kept} {'entry' if kept == 1 else 'entries'} before it")  # fmt: skip
        # Dated entries only; a date in the future must not hide the next polls' entries.
        ceiling = utcnow() + timedelta(minutes=10)
        dated = [min(m.created_at, ceiling) for e, m in pairs if m is not None and _stamp(e)]
        newest = max(dated, default=None)
        seen = _seen_before(previous)
        if not damage and seen is not None and len(dated) > 1 and min(dated) > seen:
            # A feed holds only its newest entries and cannot be paged back.
            problems.append(
                f"{redact_url(url)} holds only entries newer than the last poll's newest "
                f"({iso(seen)}): older ones were missed; poll it more often"
            )
        if damage:  # its last entry may be half an entry: its date proves nothing
            newest = seen
        elif seen is not None:
            newest = max(newest or seen, seen)
        # A damaged feed is fetched in full next time: its validators would answer 304.
        state = {
            "etag": None if damage else response.headers.get("etag"),
            "modified": None if damage else response.headers.get("last-modified"),
            "newest": iso(newest),
        }
        yield Page(mentions, json.dumps({k: v for k, v in state.items() if v}), problems=problems)


def _load(cursor: str | None) -> dict[str, Any]:
    try:
        data = json.loads(cursor) if cursor else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _seen_before(previous: dict[str, Any]) -> datetime | None:
    newest = previous.get("newest")
    return parse_time(newest) if isinstance(newest, str) else None


# Bozo reasons that still leave the whole feed readable.
_BENIGN = ("CharacterEncodingOverride", "NonXMLContentType")


# A whole feed ends with the end of its root element.
_ENDED = re.compile(rb"</\s*(?:[\w-]+:)?(?:rss|feed|rdf)\s*>\s*$", re.IGNORECASE)


def _damage(parsed: Any, body: bytes) -> str | None:
    """Why feedparser could not read the whole feed (cut off, or broken past repair), or None.

    A complete feed with stray bytes (control characters, a bad entity) is still read whole
    by feedparser's lenient parser: only a feed that does not end is damaged."""
    if not parsed.get("bozo"):
        return None
    reason = type(parsed.get("bozo_exception")).__name__
    if reason in _BENIGN or (parsed.entries and _ENDED.search(body[-200:])):
        return None
    return reason


def _not_a_feed(response: Any, damage: str | None) -> str:
    """What came instead of a feed (no entries, and no kind of feed feedparser knows)."""
    ctype = response.headers.get("content-type", "").split(";")[0].strip()
    if "html" in ctype:
        return (
            "an HTML page: set the address of the site's RSS or Atom feed, which the page "
            "usually links to"
        )
    return damage or f"{ctype or 'a body'} with no RSS or Atom in it"


def _stamp(entry: Any) -> Any:
    return entry.get("published_parsed") or entry.get("updated_parsed")


def to_mention(entry: Any) -> Mention | None:
    link = unwrap_google(entry.get("link") or "")
    title = html_to_text(entry.get("title")) or None
    contents = entry.get("content") or []
    body = contents[0].get("value") if contents else entry.get("summary")
    text = html_to_text(body)
    if not (title or text):
        return None
    stamp = _stamp(entry)
    created = from_epoch(calendar.timegm(stamp)) if stamp else utcnow()
    native_id = link if _is_google(entry.get("link")) else (entry.get("id") or link)
    if not native_id:
        import hashlib  # here: loading OpenSSL costs ~2 ms of every command whose config has rss

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
