"""Feeds (RSS 2.0 and Atom) served from feeds/, with ETag and Last-Modified validators so a
conditional GET of an unchanged feed gets 304 Not Modified."""

from __future__ import annotations

import hashlib
import html
from email.utils import formatdate
from typing import Any

from mentionwatch.testing.server import PlatformBase, Request, Response, fill_times

_TYPES = {".xml": "application/rss+xml", ".atom": "application/atom+xml", ".html": "text/html"}


MORE = "more.xml"  # the feed add_item() writes to


class Platform(PlatformBase):
    name = "rss"
    search_path = "/rss/feeds/"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.extra: dict[str, str] = {}  # feed name -> text, for tests
        self.started = formatdate(usegmt=True)
        self.entries: list[tuple[str, str, float]] = []  # (guid, title, created) of more.xml

    def add_item(self, text: str, created: float) -> str:
        """An entry of the feed `more.xml` (newest first, like real feeds)."""
        guid = f"https://blog.example.com/posts/{len(self.entries)}"
        self.entries.append((guid, text, created))
        self.extra[MORE] = self._more()
        return f"rss:{guid}"

    def _more(self) -> str:
        items = "".join(
            f"<item><title>{html.escape(title)}</title><link>{link}</link><guid>{link}</guid>"
            f"<pubDate>{formatdate(when, usegmt=True)}</pubDate>"
            f"<description>{html.escape(title)}</description></item>"
            for link, title, when in sorted(self.entries, key=lambda e: e[2], reverse=True)
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>More</title><link>https://blog.example.com/</link>{items}</channel></rss>"
        )

    def source_settings(self) -> dict[str, Any]:
        feeds = sorted(p.name for p in (self.folder / "feeds").iterdir())
        return {"feeds": [f"{self.web.base_url(self.name)}/feeds/{name}" for name in feeds]}

    def handle(self, request: Request) -> Response | None:
        name = request.path.removeprefix("/feeds/")
        if name in self.extra:
            text = self.extra[name]
        elif name == MORE:
            text = self._more()
        elif (self.folder / "feeds" / name).is_file():
            # The ETag covers the file, not the filled-in times, so it is stable across
            # requests the way a real unchanged feed's is.
            text = (self.folder / "feeds" / name).read_text(encoding="utf-8")
        else:
            return None
        etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:16] + '"'
        headers = {"ETag": etag, "Last-Modified": self.started}
        if request.headers.get("if-none-match") == etag:
            return Response(304, b"", headers)
        suffix = name[name.rfind(".") :] if "." in name else ".xml"
        return Response(200, fill_times(text), headers, _TYPES.get(suffix, "application/xml"))
