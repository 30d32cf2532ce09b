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


def atom_pattern(atom: str) -> re.Pattern[str]:
    """A regex for one word or phrase: case-insensitive, bounded by non-word characters.

    Inside a phrase any run of spaces or punctuation matches (so "acme widgets" finds
    "Acme-Widgets"); at the ends, a word character next to the atom means a different word
    (so "acme" does not find "acmeville" but does find "@acme" and "#acme").
    """
    parts = [re.escape(p) for p in atom.split()]
    body = r"[\W_]+".join(parts)
    head = r"(?<!\w)" if atom[:1].isalnum() or atom[:1] == "_" else ""
    tail = r"(?!\w)" if atom[-1:].isalnum() or atom[-1:] == "_" else ""
    return re.compile(head + body + tail, re.IGNORECASE)


@dataclass
class Matcher:
    """Matches a mention's text against every configured term (parsed once)."""

    terms: list[Term]

    @cached_property
    def _parsed(self) -> list[tuple[Term, Query]]:
        return [(t, parse(t.query)) for t in self.terms]

    def matching_terms(self, source: str, text: str) -> list[str]:
        return [t.name for t, q in self._parsed if t.applies_to(source) and q.matches(text)]
