"""Ingest speed: Store.save_page against raw sqlite3 doing the same work, in one run.

    python benchmarks/ingest.py [--count 20000] [--rounds 3]

Both sides save the same realistic mentions (benchmarks/corpus.py: ~300 characters, Zipf
words; 15% found by a second term, so they arrive twice, as two jobs of a poll deliver
them) in pages of 100, one transaction per page with the cursor, into a fresh database
with mentionwatch's schema (unique key, term rows, FTS5 external-content index kept by
triggers, the feed's indexes, echo keys and signatures).

What the anchor does, with plain sqlite3 statements: per page, one lookup of the known
keys, the next free id, an executemany INSERT of the new rows, the term rows, the update of
known ones' terms (a copy on the row: m014_terms_on_mentions) and reach (and priority), the
echo key and signature rows, the query that finds which new mentions share an echo key with
an earlier one and, for those, the candidate query; the cursor upsert: the statements
Store.save_page runs (it also links the echoes it finds; this corpus has almost none).

What it does not do (mentionwatch does, in Python): build the rows from Mentions, normalise
the texts and compute their MinHash keys, their echo windows and the seconds of their time
keys (the anchor's are computed before the clock starts, by save_page's own helpers),
compare echo candidates word by word, compute priority. So the ratio is mentionwatch's whole
cost per mention against SQLite's cost of the same writes.

"with the default analyzer": mentionwatch also tags each page's new mentions as a poll does
(Poller._tag_new: one lookup of the unknown keys, then tagging.Tagger: terms masked, the
default analyzer, relevance); the anchor stays the same.

The two sides take turns page by page (who goes first alternates), each into its own fresh
database, so the machine's changing load falls on both alike. Ratios are anchor time /
mentionwatch time (higher is better; 1.0 = SQLite's speed): the median and range of
`--rounds` rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import corpus

from mentionwatch import echoes
from mentionwatch.models import Mention, iso, parse_iso
from mentionwatch.store import (
    _INSERT_COLUMNS,
    Store,
    _candidate_query,
    _echo_window,
    _row,
    _sharing_keys,
    _time_key_at,
    terms_text,
)

PAGE = 100


def arrivals(count: int) -> list[tuple[str, list[Mention]]]:
    """(scope, page) in the order a poll saves them: every mention under its first term,
    then the 15% that a second term also finds, again, under that term."""
    base = corpus.mentions(count)
    pages = [(corpus.TERMS[0], base[i : i + PAGE]) for i in range(0, count, PAGE)]
    second = [m for m in base if corpus.TERMS[1] in m.terms]
    for i in range(0, len(second), PAGE):
        again = [Mention(source=m.source, native_id=m.native_id, text=m.text,
                         created_at=m.created_at, url=m.url, author=m.author, reach=m.reach,
                         terms=[corpus.TERMS[1]]) for m in second[i : i + PAGE]]  # fmt: skip
        pages.append((corpus.TERMS[1], again))
    return pages


def copy(pages: list[tuple[str, list[Mention]]]) -> list[tuple[str, list[Mention]]]:
    """Fresh Mention objects (save_page sets ids on them)."""
    return [(scope, [Mention(source=m.source, native_id=m.native_id, text=m.text,
                             created_at=m.created_at, url=m.url, author=m.author,
                             reach=m.reach, terms=list(m.terms)) for m in page])
            for scope, page in pages]  # fmt: skip


class Mentionwatch:
    """Store.save_page, page by page; with `tag`, each page's new mentions are first tagged
    as Poller._tag_new tags them (tagging.Tagger: terms masked, the default analyzer,
    relevance)."""

    def __init__(self, pages: list[tuple[str, list[Mention]]], db: Path, tag: bool) -> None:
        self.pages, self.store, self.tagger = pages, Store(db), None
        if tag:
            from mentionwatch.config import Config
            from mentionwatch.models import Term
            from mentionwatch.sentiment import get_analyzer
            from mentionwatch.tagging import Tagger

            config = Config(path=None, db_path=db, terms=tuple(Term(t, t) for t in corpus.TERMS))
            self.tagger = Tagger(config, self.store, get_analyzer())
            self.tagger.tag(copy(pages[:1])[0][1][:1])  # the analyzer's one-time load

    def step(self, n: int) -> None:
        scope, page = self.pages[n]
        if self.tagger is not None:
            new = self.store.unknown_keys([m.key for m in page])
            self.tagger.tag([m for m in page if m.key in new])
        self.store.save_page("hackernews", scope, page, f"cursor-{n}")

    def close(self) -> None:
        self.store.close()


def prepare_anchor(pages: list[tuple[str, list[Mention]]]) -> list[tuple[str, list, list]]:
    """Everything the anchor writes, computed before its clock starts."""
    prepared = []
    for scope, page in pages:
        rows, echo = [], []
        sigs = [echoes.signature(echoes.text_of(m.text, m.title)) for m in page]
        for m, sig, keys in zip(page, sigs, echoes.band_keys(sigs), strict=True):
            created = iso(m.created_at) or ""
            seconds = parse_iso(created).timestamp()
            rows.append((_row(m), list(m.terms), seconds))
            echo.append((m.key, sig, keys, created, *_echo_window(created)))
        prepared.append((scope, rows, echo))
    return prepared


class Anchor:
    """The same writes and reads with plain sqlite3 statements, page by page."""

    def __init__(self, prepared: list[tuple[str, list, list]], db: Path) -> None:
        import sqlite3

        Store(db).close()  # the same schema
        self.prepared = prepared
        self.conn = sqlite3.connect(db, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.insert = (f"INSERT INTO mentions ({', '.join(_INSERT_COLUMNS)}) VALUES "
                       f"({','.join('?' * len(_INSERT_COLUMNS))})")  # fmt: skip

    def step(self, n: int) -> None:
        conn = self.conn
        scope, rows, echo = self.prepared[n]
        key_col, created_col = _INSERT_COLUMNS.index("key"), _INSERT_COLUMNS.index("created_at")
        status_col, reach_col = _INSERT_COLUMNS.index("status"), _INSERT_COLUMNS.index("reach")
        base_col = _INSERT_COLUMNS.index("priority_base")  # then priority_key
        conn.execute("BEGIN IMMEDIATE")
        keys = [r[0][key_col] for r in rows]
        known = {k: (i, reach, st, c, terms) for i, k, reach, st, c, terms in conn.execute(
            "SELECT id, key, reach, status, created_at, terms FROM mentions WHERE key IN "
            f"({','.join('?' * len(keys))})", keys)}  # fmt: skip
        new_rows = [r for r in rows if r[0][key_col] not in known]
        first = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM mentions").fetchone()[0]
        for offset, r in enumerate(new_rows):  # ids given, as the store does (time_key)
            r[0][0] = first + offset
            r[0][-1] = _time_key_at(r[2], first + offset)
        conn.executemany(self.insert, [r[0] for r in new_rows])
        ids = {k: v[0] for k, v in known.items()} | {r[0][key_col]: r[0][0] for r in new_rows}
        conn.executemany(
            "INSERT INTO mention_terms (mention_id, status, created_at, term) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(ids[k], *(known[k][2:4] if k in known else (r[0][status_col], r[0][created_col])), t)
             for r in rows for k in (r[0][key_col],) for t in r[1]],
        )  # fmt: skip
        grown = [(merged, known[k][0]) for r in rows if (k := r[0][key_col]) in known
                 and (merged := terms_text([*json.loads(known[k][4]), *r[1]])) != known[k][4]]
        conn.executemany("UPDATE mentions SET terms = ? WHERE id = ?", grown)
        moved = [(r[0][reach_col], r[0][base_col], r[0][base_col + 1], known[k][0]) for r in rows
                 if (k := r[0][key_col]) in known and r[0][reach_col] != known[k][1]]  # fmt: skip
        conn.executemany(
            "UPDATE mentions SET reach = ?, priority_base = ?, priority_key = ? WHERE id = ?", moved
        )
        filed = {}
        for key, sig, band_keys, created, lo, hi in echo:
            if key not in known:
                filed[ids[key]] = (sig, band_keys, lo, hi, None, created)
        conn.executemany(
            "INSERT INTO echo_keys (key, created_at, mention_id) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [(k, f[5], i) for i, f in filed.items() for k in set(f[1])],
        )
        conn.executemany("INSERT INTO echo_sigs (mention_id, signature) VALUES (?, ?)",
                         [(i, f[0].dumps()) for i, f in filed.items()])  # fmt: skip
        for mention_id in _sharing_keys(conn, filed):  # the same two queries, SQL only
            sig, band_keys, lo, hi, _, _ = filed[mention_id]
            conn.execute(*_candidate_query(mention_id, band_keys, lo, hi)).fetchall()
        conn.execute(
            "INSERT INTO cursors VALUES (?, ?, ?, ?) ON CONFLICT(source, scope) "
            "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            ("hackernews", scope, f"cursor-{n}", "2026-01-01T00:00:00Z"),
        )
        conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def side_by_side(sides: list[Any], pages: int, first: int) -> list[float]:
    """Each side's total time over every page, the sides taking turns page by page (who
    goes first alternates), so a change in the machine's load falls on both alike."""
    spent = [0.0] * len(sides)
    for n in range(pages):
        for i in range(len(sides)) if (n + first) % 2 == 0 else reversed(range(len(sides))):
            start = time.perf_counter()
            sides[i].step(n)
            spent[i] += time.perf_counter() - start
    for side in sides:
        side.close()
    return spent


