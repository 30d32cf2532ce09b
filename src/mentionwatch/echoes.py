"""Echoes: retweets, quote posts, reposts and cross-posts of one text, recognised as one.

A post is an echo of another when their words are the same once links, @handles, "RT"/"via"
markers, hashtag signs, emoji, punctuation and case are set aside (exact), or nearly the same
(near-duplicate: a few words added or changed, or a truncated retweet). The store groups them
at save time: each mention's MinHash band keys (Broder's shingle resemblance, banded for
locality-sensitive lookup) go into an indexed table, so finding candidates is one indexed
query per new mention, and only those few candidates are compared word by word here.

Short texts ("acme is down") are said independently by many people: they group only when
the post itself says it repeats someone ("RT @alice: acme is down") and the candidate is
that someone's post.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

MIN_WORDS = 6  # fewer words than this group only when marked as a repeat ("RT @x:")
NEAR_CONTAINMENT = 0.8  # share of the shorter text's word pairs found in the longer one
NEAR_LENGTH_RATIO = 0.6  # the shorter text has at least this share of the longer's words
WINDOW_DAYS = 30  # echoes come within this many days of what they repeat
_HASHES, _ROWS = 20, 2  # 20 MinHash values in 10 bands of 2: pairs at resemblance 0.5 meet
# in some band with probability 1 - (1 - 0.5**2)**10 = 0.94; at 0.7, 0.999.
_PRIME = (1 << 61) - 1
_COEFFS = [
    (
        int.from_bytes(hashlib.blake2b(f"a{i}".encode(), digest_size=8).digest()) % _PRIME or 1,
        int.from_bytes(hashlib.blake2b(f"b{i}".encode(), digest_size=8).digest()) % _PRIME,
    )
    for i in range(_HASHES)
]

_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}/\S*", re.I)
_HANDLE = re.compile(r"(?<![\w@])@[\w.-]+(?:@[\w.-]+)?")  # @alice, @alice@mastodon.social
_REPEAT_MARK = re.compile(r"^\W*(?:rt|mt|qt)\s*@([\w.-]+(?:@[\w.-]+)?)\s*:?", re.I)
_TRAILING = re.compile(r"(?:\s+(?:via|h/t|ht|cc|by|rt|mt|qt)\W*)+\s*$", re.I)
_TRUNCATED = re.compile(r"(?:…|\.\.\.)\s*$")
# Scripts written without spaces: each character is a word, so shingles still work.
_UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Signature:
    """What grouping needs to know about one text."""

    words: tuple[str, ...]
    repeats: str | None  # the handle after "RT @", lowercased, when the post says it repeats
    truncated: bool  # ends in "…" (an old-style retweet cut to fit)

    @property
    def groupable(self) -> bool:
        return len(self.words) >= MIN_WORDS or (self.repeats is not None and bool(self.words))

    def band_keys(self) -> list[int]:
        """The LSH keys under which this text is filed (empty when it cannot group)."""
        if not self.groupable:
            return []
        shingles = _shingles(self.words)
        bases = [
            int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest()) for s in shingles
        ]
        mins = [min((a * x + b) % _PRIME for x in bases) for a, b in _COEFFS]
        keys = []
        for band in range(_HASHES // _ROWS):
            rows = mins[band * _ROWS : (band + 1) * _ROWS]
            digest = hashlib.blake2b(repr((band, rows)).encode(), digest_size=8).digest()
            keys.append(int.from_bytes(digest, signed=True))
        return keys


def signature(text: str | None) -> Signature:
    """Normalise a post's text into the words that say what it says."""
    text = unicodedata.normalize("NFKC", text or "")
    truncated = bool(_TRUNCATED.search(text))
    mark = _REPEAT_MARK.match(text)
    repeats = mark.group(1).lower().lstrip("@") if mark else None
    if mark:
        text = text[mark.end() :]
    text = _URL.sub(" ", text)
    text = _HANDLE.sub(" ", text)
    text = _TRAILING.sub(" ", _TRUNCATED.sub(" ", text.rstrip()))
    text = _UNSPACED.sub(lambda m: f" {m.group()} ", text.casefold())
    words = tuple(w for w in _WORD.findall(text) if w != "_")
    if truncated and words:
        words = words[:-1]  # the last word may be cut in the middle
    return Signature(words, repeats, truncated)


def _shingles(words: Sequence[str]) -> set[str]:
    if len(words) < 2:
        return {w for w in words}
    return {f"{a} {b}" for a, b in pairwise(words)}


def _numbers(words: Sequence[str]) -> set[str]:
    return {w for w in words if any(c.isdigit() for c in w)}


def resemblance(new: Signature, old: Signature) -> float:
    """How sure we are that `new` repeats `old`, 0 (not an echo) to 1 (the same words)."""
    if not (new.groupable and old.groupable):
        return 0.0
    short = min(len(new.words), len(old.words)) < MIN_WORDS
    if short and new.repeats is None and old.repeats is None:
        return 0.0
    if new.words == old.words:
        return 1.0
    if short:
        return 0.0  # a short text is an echo only word for word
    for cut, whole in ((new, old), (old, new)):
        # A truncated retweet is the start of the original.
        if cut.truncated and whole.words[: len(cut.words)] == cut.words:
            return 0.95
    # Versions, prices and dates tell similar-looking posts apart ("v1.2 is out" / "v1.3").
    if _numbers(new.words) != _numbers(old.words):
        return 0.0
    a, b = _shingles(new.words), _shingles(old.words)
    shorter, longer = sorted((len(new.words), len(old.words)))
    if shorter / longer < NEAR_LENGTH_RATIO:
        return 0.0
    containment = len(a & b) / min(len(a), len(b))
    return containment if containment >= NEAR_CONTAINMENT else 0.0


def is_echo(new: Signature, old: Signature, old_author: str | None = None) -> float:
    """resemblance(), but a post that says whom it repeats only echoes that person."""
    if new.repeats and old_author and _bare(old_author) != _bare(new.repeats):
        return 0.0
    return resemblance(new, old)


def _bare(author: str) -> str:
    """alice@mastodon.social and @alice and alice.bsky.social compare as 'alice'."""
    name = author.lower().lstrip("@").split("@")[0]
    return name.split(".")[0] if "." in name else name


def text_of(text: str | None, title: str | None) -> str:
    """The words a mention's echo grouping reads: its text, or its title when it has none."""
    return text if text and text.strip() else (title or "")
