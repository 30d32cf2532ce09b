"""Turning hostile outside text into inert plain text, once, where it enters.

`inert()` is the one definition of "safe to store and show": every string from outside
(mention fields, author names, titles, thread posts, platform error bodies, feed titles) passes
through it at the boundary — where a source's page enters the poller, where a thread or a
posted reply comes back, where an error message is made — and again wherever text is printed.

What it removes, and what it keeps on purpose:
- C0 and C1 controls (ESC, BEL, NUL, CSI…) and DEL; tab and newline stay, and every other
  line break (CR, CRLF, NEL, U+2028/2029, VT, FF) becomes a newline, so a lone CR cannot
  redraw a line.
- Bidi embeddings, overrides, isolates and marks (U+202A–202E, U+2066–2069, LRM, RLM, ALM):
  they make a line display differently from what it contains.
- Invisible format characters (Unicode's default-ignorable code points and category Cf) that
  hide or split text: zero-width space, word joiner, soft hyphen, BOM, invisible operators,
  Hangul fillers, interlinear annotation, shorthand and musical format controls, tag
  characters, noncharacters and lone surrogates (which would also crash UTF-8 output).
- Kept where real text needs them: ZWJ and ZWNJ between letters of the scripts that shape
  with them (Arabic, Persian, Syriac, the Indic scripts, Myanmar, Khmer, Mongolian…) and ZWJ
  inside emoji sequences (👩‍💻); one variation selector after a character (❤️, CJK glyph
  variants) but not a run of them (a known way to smuggle hidden data); tag characters only
  inside a flag sequence (🏴󠁧󠁢󠁳󠁣󠁴󠁿); Mongolian variation selectors after Mongolian letters.
  The visible format characters (Arabic number signs, end of ayah, Egyptian hieroglyph
  joiners) are text and stay.
- Every secret the process knows (see `scrub`), replaced by ***.
"""

from __future__ import annotations

import re
from dataclasses import fields, replace
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from mentionwatch.scrub import scrub

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_T = TypeVar("_T", bound="DataclassInstance")

_LINE_BREAK = "\r\n|[\r\x0b\x0c\x85\u2028\u2029]"
# Always removed (see the module docstring).
_DROP = (
    "\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\xad\u034f\u061c\u17b4\u17b5\u200b\u200e\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufdd0-\ufdef\ufff0-\ufffb\ufffe\uffff"
    "\ud800-\udfff\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e001f"
    "\U000e0080-\U000e00ff\U000e01f0-\U000e0fff"
)
_VARIATION = "\ufe00-\ufe0f\U000e0100-\U000e01ef"
_TAGS = "\U000e0020-\U000e007f"
_FLAG = "\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{2,7}\U000e007f"
# Scripts whose letters join or form conjuncts with the help of ZWJ/ZWNJ.
_JOINING = (
    "\u0600-\u08ff\u0900-\u0dff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u1800-\u18af"
    "\ua8e0-\ua8ff\ua980-\ua9df\uaa60-\uaa7f\ufb50-\ufdff\ufe70-\ufeff"
    "\U00010a00-\U00010a5f\U00011000-\U0001107f"
)
_EMOJI = (
    "\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u21aa\u231a-\u23ff\u24c2\u25aa-\u27bf"
    "\u2934\u2935\u2b05-\u2b55\u3030\u303d\u3297\u3299\ufe0f\U0001f000-\U0001faff"
)
_ASCII_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """(unsafe, joining, emoji), compiled on first need: their classes span thousands of
    code points, which costs a millisecond or two that plain ASCII text never needs."""
    unsafe = re.compile(
        f"(?P<flag>{_FLAG})|(?P<nl>{_LINE_BREAK})|(?P<vs>[{_VARIATION}]+)"
        f"|(?P<join>[\u200c\u200d])|(?P<mongolian>[\u180b-\u180f])|(?P<filler>[\u115f\u1160])"
        f"|[{_DROP}{_TAGS}]+"
    )
    return unsafe, re.compile(f"[{_JOINING}]"), re.compile(f"[{_EMOJI}]")


