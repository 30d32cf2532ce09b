"""`mentionwatch migrate-to`: copy a whole database to another place, SQLite to PostgreSQL
(when a team starts sharing) or back, with everything in it: mentions, terms, cursors,
statuses and their history, replies, the outbox, learned relevance, source state.

Rows keep their ids, so IDs people wrote down stay valid. Each table is copied in
batches; a row already at the destination is left alone, so a copy that was interrupted
can simply run again. A destination that holds other mentions is refused before anything
is written. At the end every table's rows are counted on both sides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from mentionwatch.errors import EXIT_FAILED, EXIT_USAGE, StoreError
from mentionwatch.store import Store

BATCH = 1000
# Filled by triggers when replies are inserted; the source's own rows are the record.
TRIGGERED = "relevance_events"


@dataclass
class Moved:
    """Rows per table: (at the source, at the destination)."""

    counts: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def differing(self) -> list[str]:
        return [t for t, (a, b) in self.counts.items() if a != b]


def copy(source: Store, target: Store, progress: Callable[[str, int], None]) -> Moved:
    """Copy every table of `source` into `target`; raises StoreError when the target holds
    other mentions. `progress(table, rows)` is told as each table is done."""
    _check_same_mentions(source, target)
    tables = source.copied_tables()
    missing = [t for t in tables if t not in set(target.copied_tables())]
    if missing:
        raise StoreError(
            f"{target.label} has no table {missing[0]}: it was made by another version of "
            "mentionwatch; upgrade the one that made it, or copy to a new database",
            EXIT_USAGE,
        )
    ordered = [t for t in tables if t != TRIGGERED] + ([TRIGGERED] if TRIGGERED in tables else [])
    moved = Moved()
    for table in ordered:
        columns = [c for c in source.columns(table) if c in set(target.columns(table))]
        if table == TRIGGERED:
            target.clear(table)
        rows = source.dump(table, columns)
        for batch in _batches(rows):
            target.load(table, columns, batch)
        target.finish_load(table)
        moved.counts[table] = (source.count(table), target.count(table))
        progress(table, moved.counts[table][0])
    target.loaded()
    return moved


def _check_same_mentions(source: Store, target: Store) -> None:
    """The target is empty, or an earlier copy of this source: each of its mentions has the
    same id and key at the source."""
    if not target.count("mentions"):
        return
    known = dict(source.mention_keys())
    for mention_id, key in target.mention_keys():
        if known.get(mention_id) != key:
            raise StoreError(
                f"{target.label} already holds other mentions (id {mention_id} is {key!r} "
                "there): copy to an empty database, or to a new schema (?schema=NAME)",
                EXIT_FAILED,
            )


def _batches(rows: Iterator[tuple]) -> Iterator[list[tuple]]:
    while batch := list(islice(rows, BATCH)):
        yield batch