def copy_prepared(prepared: list[tuple[str, list, list]]) -> list[tuple[str, list, list]]:
    """Fresh row lists (the anchor gives them ids)."""
    return [(scope, [(list(row), terms, seconds) for row, terms, seconds in rows], echo)
            for scope, rows, echo in prepared]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pages = arrivals(args.count)
    total = sum(len(p) for _, p in pages)
    prepared = prepare_anchor(pages)
    results: dict[str, list[float]] = {"plain": [], "analyzer": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for label in ("plain", "analyzer"):
                folder = Path(tmp) / f"{label}-{r}"
                folder.mkdir()
                mine, anchor = side_by_side([
                    Mentionwatch(copy(pages), folder / "mw.db", tag=label == "analyzer"),
                    Anchor(copy_prepared(prepared), folder / "anchor.db"),
                ], len(pages), r)  # fmt: skip
                results[label].append(anchor / mine)
                print(f"round {r + 1} {label:8}: mentionwatch {args.count / mine:7.0f} "
                      f"mentions/s, anchor {args.count / anchor:7.0f}/s, ratio "
                      f"{anchor / mine:.2f}", flush=True)  # fmt: skip
    print(f"\n{args.count} mentions ({total} saves) in pages of {PAGE}, {args.rounds} rounds")
    print("| what | ratio to raw sqlite3, same work (median; range) |\n|---|---|")
    for label, name in (("plain", "Store.save_page"),
                        ("analyzer", "with the default analyzer, as a poll tags")):  # fmt: skip
        values = results[label]
        print(f"| {name} | {statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f}) |")


if __name__ == "__main__":
    main()