def _replacement(match: re.Match[str]) -> str:
    unsafe, joining, emoji_char = _patterns()
    kind, text, start, end = match.lastgroup, match.string, match.start(), match.end()
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    if kind == "flag":
        return match.group()
    if kind == "nl":
        return "\n"
    if kind == "vs":
        # One selector picks a glyph for the character before it; more hide data.
        visible = before and not before.isspace() and not unsafe.fullmatch(before)
        return match.group()[0] if visible else ""
    if kind == "join":
        if joining.match(before) and joining.match(after):
            return match.group()
        emoji = match.group() == "\u200d" and emoji_char.match(before) and emoji_char.match(after)
        return match.group() if emoji else ""
    if kind == "mongolian":
        return match.group() if "\u1800" <= before <= "\u18af" else ""
    if kind == "filler":  # Hangul fillers only mean something inside a jamo sequence
        return match.group() if "\u1100" <= after <= "\u11ff" else ""
    return ""


def inert(value: str) -> str:
    """Outside text made safe to store and show (see the module docstring): controls, bidi
    overrides and invisible format characters removed, secrets masked."""
    if value.isascii():  # the common case: only C0 controls and DEL can be there
        if _ASCII_UNSAFE.search(value):
            value = _patterns()[0].sub(_replacement, value)
    elif _patterns()[0].search(value):
        value = _patterns()[0].sub(_replacement, value)
    return scrub(value)


def inert_data(value: Any) -> Any:
    """`inert` applied to every string inside lists, tuples and dicts (keys too)."""
    if isinstance(value, str):
        return inert(value)
    if isinstance(value, list | tuple):
        return type(value)(inert_data(v) for v in value)
    if isinstance(value, dict):
        return {inert_data(k): inert_data(v) for k, v in value.items()}
    return value


# Fields that name someone: one line wherever they are shown (a feed header, a plain line,
# a chat headline), so a name with line breaks cannot forge a line of its own.
_NAME_FIELDS = frozenset({"author", "author_name"})


def inert_fields(item: _T) -> _T:
    """A copy of a dataclass (a Mention, a ThreadPost, a Posted reply) whose every string
    field, and every string inside its lists and dicts, is inert; names are one line."""
    changes = {f.name: inert_data(getattr(item, f.name)) for f in fields(item) if f.init}
    for name in _NAME_FIELDS.intersection(changes):
        if isinstance(changes[name], str):
            changes[name] = " ".join(changes[name].split())
    return replace(item, **changes)


_BLOCK_TAGS = {"p", "br", "div", "li", "pre", "blockquote", "tr", "h1", "h2", "h3", "h4"}
_SPACES = re.compile(r"[ \t\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


@cache
def _text_extractor() -> type:
    """The HTML parser class, defined on first use: html.parser is needed to read a
    platform's HTML, never to show or export stored mentions."""
    from html.parser import HTMLParser

    class TextExtractor(HTMLParser):
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

    return TextExtractor


def html_to_text(value: str | None) -> str:
    """Plain text from an HTML fragment: tags dropped, entities decoded, made inert."""
    if not value:
        return ""
    if "<" not in value and "&" not in value:
        return clean(value)
    parser = _text_extractor()()
    parser.feed(value)
    parser.close()
    return clean("".join(parser.parts))


def clean(value: str | None) -> str:
    """Normalise already-plain text: made inert, runs of spaces and blank lines folded."""
    if not value:
        return ""
    value = inert(value)
    lines = (_SPACES.sub(" ", line).strip() for line in value.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def unescape(value: str | None) -> str | None:
    """Decode HTML entities in a short field (display names, titles) and clean it."""
    if value is None:
        return None
    import html  # here: it loads its table of 2,000 entities, which showing text never needs

    return clean(html.unescape(value))
