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
    alternatives: tuple[tuple[str, ...], ...]  # OR of ANDs of atoms (words or phrases)
    exclusions: tuple[str, ...] = ()

    @cached_property
    def _patterns(self) -> tuple[tuple[re.Pattern[str], ...], ...]:
        return tuple(tuple(atom_pattern(a) for a in alt) for alt in self.alternatives)

    @cached_property
    def _excluded(self) -> tuple[re.Pattern[str], ...]:
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
    "\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u1950-\u19df"
    "\u19e0-\u19ff\u1a20-\u1aaf\u1b00-\u1b7f\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029"
    "\u3031-\u3035\u3038-\u303c\u3040-\u30ff\u3130-\u318f\u31a0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\ua000-\ua4cf\ua960-\ua97f\ua980-\ua9df\ua9e0-\uaa7f\uaa80-\uaadf"
    "\uac00-\ud7ff\uf900-\ufaff\uff66-\uffdc\U0001b000-\U0001b2ff\U00020000-\U0003134f"
)
_UNSPACED_CHAR = re.compile(f"[{_UNSPACED}]")
# A letter, digit or _ of a script that does put spaces between words: next to the atom, it
# makes a different word. A CJK character next to a Latin brand name does not (我用Acme的).
_SPACED_WORD = f"[^\\W{_UNSPACED}]"


def atom_pattern(atom: str) -> re.Pattern[str]:
    """A regex for one word or phrase: case-insensitive, bounded where its script has words.

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
    head = rf"(?<!{_SPACED_WORD})" if _bounded(atom[:1]) else ""
    tail = rf"(?!{_SPACED_WORD})" if _bounded(atom[-1:]) else ""
    return re.compile(head + body + tail, re.IGNORECASE)


def _unspaced(char: str) -> bool:
    return bool(_UNSPACED_CHAR.match(char))


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
