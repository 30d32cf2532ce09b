"""Importing archives: twarc2 JSONL (X/Twitter), mentionwatch's own JSONL export, and CSV
with the export's columns (ours, or another tool's export mapped to them).

Streamed: lines are read and saved in pages of PAGE (one transaction each, like a poll's
page), so memory stays flat and a killed import repeats work but never duplicates (keys
dedupe). A file is hostile too: a line that is not UTF-8, longer than MAX_LINE, nested too
deeply or not a record is named by its number and skipped; the rest is saved. Text from a
file is outside text: made inert before it is matched and stored. Mentions without terms
are matched against the configured terms; those without a sentiment are tagged as a poll
tags them. No alerts are queued: an archive is not news.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from itertools import repeat
from math import inf
from typing import IO, TYPE_CHECKING, Any

from mentionwatch.errors import UsageError
from mentionwatch.http import MAX_BODY_BYTES
from mentionwatch.models import MENTION_COLUMNS, SENTIMENTS, STATUSES, Mention, parse_iso
from mentionwatch.text import inert_fields

if TYPE_CHECKING:
    from datetime import datetime

    from mentionwatch.config import Config
    from mentionwatch.store import Store

FORMATS = ("jsonl", "csv", "twarc")
PAGE = 500
# Bytes in one line (and one CSV cell): what a source may read in one page (http's cap), so
# no mention a poll saved (and exported) is refused. A longer line comes from a broken or
# hostile file, and is refused before it is held in memory whole (tagging and indexing a
# mention take dozens of times its size: a 50 MB line took 4 GB).
MAX_LINE = MAX_BODY_BYTES
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ImportError_(UsageError):
    """A file that cannot be imported at all (unknown format, unreadable)."""


@dataclass
class ImportReport:
    read: int = 0
    new: int = 0
    unmatched: int = 0  # no configured term matched (and no --term given)
    problems: list[str] = field(default_factory=list)  # "FILE:LINE: what is wrong"
    bad: int = 0


def sniff(name: str, first: str) -> str:
    """The format of a file from its name and first line."""
    lower = name.lower()
    if lower.endswith(".csv"):
        return "csv"
    line = first.strip()
    if not line.startswith("{"):
        if "," in line and "text" in line:
            return "csv"
        raise ImportError_(f"cannot tell the format of {name}: pass --format {'|'.join(FORMATS)}")
    try:
        obj = json.loads(line)
    except ValueError:
        raise ImportError_(f"{name}:1: not JSON; pass --format csv for a CSV file") from None
    if isinstance(obj, dict) and "key" in obj and "source" in obj:
        return "jsonl"
    if isinstance(obj, dict) and ("data" in obj or ("id" in obj and "text" in obj)):
        return "twarc"
    raise ImportError_(
        f"{name}:1: neither a mentionwatch export (key, source, text…) nor twarc2 output "
        "(data, includes): pass --format"
    )


class Lines:
    """A binary file's lines as text, each at most MAX_LINE bytes, without a leading BOM. A
    line too long or not UTF-8 is a problem (in `problems`, by number) and reads as an empty
    line, so the lines after it keep their numbers."""

    def __init__(self, handle: IO[bytes], name: str) -> None:
        self.handle, self.name = handle, name
        self.problems: list[str] = []
        self.number = 0

    def __iter__(self) -> Iterator[str]:
        while raw := self.handle.readline(MAX_LINE + 1):
            self.number += 1
            if self.number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            yield self._text(raw)

    def _text(self, raw: bytes) -> str:
        if len(raw) > MAX_LINE:
            while raw and not raw.endswith(b"\n"):  # the rest of the line, never held whole
                raw = self.handle.readline(MAX_LINE)
            return self._bad(f"longer than {MAX_LINE // 2**20} MB")
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            return self._bad(f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})")

    def _bad(self, what: str) -> str:
        self.problems.append(f"{self.name}:{self.number}: {what}")
        return "\n"

    def take_problems(self) -> list[str]:
        problems, self.problems = self.problems, []
        return problems


def read(lines: Iterable[str], fmt: str, name: str) -> Iterator[tuple[int, Mention | str]]:
    """(line number, Mention or a problem) for each item of the file."""
    if fmt == "csv":
        yield from _csv(lines, name)
        return
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"{name}:{number}: not JSON ({exc.msg})"
            continue
        except RecursionError:  # [[[[… a few thousand deep
            yield number, f"{name}:{number}: nested too deeply"
            continue
        items = _twarc(obj, name, number) if fmt == "twarc" else [_record(obj, name, number)]
        for item in items:
            yield number, item


def _record(obj: Any, name: str, number: int) -> Mention | str:
    """One mentionwatch JSONL record (the keys the export writes)."""
    where = f"{name}:{number}"
    if not isinstance(obj, dict):
        return f"{where}: not an object"
    key = obj.get("key")
    if not isinstance(key, str) or ":" not in key:
        return f'{where}: "key" must be "<source>:<native id>"'
    source, native_id = key.split(":", 1)
    created = _time(obj.get("created_at"))
    if isinstance(created, str):
        return f'{where}: "created_at" {created}'
    fetched_at = _time(obj["fetched_at"]) if obj.get("fetched_at") else None  # unknown: now
    if isinstance(fetched_at, str):
        return f'{where}: "fetched_at" {fetched_at}'
    try:
        values: dict[str, Any] = {}
        for column, kind in MENTION_COLUMNS:
            if column in ("source", "native_id", "created_at", "fetched_at", "echo_of"):
                continue  # echo_of names an id of the other database: regrouped here
            if column in obj and obj[column] is not None:
                value = obj[column]
                if wrong := _wrong(column, value):
                    return f'{where}: "{column}" {wrong}'
                values[column] = tuple(value) if kind == "json" and isinstance(value, list) \
                    else value  # fmt: skip
        m = Mention(source=source, native_id=native_id, created_at=created,
                    fetched_at=fetched_at, **{"text": "", **values})  # fmt: skip
    except (TypeError, ValueError) as exc:
        return f"{where}: {exc}"
    if not isinstance(m.text, str):
        return f'{where}: "text" must be a string'
    terms = obj.get("terms")
    m.terms = [t for t in terms if isinstance(t, str)] if isinstance(terms, list) else []
    return m


# What each stored column holds, read from Mention's own annotations ("int | None" -> int),
# so a record with a text reach or an unknown status is a named bad line, not a crash or a
# stored value that breaks the JSONL record's types.
_KINDS = {f.name: str(f.type).split(" ")[0].split("[")[0] for f in fields(Mention)}
_EXPECTED: dict[str, tuple[type | tuple[type, ...], str]] = {
    "str": (str, "a string"), "int": (int, "an integer"), "float": ((int, float), "a number"),
    "tuple": (list, "a list of strings"), "dict": (dict, "an object"),
}  # fmt: skip
_CHOICES = {"sentiment": SENTIMENTS, "status": STATUSES}
_RANGES = {"polarity": (-1.0, 1.0), "relevance": (0.0, 1.0), "llm_relevance": (0.0, 1.0)}


def _time(value: Any) -> datetime | str:
    """A record's time, or what is wrong with it."""
    try:
        return parse_iso(value)
    except (TypeError, ValueError, AttributeError):
        shown = json.dumps(value)[:40] if value not in (None, "") else "empty"
        return f"must be an ISO 8601 time such as 2026-11-01T09:30:00Z, not {shown}"


