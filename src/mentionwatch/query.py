"""The term query language and the local matcher every stored mention must pass.

A query is alternatives separated by `OR`; each alternative is one or more atoms that must all
appear (a bare word or a `"quoted phrase"`); an atom prefixed with `-` excludes the mention
wherever it appears. `AND` binds tighter than `OR`, as on X, GitHub and Google:

    "Acme Widgets" OR acmewidgets -"acme corp"

Platforms match loosely (Algolia prefix-matches and tolerates typos, so `acme` finds
`acmeville`), which is why every fetched mention is matched again here: case-insensitively,
on word boundaries, after HTML has been stripped.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise

from mentionwatch.errors import UsageError
from mentionwatch.models import Term

_TOKEN = re.compile(r'(-?)"([^"]*)"|(\S+)')


class QueryError(UsageError, ValueError):
    """A term's query cannot be parsed; the message says what is wrong."""


@dataclass(frozen=True)
class Query:
    """A parsed term query: any alternative whose atoms all appear, and no exclusion."""

    alternatives: tuple[tuple[str, ...], ...]  # OR of ANDs of atoms (words or phrases)
    exclusions: tuple[str, ...] = ()

    @cached_property
    def _patterns(self) -> tuple[tuple[AtomPattern, ...], ...]:
        return tuple(tuple(atom_pattern(a) for a in alt) for alt in self.alternatives)

    @cached_property
    def _excluded(self) -> tuple[AtomPattern, ...]:
        return tuple(atom_pattern(a) for a in self.exclusions)

    def matches(self, text: str) -> bool:
        if any(p.search(text) for p in self._excluded):
            return False
        return any(all(p.search(text) for p in alt) for alt in self._patterns)

    def atoms(self) -> list[str]:
        """Every positive word or phrase, in order, without repeats."""
        return list(dict.fromkeys(a for alt in self.alternatives for a in alt))

    # Renderings for the platforms' own search syntax.

    def quoted_alternatives(self, *, exclusions: bool = True) -> list[str]:
        """One query string per alternative, atoms quoted (no OR needed): Algolia, Bluesky…"""
        tail = [f'-"{e}"' for e in self.exclusions] if exclusions else []
        return [" ".join([*(f'"{a}"' for a in alt), *tail]) for alt in self.alternatives]

    def boolean(self, *, negation: str = "-") -> str:
        """A single string with OR and parentheses: X, GitHub, Reddit."""
        alts = [" ".join(f'"{a}"' for a in alt) for alt in self.alternatives]
        if len(alts) == 1:
            text = alts[0]
        else:
            grouped = (
                f"({a})" if len(alt) > 1 else a
                for a, alt in zip(alts, self.alternatives, strict=True)
            )
            text = "(" + " OR ".join(grouped) + ")"
        excl = [f'{negation}"{e}"' for e in self.exclusions]
        return " ".join([text, *excl])

    def hashtags(self) -> list[str]:
        """Hashtags a term can appear as: each atom with spaces and punctuation removed."""
        tags = (re.sub(r"\W+", "", a).lower() for a in self.atoms())
        return list(dict.fromkeys(t for t in tags if t))


def parse(query: str) -> Query:
    """Parse the term language; raise QueryError naming the problem."""
    if query.count('"') % 2:
        raise QueryError("unbalanced double quote")
    alternatives: list[tuple[str, ...]] = []
    current: list[str] = []
    exclusions: list[str] = []
    for match in _TOKEN.finditer(query):
        negated, phrase, word = match.group(1), match.group(2), match.group(3)
        if word == "OR":
            if not current:
                raise QueryError("OR needs a word or phrase on both sides")
            alternatives.append(tuple(current))
            current = []
            continue
        if word is not None and word.startswith("-") and len(word) > 1:
            negated, word = "-", word[1:]
        atom = " ".join((phrase if phrase is not None else word).split())
        if not atom:
            continue
        (exclusions if negated else current).append(atom)
    if current:
        alternatives.append(tuple(current))
    elif alternatives:
        raise QueryError("OR needs a word or phrase on both sides")
    if not alternatives:
        raise QueryError("no word or phrase to search for")
    return Query(tuple(alternatives), tuple(exclusions))


