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

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain, pairwise
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mentionwatch.models import Filters, Mention
    from mentionwatch.store import Store

MIN_WORDS = 6  # fewer words than this group only when marked as a repeat ("RT @x:")
NEAR_LENGTH_RATIO = 0.6  # the shorter text has at least this share of the longer's words
WINDOW_DAYS = 30  # echoes come within this many days of what they repeat
_HASHES, _ROWS = 20, 2  # 20 MinHash values in 10 bands of 2: pairs at resemblance 0.5 meet
# in some band with probability 1 - (1 - 0.5**2)**10 = 0.94; at 0.7, 0.999.
_PAIR = 0x5BD1E995  # odd constants: mixing a word pair's and a band's hashes
_MIX_A, _MIX_B = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F
_KEY_SPACE, _KEY_HALF = 1 << 64, 1 << 63
_TRAILING = ("via", "h/t", "ht", "cc", "by", "rt", "mt", "qt")  # what a text may end with


class _Rules:
    """The compiled patterns, built on first use: the feed imports this
    module for `Folded` only, and compiling these costs it tens of milliseconds."""

    def __init__(self) -> None:
        self.url = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}/\S*", re.I)
        # @a, @a@mastodon.social, not mail@example.com; the "@" first, so re scans for it.
        self.handle = re.compile(r"@(?<![\w@]@)[\w.-]+(?:@[\w.-]+)?")
        # "RT @alice:" at the start (a manual retweet) or after a comment (a quote in text).
        self.repeat = re.compile(r"(?<!\w)(?:rt|mt|qt)\s*@([\w.-]+(?:@[\w.-]+)?)\s*:?", re.I)
        # "(via @alice)", "h/t @alice": a copy that credits whom it repeats.
        self.credit = re.compile(r"\(?\b(?:via|h/t|ht)\s*@([\w.-]+(?:@[\w.-]+)?)\)?", re.I)
        self.trailing = re.compile(rf"(?:\s+(?:{'|'.join(_TRAILING)})\W*)+\s*$", re.I)
        self.truncated = re.compile(r"(?:…|\.\.\.)\s*$")
        # Scripts written without spaces: each character is a word, so shingles still work.
        self.unspaced = re.compile(
            "[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
        )
        self.word = re.compile(r"\w+")


@cache
def _rules() -> _Rules:
    return _Rules()


# Not frozen: a frozen dataclass's __init__ costs ~1 us more, and saving makes one per new
# mention and one per candidate compared. Nothing changes a Signature once it is made.
@dataclass(slots=True)
class Signature:
    """What grouping needs to know about one text."""

    words: tuple[str, ...]
    repeats: str | None  # the handle after "RT @", lowercased, when the post says it repeats
    truncated: bool  # ends in "…" (an old-style retweet cut to fit)
    credits: str | None = None  # the handle after "via @" or "h/t @": a copy that credits

    def dumps(self) -> str:
        """The signature as stored beside the echo keys (read back by loads)."""
        flags = ("t" if self.truncated else "") + "\x1f" + (self.repeats or "") + "\x1f"
        return flags + (self.credits or "") + "\x1f" + "\x1f".join(self.words)

    @staticmethod
    def loads(value: str) -> Signature:
        truncated, repeats, credits, *words = value.split("\x1f")
        return Signature(tuple(words), repeats or None, truncated == "t", credits or None)


def _word_hash(word: str) -> int:
    """A word's stable 32-bit hash (Python's own str hash changes per process); never 0."""
    import hashlib

    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest()) or 1


class _LongWords(dict[str, int]):
    """_word_hash of the words _ShortWords does not hold (longer than _SHORT bytes, or on a
    page with a NUL in some word), computed on first sight."""

    def __missing__(self, word: str) -> int:
        if len(self) > 100_000:
            self.clear()
        value = self[word] = _word_hash(word)
        return value


_SHORT = 16  # bytes: a word this long or shorter is its own 128-bit number (_ShortWords)