def _wrong(column: str, value: Any) -> str | None:
    """What is wrong with a record's value for a column, or None."""
    types, expected = _EXPECTED.get(_KINDS.get(column, ""), (object, ""))
    if not isinstance(value, types) or isinstance(value, bool):
        return f"must be {expected}, not {json.dumps(value)[:40]}"
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        return f"must be {expected}"
    if column in _CHOICES and value not in _CHOICES[column]:
        return f"must be one of {', '.join(_CHOICES[column])}, not {json.dumps(value)[:40]}"
    low, high = _RANGES.get(column, (-inf, inf))
    if isinstance(value, int | float) and not low <= value <= high:
        return f"must be between {low:g} and {high:g}, not {value}"
    return None


def _csv(lines: Iterable[str], name: str) -> Iterator[tuple[int, Mention | str]]:
    reader = csv.DictReader(lines)
    if not reader.fieldnames or not {"key", "text", "created_at"} <= set(reader.fieldnames):
        raise ImportError_(f"{name}:1: a CSV import needs the export's columns "
                           "(at least key, text, created_at)")  # fmt: skip
    kinds = dict(MENTION_COLUMNS)
    csv.field_size_limit(MAX_LINE)  # an unclosed quote takes in the lines after it up to here
    rows = iter(reader)
    while True:
        start = reader.line_num + 1  # a record may take several lines
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a cell past the limit; the reader goes on after it
            yield start, f"{name}:{start}: {exc}"
            continue
        number = start
        obj: dict[str, Any] = {}
        for column, cell in row.items():
            if column is None or cell is None:
                continue
            value: Any = _unneutralised(cell)
            if value == "":
                value = None
            elif column in ("terms", "intents"):
                value = [v.strip() for v in value.split(",") if v.strip()]
            elif _KINDS.get(column) in ("int", "float"):  # reach, polarity, relevance…
                value = _number(value, int if _KINDS[column] == "int" else float)
            elif kinds.get(column) == "json":
                value = _json_cell(value)
            obj[column] = value
        yield number, _record(obj, name, number)


