"""SQLite: the embedded engine, one file (with its -wal and -shm) per database.

Reads use the standard library's sqlite3 directly, so `feed`, `export` and `handle` start
fast. A write transaction is BEGIN IMMEDIATE: it takes the file's one write lock at once, so
writers run one at a time (and `lock()` has nothing left to do).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from mentionwatch.errors import EXIT_USAGE, StoreError
from mentionwatch.files import create_private, writable

NAME = "sqlite"
Row = sqlite3.Row
DatabaseError = sqlite3.DatabaseError


def exists(location: Path | str) -> bool:
    return str(location) == ":memory:" or Path(location).exists()


def can_write(location: Path | str) -> bool:
    return str(location) == ":memory:" or writable(Path(location))


def read_only_message(path: object) -> str:
    return (
        f"cannot write the database {path}: it is read-only (file permissions or a read-only "
        "mount); feed, show, export and sources can still read it"
    )


class Engine:
    """One connection to a SQLite file. `readonly` opens it with mode=ro (immutable on a
    read-only mount, where SQLite cannot create its -shm file)."""

    name = NAME
    FOR_UPDATE = ""  # a write transaction holds the whole file already
    # Full text in the feed's order: FTS5's rowid is the time_key (m011_search_order).
    SEARCH_IN_TIME_ORDER = True
    SKIP_LOCKED = ""
    document = None  # the FTS5 triggers index what a row holds

    def __init__(self, location: Path | str, *, readonly: bool = False) -> None:
        self.location = location
        self.label = str(location)
        memory = str(location) == ":memory:"
        self.readonly = readonly and not memory
        if not memory and Path(location).is_dir():  # SQLite would say "disk I/O error"
            raise StoreError(
                f"cannot open the database {location}: it is a folder, not a database file;"
                f" pass --db {Path(location) / 'mentions.db'}",
                EXIT_USAGE,
            )
        if self.readonly:
            self.conn = _connect_readonly(Path(location))
            return
        if not memory:
            path = Path(location)
            if not writable(path):
                raise StoreError(read_only_message(path), EXIT_USAGE)
            create_private(path)  # 0600 from the start; SQLite gives -wal/-shm its mode
        # isolation_level=None: transactions are explicit (begin/commit below).
        self.conn = sqlite3.connect(str(location), isolation_level=None, timeout=30)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        self.conn.close()

    # Statements

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> None:
        self.conn.executemany(sql, rows)

    def insert_missing(
        self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        """Insert rows, leaving alone each one whose key is already there (migrate-to)."""
        quoted = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" * len(columns))
        self.conn.executemany(
            f'INSERT INTO "{table}" ({quoted}) VALUES ({marks}) ON CONFLICT DO NOTHING', rows
        )

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[sqlite3.Row]:
        """A large result, row by row (SQLite's cursor is lazy already)."""
        yield from self.conn.execute(sql, params)

    # Transactions

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK")

    def lock(self, name: str) -> None:
        """Serialise a critical section across processes: BEGIN IMMEDIATE already did."""

    # Schema

    def tables(self) -> set[str]:
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {r[0] for r in rows}

    def columns(self, table: str) -> list[str]:
        return [r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")]

    def ddl(self, sql: str) -> str:
        """Migrations are written in SQLite's words."""
        return sql

    def full_text(self) -> None:
        """The full-text index of mentions (text, title, author): an external-content FTS5
        table kept by triggers (as sqlite-utils' enable_fts made it)."""
        from mentionwatch.search import FTS_COLUMNS

        columns = ", ".join(f'"{c}"' for c in FTS_COLUMNS)
        new = ", ".join(f'new."{c}"' for c in FTS_COLUMNS)
        old = ", ".join(f'old."{c}"' for c in FTS_COLUMNS)
        self.conn.execute(
            f'CREATE VIRTUAL TABLE "mentions_fts" USING FTS5 ({columns}, content="mentions")'
        )
        insert = f'INSERT INTO "mentions_fts" (rowid, {columns}) VALUES (new.rowid, {new});'
        delete = (f'INSERT INTO "mentions_fts" ("mentions_fts", rowid, {columns}) '
                  f"VALUES('delete', old.rowid, {old});")  # fmt: skip
        for name, event, body in (("ai", "INSERT", insert), ("ad", "DELETE", delete),
                                  ("au", "UPDATE", delete + " " + insert)):  # fmt: skip
            self.conn.execute(
                f'CREATE TRIGGER "mentions_{name}" AFTER {event} ON "mentions" BEGIN {body} END'
            )

    def full_text_on_text_only(self) -> None:
        """The FTS5 entry is rewritten only when an indexed column changes: m001's trigger
        rewrote it on every update (status, reach, priority...)."""
        self.conn.execute("DROP TRIGGER mentions_au")
        self.conn.execute(
            'CREATE TRIGGER mentions_au AFTER UPDATE OF "text", "title", "author" ON mentions '
            'BEGIN INSERT INTO mentions_fts (mentions_fts, rowid, "text", "title", "author") '
            'VALUES (\'delete\', old.rowid, old."text", old."title", old."author"); '
            'INSERT INTO mentions_fts (rowid, "text", "title", "author") '
            'VALUES (new.rowid, new."text", new."title", new."author"); END'
        )

    def fill_time_keys(self, time_key: Any) -> None:
        """mentions.time_key of every stored mention, computed in SQLite by `time_key`."""
        self.conn.create_function("time_key", 2, time_key, deterministic=True)
        try:
            self.conn.execute("UPDATE mentions SET time_key = time_key(created_at, id)")
        finally:  # a connection holding a Python function is not closed at exit (WAL left behind)
            self.conn.create_function("time_key", 2, None)

    def full_text_by_status(self, statuses: Sequence[str]) -> None:
        """Nothing: FTS5 indexes the status as a column (full_text_by_time)."""

    def full_text_by_time(self) -> None:
        """The FTS5 index rebuilt with the time_key as its rowid and the status as a column
        (m011_search_order): it yields matches newest (or oldest) first and stops at the
        limit, and "matches that are open" is one FTS5 query. About a minute per million."""
        for trigger in ("mentions_ai", "mentions_ad", "mentions_au"):
            self.conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        self.conn.execute("DROP TABLE mentions_fts")
        for sql in _FTS_SCHEMA:
            self.conn.execute(sql)
        self.conn.execute("INSERT INTO mentions_fts (mentions_fts) VALUES ('rebuild')")

    def trigger(self, name: str, event: str, when: str, action: str) -> None:
        """AFTER `event` (e.g. "UPDATE OF status ON mentions"), for each row where `when`
        holds, run `action` (one statement using NEW/OLD)."""
        self.conn.execute(f"CREATE TRIGGER {name} AFTER {event} WHEN {when} BEGIN {action}; END")

    # The SQL words the engines spell differently

    # Leases and claims: a SQLite file has no sessions to ask about; expiry alone ends them.
    session: int | None = None

    @staticmethod
    def after_load(table: str) -> None:
        """Rows inserted with their ids: SQLite's next rowid follows the greatest anyway."""

    @staticmethod
    def analyze() -> None:
        """Nothing: the store's indexes are chosen without SQLite's statistics."""

    def statistics(self) -> None:
        """The query planner's statistics (sqlite_stat1) of every table."""
        self.conn.execute("ANALYZE")

    @staticmethod
    def dead(column: str) -> str:
        return "0"

    @staticmethod
    def distinct(a: str, b: str) -> str:
        return f"{a} IS NOT {b}"

    @staticmethod
    def epoch(expr: str) -> str:
        """Whole seconds since 1970 of a stored time."""
        return f"CAST(strftime('%s', {expr}) AS INTEGER)"

    @staticmethod
    def floor_int(expr: str) -> str:
        """The integer part of a non-negative number."""
        return f"CAST({expr} AS INTEGER)"

    @staticmethod
    def periods() -> str:
        """A FROM item `p (lo, hi)` over one parameter: a JSON list of [start, end] pairs."""
        return ("(SELECT json_extract(value, '$[0]') AS lo, json_extract(value, '$[1]') AS hi "
                "FROM json_each(?)) p")  # fmt: skip

    # Full-text search

    @staticmethod
    def search(text: str) -> tuple[str, list[Any]]:
        """The WHERE clause (on mentions `m`) and parameters for --search TEXT."""
        from mentionwatch.search import fts_match

        clause = "m.time_key IN (SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH ?)"
        return clause, [fts_match(text)]

    @staticmethod
    def search_failed(exc: Exception) -> bool:
        """An error FTS5 raised for a query fts_query let through."""
        return isinstance(exc, sqlite3.OperationalError) and "fts5" in str(exc)

    # One process at a time

    @contextmanager
    def exclusive(self, job: str) -> Iterator[None]:
        """Hold `job` on this database while the block runs, or raise Held naming the
        process that has it. An OS file lock next to the database: the OS releases it when
        the process dies, however it dies, so a crash never leaves a stale lock behind."""
        from mentionwatch.store import Held

        lock_path = Path(f"{self.location}.{job}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 (held until the end)
        try:
            if not _try_lock(handle):
                handle.seek(0)
                pid = handle.read().strip() or "unknown"
                raise Held(
                    f"another 'mentionwatch {job}' (PID {pid}) is already running on "
                    f"{self.location}; stop it first, or pass --db PATH for another database"
                )
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            handle.close()  # closing releases the lock


def _connect_readonly(path: Path) -> sqlite3.Connection:
    uri = path.resolve().as_uri()
    for params in ("?mode=ro", "?mode=ro&immutable=1"):
        conn = sqlite3.connect(uri + params, uri=True, isolation_level=None, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            # A WAL database on a read-only mount: no -shm can be made, so read it as an
            # immutable file (nothing can change it there anyway).
            conn.close()
            if params.endswith("immutable=1"):
                raise
            continue
        return conn
    raise AssertionError("unreachable")


def _try_lock(handle: IO[str]) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


# What m011_search_order makes: the index, its rank (bm25 over the text columns only) and
# the triggers that keep it in step with mentions (external content: mentions holds the text).
_FTS_COLUMNS_SQL = '"text", "title", "author", "status"'
_FTS_SCHEMA = (
    f"CREATE VIRTUAL TABLE mentions_fts USING fts5({_FTS_COLUMNS_SQL}, content='mentions', "
    "content_rowid='time_key')",
    "INSERT INTO mentions_fts (mentions_fts, rank) VALUES ('rank', 'bm25(1.0, 1.0, 1.0, 0.0)')",
    f"CREATE TRIGGER mentions_ai AFTER INSERT ON mentions BEGIN "
    f"INSERT INTO mentions_fts (rowid, {_FTS_COLUMNS_SQL}) VALUES "
    f"(new.time_key, new.text, new.title, new.author, new.status); END",
    f"CREATE TRIGGER mentions_ad AFTER DELETE ON mentions BEGIN "
    f"INSERT INTO mentions_fts (mentions_fts, rowid, {_FTS_COLUMNS_SQL}) VALUES "
    f"('delete', old.time_key, old.text, old.title, old.author, old.status); END",
    f"CREATE TRIGGER mentions_au AFTER UPDATE OF {_FTS_COLUMNS_SQL}, time_key ON mentions BEGIN "
    f"INSERT INTO mentions_fts (mentions_fts, rowid, {_FTS_COLUMNS_SQL}) VALUES "
    f"('delete', old.time_key, old.text, old.title, old.author, old.status); "
    f"INSERT INTO mentions_fts (rowid, {_FTS_COLUMNS_SQL}) VALUES "
    f"(new.time_key, new.text, new.title, new.author, new.status); END",
)