class _ShortWords:
    """_word_hash of words of 1 to 16 UTF-8 bytes, keyed by those bytes read as two 64-bit
    integers (exact: words hold no NUL byte, so no two read the same), in an open-addressing
    table of numpy arrays. A page's ~5,000 words are looked up in a few array operations:
    a dict look-up each cost ~230 ns once SQLite's work had pushed the dict out of the CPU
    cache (four dependent memory reads: index, entry, key, value)."""

    def __init__(self) -> None:
        self._empty(1 << 12)

    def _empty(self, size: int) -> None:
        import numpy as np

        # Each slot's word (its two limbs; 0: a free slot, as no word's first byte is 0) and
        # hash side by side: a look-up reads one slot's 24 bytes at once.
        self.slots = np.zeros((size, 3), np.uint64)
        self.count = 0

    def home(self, low: Any, high: Any) -> Any:
        """Each word's first slot to look in."""
        import numpy as np

        bits = len(self.slots).bit_length() - 1  # Fibonacci hashing: the product's top bits
        mixed = (low ^ high * np.uint64(_MIX_B)) * np.uint64(_MIX_A)
        return (mixed >> np.uint64(64 - bits)).astype(np.intp)

    def find(self, low: Any, high: Any) -> Any:
        """Each word's hash, 0 where the table has none."""
        import numpy as np

        places, mask = self.home(low, high), len(self.slots) - 1
        stored = self.slots.take(places, axis=0)
        hit = (stored[:, 0] == low) & (stored[:, 1] == high)
        found = np.where(hit, stored[:, 2], np.uint64(0))
        todo = np.flatnonzero(~hit & (stored[:, 0] != 0))
        while todo.size:  # linear probing: the next slot, until the word or a free one
            places[todo] = (places[todo] + 1) & mask
            stored = self.slots.take(places[todo], axis=0)
            hit = (stored[:, 0] == low[todo]) & (stored[:, 1] == high[todo])
            found[todo[hit]] = stored[hit, 2]
            todo = todo[~hit & (stored[:, 0] != 0)]
        return found

    def add(self, low: Any, high: Any, values: Any) -> None:
        """Words not in the table yet, distinct, with their hashes."""
        import numpy as np

        if self.count + low.size > 100_000:  # bounded, as the long words are
            self._empty(1 << 12)
        if 4 * (self.count + low.size) > len(self.slots):  # a quarter full at most: short probes
            size = len(self.slots)
            while 4 * (self.count + low.size) > size:
                size *= 2
            old = self.slots[self.slots[:, 0] != 0]
            self._empty(size)
            self.add(old[:, 0], old[:, 1], old[:, 2])
        self.count += low.size
        places, mask = self.home(low, high), len(self.slots) - 1
        words = np.stack((low, high, values), axis=1)
        while len(words):
            free = np.flatnonzero(self.slots[places, 0] == 0)
            # One word per free slot this round (the first that wants it); the others probe on.
            placed = free[np.unique(places[free], return_index=True)[1]]
            self.slots[places[placed]] = words[placed]
            left = np.ones(len(words), bool)
            left[placed] = False
            words, places = words[left], (places[left] + 1) & mask


_LONG_WORDS = _LongWords()
_SHORT_WORDS: _ShortWords | None = None
# The masks that keep the first n bytes of 8 read as a little-endian integer (index: n).
_BYTE_MASKS = [(1 << (8 * n)) - 1 for n in range(9)]


_WORDS_AT_ONCE = 20_000  # a page of 100 ordinary posts has ~5,000 words


def _word_hashes(words: list[str]) -> Any:
    """_word_hash of each word, as a numpy uint64 array."""
    import numpy as np

    if len(words) > _WORDS_AT_ONCE:  # a page of huge posts: its arrays, in bounded pieces
        pieces = range(0, len(words), _WORDS_AT_ONCE)
        return np.concatenate([_word_hashes(words[i : i + _WORDS_AT_ONCE]) for i in pieces])
    global _SHORT_WORDS
    if _SHORT_WORDS is None:
        _SHORT_WORDS = _ShortWords()
    joined = "\0".join(words).encode()
    data = np.frombuffer(joined + bytes(_SHORT), np.uint8)
    nuls = np.flatnonzero(data == 0)
    if nuls.size != len(words) - 1 + _SHORT:  # no words, or a word with a NUL: one by one
        return np.array(list(map(_LONG_WORDS.__getitem__, words)), np.uint64)
    ends = nuls[: len(words)]  # the NUL after each word
    starts = np.empty(len(words), np.intp)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    lengths = ends - starts
    fits = (lengths >= 1) & (lengths <= _SHORT)
    short = np.arange(len(words)) if fits.all() else np.flatnonzero(fits)  # most pages: all
    if short.size < len(words):
        starts, lengths = starts[short], lengths[short]
    # Each short word's bytes as two integers, the bytes after its end masked off.
    wide = np.ndarray((data.size - 7,), "<u8", data, 0, (1,))
    masks = np.array(_BYTE_MASKS, np.uint64)
    low = wide[starts] & masks[np.minimum(lengths, 8)]
    high = wide[starts + 8] & masks[np.maximum(lengths - 8, 0)]
    table = _SHORT_WORDS
    found = table.find(low, high)
    new = np.flatnonzero(found == 0)
    while new.size:  # first sight: hashed in Python, filed, then found as the others are
        # One occurrence per home slot: a word's occurrences share theirs, so Python meets
        # each new word once, whatever its count (two new words sharing a home slot take two
        # rounds).
        firsts = new[np.unique(table.home(low[new], high[new]), return_index=True)[1]]
        filed = [_word_hash(words[i]) for i in short[firsts].tolist()]
        table.add(low[firsts], high[firsts], np.array(filed, np.uint64))
        found[new] = table.find(low[new], high[new])
        new = new[found[new] == 0]
    if short.size == len(words):
        return found
    hashes = np.zeros(len(words), np.uint64)
    hashes[short] = found
    rest = np.flatnonzero(~fits).tolist()
    hashes[rest] = list(map(_LONG_WORDS.__getitem__, map(words.__getitem__, rest)))
    return hashes