def _unneutralised(cell: str) -> str:
    """A cell as the export wrote it before the apostrophe that stops spreadsheet formulas."""
    if cell.startswith("'") and cell[1:].lstrip(" ").startswith(_FORMULA_START):
        return cell[1:]
    return cell


def _json_cell(value: str) -> Any:
    """The cell's JSON; the cell as it is when it is not JSON (the record check names it)."""
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return value


def _number(value: str, kind: Callable[[str], Any]) -> Any:
    """The cell as a number; as it is when it is not one (the record check names it)."""
    try:
        return kind(value)
    except ValueError:
        return value


def _twarc(obj: Any, name: str, number: int) -> list[Mention | str]:
    """twarc2's output: a response page (data + includes.users), or one flattened post."""
    from mentionwatch.http import SourceError
    from mentionwatch.sources.common import Obj
    from mentionwatch.sources.x import to_mention

    where = f"{name}:{number}"
    if not isinstance(obj, dict):
        return [f"{where}: not an object"]
    if isinstance(obj.get("data"), list):
        posts = obj["data"]
        includes = obj.get("includes")
        listed = includes.get("users", []) if isinstance(includes, dict) else []
        users = {u.get("id"): u for u in listed if isinstance(u, dict)}
    else:  # twarc2 flatten: the author is inside the post
        posts = [obj]
        author = obj.get("author")
        users = {obj.get("author_id"): author} if isinstance(author, dict) else {}
    result: list[Mention | str] = []
    for i, post in enumerate(posts):
        try:
            m = to_mention(Obj(post, f"{where}: post {i + 1}"), users)
        except SourceError as exc:
            result.append(str(exc))
            continue
        if m is not None:
            result.append(m)
    return result


def run(
    config: Config,
    store: Store,
    handle: IO[bytes],
    name: str,
    fmt: str | None = None,
    term: str | None = None,
    advance: Callable[[int], None] = lambda done: None,
) -> ImportReport:
    """Import one file (or stdin), read as bytes; `term` puts every mention under that term."""
    from mentionwatch.query import Matcher

    source = Lines(handle, name)
    each = iter(source)
    first, before = "", 0  # the first line with something on it (one not UTF-8 has not)
    for first in each:
        if first.strip():
            break
        before += 1
    fmt = fmt or sniff(name, first)
    report = ImportReport()
    matcher = Matcher(list(config.terms))
    tag = _tagger(config, store)

    def lines() -> Iterator[str]:
        yield from repeat("\n", before)
        if first.strip():
            yield first
        yield from each

    def bad(problems: Iterable[str]) -> None:
        for problem in problems:
            report.bad += 1
            if len(report.problems) < 5:
                report.problems.append(problem)

    page: list[Mention] = []
    for _, item in read(lines(), fmt, name):
        bad(source.take_problems())  # the lines before this item's
        if isinstance(item, str):
            bad([item])
            continue
        report.read += 1
        m = inert_fields(item)
        if term:
            m.terms = list(dict.fromkeys([*m.terms, term]))
        elif not m.terms:
            m.terms = matcher.matching_terms(m.source, m.match_text)
        if not m.terms:
            report.unmatched += 1
            continue
        page.append(m)
        if len(page) == PAGE:
            report.new += _save(store, page, tag)
            advance(report.read)
            page = []
    bad(source.take_problems())
    report.new += _save(store, page, tag)
    advance(report.read)
    return report


def _save(store: Store, page: list[Mention], tag: Callable[[list[Mention]], None]) -> int:
    if not page:
        return 0
    new = store.unknown_keys([m.key for m in page])
    tag([m for m in page if m.key in new and m.sentiment is None])
    return store.save_page("import", "import", page, None)


def _tagger(config: Config, store: Store) -> Callable[[list[Mention]], None]:
    """Tags mentions as a poll does (tagging.Tagger: terms masked, the configured analyzer,
    relevance), loading the analyzer only when a mention needs it."""
    tagger = None

    def tag(mentions: list[Mention]) -> None:
        nonlocal tagger
        if not mentions:
            return
        if tagger is None:
            from mentionwatch.tagging import Tagger, analyzer_for

            tagger = Tagger(config, store, analyzer_for(config, store))
        tagger.tag(mentions)

    return tag
