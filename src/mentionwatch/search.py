"""The --search language: FTS5's own query syntax, made forgiving, read once here.

`fts_query` turns it into the FTS5 expression SQLite runs; `search_tree` parses it as FTS5
reads it, for PostgreSQL's full-text search (engines/postgres.py). Kept apart from store.py
so that a feed without --search does not load it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mentionwatch.errors import UsageError
from mentionwatch.models import STATUSES


class SearchError(UsageError):
    """A --search query that cannot be read; the message says what to change."""


FTS_COLUMNS = ("text", "title", "author")  # what --search reads (mentions_fts has status too)
_SEARCH_TOKEN = re.compile(r'\s+|[()]|-?(?:[A-Za-z_]+:)?(?:"[^"]*"?\*?|[^\s()"]+)')
# A word character or any non-ASCII one. Spelt as a class, [\w\x80-\U0010ffff], it took
# 2-20 ms to compile at every start-up (the class spans every code point).
_BAREWORD = re.compile(r"(?:\w|[^\x00-\x7f])+\*?")


def fts_query(text: str) -> str:
    """The --search language as an FTS5 expression (SQLite's engine runs it as it is)."""
    return " ".join(_search_items(text))


def _search_items(text: str) -> list[str]:
    """The --search language read into FTS5's pieces: operands, operators, parentheses.

    Users write FTS5's own syntax, made forgiving: words (implicit AND), "phrases", prefix*,
    OR / AND / NOT in capitals, parentheses, `-word` to exclude (as in the term language),
    and column filters `author:`, `title:`, `text:`. Words with punctuation (acme.dev,
    @acme) are quoted for FTS5, so only a malformed query is an error, raised as SearchError.
    """
    items: list[str] = []  # FTS5 pieces: operands, operators, parentheses
    pos = 0
    depth = 0
    for match in _SEARCH_TOKEN.finditer(text):
        if match.start() != pos:
            break
        pos = match.end()
        token = match.group()
        if token.isspace():
            continue
        if token in ("(", ")"):
            depth += 1 if token == "(" else -1
            if depth < 0:
                raise SearchError(f"--search: a ')' without its '(' in {text!r}")
            if token == ")" and items and items[-1] in ("(", "OR", "AND", "NOT"):
                raise SearchError(f"--search: nothing before ')' in {text!r}")
            items.append(token)
            continue
        if token in ("OR", "AND", "NOT"):
            if not items or items[-1] in ("(", "OR", "AND", "NOT"):
                raise SearchError(f"--search: {token} needs a word before it in {text!r}")
            items.append(token)
            continue
        negated = token.startswith("-") and len(token) > 1
        operand = _fts_operand(token[1:] if negated else token, text)
        if negated:
            if not items or items[-1] in ("(", "OR", "AND", "NOT"):
                raise SearchError(
                    f"--search: {token} excludes, so it needs a word to find before it "
                    f"(e.g. 'acme {token}') in {text!r}"
                )
            items.append("NOT")
        items.append(operand)
    if pos != len(text):
        raise SearchError(f"--search: unclosed quote in {text!r}")
    if depth:
        raise SearchError(f"--search: a '(' without its ')' in {text!r}")
    if not items:
        raise SearchError("--search: empty query; give a word to find")
    if items[-1] in ("OR", "AND", "NOT"):
        raise SearchError(f"--search: {items[-1]} needs a word after it in {text!r}")
    return items


def fts_match(search: str, statuses: Sequence[str] = ()) -> str:
    """The MATCH expression of a --search: the user's query over the text columns only
    (mentions_fts also indexes the status, m011_search_order), and any of `statuses`."""
    query = "{" + " ".join(FTS_COLUMNS) + "} : (" + fts_query(search) + ")"
    if not statuses:
        return query
    if not set(statuses) <= set(STATUSES):
        raise ValueError(f"unknown status in {statuses!r}")
    return query + " AND (" + " OR ".join(f'status : "{s}"' for s in statuses) + ")"


def _fts_operand(token: str, text: str) -> str:
    """One word, prefix or phrase, with its column filter, quoted as FTS5 needs."""
    column, sep, rest = token.partition(":")
    if sep and column.isalpha() and not rest and column.lower() in FTS_COLUMNS:
        raise SearchError(f"--search: {token} needs a word after it, e.g. '{token}alice'")
    if sep and column.isalpha() and rest and not rest.startswith("//"):
        if column.lower() not in FTS_COLUMNS:
            raise SearchError(
                f"--search: unknown column {column + ':'!r} in {text!r} "
                f"(columns: {', '.join(c + ':' for c in FTS_COLUMNS)})"
            )
        return f"{column.lower()}:{_fts_operand(rest, text)}"
    if token.startswith('"'):
        if token.endswith('"*'):
            return token
        if len(token) < 2 or not token.endswith('"'):
            raise SearchError(f"--search: unclosed quote in {text!r}")
        return token
    if _BAREWORD.fullmatch(token):
        return token
    word, star = (token[:-1], "*") if token.endswith("*") else (token, "")
    if not word:
        raise SearchError(f"--search: '*' ends a prefix, e.g. 'pebble*', in {text!r}")
    return '"' + word.replace('"', '""') + '"' + star


@dataclass(frozen=True)
class SearchWords:
    """An operand of --search: words to find in a row (as a phrase when there are several),
    in one column or any, the last one a prefix with `prefix`."""

    words: str
    column: str | None = None
    prefix: bool = False


@dataclass(frozen=True)
class SearchNode:
    """ "AND" / "OR" of its args, or "NOT": args[0] without args[1]."""

    op: str
    args: tuple[SearchWords | SearchNode, ...]


def search_tree(text: str) -> SearchWords | SearchNode:
    """The --search language parsed as FTS5 reads it, for engines without FTS5 (PostgreSQL).

    FTS5's precedence, tightest first: words side by side (an implicit AND), then NOT, then
    AND, then OR; so `a NOT b c` is `a NOT (b c)` and `a NOT b AND c` is `(a NOT b) AND c`."""
    items = _search_items(text)
    pos = 0

    def peek() -> str | None:
        return items[pos] if pos < len(items) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return items[pos - 1]

    def binary(op: str, operand: Callable[[], SearchWords | SearchNode]) -> Any:
        node = operand()
        while peek() == op:
            take()
            right = operand()
            node = SearchNode(op, (node, right)) if op == "NOT" else _joined(op, node, right)
        return node

    def primary() -> SearchWords | SearchNode:
        token = take()
        if token == "(":
            node = binary("OR", lambda: binary("AND", lambda: binary("NOT", side_by_side)))
            take()  # ")": _search_items checked the balance
            return node
        return _search_operand(token)

    def side_by_side() -> SearchWords | SearchNode:
        node = primary()
        while peek() not in (None, ")", "OR", "AND", "NOT"):
            node = _joined("AND", node, primary())
        return node

    return binary("OR", lambda: binary("AND", lambda: binary("NOT", side_by_side)))


def _joined(op: str, left: SearchWords | SearchNode, right: SearchWords | SearchNode) -> SearchNode:
    args = left.args if isinstance(left, SearchNode) and left.op == op else (left,)
    return SearchNode(op, (*args, right))


def _search_operand(token: str) -> SearchWords:
    """An FTS5 operand as _fts_operand wrote it: [column:]word[*] or [column:]"phrase"[*]."""
    column, sep, rest = token.partition(":")
    if sep and column in FTS_COLUMNS and rest:
        token = rest
    else:
        column = None  # type: ignore[assignment]
    prefix = token.endswith("*")
    token = token.removesuffix("*")
    if token.startswith('"'):
        token = token[1:-1].replace('""', '"')
    return SearchWords(token, column, prefix)


def check_search(text: str) -> None:
    """Raise SearchError now, before any output, when a --search query is malformed."""
    fts_query(text)