def band_keys(signatures: Sequence[Signature]) -> list[list[int]]:
    """The LSH keys under which each text is filed (none for a text without words).

    One-permutation MinHash (Li, Owen & Zhang 2012): each word pair is hashed once and
    falls into one of 20 bins, which keep their minimum; empty bins borrow from the next
    full one (Shrivastava & Li 2014, densification by rotation), so every text has 20
    values, and two texts agree in a bin with probability their resemblance. The bins
    are banded by 2: pairs at resemblance 0.5 meet in some band with probability
    1 - (1 - 0.5**2)**10 = 0.94; at 0.7, 0.999.

    The keys are stored (echo_keys), so their arithmetic is fixed: a pair's hash is
    a ^ (b * _PAIR) of its words' hashes, an empty bin takes -(next full bin's value * 20
    + its distance), a band's key is (v1 * _MIX_A ^ v2 * _MIX_B ^ first bin) mod 2**64
    as a signed 64-bit integer. Every value below 2**64 and every step mod 2**64, so
    numpy's wrapping uint64 arithmetic gives exactly those numbers, for a whole page of
    texts in a few array operations (a Python loop over each text's ~50 pairs cost 4x).
    """
    import numpy as np

    words = [s.words for s in signatures]
    counts = np.fromiter(map(len, words), np.intp, len(words))
    hashes = _word_hashes(list(chain.from_iterable(words)))
    ends = np.cumsum(counts)
    text = np.repeat(np.arange(len(signatures)), counts)
    # Each word pairs with the next; a text's last word with none (a one-word text's hash
    # is its word's).
    pairs = hashes.copy()
    pairs[:-1] ^= hashes[1:] * np.uint64(_PAIR)
    pairs[ends[counts == 1] - 1] = hashes[ends[counts == 1] - 1]
    paired = np.ones(len(hashes), bool)
    paired[ends[counts > 1] - 1] = False
    pairs, text = pairs[paired], text[paired]
    # Each text's 20 bins keep their smallest pair hash (all are below 2**63, so 2**64 - 1
    # marks a bin no pair fell into).
    empty = np.uint64(_KEY_SPACE - 1)
    bins = np.full((len(signatures), _HASHES), empty, np.uint64)
    np.minimum.at(bins.reshape(-1), text * _HASHES + (pairs % _HASHES).astype(np.intp), pairs)
    todo = bins == empty
    todo[counts == 0] = False  # no words, no keys
    mins = bins.copy()
    for step in range(1, _HASHES):  # densify: an empty bin takes the next full bin's value
        if not todo.any():
            break
        later = bins[:, (np.arange(_HASHES) + step) % _HASHES]  # [:, i]: bin i + step (mod 20)
        fill = todo & (later != empty)
        mins[fill] = np.uint64(0) - (later[fill] * np.uint64(_HASHES) + np.uint64(step))
        todo &= ~fill
    # Signed 64-bit keys with the band's first bin mixed in, so one table holds every band.
    keys = (mins[:, 0::_ROWS] * np.uint64(_MIX_A)) ^ (mins[:, 1::_ROWS] * np.uint64(_MIX_B))
    keys ^= np.arange(0, _HASHES, _ROWS, dtype=np.uint64)
    signed = (keys ^ np.uint64(_KEY_HALF)).view(np.int64).tolist()  # x - 2**63, as int64
    return [k if n else [] for k, n in zip(signed, counts.tolist(), strict=True)]