# Scripts written without spaces between words (Han, kana, Thai, Lao, Khmer, Myanmar,
# Tibetan, Yi, and the Tai and Javanese/Balinese families): a term in them matches anywhere,
# since there is no word boundary to look for (東京 in 我在東京工作). Hangul is here too:
# Korean spaces phrases, but particles attach to names (카카오가, 카카오에서).
_UNSPACED = (
    (0x0E00, 0x0FFF), (0x1000, 0x109F), (0x1100, 0x11FF), (0x1780, 0x17FF), (0x1950, 0x19FF),
    (0x1A20, 0x1AAF), (0x1B00, 0x1B7F), (0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3021, 0x3029),
    (0x3031, 0x3035), (0x3038, 0x303C), (0x3040, 0x30FF), (0x3130, 0x318F), (0x31A0, 0x31FF),
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA000, 0xA4CF), (0xA960, 0xA97F), (0xA980, 0xAADF),
    (0xAC00, 0xD7FF), (0xF900, 0xFAFF), (0xFF66, 0xFFDC), (0x1B000, 0x1B2FF),
    (0x20000, 0x3134F),
)  # fmt: skip
_UNSPACED_STARTS = [start for start, _ in _UNSPACED]


def _unspaced(char: str) -> bool:
    """Whether `char` belongs to a script without spaces between words."""
    code = ord(char)
    i = bisect_right(_UNSPACED_STARTS, code) - 1
    return i >= 0 and code <= _UNSPACED[i][1]


def _spaced_word(char: str) -> bool:
    """A letter, digit or _ of a script that does put spaces between words: next to an atom
    it makes a different word. (A CJK character next to a Latin name does not: 我用Acme的.)"""
    return (char.isalnum() or char == "_") and not _unspaced(char)


class AtomPattern:
    """One word or phrase as the local matcher finds it: case-insensitive, bounded where its
    script has words.

    The regex finds the atom; the word boundaries are checked here, not in the regex, because
    a regex class listing every unspaced script takes milliseconds to compile per atom. (A
    plain class: a dataclass costs feed's start-up more than it saves here.)
    """

    __slots__ = ("head", "regex", "tail")

    def __init__(self, regex: re.Pattern[str], head: bool, tail: bool) -> None:
        self.regex = regex
        self.head = head  # the atom's first character needs a word boundary before it
        self.tail = tail

    def finditer(self, text: str) -> Iterator[tuple[int, int]]:
        """(start, end) of every whole-word occurrence."""
        pos = 0
        while (match := self.regex.search(text, pos)) is not None:
            start, end = match.span()
            bounded = not (self.head and start and _spaced_word(text[start - 1])) and not (
                self.tail and end < len(text) and _spaced_word(text[end])
            )
            if bounded:
                yield start, end
                pos = max(end, start + 1)
            else:
                pos = start + 1  # a match inside the rejected one may still be whole
        return

    def search(self, text: str) -> bool:
        return next(self.finditer(text), None) is not None


def atom_pattern(atom: str) -> AtomPattern:
    """How the local matcher finds one word or phrase.

    Inside a phrase any run of spaces or punctuation matches (so "acme widgets" finds
    "Acme-Widgets"; between unspaced-script words none is needed: "東京 タワー" finds
    東京タワー). At the ends, a letter of a spaced script next to the atom means a different
    word (so "acme" does not find "acmeville" but does find "@acme", "#acme" and "用Acme的");
    an end in an unspaced script has no boundary at all.
    """
    parts = atom.split()
    body = re.escape(parts[0])
    for before, after in pairwise(parts):
        joint = "*" if _unspaced(before[-1]) or _unspaced(after[0]) else "+"
        body += rf"[\W_]{joint}" + re.escape(after)
    return AtomPattern(re.compile(body, re.IGNORECASE), _bounded(atom[0]), _bounded(atom[-1]))


def _bounded(char: str) -> bool:
    """Whether an atom ending in `char` needs a word boundary there."""
    return (char.isalnum() or char == "_") and not _unspaced(char)


@dataclass
class Matcher:
    """Matches a mention's text against every configured term (parsed once)."""

    terms: list[Term]

    @cached_property
    def _parsed(self) -> list[tuple[Term, Query]]:
        return [(t, parse(t.query)) for t in self.terms]

    def matching_terms(self, source: str, text: str) -> list[str]:
        return [t.name for t, q in self._parsed if t.applies_to(source) and q.matches(text)]
