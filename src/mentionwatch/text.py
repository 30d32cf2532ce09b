"""Turning hostile platform text into safe plain text."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

# C0 and C1 controls except tab and newline, DEL, and the bidi overrides/isolates that can
# make a line display differently from what it contains.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_BLOCK_TAGS = {"p", "br", "div", "li", "pre", "blockquote", "tr", "h1", "h2", "h3", "h4"}
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def strip_controls(value: str) -> str:
    """Remove characters that could drive a terminal (ESC, OSC 8 links, bidi tricks)."""
    return _CONTROL.sub("", value)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(value: str | None) -> str:
    """Plain text from an HTML fragment: tags dropped, entities decoded, controls removed."""
    if not value:
        return ""
    if "<" not in value and "&" not in value:
        return clean(value)
    parser = _TextExtractor()
    parser.feed(value)
    parser.close()
    return clean("".join(parser.parts))


def clean(value: str | None) -> str:
    """Normalise already-plain text: controls removed, runs of spaces and blank lines folded."""
    if not value:
        return ""
    value = strip_controls(value.replace("\r\n", "\n"))
    lines = (_SPACES.sub(" ", line).strip() for line in value.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def unescape(value: str | None) -> str | None:
    """Decode HTML entities in a short field (display names, titles) and clean it."""
    if value is None:
        return None
    return clean(html.unescape(value))