def signature(text: str | None) -> Signature:
    """Normalise a post's text into the words that say what it says."""
    r = _rules()
    text = text or ""
    if not text.isascii():  # ASCII is its own NFKC form, and has no unspaced script
        import unicodedata

        text = unicodedata.normalize("NFKC", text)
    text = text.strip()
    # Each pattern below runs only on texts that can hold what it looks for (the literal
    # characters every match contains): most texts have no link, handle or marker.
    truncated = text.endswith(("…", "...")) and bool(r.truncated.search(text))
    if truncated:  # the last word may be cut in the middle: leave it out
        text = r.truncated.sub("", text).rstrip()
        text = text.rsplit(None, 1)[0] if len(text.split()) > 1 else text
    repeats = credits = None
    if "@" in text and _may_mark(text):
        marks: list[str | None] = []
        for pattern in (r.repeat, r.credit):
            mark = pattern.search(text)
            marks.append(mark.group(1).lower() if mark else None)
            if mark and pattern is r.repeat and r.word.search(text[mark.end() :]):
                text = text[mark.end() :]  # "Same here! RT @alice: …": the echo is alice's part
            elif mark:
                text = text[: mark.start()] + " " + text[mark.end() :]
        repeats, credits = marks
    if "/" in text or ("." in text and "www." in text.lower()):  # no lower() without a "."
        text = _without_links(text)
    if "@" in text:
        text = r.handle.sub(" ", text)
    if _may_trail(text):
        text = r.trailing.sub(" ", text)
    if text.isascii():  # \w is [A-Za-z0-9_] here: runs between other characters
        split = text.encode().lower().translate(_NON_WORD).decode().split()
        if "_" in text:  # a lone "_" is no word
            split = [w for w in split if w != "_"]
        words = tuple(split)
    else:
        text = r.unspaced.sub(lambda m: f" {m.group()} ", text.casefold())
        words = tuple(w for w in r.word.findall(text) if w != "_")
    return Signature(words, repeats, truncated, credits)


def _without_links(text: str) -> str:
    """The text with its links taken out. A link never spans whitespace, so the pattern
    runs only on the words that can hold one ("/" or "www."): over a whole 300-character
    text it tried its domain form at every word and cost ~19 us, ~6 us this way. The words
    come back joined by single spaces (nothing after this step tells whitespace apart), and
    a leading or trailing space stays: the trailing-marker pattern needs the space before
    "via" when it is the first word left."""
    words = text.split()
    for i, word in enumerate(words):
        if "/" in word or "www." in word.lower():
            words[i] = _rules().url.sub(" ", word)
    lead = " " if text[:1].isspace() else ""
    return lead + " ".join(words) + (" " if text[-1:].isspace() else "")


# Every ASCII character that is not a word character (\w), as a space (a bytes table:
# bytes.translate is a third of str.translate's cost).
_NON_WORD = bytes(c if c < 128 and (chr(c).isalnum() or chr(c) == "_") else 32 for c in range(256))
_REPEAT_MARKERS = ("rt", "mt", "qt", "via", "h/t", "ht")  # what comes before "@" in a mark


def _may_mark(text: str) -> bool:
    """False when no "@" in the text follows a repeat or credit marker ("RT @", "via @",
    spaces between): the repeat and credit patterns cannot match. Saves their scans of
    the text (a few microseconds each) for most texts with an @handle."""
    at = text.find("@")
    while at != -1:
        end = at
        while end and text[end - 1].isspace():  # the patterns' \s*
            end -= 1
        before = text[max(0, end - 3) : end]
        # Not ASCII: re.I folds some letters into these ("vıa"): leave it to the patterns.
        if not before.isascii() or before.lower().endswith(_REPEAT_MARKERS):
            return True
        at = text.find("@", at + 1)
    return False


def _may_trail(text: str) -> bool:
    """False when the text cannot end in a trailing marker ("… via", "… cc"): its last
    word (before any non-word characters, after whitespace) is not one. Saves the trailing
    pattern's scan of the text (~17 us: it tries every whitespace), which a last word
    merely ending like a marker ("…that") used to cost."""
    end = len(text)
    while end and not (text[end - 1].isalnum() or text[end - 1] == "_"):
        end -= 1
    tail = text[max(0, end - 4) : end]  # the longest marker and the whitespace before it
    if not tail.isascii():  # re.I folds some letters into the markers' ("vıa")
        return True
    words = tail.lower().split()
    # The last word is whole when something (whitespace, then) comes before it in the tail.
    return bool(words) and words[-1] in _TRAILING and len(words[-1]) < len(tail)


def _shingles(words: Sequence[str]) -> set[str]:
    if len(words) < 2:
        return {w for w in words}
    return {f"{a} {b}" for a, b in pairwise(words)}


def _numbers(words: Sequence[str]) -> set[str]:
    # isalpha() (one C call) rules out most words before the per-character look.
    return {w for w in words if not w.isalpha() and any(c.isdigit() for c in w)}


def resemblance(new: Signature, old: Signature) -> float:
    """How sure we are that two texts are one repeated, 0 (not an echo) to 1 (the same words)."""
    if not (new.words and old.words):
        return 0.0
    short = min(len(new.words), len(old.words)) < MIN_WORDS
    if short and not (new.repeats or old.repeats or new.credits or old.credits):
        return 0.0
    if new.words == old.words:
        return 1.0
    if short:
        return 0.0  # a short text is an echo only word for word
    for cut, whole in ((new, old), (old, new)):
        # A truncated retweet is the start of the original.
        if cut.truncated and whole.words[: len(cut.words)] == cut.words:
            return 0.95
    # The shorter first (new's when they are as long).
    shorter, longer = (
        (new.words, old.words) if len(new.words) <= len(old.words) else (old.words, new.words)
    )
    if len(shorter) / len(longer) < NEAR_LENGTH_RATIO:
        return 0.0
    # An echo carries (nearly) every word of what it repeats (checked exactly below): two
    # of the shorter's words found nowhere in the longer already rule it out, and that is
    # most candidates (texts that only share a band key), without the word-by-word match;
    # they are found within the first few words.
    present, missing = set(longer), 0
    for word in shorter:
        if word not in present:
            missing += 1
            if missing > 1:
                return 0.0
    # Versions, prices and dates tell similar-looking posts apart ("v1.2 is out" / "v1.3").
    if _numbers(new.words) != _numbers(old.words):
        return 0.0
    from difflib import SequenceMatcher  # here: the feed imports this module, saving does this

    blocks = [b for b in SequenceMatcher(None, shorter, longer, autojunk=False)
              .get_matching_blocks() if b.size]  # fmt: skip
    if not blocks:
        return 0.0
    matched = sum(b.size for b in blocks)
    # A comment before or after the text is how people quote; words inserted or changed
    # inside it ("Pebblebase *rival Stonebase* raises...") make another statement.
    inside = (blocks[-1].a + blocks[-1].size - blocks[0].a - matched) + (
        blocks[-1].b + blocks[-1].size - blocks[0].b - matched
    )
    # An echo carries (nearly) every word of what it repeats: one word may be lost.
    if inside > 1 or len(shorter) - matched > 1:
        return 0.0
    return matched / len(shorter)


def is_echo(
    a: Signature, b: Signature, a_author: str | None = None, b_author: str | None = None
) -> float:
    """resemblance(), but a post that says whom it repeats ("RT @alice:") only echoes that
    person's post, or another copy of it ("RT @alice", "via @alice")."""
    for this, other, other_author in ((a, b, b_author), (b, a, a_author)):
        if this.repeats is None:
            continue
        named = _bare(this.repeats)
        also = other.repeats or other.credits  # another copy of the same person's post
        if also is not None:
            if _bare(also) != named:
                return 0.0
        elif other_author is not None and _bare(other_author) != named:
            return 0.0
    return resemblance(a, b)


def _bare(author: str) -> str:
    """alice@mastodon.social and @alice and alice.bsky.social compare as 'alice'."""
    name = author.lower().lstrip("@").split("@")[0]
    return name.split(".")[0] if "." in name else name


def text_of(text: str | None, title: str | None) -> str:
    """The words a mention's echo grouping reads: its text, or its title when it has none."""
    return text if text and text.strip() else (title or "")


class Folded:
    """Feed entries: each group of echoes once, as its original (or, when the original does
    not pass the filters, its earliest member that does), placed where its newest member
    comes in the stream. `echoes[entry.id]` lists the group's other members."""

    def __init__(self, store: Store, filters: Filters, mentions: Iterable[Mention]) -> None:
        self.store, self.filters, self.mentions = store, filters, mentions
        self.echoes: dict[int, list[Mention]] = {}

    def __iter__(self) -> Iterator[Mention]:
        seen: set[int] = set()
        for m in self.mentions:
            assert m.id is not None
            root = m.echo_of or m.id
            if root in seen:
                continue
            seen.add(root)
            group = self.store.echo_group(root, self.filters)
            if len(group) <= 1:
                yield m
                continue
            entry = next((g for g in group if g.id == root), group[0])
            assert entry.id is not None
            self.echoes[entry.id] = [g for g in group if g.id != entry.id]
            yield entry
