"""The database: schema and migrations, saving with dedup, cursors, and every read.

One store for both engines: every query is written here once, with `?` placeholders, in
the SQL that SQLite and PostgreSQL share; `engines/sqlite.py` and `engines/postgres.py`
hold only what differs (connecting, transactions and locks, full-text search, a few
functions). `feed`, `export` and `handle` on SQLite use the standard library's sqlite3 and
nothing else; psycopg is imported only for a PostgreSQL URL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import fields, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache, partial
from itertools import groupby
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from mentionwatch import engines
from mentionwatch.errors import EXIT_USAGE, StoreError, UsageError
from mentionwatch.models import (
    MENTION_COLUMNS,
    STATUSES,
    Delivery,
    Filters,
    JobResult,
    Mention,
    OutboxItem,
    iso,
    parse_iso,
    utcnow,
)
from mentionwatch.triage import FLOOR, HALF_LIFE_HOURS, base_priority, freshness

MIGRATIONS: list[Callable[[Any], None]] = []


def migration(fn: Callable[[Any], None]) -> Callable[[Any], None]:
    """Register a schema change; it runs once, in order, and is recorded in _migrations.

    A migration gets a `Schema`: `db.execute(sql)` takes SQLite's words (INTEGER, REAL,
    TEXT, INTEGER PRIMARY KEY), which it turns into the engine's own in CREATE and ALTER
    statements, so one migration serves both engines."""
    MIGRATIONS.append(fn)
    return fn


class Schema:
    """What a migration works with (see `migration`)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.conn = self  # migrations written as `db.conn.execute(...)` work as they are

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if sql.lstrip()[:6].upper() in ("CREATE", "ALTER "):
            sql = self.db.ddl(sql)
        return self.db.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> None:
        self.db.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:  # full_text, trigger, distinct…
        return getattr(self.db, name)


@migration
def m001_initial(db: Schema) -> None:
    db.execute(
        "CREATE TABLE mentions (id INTEGER PRIMARY KEY, key TEXT NOT NULL, "
        "source TEXT NOT NULL, native_id TEXT NOT NULL, url TEXT, author TEXT, "
        "author_name TEXT, title TEXT, text TEXT NOT NULL DEFAULT '', "
        "created_at TEXT NOT NULL, fetched_at TEXT, sentiment TEXT, polarity REAL, "
        "intents TEXT, status TEXT NOT NULL DEFAULT 'open', status_at TEXT, reach INTEGER, "
        "reply_url TEXT, extra TEXT)"
    )
    db.execute("CREATE UNIQUE INDEX idx_mentions_key ON mentions (key)")
    db.execute("CREATE INDEX idx_mentions_created_at ON mentions (created_at)")
    db.execute("CREATE INDEX idx_mentions_status_created_at ON mentions (status, created_at)")
    db.execute(
        "CREATE TABLE mention_terms (mention_id INTEGER REFERENCES mentions (id), term TEXT, "
        "PRIMARY KEY (mention_id, term))"
    )
    db.execute("CREATE INDEX idx_mention_terms_term ON mention_terms (term)")
    db.execute(
        "CREATE TABLE cursors (source TEXT, scope TEXT, value TEXT, updated_at TEXT, "
        "PRIMARY KEY (source, scope))"
    )
    db.execute(
        "CREATE TABLE polls (id INTEGER PRIMARY KEY, run TEXT, source TEXT, scope TEXT, "
        "finished_at TEXT, fetched INTEGER, new INTEGER, error TEXT)"
    )
    db.execute("CREATE INDEX idx_polls_source_id ON polls (source, id)")
    db.execute(
        "CREATE TABLE status_log (id INTEGER PRIMARY KEY, "
        "mention_id INTEGER REFERENCES mentions (id), status TEXT, note TEXT, at TEXT)"
    )
    db.execute("CREATE INDEX idx_status_log_mention_id ON status_log (mention_id)")
    db.execute(
        "CREATE TABLE source_state (source TEXT, key TEXT, value TEXT, updated_at TEXT, "
        "PRIMARY KEY (source, key))"
    )
    db.full_text()


@migration
def m002_replies(db: Schema) -> None:
    # outcome: posted, failed, unknown (no answer), link (reply by hand)
    db.execute(
        "CREATE TABLE replies (id INTEGER PRIMARY KEY, "
        "mention_id INTEGER REFERENCES mentions (id), text TEXT, attempted_at TEXT, "
        "outcome TEXT, remote_id TEXT, url TEXT, error TEXT, idempotency_key TEXT)"
    )
    db.execute("CREATE INDEX idx_replies_mention_id ON replies (mention_id)")


@migration
def m003_outbox(db: Schema) -> None:
    # One row per event and channel, written in the transaction that saves the mention, so
    # a crash between saving and sending loses nothing; `delivery` is the ID every attempt
    # carries. The unique subject index makes "at most once per rule and channel" hold even
    # when two polls save the same mention. state: pending, sent, dropped; next_at: not
    # before this time (backoff after a failure); outcome: the last attempt's answer.
    db.execute(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY, delivery TEXT NOT NULL, "
        "alert TEXT NOT NULL, channel TEXT NOT NULL, event TEXT NOT NULL, "
        "subject TEXT NOT NULL, mention_id INTEGER, payload TEXT NOT NULL, "
        "state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER DEFAULT 0, "
        "created_at TEXT, next_at TEXT, last_at TEXT, sent_at TEXT, outcome TEXT)"
    )
    db.execute("CREATE UNIQUE INDEX idx_outbox_delivery ON outbox (delivery)")
    db.execute(
        "CREATE UNIQUE INDEX idx_outbox_alert_channel_event_subject "
        "ON outbox (alert, channel, event, subject)"
    )
    db.execute("CREATE INDEX idx_outbox_state_next_at ON outbox (state, next_at)")
    # What each channel answered, one row per message sent (a grouped message covers several
    # deliveries): `alerts` and `alerts log` read it, hourly caps count it. label: the
    # channel with its secrets masked.
    db.execute(
        "CREATE TABLE alert_log (id INTEGER PRIMARY KEY, at TEXT, alert TEXT, channel TEXT, "
        "label TEXT, deliveries INTEGER, ok INTEGER, outcome TEXT, test INTEGER)"
    )
    db.execute("CREATE INDEX idx_alert_log_alert_channel_id ON alert_log (alert, channel, id)")


@migration
def m004_relevance(db: Schema) -> None:
    """Relevance scores, and what the founder's decisions taught each term (relevance.py)."""
    db.execute("ALTER TABLE mentions ADD COLUMN relevance REAL")
    db.execute("ALTER TABLE mentions ADD COLUMN llm_relevance REAL")
    # Every status change and posted reply is queued here by a trigger, so a decision made
    # through any command (or another program) is learned from exactly once.
    db.execute(
        "CREATE TABLE relevance_events (id INTEGER PRIMARY KEY, mention_id INTEGER, status TEXT)"
    )
    db.execute(
        "CREATE TABLE relevance_lessons (mention_id INTEGER, term TEXT, relevant INTEGER, "
        "features TEXT, PRIMARY KEY (mention_id, term))"
    )
    db.execute(
        "CREATE TABLE relevance_counts (term TEXT, feature TEXT, relevant INTEGER, "
        "irrelevant INTEGER, PRIMARY KEY (term, feature))"
    )
    db.trigger(
        "mentions_status_relevance", "UPDATE OF status ON mentions",
        db.distinct("NEW.status", "OLD.status"),
        "INSERT INTO relevance_events (mention_id, status) VALUES (NEW.id, NEW.status)",
    )  # fmt: skip
    db.trigger(
        "replies_relevance", "INSERT ON replies", "NEW.outcome = 'posted'",
        "INSERT INTO relevance_events (mention_id, status) VALUES (NEW.mention_id, 'replied')",
    )  # fmt: skip
    # Mentions decided before this migration teach their terms too.
    db.execute(
        "INSERT INTO relevance_events (mention_id, status) SELECT id, status FROM mentions "
        "WHERE status IN ('handled', 'ignored') ORDER BY id"
    )


@migration
def m005_trends(db: Schema) -> None:
    # echo_of: the id of the original a retweet, quote or cross-post repeats (echoes.py);
    # groups are flat (echo_of always names a mention whose own echo_of is NULL).
    db.execute("ALTER TABLE mentions ADD COLUMN echo_of INTEGER")
    db.execute("CREATE INDEX idx_mentions_echo_of ON mentions (echo_of)")
    # Each groupable mention's MinHash band keys, for finding its echoes with one lookup
    # (re-made by m007_scale).
    db.execute(
        "CREATE TABLE echo_keys (key INTEGER, mention_id INTEGER REFERENCES mentions (id), "
        "created_at TEXT, PRIMARY KEY (key, mention_id))"
    )
    # Where each spike rule stands per term and sentiment ("once per episode" survives restarts).
    db.execute(
        "CREATE TABLE spike_state (rule TEXT, term TEXT, sentiment TEXT, state TEXT, "
        "updated_at TEXT, PRIMARY KEY (rule, term, sentiment))"
    )
    # Existing mentions are filed and grouped by m007_scale (which re-files every mention
    # under its faster keys).


# Columns that hold outside text, per table, as m006_inert_text cleans them.
_OUTSIDE_TEXT = {
    "mentions": ("url", "author", "author_name", "title", "text", "reply_url", "extra"),
    "polls": ("error",),
    "replies": ("url", "remote_id", "error"),
}


@migration
def m006_inert_text(db: Any) -> None:
    """Text stored before text.inert() existed loses its controls, bidi overrides and
    invisible format characters once, so old rows export as inert as new ones. (Keys stay:
    they are identities, and platforms' ids are plain.)"""
    from mentionwatch.text import inert, inert_data

    for table, columns in _OUTSIDE_TEXT.items():
        rows = db.conn.execute(f"SELECT id, {', '.join(columns)} FROM {table}").fetchall()
        for row_id, *values in rows:
            cleaned = [_inert_json(v, inert_data) if c == "extra" else inert(v) if v else v
                       for c, v in zip(columns, values, strict=True)]  # fmt: skip
            if cleaned != values:
                sets = ", ".join(f"{c} = ?" for c in columns)
                db.conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*cleaned, row_id))


def _inert_json(value: str | None, clean: Callable[[Any], Any]) -> str | None:
    if not value:
        return value
    try:
        data = json.loads(value)
    except ValueError:
        return value
    cleaned = clean(data)
    return value if cleaned == data else json.dumps(cleaned, ensure_ascii=False, sort_keys=True)


@migration
def m007_scale(db: Any) -> None:
    """What a million mentions need: the stored part of priority, indexes for every feed
    filter and order, and echo keys that are quick to file and to look up.

    - priority_base = triage.base_priority (urgency × audience, which never ages) and
      priority_key = log2(base) + created_at in days: the feed ranks by priority from two
      indexes (see Store._by_priority), never by sorting every row.
    - echo_keys is re-filed with echoes.py's one-pass MinHash keys, clustered by (key,
      created_at) for the windowed lookup, and echo_sigs keeps each text's signature so
      candidates are compared without normalising their texts again; every mention is
      regrouped in id order, as saving groups them.
    """
    conn = db.conn
    conn.execute("ALTER TABLE mentions ADD COLUMN priority_base REAL")
    conn.execute("ALTER TABLE mentions ADD COLUMN priority_key REAL")
    rows = conn.execute(
        "SELECT id, sentiment, polarity, intents, reach, created_at FROM mentions"
    ).fetchall()
    conn.executemany(
        "UPDATE mentions SET priority_base = ?, priority_key = ? WHERE id = ?",
        [(*_priority_columns(r[1], r[2], _json_list(r[3]), r[4], r[5]), r[0]) for r in rows],
    )
    for sql in _SCALE_INDEXES:
        conn.execute(sql)
    conn.execute("DROP TABLE echo_keys")
    conn.execute(_ECHO_KEYS_TABLE)
    conn.execute("CREATE TABLE echo_sigs (mention_id INTEGER PRIMARY KEY, signature TEXT)")
    conn.execute("UPDATE mentions SET echo_of = NULL")
    batch: list[tuple[int, str | None, str | None, str | None, str]] = []
    for row in conn.execute("SELECT id, text, title, author, created_at FROM mentions ORDER BY id"):
        batch.append(tuple(row))
        if len(batch) == 500:
            _group_echoes(conn, batch)
            batch = []
    _group_echoes(conn, batch)


# Ordering indexes: newest first per status (m001), per source and per sentiment within a
# status (the feed's filters, each served in created_at order), and the two priority lists.
_SCALE_INDEXES = (
    "CREATE INDEX idx_mentions_source_status ON mentions (source, status, created_at)",
    "CREATE INDEX idx_mentions_sentiment_status ON mentions (sentiment, status, created_at)",
    "CREATE INDEX idx_mentions_priority_base ON mentions (status, priority_base)",
    "CREATE INDEX idx_mentions_priority_key ON mentions (status, priority_key)",
)
# One row per (band key, mention): clustered on the key and time (SQLite's WITHOUT ROWID;
# another engine's plain table with this primary key is the same thing).
_ECHO_KEYS_TABLE = (
    "CREATE TABLE echo_keys (key INTEGER NOT NULL, created_at TEXT NOT NULL, "
    "mention_id INTEGER NOT NULL, PRIMARY KEY (key, created_at, mention_id)) WITHOUT ROWID"
)
_ECHO_CANDIDATES = 8  # the candidates sharing most band keys are compared word by word
_ECHO_PER_KEY = 50  # rows read per band key (a template's common key matches thousands)


def _priority_columns(
    label: str | None, polarity: float | None, intents: Sequence[str], reach: int | None,
    created_at: str,
) -> tuple[float, float]:  # fmt: skip
    """(priority_base, priority_key) of a mention: priority = base × freshness(age), and
    freshness's ageing part 0.5 ** (age / half-life) is 2 ** (key - now in half-lives)."""
    return _priority_at(label, polarity, intents, reach, parse_iso(created_at).timestamp())


def _priority_at(
    label: str | None, polarity: float | None, intents: Sequence[str], reach: int | None,
    seconds: float,
) -> tuple[float, float]:  # fmt: skip
    """_priority_columns of a mention created at `seconds` since 1970."""
    base = base_priority(label, polarity, intents, reach)
    return base, math.log2(base) + seconds / 3600 / HALF_LIFE_HOURS


def _json_list(value: str | None) -> list[Any]:
    return json.loads(value) if value else []


def _group_echoes(
    conn: Any, rows: Sequence[tuple[int, str | None, str | None, str | None, str]]
) -> None:
    """File new mentions' echo keys and signatures, and link each to the group it repeats.

    `rows` are (id, text, title, author, created_at) in id order; a mention's candidates are
    the mentions filed before it (lower ids), so a batch groups as one-by-one saving would.
    Most mentions share no key with anything: one query per batch finds those that do, and
    only they get their candidates (the few sharing most keys) compared word by word.
    """
    from mentionwatch import echoes

    if not rows:
        return
    filed: dict[int, tuple[echoes.Signature, list[int], str, str, str | None, str]] = {}
    sigs = [echoes.signature(echoes.text_of(text, title)) for _, text, title, _, _ in rows]
    for (mention_id, _, _, author, created_at), sig, keys in zip(
        rows, sigs, echoes.band_keys(sigs), strict=True
    ):
        if keys:
            filed[mention_id] = (sig, keys, *_echo_window(created_at), author, created_at)
    if not filed:
        return
    conn.executemany(
        "INSERT INTO echo_keys (key, created_at, mention_id) VALUES (?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        [(k, f[5], i) for i, f in filed.items() for k in set(f[1])],
    )
    conn.executemany(
        "INSERT INTO echo_sigs (mention_id, signature) VALUES (?, ?)",
        [(i, f[0].dumps()) for i, f in filed.items()],
    )
    for mention_id in _sharing_keys(conn, filed):
        sig, keys, lo, hi, author, created_at = filed[mention_id]
        best = _best_echo(conn, mention_id, sig, keys, lo, hi, author)
        if best is None:
            continue
        root, root_created = best
        if created_at < root_created:
            # The new one was posted first (found later, or on another source): the original.
            conn.execute(
                "UPDATE mentions SET echo_of = ? WHERE id = ? OR echo_of = ?",
                (mention_id, root, root),
            )
        else:
            conn.execute("UPDATE mentions SET echo_of = ? WHERE id = ?", (root, mention_id))


def _echo_window(created_at: str) -> tuple[str, str]:
    """The stored times an echo of a mention created then may have: WINDOW_DAYS either
    side, cut at the ends of the calendar (a broken API's placeholder date, 9999-12-31,
    must still save)."""
    day, rest = created_at[:10], created_at[10:]
    if len(rest) == 10 and rest[0] == "T" and rest[-1] == "Z" and "0002" <= day[:4] <= "9998":
        # models.iso's form, away from the calendar's ends: the window's ends are the same
        # time of day (UTC has no clock changes) on other days, and a page's mentions come
        # from few days: the dates are worked out once per day.
        before, after = _window_days(day)
        return before + rest, after + rest
    from mentionwatch.echoes import WINDOW_DAYS  # here: the data formats do not load echoes

    moment, window = parse_iso(created_at), timedelta(days=WINDOW_DAYS)
    low, high = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    lo = moment - window if moment - low > window else low
    hi = moment + window if high - moment > window else high
    return iso(lo) or "", iso(hi) or ""


@lru_cache(maxsize=4096)
def _window_days(day: str) -> tuple[str, str]:
    from mentionwatch.echoes import WINDOW_DAYS

    moment, window = date.fromisoformat(day), timedelta(days=WINDOW_DAYS)
    return (moment - window).isoformat(), (moment + window).isoformat()


def _sharing_keys(conn: Any, filed: dict[int, Any]) -> list[int]:
    """The ids (ascending) whose keys an earlier mention in their window also has."""
    wanted = [(i, k, f[2], f[3]) for i, f in sorted(filed.items()) for k in set(f[1])]
    found: set[int] = set()
    for start in range(0, len(wanted), 200):  # 800 parameters at most per statement
        chunk = wanted[start : start + 200]
        values = ",".join(["(?, ?, ?, ?)"] * len(chunk))
        found.update(r[0] for r in conn.execute(
            f"WITH q (mention_id, key, lo, hi) AS (VALUES {values}) "
            "SELECT DISTINCT q.mention_id FROM q WHERE EXISTS (SELECT 1 FROM echo_keys k "
            "WHERE k.key = q.key AND k.created_at BETWEEN q.lo AND q.hi "
            "AND k.mention_id < q.mention_id)",
            [v for row in chunk for v in row],
        ))  # fmt: skip
    return sorted(found)


def _candidate_query(mention_id: int, keys: list[int], lo: str, hi: str) -> tuple[str, list[Any]]:
    """The mentions filed before this one in its window that share most of its band keys
    (at most _ECHO_PER_KEY rows read per key), with their signatures, oldest first."""
    per_key = " UNION ALL ".join(
        "SELECT * FROM (SELECT mention_id FROM echo_keys WHERE key = ? AND created_at "
        f"BETWEEN ? AND ? AND mention_id < ? ORDER BY created_at DESC LIMIT {_ECHO_PER_KEY}) k"
        for _ in keys
    )
    sql = (
        f"WITH hits AS ({per_key}), ranked AS (SELECT mention_id, count(*) AS shared "
        f"FROM hits GROUP BY mention_id ORDER BY shared DESC, mention_id LIMIT {_ECHO_CANDIDATES}) "
        "SELECT m.id, m.author, m.created_at, m.echo_of, s.signature FROM ranked "
        "JOIN mentions m ON m.id = ranked.mention_id "
        "JOIN echo_sigs s ON s.mention_id = m.id ORDER BY m.created_at, m.id"
    )
    return sql, [v for k in keys for v in (k, lo, hi, mention_id)]


def _best_echo(
    conn: Any, mention_id: int, sig: Any, keys: list[int], lo: str, hi: str,
    author: str | None,
) -> tuple[int, str] | None:  # fmt: skip
    """(root id, root created_at) of the group this mention repeats, if any."""
    from mentionwatch import echoes

    candidates = conn.execute(*_candidate_query(mention_id, keys, lo, hi)).fetchall()
    best, best_score = None, 0.0
    for cand in candidates:
        score = echoes.is_echo(sig, echoes.Signature.loads(cand[4]), author, cand[1])
        if score > best_score:
            best, best_score = cand, score
    if best is None:
        return None
    root = best[3] or best[0]
    if root == best[0]:
        return root, best[2]
    row = conn.execute("SELECT created_at FROM mentions WHERE id = ?", (root,)).fetchone()
    return root, row[0]


@migration
def m007_llm_cache(db: Schema) -> None:
    """The LLM analyzer's answers, per mention, valid while the digest (texts, model,
    prompt) matches."""
    db.execute(
        "CREATE TABLE llm_cache (mention_key TEXT PRIMARY KEY, digest TEXT, answer TEXT, at TEXT)"
    )


@migration
def m009_reply_kind(db: Any) -> None:
    """replies.kind: "public" (posted where the mention is) or "private" (a direct message,
    `reply --private`); every earlier reply was public."""
    db.conn.execute("ALTER TABLE replies ADD COLUMN kind TEXT NOT NULL DEFAULT 'public'")


@migration
def m011_feed_indexes(db: Any) -> None:
    """Indexes that serve the feed's term and intent filters in its order, at any size.

    - mention_terms keeps a copy of its mention's status (a trigger follows every change)
      and created_at (which never changes), so "term X, status S, newest first" and the
      per-status counts are one index range each: (term, status, created_at, mention_id),
      and (term, created_at, mention_id) for every status at once.
    - One partial index per intent (models.INTENTS) over (status, created_at): the query
      names the intent as the literal the index was declared with (see _intent_clause).
    - The FTS5 index is rewritten only when an indexed column changes: the trigger m001
      made rewrote a mention's index entry on every update (status, reach, priority...).
    """
    from mentionwatch.models import INTENTS

    conn = db.conn
    conn.execute("ALTER TABLE mention_terms ADD COLUMN status TEXT")
    conn.execute("ALTER TABLE mention_terms ADD COLUMN created_at TEXT")
    conn.execute(
        "UPDATE mention_terms SET (status, created_at) = (SELECT m.status, m.created_at "
        "FROM mentions m WHERE m.id = mention_terms.mention_id)"
    )
    conn.execute("DROP INDEX IF EXISTS idx_mention_terms_term")
    conn.execute(
        "CREATE INDEX idx_mention_terms_term_status ON mention_terms "
        "(term, status, created_at, mention_id)"
    )
    conn.execute(
        "CREATE INDEX idx_mention_terms_term_created ON mention_terms "
        "(term, created_at, mention_id)"
    )
    db.trigger(
        "mentions_status_terms", "UPDATE OF status ON mentions",
        db.distinct("NEW.status", "OLD.status"),
        "UPDATE mention_terms SET status = NEW.status WHERE mention_id = NEW.id",
    )  # fmt: skip
    for intent in INTENTS:
        conn.execute(
            f"CREATE INDEX idx_mentions_intent_{intent} ON mentions (status, created_at) "
            f"WHERE {_intent_clause(intent, 'intents')}"
        )
    db.full_text_on_text_only()  # SQLite's FTS5 triggers; PostgreSQL's tsvector has none
    db.statistics()  # the planner picks these indexes by their statistics


def _status_literal(status: str) -> str:
    """A status as an SQL literal: only the known words are ever written into SQL text."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    return f"'{status}'"


def _intent_clause(intent: str, column: str = "m.intents") -> str:
    """The condition "has this intent" as SQL text, the same in the partial index of the
    intent (m011_feed_indexes) and in queries, which is how the planner knows it applies.
    intents is a JSON list of plain words (models.INTENTS), so a quoted word is the intent."""
    from mentionwatch.models import INTENTS

    if intent not in INTENTS:  # only known words are ever written into SQL text
        raise ValueError(f"unknown intent {intent!r}")
    return f"{column} LIKE '%\"{intent}\"%'"


@migration
def m011_search_order(db: Any) -> None:
    """--search served in the feed's order: the FTS5 index's rowid is the mention's
    time_key (created_at, then id, as one integer), so FTS5 yields matches newest (or
    oldest) first and stops at the limit, and it indexes the status too (a column the
    user's query never reaches: fts_match), so "matches that are open" is one FTS5 query.
    Rebuilds the FTS5 index (about a minute per million mentions here)."""
    db.execute("ALTER TABLE mentions ADD COLUMN time_key INTEGER")
    db.fill_time_keys(_time_key)
    db.execute("CREATE UNIQUE INDEX idx_mentions_time_key ON mentions (time_key)")
    db.full_text_by_time()  # SQLite: FTS5's rowid becomes time_key; PostgreSQL: nothing


_EPOCH_2000 = 946_684_800
_SECONDS_SPAN = 1 << 31  # seconds either side of 2000 a time_key holds (ids: 32 bits)


def _time_key(created_at: str, mention_id: int) -> int:
    """created_at (whole seconds since 2000, signed) and the id as one integer, in the
    order of (created_at, id): the rowid of mentions_fts (m011_search_order). Times are
    whole seconds (models.iso), so this is exactly the feed's order for 1932 to 2068; a
    time outside (a platform's placeholder date) is clamped to its end so the key stays a
    64-bit integer, and ties there go by id."""
    return _time_key_at(parse_iso(created_at).timestamp(), mention_id)


def _time_key_at(seconds_since_1970: float, mention_id: int) -> int:
    seconds = int(seconds_since_1970) - _EPOCH_2000
    if not -_SECONDS_SPAN <= seconds < _SECONDS_SPAN:  # a placeholder date: clamped
        seconds = min(max(seconds, -_SECONDS_SPAN), _SECONDS_SPAN - 1)
    return (seconds << 32) + mention_id


@migration
def m012_team(db: Schema) -> None:
    """A team on one database (team.py): who did each state change, assignment and reply;
    who a mention is assigned to; who is answering a mention right now (claims); which
    `watch` process is polling a job right now (leases). Claims and leases end when they
    expire or their holder's connection is gone, so a process that dies holds nothing."""
    db.execute("ALTER TABLE status_log ADD COLUMN actor TEXT")
    # An assignment's row in the history: assignee is the name, '' for "unassigned"; the
    # status column then keeps the mention's status (NULL assignee: a status change or note).
    db.execute("ALTER TABLE status_log ADD COLUMN assignee TEXT")
    db.execute("ALTER TABLE replies ADD COLUMN actor TEXT")
    db.execute("ALTER TABLE mentions ADD COLUMN assignee TEXT")
    db.execute("CREATE INDEX idx_mentions_assignee ON mentions (assignee, status, created_at)")
    # session: the holder's database connection (PostgreSQL's backend pid), so a claim or
    # lease of a killed process is free as soon as its connection is gone.
    db.execute(
        "CREATE TABLE claims (mention_id INTEGER PRIMARY KEY, actor TEXT NOT NULL, "
        "token TEXT NOT NULL, at TEXT NOT NULL, expires_at TEXT NOT NULL, session INTEGER)"
    )
    db.execute(
        "CREATE TABLE leases (job TEXT PRIMARY KEY, holder TEXT, expires_at TEXT NOT NULL, "
        "runs INTEGER NOT NULL DEFAULT 0, session INTEGER)"
    )


@migration
def m013_priority_lists(db: Schema) -> None:
    """The two priority lists (m007_scale) carry everything --sort priority reads of a
    mention (id, the other key, created_at), so its threshold algorithm reads both lists
    from their indexes alone: it fetched ~8 table rows per mention shown, each from a random
    place in the table (at 1M mentions 2.1 ms of index and row reads for 20, 0.7 ms now).
    The id follows the key, as the lists are ordered and paged by (key, id)."""
    for column, other in (("priority_base", "priority_key"), ("priority_key", "priority_base")):
        db.execute(f"DROP INDEX idx_mentions_{column}")
        db.execute(f"CREATE INDEX idx_mentions_{column} ON mentions "
                   f"(status, {column}, id, {other}, created_at)")  # fmt: skip
    # A SQLite database with statistics (someone ran ANALYZE): the new indexes need theirs,
    # or the planner takes them for tiny and reads the feed's newest-first order through
    # them, sorting every open mention (with no statistics at all it plans right).
    if "sqlite_stat1" in db.tables():
        db.execute("ANALYZE mentions")


@migration
def m013_search_by_status(db: Any) -> None:
    """--search's per-status counts and reads served by the full-text index of that status
    alone, at any size: PostgreSQL gets one partial GIN index per status (a match and
    "status S" was otherwise the GIN matches ANDed with every mention of S, which grows
    with the table); SQLite's FTS5 indexes the status already (m011_search_order)."""
    from mentionwatch.models import STATUSES

    db.full_text_by_status(STATUSES)


@migration
def m014_terms_on_mentions(db: Any) -> None:
    """mentions.terms: a copy of the mention's rows in mention_terms as a sorted JSON list
    (terms_text), written by save_page with them, so a read takes a mention's terms from
    its own row: looking them up in mention_terms row by row was a third of what SQLite did
    for an export of a million mentions. mention_terms stays what the filters read.
    The column is added with its empty default, then filled for the mentions with terms."""
    db.execute("ALTER TABLE mentions ADD COLUMN terms TEXT NOT NULL DEFAULT '[]'")
    found = db.stream("SELECT mention_id, term FROM mention_terms ORDER BY mention_id")
    batch: list[tuple[str, int]] = []
    for mention_id, rows in groupby(found, itemgetter(0)):
        batch.append((terms_text(row[1] for row in rows), mention_id))
        if len(batch) == 5000:
            db.executemany("UPDATE mentions SET terms = ? WHERE id = ?", batch)
            batch = []
    db.executemany("UPDATE mentions SET terms = ? WHERE id = ?", batch)


def terms_text(terms: Iterable[str]) -> str:
    """mentions.terms (m014_terms_on_mentions): a set of term names as stored, sorted."""
    return _terms_text(tuple(terms))


@lru_cache(maxsize=1024)
def _terms_text(terms: tuple[str, ...]) -> str:
    # Every saved row encodes its terms, and they are a few names from the config: the same
    # few lists again and again (json.dumps with an option builds an encoder each call).
    return json.dumps(sorted(set(terms)), ensure_ascii=False)


# Tables a copy to another database leaves alone: each keeps its own migrations' record.
_NOT_COPIED = {"_migrations"}
# The leases row that says a `watch` process is alive ("worker HOST:PID"), beside its jobs'.
WORKER_PREFIX = "worker "
# Rows earlier versions wrote while sending a (rule, channel) ("deliver RULE CHANNEL";
# delivery.py holds a lock instead now): not polling jobs.
RETIRED_DELIVERY_PREFIX = "deliver "


# The relevance_counts row of a term that counts its decisions (features are never empty).
_DECISIONS = ""


def read_only_message(path: object) -> str:
    from mentionwatch.engines.sqlite import read_only_message as message

    return message(path)


def database_exists(location: Path | str) -> bool:
    """True when there is a database there to read (a server's always is)."""
    return bool(engines.module(location).exists(location))


def can_write(location: Path | str) -> bool:
    """True when the database there can be written (a server decides per statement)."""
    return bool(engines.module(location).can_write(location))


class UnknownMention(UsageError, LookupError):
    """An ID or key that names no stored mention."""


# The columns a save writes: the id (given before the insert: time_key needs it), the key,
# every Mention field declared as a column (models.MENTION_COLUMNS), the stored part of
# priority, the terms (m014_terms_on_mentions), and the search order's key (last: it needs
# the id, which benchmarks/ingest.py's anchor gives its rows after they are made).
_INSERT_COLUMNS = ("id", "key", *(name for name, _ in MENTION_COLUMNS), "priority_base",
                   "priority_key", "terms", "time_key")  # fmt: skip
_NEGATIVES = "sum(CASE WHEN m.sentiment = 'negative' THEN 1 ELSE 0 END)"
Row = Any  # a result row, read by column name or position (sqlite3.Row or its like)
# What reads select of a mention: those columns, its terms (a JSON list) among them.
_READ_COLUMNS = ", ".join(f"m.{c}" for c in _INSERT_COLUMNS)
# --sort relevance ranks this many of the newest matches that pass the other filters (the
# rank of every match would cost as much as the matches are many).
RANKED = 1000


def _encode_json(value: Any) -> str:
    if not value and isinstance(value, dict | list | tuple):  # most: no extra, no intents
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(list(value) if isinstance(value, tuple) else value,
                      ensure_ascii=False, sort_keys=True)  # fmt: skip


def _encode_time(value: datetime | None) -> str | None:
    # A page's new mentions share one fetched_at (the save's moment): its text is made once.
    # Only for UTC: other zones' equal times may differ in offset or fold, and so in text.
    return _utc_text(value) if value is not None and value.tzinfo is UTC else iso(value)


@lru_cache(maxsize=16)
def _utc_text(value: datetime) -> str | None:
    return iso(value)


_ENCODERS: dict[str, Callable[[Any], Any]] = {"time": _encode_time, "json": _encode_json}
# _row's plan: every column field read in one call, then only the time and JSON ones encoded.
_FIELDS = attrgetter(*(name for name, _ in MENTION_COLUMNS))
_ENCODED = tuple((i + 2, _ENCODERS[kind]) for i, (_, kind) in enumerate(MENTION_COLUMNS)
                 if kind != "value")  # fmt: skip
_STATUS, _CREATED, _TEXT, _TITLE, _AUTHOR = (
    _INSERT_COLUMNS.index(name) for name in ("status", "created_at", "text", "title", "author")
)


def _row(m: Mention) -> list[Any]:
    """The values of _INSERT_COLUMNS for a mention (its id already given)."""
    values = [m.id, m.key, *_FIELDS(m)]
    for i, encode in _ENCODED:
        values[i] = encode(values[i])
    # The text iso() just made ("...Z": UTC, which fromisoformat reads since 3.11), so no
    # parse_iso for the forms other APIs send (~0.2 us a row).
    seconds = datetime.fromisoformat(values[_CREATED] or "").timestamp()
    values += _priority_at(m.sentiment, m.polarity, m.intents, m.reach, seconds)
    values.append(terms_text(m.terms))
    values.append(_time_key_at(seconds, m.id or 0))
    return values


def _decoders() -> list[tuple[str, Callable[[Any], Any]]]:
    """How each stored column becomes its Mention field again (empty JSON: the default)."""
    declared = {f.name: f for f in fields(Mention)}
    result: list[tuple[str, Callable[[Any], Any]]] = []
    for name, kind in MENTION_COLUMNS:
        if kind == "time":
            result.append((name, lambda v: parse_iso(v) if v else None))
        elif kind == "json":
            f = declared[name]
            default = f.default
            factory: Callable[[], Any] = (
                f.default_factory if callable(f.default_factory) else partial(_same, default)
            )
            result.append((name, partial(_from_json, factory, isinstance(factory(), tuple))))
        else:
            result.append((name, lambda v: v))
    return result


def _same(value: Any) -> Any:
    return value


def _from_json(empty: Callable[[], Any], as_tuple: bool, value: str | None) -> Any:
    if not value:
        return empty()
    data = json.loads(value)
    return tuple(data) if as_tuple else data


_DECODERS = _decoders()


class Store:
    """The database: a SQLite file (the default) or a PostgreSQL URL (see engines/).

    `readonly=True` is for commands that only read: a SQLite file is opened with mode=ro
    (immutable on a read-only mount), so a read-only file or mount can still be read. A
    missing or outdated database is first created or migrated, when it can be written."""

    def __init__(self, location: Path | str, *, readonly: bool = False) -> None:
        self.location = location if engines.is_url(location) else Path(location)
        self.path = self.location  # where the database is (a file's Path, or the URL)
        self.readonly = readonly
        kind = engines.module(self.location)
        if readonly and not kind.exists(self.location):
            if not kind.can_write(self.location):
                raise StoreError(
                    f"there is no database at {self.location}, and its folder is read-only: "
                    "pass --db PATH", EXIT_USAGE)  # fmt: skip
            Store(self.location).close()
        self.db = engines.connect(self.location, readonly=readonly)
        self.conn = self.db  # every query below goes through the engine
        self.label = self.db.label
        if not self._pending():
            pass
        elif not readonly:
            self._migrate()
        else:
            self.db.close()
            if not kind.can_write(self.location):
                raise StoreError(
                    f"the database {self.label} was made by an older mentionwatch and is "
                    "read-only, so it cannot be upgraded: run any command once where it is "
                    "writable, or copy it somewhere writable",
                    EXIT_USAGE,
                )
            Store(self.location).close()  # migrate it, then read
            self.db = self.conn = engines.connect(self.location, readonly=True)
        # What reads select of a mention (then FROM mentions m, or m joined to a search).
        self._columns = f"SELECT {_READ_COLUMNS}"
        self._select = f"{self._columns} FROM mentions m"

    @property
    def engine(self) -> str:
        """ "sqlite" or "postgresql"."""
        return str(self.db.name)

    @property
    def shared(self) -> bool:
        """True when several machines may use this database at once (PostgreSQL): several
        `watch` processes then share the polling instead of refusing each other."""
        return self.engine != "sqlite"

    def _pending(self) -> list[Callable[[Any], None]]:
        applied = self._applied()
        return [m for m in MIGRATIONS if m.__name__ not in applied]

    def close(self) -> None:
        self.db.close()

    # Schema

    def _applied(self) -> set[str]:
        if "_migrations" not in self.db.tables():
            return set()
        return {row[0] for row in self.db.execute("SELECT name FROM _migrations")}

    def _migrate(self) -> None:
        schema = Schema(self.db)
        for fn in self._pending():
            with self.transaction():
                self.db.lock("migrate")  # one process migrates; the others wait, then skip
                if fn.__name__ in self._applied():  # another process got there first
                    continue
                schema.execute(
                    "CREATE TABLE IF NOT EXISTS _migrations "
                    "(name TEXT PRIMARY KEY, applied_at TEXT)"
                )
                fn(schema)
                self.db.execute(
                    "INSERT INTO _migrations VALUES (?, ?)", (fn.__name__, iso(utcnow()))
                )

    def transaction(self) -> _Transaction:
        return _Transaction(self.db)

    def lock(self, name: str) -> None:
        """Inside a transaction: run the rest of it alone among every process using this
        database (SQLite's write transactions already are)."""
        self.db.lock(name)

    def exclusive(self, job: str) -> AbstractContextManager[None]:
        """Hold `job` (e.g. "watch") on this database while a block runs, or raise Held
        naming the process that has it; released however the holder dies."""
        return self.db.exclusive(job)

    # Copying a whole database to another (moving.py)

    def copied_tables(self) -> list[str]:
        """The tables that hold data, mentions first (the others refer to them); not the
        migrations' record (each database keeps its own) nor full-text indexes (each engine
        builds its own from the mentions)."""
        names = [t for t in self.db.tables() if t not in _NOT_COPIED and not t.startswith(
            ("sqlite_", "mentions_fts"))]  # fmt: skip
        return sorted(names, key=lambda t: (t != "mentions", t))

    def columns(self, table: str) -> list[str]:
        """A table's columns (without PostgreSQL's full-text column, made from the others)."""
        return [c for c in self.db.columns(table) if c != "search"]

    def count(self, table: str) -> int:
        return int(self.db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])

    def dump(self, table: str, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """Every row of a table, in a stable order, without holding them all."""
        names = ", ".join(f'"{c}"' for c in columns)
        order = ", ".join(str(i + 1) for i in range(len(columns)))
        for row in self.db.stream(f'SELECT {names} FROM "{table}" ORDER BY {order}'):
            yield tuple(row)

    def load(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        """Insert rows copied from another database, keeping their ids; a row already
        there (same key) is left as it is, so a copy that stopped half way can run again.
        Triggers' side effects are undone: the copied relevance_events are the record."""
        names = list(columns)
        if table == "mentions" and self.db.document is not None:  # PostgreSQL's tsvector
            at = {c: i for i, c in enumerate(names)}
            names.append(self.db.DOCUMENT[0])
            fields = [at.get(c) for c in ("text", "title", "author")]
            rows = [(*r, self.db.document(*(None if i is None else r[i] for i in fields)))
                    for r in rows]  # fmt: skip
        with self.transaction():
            self.db.insert_missing(table, names, rows)

    def finish_load(self, table: str) -> None:
        """After a table is copied: new rows get ids after the copied ones."""
        if "id" in self.db.columns(table):
            self.db.after_load(table)

    def loaded(self) -> None:
        """After a whole copy: statistics for the query planner, where it keeps them."""
        self.db.analyze()

    def clear(self, table: str) -> None:
        with self.transaction():
            self.db.execute(f'DELETE FROM "{table}"')

    def mention_keys(self) -> Iterator[tuple[int, str]]:
        for row in self.db.stream("SELECT id, key FROM mentions ORDER BY id"):
            yield int(row[0]), str(row[1])

    # Writes

    def unknown_keys(self, keys: Sequence[str]) -> set[str]:
        """The keys not stored yet (read from the key index alone)."""
        return set(keys) - {r[0] for r in self._by_key(keys, "key")}

    def _known(self, keys: Iterable[str]) -> dict[str, Row]:
        """The stored rows (id, key, reach, what priority reads, what mention_terms
        copies, and the terms) of these keys."""
        columns = "id, key, reach, sentiment, polarity, intents, created_at, status, terms"
        return {r["key"]: r for r in self._by_key(keys, columns)}

    def _by_key(self, keys: Iterable[str], columns: str) -> Iterator[Row]:
        """These columns of the stored mentions with these keys, 500 keys a statement."""
        wanted = list(dict.fromkeys(keys))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            yield from self.conn.execute(
                f"SELECT {columns} FROM mentions WHERE key IN ({marks})", chunk
            )

    def save_page(
        self,
        source: str,
        scope: str,
        mentions: Iterable[Mention],
        cursor: str | None,
        queue: Callable[[list[Mention]], Iterable[OutboxItem]] | None = None,
    ) -> int:
        """Save mentions (deduplicated by key, terms merged) and move the cursor, atomically.

        Set-based: one lookup of the page's known keys, one executemany insert of the new
        mentions (their ids given: the next free ones), one statement each for their terms,
        the reach of known ones and their echo keys. `queue` gets the new mentions (with
        their ids) and returns the alert deliveries they cause, which go into the outbox in
        the same transaction. Returns how many were new.
        """
        stamp = utcnow()
        page: dict[str, Mention] = {}
        for m in mentions:  # one page may list a post twice: one row, every term, last reach
            first = page.setdefault(m.key, m)
            if first is not m:
                first.terms = list(dict.fromkeys([*first.terms, *m.terms]))
                first.reach = m.reach if m.reach is not None else first.reach
        with self.transaction():
            # Pollers on other machines save too (PostgreSQL): one page at a time, so
            # deduplication, echo grouping and alert queueing see each other's work.
            self.db.lock("save")
            known = self._known(page)
            fresh = [m for k, m in page.items() if k not in known]
            for m in fresh:
                m.fetched_at = m.fetched_at or stamp
            rows = self._insert(fresh)
            # mention_terms copies each mention's status and created_at (m011_feed_indexes).
            stored = {k: (r["id"], r["status"], r["created_at"]) for k, r in known.items()}
            stored |= {r[1]: (r[0], r[_STATUS], r[_CREATED]) for r in rows}
            self.conn.executemany(
                "INSERT INTO mention_terms (mention_id, status, created_at, term) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(*stored[k], t) for k, m in page.items() for t in m.terms],
            )
            self._add_terms([(known[k], m.terms) for k, m in page.items() if k in known])
            self._update_reach([(known[k], m.reach) for k, m in page.items()
                                if k in known and m.reach is not None
                                and m.reach != known[k]["reach"]])  # fmt: skip
            _group_echoes(self.conn, [(r[0], r[_TEXT], r[_TITLE], r[_AUTHOR], r[_CREATED])
                                      for r in rows])  # fmt: skip
            if cursor is not None:
                self.set_cursor(source, scope, cursor)
            if queue is not None and fresh:
                self.enqueue(queue(fresh))
        return len(fresh)

    def _insert(self, mentions: Sequence[Mention]) -> list[list[Any]]:
        """Insert new mentions with ids that ascend in their order (the next free ones:
        the caller's write transaction holds the lock: SQLite's, or the "save" lock on
        PostgreSQL), and set those ids. Returns the rows written (_INSERT_COLUMNS first)."""
        if not mentions:
            return []
        first = self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM mentions").fetchone()[0]
        for offset, m in enumerate(mentions):
            m.id = first + offset
        columns, marks, values = self._insert_plan()
        rows = list(map(values, mentions))
        self.conn.executemany(f"INSERT INTO mentions ({', '.join(columns)}) VALUES {marks}", rows)
        return rows

    def _insert_plan(self) -> tuple[tuple[str, ...], str, Callable[[Mention], list[Any]]]:
        """The columns a new mention's row fills, their placeholders and its values: those
        of _INSERT_COLUMNS, and the search document where the engine keeps one itself
        (PostgreSQL's tsvector; SQLite's FTS5 triggers read the row)."""
        marks = ",".join("?" * len(_INSERT_COLUMNS))
        if self.db.document is None:
            return _INSERT_COLUMNS, f"({marks})", _row
        document = self.db.document
        name, mark = self.db.DOCUMENT
        return (
            (*_INSERT_COLUMNS, name),
            f"({marks}, {mark})",
            (lambda m: [*_row(m), document(m.text, m.title, m.author)]),
        )

    def _add_terms(self, found: Sequence[tuple[Row, list[str]]]) -> None:
        """Stored mentions found again, by these terms: their terms column gains the new
        ones, as their mention_terms rows just did. An UPDATE of terms alone fires no
        trigger (neither FTS5's nor mention_terms' status copy)."""
        changes = []
        for row, terms in found:
            merged = terms_text([*json.loads(row["terms"]), *terms])
            if merged != row["terms"]:
                changes.append((merged, row["id"]))
        self.conn.executemany("UPDATE mentions SET terms = ? WHERE id = ?", changes)

    def _update_reach(self, changes: Sequence[tuple[Row, int]]) -> None:
        """New reach of stored mentions, with the priority it moves."""
        self.conn.executemany(
            "UPDATE mentions SET reach = ?, priority_base = ?, priority_key = ? WHERE id = ?",
            [(reach, *_priority_columns(r["sentiment"], r["polarity"], _json_list(r["intents"]),
                                        reach, r["created_at"]), r["id"])
             for r, reach in changes],
        )  # fmt: skip

    # The outbox (alerts.py decides what goes in; these only read and write rows)

    def enqueue(self, items: Iterable[OutboxItem]) -> int:
        """Queue deliveries (joining the caller's transaction); one already queued for the
        same alert, channel and subject is kept as it is. Returns how many were added."""
        import uuid

        now = iso(utcnow())
        added = 0
        with self.transaction():
            for item in items:
                cur = self.conn.execute(
                    "INSERT INTO outbox (delivery, alert, channel, event, subject, mention_id, "
                    "payload, state, attempts, created_at, next_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) "
                    "ON CONFLICT(alert, channel, event, subject) DO NOTHING",
                    (str(uuid.uuid4()), item.alert, item.channel, item.event, item.subject,
                     item.mention_id, json.dumps(item.payload, ensure_ascii=False), now, now),
                )  # fmt: skip
                added += cur.rowcount
        return added

    def due_deliveries(self, now: datetime | None = None) -> list[Delivery]:
        """Pending deliveries, oldest first; with `now`, only those whose backoff is over."""
        sql = "SELECT * FROM outbox WHERE state = 'pending'"
        params: list[Any] = []
        if now is not None:
            sql += " AND next_at <= ?"
            params.append(iso(now))
        rows = self.conn.execute(sql + " ORDER BY id", params).fetchall()
        return [
            Delivery(
                id=r["id"], delivery=r["delivery"], alert=r["alert"], channel=r["channel"],
                event=r["event"], subject=r["subject"], payload=json.loads(r["payload"]),
                attempts=r["attempts"], created_at=parse_iso(r["created_at"]),
            )
            for r in rows
        ]  # fmt: skip

    def next_delivery_at(self) -> datetime | None:
        """When the next pending delivery is due (None: nothing pending)."""
        row = self.conn.execute(
            "SELECT min(next_at) FROM outbox WHERE state = 'pending'"
        ).fetchone()
        return parse_iso(row[0]) if row and row[0] else None

    def mark_delivered(self, ids: Sequence[int], outcome: str) -> None:
        now = iso(utcnow())
        with self.transaction():
            self.conn.executemany(
                "UPDATE outbox SET state = 'sent', attempts = attempts + 1, last_at = ?, "
                "sent_at = ?, outcome = ? WHERE id = ? AND state = 'pending'",
                [(now, now, outcome, i) for i in ids],
            )

    def mark_failed(self, ids: Sequence[int], outcome: str, retry_at: datetime) -> None:
        """Record a failed attempt; the deliveries stay pending until `retry_at`."""
        with self.transaction():
            self.conn.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_at = ?, next_at = ?, "
                "outcome = ? WHERE id = ? AND state = 'pending'",
                [(iso(utcnow()), iso(retry_at), outcome, i) for i in ids],
            )

    def mark_dropped(self, ids: Sequence[int], outcome: str) -> None:
        """Give up on deliveries that can never be sent (their rule or channel is gone)."""
        with self.transaction():
            self.conn.executemany(
                "UPDATE outbox SET state = 'dropped', outcome = ? WHERE id = ? "
                "AND state = 'pending'",
                [(outcome, i) for i in ids],
            )

    def log_send(
        self, alert: str, channel: str, label: str, deliveries: int, ok: bool, outcome: str,
        test: bool = False,
    ) -> None:  # fmt: skip
        with self.transaction():
            self.conn.execute(
                "INSERT INTO alert_log (at, alert, channel, label, deliveries, ok, outcome, test)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (iso(utcnow()), alert, channel, label, deliveries, int(ok), outcome, int(test)),
            )

    def messages_sent(self, alert: str, channel: str, since: datetime) -> int:
        """Messages (not test ones) a channel accepted for an alert since a time."""
        row = self.conn.execute(
            "SELECT count(*) FROM alert_log WHERE alert = ? AND channel = ? AND ok = 1 "
            "AND test = 0 AND at >= ?",
            (alert, channel, iso(since)),
        ).fetchone()
        return int(row[0])

    def alert_log(self, limit: int | None = 50, alert: str | None = None) -> list[Row]:
        """The most recent messages sent (or tried), newest first; limit None: all."""
        where, params = ("WHERE alert = ?", [alert]) if alert else ("", [])
        cap = "" if limit is None else " LIMIT ?"
        return self.conn.execute(
            f"SELECT * FROM alert_log {where} ORDER BY id DESC{cap}",
            [*params, *([] if limit is None else [limit])],
        ).fetchall()

    def last_sends(self) -> dict[tuple[str, str], Row]:
        """Each (alert, channel)'s most recent message and what it answered."""
        rows = self.conn.execute(
            "SELECT * FROM alert_log WHERE id IN "
            "(SELECT max(id) FROM alert_log GROUP BY alert, channel)"
        ).fetchall()
        return {(r["alert"], r["channel"]): r for r in rows}

    def outbox_counts(self) -> dict[tuple[str, str, str], int]:
        """How many deliveries each (alert, channel) has in each state."""
        rows = self.conn.execute(
            "SELECT alert, channel, state, count(*) FROM outbox GROUP BY alert, channel, state"
        )
        return {(a, c, s): n for a, c, s, n in rows}

    def last_subject(self, alert: str, event: str) -> str | None:
        """The greatest subject queued for an alert's events of one kind (digests: the end of
        the last period queued, as ISO 8601 UTC, which sorts as text)."""
        row = self.conn.execute(
            "SELECT max(subject) FROM outbox WHERE alert = ? AND event = ?", (alert, event)
        ).fetchone()
        return row[0] if row else None

    def get_cursor(self, source: str, scope: str) -> str | None:
        row = self.conn.execute(
            "SELECT value FROM cursors WHERE source = ? AND scope = ?", (source, scope)
        ).fetchone()
        return row[0] if row else None

    def set_cursor(self, source: str, scope: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO cursors VALUES (?, ?, ?, ?) ON CONFLICT(source, scope) "
            "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (source, scope, value, iso(utcnow())),
        )

    def log_poll(self, run: str, result: JobResult) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO polls (run, source, scope, finished_at, fetched, new, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run, result.source, result.scope, iso(utcnow()), result.fetched, result.new,
                 result.error or ("interrupted" if result.interrupted else None)),
            )  # fmt: skip

    def last_polls(self) -> dict[str, list[Row]]:
        """The jobs of each source's most recent poll run."""
        rows = self.conn.execute(
            "SELECT * FROM polls p WHERE run = (SELECT run FROM polls WHERE source = p.source "
            "ORDER BY id DESC LIMIT 1) ORDER BY source, scope"
        ).fetchall()
        result: dict[str, list[Row]] = {}
        for row in rows:
            result.setdefault(row["source"], []).append(row)
        return result

    def get_state(self, source: str, key: str) -> str | None:
        row = self.conn.execute(
            "SELECT value FROM source_state WHERE source = ? AND key = ?", (source, key)
        ).fetchone()
        return row[0] if row else None

    def set_state(self, source: str, key: str, value: str | None) -> None:
        with self.transaction():
            if value is None:
                self.conn.execute(
                    "DELETE FROM source_state WHERE source = ? AND key = ?", (source, key)
                )
            else:
                self.conn.execute(
                    "INSERT INTO source_state VALUES (?, ?, ?, ?) ON CONFLICT(source, key) "
                    "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    (source, key, value, iso(utcnow())),
                )

    def set_status(
        self, ids: Sequence[int], status: str, note: str | None = None, actor: str | None = None
    ) -> int:
        """Set the workflow status of mentions and log it (with who did it); returns how
        many changed."""
        now = iso(utcnow())
        changed = 0
        with self.transaction():
            for mention_id in ids:
                cur = self.conn.execute(
                    "UPDATE mentions SET status = ?, status_at = ? WHERE id = ? AND status != ?",
                    (status, now, mention_id, status),
                )
                changed += cur.rowcount
                if cur.rowcount or note:
                    self.conn.execute(
                        "INSERT INTO status_log (mention_id, status, note, at, actor) "
                        "VALUES (?,?,?,?,?)",
                        (mention_id, status, note, now, actor),
                    )
        return changed

    def assign(self, ids: Sequence[int], assignee: str | None, actor: str | None) -> int:
        """Assign mentions to a person (None: to nobody) and log it; returns how many
        changed."""
        now = iso(utcnow())
        changed = 0
        with self.transaction():
            for mention_id in ids:
                row = self.conn.execute(
                    "UPDATE mentions SET assignee = ? WHERE id = ? AND "
                    f"{self.db.distinct('assignee', '?')} RETURNING status",
                    (assignee, mention_id, assignee),
                ).fetchone()
                if row is None:
                    continue
                changed += 1
                self.conn.execute(
                    "INSERT INTO status_log (mention_id, status, at, actor, assignee) "
                    "VALUES (?,?,?,?,?)",
                    (mention_id, row[0], now, actor, assignee or ""),
                )
        return changed

    # Claims: who is answering a mention right now (team.py)

    def claim(
        self, mention_id: int, actor: str, token: str, seconds: float, force: bool = False
    ) -> Row | None:
        """Claim a mention for `seconds` under `token`; None when it is ours now, else the
        row (actor, at, expires_at) of the live claim someone else holds. `force` takes it
        over. One statement, so two claimers at the same moment cannot both win."""
        now = utcnow()
        expires = iso(now + timedelta(seconds=seconds))
        taken = "" if force else (" WHERE claims.expires_at <= ? OR claims.token = ? OR "
                                  f"{self.db.dead('claims.session')}")  # fmt: skip
        params: list[Any] = [mention_id, actor, token, iso(now), expires, self.db.session]
        if not force:
            params += [iso(now), token]
        with self.transaction():
            row = self.conn.execute(
                "INSERT INTO claims (mention_id, actor, token, at, expires_at, session) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mention_id) DO UPDATE SET "
                "actor = excluded.actor, token = excluded.token, at = excluded.at, "
                f"expires_at = excluded.expires_at, session = excluded.session{taken} "
                "RETURNING token",
                params,
            ).fetchone()
            if row is not None:
                return None
            return self.conn.execute(
                "SELECT actor, at, expires_at FROM claims WHERE mention_id = ?", (mention_id,)
            ).fetchone()

    def release(self, mention_id: int, token: str) -> None:
        """End our claim on a mention (someone else's, taken over since, stays)."""
        with self.transaction():
            self.conn.execute(
                "DELETE FROM claims WHERE mention_id = ? AND token = ?", (mention_id, token)
            )

    # Leases: which `watch` process runs a polling job right now (team.py)

    def take_jobs(self, jobs: Sequence[str], holder: str, seconds: float, share: int) -> list[str]:
        """Lease `share` of `jobs` to `holder` for `seconds`: those it holds already (beyond
        its share they are given back, for a newly started worker), then jobs nobody holds
        or whose lease expired. Returns the jobs now ours. A job another taker is locking at
        this moment is skipped, not waited for."""
        if not jobs:
            return []
        now = utcnow()
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO leases (job, holder, expires_at) VALUES (?, NULL, ?) "
                "ON CONFLICT (job) DO NOTHING",
                [(job, iso(now)) for job in jobs],
            )
        marks = ",".join("?" * len(jobs))
        with self.transaction():
            mine = [r[0] for r in self.conn.execute(
                f"SELECT job FROM leases WHERE job IN ({marks}) AND holder = ? AND "
                f"expires_at > ? ORDER BY job{self.db.FOR_UPDATE}",
                [*jobs, holder, iso(now)],
            )]  # fmt: skip
            kept, extra = mine[:share], mine[share:]
            self.conn.executemany(
                "UPDATE leases SET holder = NULL, expires_at = ? WHERE job = ?",
                [(iso(now), job) for job in extra],
            )
            # SQLite's write lock serialises takers; on PostgreSQL each skips the rows
            # another is taking at this moment instead of waiting for them.
            free = [r[0] for r in self.conn.execute(
                f"SELECT job FROM leases WHERE job IN ({marks}) AND (holder IS NULL OR "
                f"expires_at <= ? OR {self.db.dead('session')}) ORDER BY expires_at, job "
                f"LIMIT ?{self.db.SKIP_LOCKED}",
                [*jobs, iso(now), max(0, share - len(kept))],
            )]  # fmt: skip
            until = iso(now + timedelta(seconds=seconds))
            self.conn.executemany(
                "UPDATE leases SET holder = ?, expires_at = ?, runs = runs + ?, session = ? "
                "WHERE job = ?",
                [(holder, until, int(job in free), self.db.session, job) for job in kept + free],
            )
        return kept + free

    def workers(self, holder: str, seconds: float) -> int:
        """Say that `holder` is a live worker for the next `seconds`; returns how many live
        workers there are (itself included), to split the jobs among."""
        now = utcnow()
        name = f"{WORKER_PREFIX}{holder}"
        with self.transaction():
            self.conn.execute(
                "INSERT INTO leases (job, holder, expires_at, session) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, "
                "expires_at = excluded.expires_at, session = excluded.session",
                (name, holder, iso(now + timedelta(seconds=seconds)), self.db.session),
            )
            self.conn.execute(
                "DELETE FROM leases WHERE job LIKE ? AND (expires_at <= ? OR "
                f"{self.db.dead('session')})",
                (f"{WORKER_PREFIX}%", iso(now)),
            )
            row = self.conn.execute(
                "SELECT count(*) FROM leases WHERE job LIKE ?", (f"{WORKER_PREFIX}%",)
            ).fetchone()
        return max(1, int(row[0]))

    def renew_jobs(self, jobs: Sequence[str], holder: str, seconds: float) -> list[str]:
        """Extend our leases on `jobs`; returns those still ours (one that expired and was
        taken by another process is not)."""
        until = iso(utcnow() + timedelta(seconds=seconds))
        kept = []
        with self.transaction():
            for job in jobs:
                row = self.conn.execute(
                    "UPDATE leases SET expires_at = ? WHERE job = ? AND holder = ? RETURNING job",
                    (until, job, holder),
                ).fetchone()
                if row is not None:
                    kept.append(job)
        return kept

    def drop_jobs(self, jobs: Sequence[str], holder: str, retire: bool = False) -> None:
        """Give our leases back, for another process to take at once; `retire`: this worker
        is stopping (it no longer counts among the live ones)."""
        with self.transaction():
            self.conn.executemany(
                "UPDATE leases SET holder = NULL, expires_at = ? WHERE job = ? AND holder = ?",
                [(iso(utcnow()), job, holder) for job in jobs],
            )
            if retire:
                self.conn.execute("DELETE FROM leases WHERE job = ?", (f"{WORKER_PREFIX}{holder}",))

    def leases(self) -> list[Row]:
        """Every polling job's lease: job ("source scope"), holder, expires_at, runs, and
        gone (its holder's connection has ended: the process died)."""
        return self.conn.execute(
            f"SELECT job, holder, expires_at, runs, {self.db.dead('session')} AS gone "
            "FROM leases WHERE job NOT LIKE ? AND job NOT LIKE ? ORDER BY job",
            (f"{WORKER_PREFIX}%", f"{RETIRED_DELIVERY_PREFIX}%"),
        ).fetchall()

    def update_sentiment(
        self, rows: Iterable[tuple[int, str, float, Sequence[str], float | None]]
    ) -> None:
        """New (label, polarity, intents, LLM relevance) of mentions, by id, with the
        priority they move."""
        rows = list(rows)
        with self.transaction():
            stored: dict[int, Row] = {}
            for start in range(0, len(rows), 500):
                chunk = [r[0] for r in rows[start : start + 500]]
                stored.update((r[0], r) for r in self.conn.execute(
                    "SELECT id, reach, created_at FROM mentions "
                    f"WHERE id IN ({','.join('?' * len(chunk))})", chunk))  # fmt: skip
            self.conn.executemany(
                "UPDATE mentions SET sentiment = ?, polarity = ?, intents = ?, llm_relevance = ?, "
                "priority_base = ?, priority_key = ? WHERE id = ?",
                [(label, pol, json.dumps(list(intents)), rel,
                  *_priority_columns(label, pol, intents, stored[i][1], stored[i][2]), i)
                 for i, label, pol, intents, rel in rows if i in stored],
            )  # fmt: skip

    def llm_cache(self) -> LLMCache:
        return LLMCache(self)

    # Relevance (relevance.py owns the meaning; these are its reads and writes)

    def set_relevance(self, rows: Iterable[tuple[int, float | None]]) -> None:
        with self.transaction():
            self.conn.executemany(
                "UPDATE mentions SET relevance = ? WHERE id = ?", [(r, i) for i, r in rows]
            )

    def relevance_events(self) -> list[tuple[int, int, str]]:
        """Decisions not learned from yet: (event id, mention id, status), oldest first."""
        rows = self.conn.execute(
            "SELECT e.id, e.mention_id, e.status FROM relevance_events e "
            "JOIN mentions m ON m.id = e.mention_id ORDER BY e.id"
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def delete_relevance_events(self, up_to: int) -> None:
        with self.transaction():
            self.conn.execute("DELETE FROM relevance_events WHERE id <= ?", (up_to,))

    def relevance_lesson(self, mention_id: int, term: str) -> tuple[bool, list[str]] | None:
        """What a mention taught a term (relevant?, the features counted), if anything."""
        row = self.conn.execute(
            "SELECT relevant, features FROM relevance_lessons WHERE mention_id = ? AND term = ?",
            (mention_id, term),
        ).fetchone()
        return None if row is None else (bool(row[0]), json.loads(row[1]))

    def set_relevance_lesson(
        self, mention_id: int, term: str, relevant: bool | None, features: Sequence[str]
    ) -> None:
        with self.transaction():
            if relevant is None:
                self.conn.execute(
                    "DELETE FROM relevance_lessons WHERE mention_id = ? AND term = ?",
                    (mention_id, term),
                )
            else:
                self.conn.execute(
                    "INSERT INTO relevance_lessons VALUES (?, ?, ?, ?) ON CONFLICT "
                    "(mention_id, term) DO UPDATE SET relevant = excluded.relevant, "
                    "features = excluded.features",
                    (mention_id, term, int(relevant), json.dumps(list(features))),
                )

    def add_relevance_counts(
        self, term: str, features: Sequence[str], relevant: bool, delta: int
    ) -> None:
        """Count (or, with delta -1, uncount) one decision and its features for a term."""
        rel, irr = (delta, 0) if relevant else (0, delta)
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO relevance_counts VALUES (?, ?, ?, ?) ON CONFLICT(term, feature) "
                "DO UPDATE SET relevant = relevance_counts.relevant + excluded.relevant, "
                "irrelevant = relevance_counts.irrelevant + excluded.irrelevant",
                [(term, f, rel, irr) for f in [_DECISIONS, *dict.fromkeys(features)]],
            )

    def relevance_counts(self, term: str) -> tuple[int, int, dict[str, tuple[int, int]]]:
        """A term's decisions (relevant, irrelevant) and the same counts per feature."""
        total, by_feature = (0, 0), {}
        for feature, rel, irr in self.conn.execute(
            "SELECT feature, relevant, irrelevant FROM relevance_counts WHERE term = ?", (term,)
        ):
            if feature == _DECISIONS:
                total = (rel, irr)
            elif rel or irr:
                by_feature[feature] = (rel, irr)
        return total[0], total[1], by_feature

    def add_reply(self, mention_id: int, text: str, outcome: str, **fields: str | None) -> int:
        """Record a reply attempt; returns its row id."""
        columns = ["mention_id", "text", "attempted_at", "outcome", *fields]
        values = [mention_id, text, iso(utcnow()), outcome, *fields.values()]
        with self.transaction():
            marks = ",".join("?" * len(values))
            row = self.conn.execute(
                f"INSERT INTO replies ({', '.join(columns)}) VALUES ({marks}) RETURNING id", values
            ).fetchone()
        return int(row[0])

    def update_reply(self, reply_id: int, outcome: str, **fields: str | None) -> None:
        sets = ", ".join(f"{k} = ?" for k in ["outcome", *fields])
        with self.transaction():
            self.conn.execute(
                f"UPDATE replies SET {sets} WHERE id = ?", [outcome, *fields.values(), reply_id]
            )

    def set_extra(self, mention_id: int, key: str, value: Any) -> None:
        """Set one key of a mention's platform details (e.g. the thread fetched for `show`)."""
        with self.transaction():
            row = self.conn.execute(
                f"SELECT extra FROM mentions WHERE id = ?{self.db.FOR_UPDATE}", (mention_id,)
            ).fetchone()
            if row is None:
                return
            extra = json.loads(row[0]) if row[0] else {}
            extra[key] = value
            self.conn.execute(
                "UPDATE mentions SET extra = ? WHERE id = ?",
                (json.dumps(extra, ensure_ascii=False, sort_keys=True), mention_id),
            )

    def replies(self, mention_id: int) -> list[Row]:
        return self.conn.execute(
            "SELECT * FROM replies WHERE mention_id = ? ORDER BY id", (mention_id,)
        ).fetchall()

    # Reads

    def resolve(self, refs: Iterable[str]) -> list[int]:
        """Integer ids for IDs or keys; raises UnknownMention naming every unknown one."""
        ids: list[int] = []
        unknown: list[str] = []
        for ref in refs:
            ref = ref.strip()
            if not ref:
                continue
            if ref.isdigit():
                row = self.conn.execute("SELECT id FROM mentions WHERE id = ?", (int(ref),))
            else:
                row = self.conn.execute("SELECT id FROM mentions WHERE key = ?", (ref,))
            found = row.fetchone()
            if found:
                ids.append(found[0])
            else:
                unknown.append(ref)
        if unknown:
            raise UnknownMention(", ".join(unknown))
        return list(dict.fromkeys(ids))

    def get(self, mention_id: int) -> Mention:
        row = self.conn.execute(self._select + " WHERE m.id = ?", (mention_id,)).fetchone()
        if row is None:
            raise UnknownMention(str(mention_id))
        return _mention(row)

    def status_history(self, mention_id: int) -> list[Row]:
        """Status changes, notes and assignments, oldest first, with who made them."""
        return self.conn.execute(
            "SELECT status, note, at, actor, assignee FROM status_log WHERE mention_id = ? "
            "ORDER BY id",
            (mention_id,),
        ).fetchall()

    def mentions(
        self, filters: Filters, limit: int | None = None, order: str = "newest"
    ) -> Iterator[Mention]:
        """Stream the mentions that pass the filters: newest first, oldest first, by
        priority (what to answer first, ties to the newer), or by relevance to --search
        (FTS5's bm25 rank; PostgreSQL's ts_rank). Each order is read from an index, as
        far as it is consumed."""
        if order == "priority":
            for mention_id in self._by_priority(filters, limit):
                yield self.get(mention_id)
            return
        if order == "relevance" and filters.search:
            if self.db.SEARCH_IN_TIME_ORDER:  # FTS5: bm25 over the newest RANKED matches
                source, params = self._search_range(filters, ranked=True)
                newest = f"SELECT f.rowid AS hit, f.rank AS rank {source} ORDER BY f.rowid DESC"
                sql = (f"{self._columns} FROM ({newest} LIMIT {RANKED}) f CROSS JOIN mentions m "
                       f"WHERE m.time_key = f.hit ORDER BY f.rank, f.hit DESC")  # fmt: skip
                if limit is not None:
                    sql += " LIMIT ?"
                    params.append(limit)
                yield from map(_mention, self._execute(sql, params, filters))
                return
            where, params = self._where(filters)
            ranked = self.db.ranked(self._select, where, params, filters.search, limit, RANKED)
            yield from map(_mention, self._guarded(ranked, filters))
            return
        yield from map(_mention, self.rows(filters, limit, order))

    def rows(
        self, filters: Filters, limit: int | None = None, order: str = "newest",
        columns: Sequence[str] | None = None,
    ) -> Iterator[Row]:  # fmt: skip
        """The stored rows (every column a Mention is made of, `terms` a JSON list, or only
        `columns`) of the mentions that pass the filters, newest or oldest first: what export
        streams, with no Mention built."""
        direction = "ASC" if order == "oldest" else "DESC"
        chosen = f"SELECT {', '.join(f'm.{c}' for c in columns)}" if columns else self._columns
        select = f"{chosen} FROM mentions m"
        if filters.search and self.db.SEARCH_IN_TIME_ORDER:  # m011_search_order
            source, params = self._search_range(filters)
            sql = f"{chosen} {source} ORDER BY f.rowid {direction}"
            if limit is not None:
                sql += " LIMIT ?"
                params.append(limit)
            yield from self._guarded(self.db.stream(sql, params), filters)
            return
        if limit is not None:
            branched = self._branches(filters, direction, limit)
            if branched is not None:
                ids, params = branched
                sql = (f"{select} WHERE m.id IN ({ids}) "
                       f"ORDER BY m.created_at {direction}, m.id {direction} LIMIT ?")  # fmt: skip
                yield from self._guarded(self.db.stream(sql, [*params, limit]), filters)
                return
        where, params = self._where(filters)
        sql = f"{select}{where} ORDER BY m.created_at {direction}, m.id {direction}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        yield from self._guarded(self.db.stream(sql, params), filters)

    def _guarded(self, rows: Iterator[Row], filters: Filters) -> Iterator[Row]:
        """Rows, with what the search engine refused said as a SearchError."""
        try:
            yield from rows
        except Exception as exc:
            if filters.search and self.db.search_failed(exc):
                from mentionwatch.search import SearchError

                raise SearchError(f"--search: cannot read {filters.search!r}: {exc}") from None
            raise

    def _by_priority(self, filters: Filters, limit: int | None) -> Iterator[int]:
        """Ids in priority order (ties: newer first), from two index-ordered lists.

        priority = base × (F + (1 - F) × 2 ** -(age / half-life)) = F × base + (1 - F) ×
        2 ** (key - now), with base and key stored (m007_scale). Fagin's threshold algorithm:
        read the mentions by base and by key at once, each from its index, per status; an
        unread mention cannot beat F × (last base read) + (1 - F) × 2 ** (last key read -
        now), so every candidate above that is final and is yielded. The rows read depend on
        how far the feed is read, not on how many mentions there are.
        """
        now = utcnow()
        now_units = now.timestamp() / 3600 / HALF_LIFE_HOURS
        statuses = filters.statuses or STATUSES
        where, params = self._where(replace(filters, statuses=()))
        # Each list is read in pages; a first page that holds what `limit` mentions need
        # (measured: ~4 rows per list per mention at 10k-100k, growing slowly with size) reads
        # each row once. Rows are read at random places in the table: at 100k, pages of 64
        # then 256 read 4x the rows needed, which cost more than the algorithm itself.
        first = max(64, 8 * limit) if limit else 64
        streams = []
        for status in statuses:
            for column in ("priority_base", "priority_key"):
                streams.append(self._ordered(column, status, where, params, filters, first))
        last: list[float | None] = [math.inf] * len(streams)  # None: that stream is done
        best: list[tuple[float, str, int]] = []  # a max-heap of (-priority, -when, -id)
        seen: set[int] = set()
        given = 0
        import heapq

        while limit is None or given < limit:
            for i, stream in enumerate(streams):
                if last[i] is None:
                    continue
                row = next(stream, None)
                if row is None:
                    last[i] = None
                    continue
                mention_id, base, key, created = row
                last[i] = base if i % 2 == 0 else key
                if mention_id in seen:
                    continue
                seen.add(mention_id)
                age = (now - parse_iso(created)).total_seconds() / 3600
                heapq.heappush(best, (-base * freshness(age), _negated(created), -mention_id))
            bound = -math.inf
            for j in range(0, len(streams), 2):  # per status: its base list, its key list
                b, k = last[j], last[j + 1]
                if b is not None and k is not None:
                    bound = max(bound, FLOOR * b + (1 - FLOOR) * 2 ** min(k - now_units, 1024))
            while best and -best[0][0] > bound and (limit is None or given < limit):
                yield -heapq.heappop(best)[2]
                given += 1
            if bound == -math.inf and not best:
                return

    def _ordered(
        self,
        column: str,
        status: str,
        where: str,
        params: list[Any],
        filters: Filters,
        first: int = 64,
    ) -> Iterator[tuple[int, float, float, str]]:
        """(id, base, key, created_at) of one status's mentions by `column`, highest first:
        pages of an index range (keyset paging, so each page is one index seek), the first
        of `first` rows."""
        clause = "m.status = ?" + (" AND " + where.removeprefix(" WHERE ") if where else "")
        after, size = None, first
        while True:
            page_where = clause + (f" AND (m.{column}, m.id) < (?, ?)" if after else "")
            sql = (f"SELECT m.id, m.priority_base, m.priority_key, m.created_at FROM mentions m "
                   f"WHERE {page_where} ORDER BY m.{column} DESC, m.id DESC LIMIT ?")  # fmt: skip
            rows = self._execute(sql, [status, *params, *(after or ()), size], filters).fetchall()
            yield from ((r[0], r[1], r[2], r[3]) for r in rows)
            if len(rows) < size:
                return
            value = rows[-1][1] if column == "priority_base" else rows[-1][2]
            after, size = (value, rows[-1][0]), min(size * 4, 4096)

    def count_by_status(self, filters: Filters, cap: int | None = None) -> dict[str, int]:
        """How many mentions pass the filters, per status (the status filter ignored); with
        `cap`, counting stops there (a count equal to the cap means at least that many)."""
        counts = {}
        for status in STATUSES:
            source, params, key = self._status_range(replace(filters, statuses=(status,)))
            # Several terms: a mention found by two is one row, not two.
            picked = "DISTINCT t.mention_id" if key == "t" and len(filters.terms) > 1 else "1"
            sql = f"SELECT count(*) FROM (SELECT {picked} {source}"
            sql += " LIMIT ?) n" if cap else ") n"
            row = self._execute(sql, [*params, *([cap] if cap else [])], filters)
            n = int(row.fetchone()[0])
            if n:
                counts[status] = n
        return counts

    def term_names(self) -> list[str]:
        """The terms stored mentions were found by (a term may since have left the config)."""
        rows = self.conn.execute("SELECT DISTINCT term FROM mention_terms ORDER BY term")
        return [row[0] for row in rows]

    def _execute(self, sql: str, params: list[Any], filters: Filters) -> Any:
        try:
            return self.db.execute(sql, params)
        except Exception as exc:
            if filters.search and self.db.search_failed(exc):  # what fts_query let through
                from mentionwatch.search import SearchError

                raise SearchError(f"--search: cannot read {filters.search!r}: {exc}") from None
            raise

    def _where(self, f: Filters) -> tuple[str, list[Any]]:
        """The WHERE clause (on mentions `m`) and its parameters for these filters."""
        clauses: list[str] = []
        params: list[Any] = []
        if f.since is not None:
            clauses.append("m.created_at >= ?")
            params.append(iso(f.since))
        if f.until is not None:
            clauses.append("m.created_at < ?")
            params.append(iso(f.until))
        if f.sources:
            clauses.append(f"m.source IN ({','.join('?' * len(f.sources))})")
            params.extend(f.sources)
        if f.terms:
            marks = ",".join("?" * len(f.terms))
            clauses.append(
                "EXISTS (SELECT 1 FROM mention_terms t "
                f"WHERE t.mention_id = m.id AND t.term IN ({marks}))"
            )
            params.extend(f.terms)
        if f.sentiments:
            clauses.append(f"m.sentiment IN ({','.join('?' * len(f.sentiments))})")
            params.extend(f.sentiments)
        if f.statuses and f.search and not self.db.SEARCH_IN_TIME_ORDER:
            # PostgreSQL's full text per status (m013_search_by_status): a literal, so that
            # a prepared statement's plan can use the status's own index too.
            clauses.append(f"m.status IN ({','.join(map(_status_literal, f.statuses))})")
        elif f.statuses:
            clauses.append(f"m.status IN ({','.join('?' * len(f.statuses))})")
            params.extend(f.statuses)
        if f.intents:
            # LIKE on the JSON list costs far less per row than expanding it, and each intent's
            # partial index (m011_feed_indexes) serves its clause.
            clauses.append("(" + " OR ".join(_intent_clause(i) for i in f.intents) + ")")
        if f.search:
            clause, args = self.db.search(f.search)
            clauses.append(clause)
            params.extend(args)
        if f.min_relevance is not None:
            clauses.append("(m.relevance IS NULL OR m.relevance >= ?)")
            params.append(f.min_relevance)
        if f.assignees or f.unassigned:
            either = [f"m.assignee IN ({','.join('?' * len(f.assignees))})"] if f.assignees else []
            either += ["m.assignee IS NULL"] if f.unassigned else []
            clauses.append("(" + " OR ".join(either) + ")")
            params.extend(f.assignees)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def _status_range(self, f: Filters) -> tuple[str, list[Any], str]:
        """`FROM … WHERE …` of the mentions that pass filters with one status, shaped so an
        index range yields them in created_at order: mention_terms' (term, status, created_at)
        for one term (the mention joined after it, in this order), else mentions' own indexes
        (status, created_at; an intent's partial one; source or sentiment first); with
        --search, FTS5's matches of that status. Also the alias of the table whose id and
        created_at to read and order by: t (mention_terms, the id is mention_id), m, or f (the
        FTS5 index, whose rowid is the time_key)."""
        (status,) = f.statuses
        if f.search and self.db.SEARCH_IN_TIME_ORDER:
            source, params = self._search_range(f, joined=False)
            return source, params, "f"
        if f.terms:
            where, params = self._where(replace(f, statuses=(), terms=()))
            marks = ",".join("?" * len(f.terms))
            if not where:  # the index alone answers
                return (f"FROM mention_terms t WHERE t.term IN ({marks}) AND t.status = ?",
                        [*f.terms, status], "t")  # fmt: skip
            # CROSS JOIN: SQLite keeps this join order (the term's index drives); for other
            # engines it is an inner join like any other.
            return (f"FROM mention_terms t CROSS JOIN mentions m WHERE m.id = t.mention_id "
                    f"AND t.term IN ({marks}) AND t.status = ? AND {where.removeprefix(' WHERE ')}",
                    [*f.terms, status, *params], "t")  # fmt: skip
        where, params = self._where(f)
        return f"FROM mentions m{where}", params, "m"

    def _search_range(
        self, f: Filters, joined: bool = True, ranked: bool = False
    ) -> tuple[str, list[Any]]:
        """SQLite: `FROM … WHERE …` of the --search matches that pass the filters, driven by
        FTS5 (its rowid order is the time order; the statuses are part of the match, the
        other filters are checked on each mention joined to a match). `joined=False`: the
        mention is joined only if a filter needs it (for counting). `ranked`: the statuses
        are checked on the mention instead, since bm25 would first count every mention of
        the status."""
        from mentionwatch.search import fts_match

        where, params = self._where(replace(f, statuses=f.statuses if ranked else (), search=None))
        match = fts_match(f.search or "", () if ranked else f.statuses)
        if not where and not joined:
            return "FROM mentions_fts f WHERE f.mentions_fts MATCH ?", [match]
        # CROSS JOIN keeps FTS5 driving in SQLite; elsewhere an inner join like any other.
        rest = where.replace(" WHERE ", " AND ", 1)
        return (f"FROM mentions_fts f CROSS JOIN mentions m WHERE f.mentions_fts MATCH ? "
                f"AND m.time_key = f.rowid{rest}", [match, *params])  # fmt: skip

    def _branches(self, f: Filters, direction: str, limit: int) -> tuple[str, list[Any]] | None:
        """The ids of the first `limit` mentions in created_at order, as a union of index
        ranges read only as far as `limit`: one per status, term and intent asked for (SQLite
        cannot merge several ranges of one index in order, so a list of statuses or terms
        would otherwise sort every match). None when there would be too many ranges."""
        statuses = f.statuses or STATUSES
        terms: Sequence[str | None] = f.terms or (None,)
        intents: Sequence[str | None] = f.intents or (None,)
        if len(statuses) * len(terms) * len(intents) > _MAX_BRANCHES:
            return None
        parts, params = [], []
        for status in statuses:
            for term in terms:
                for intent in intents:
                    one = replace(f, statuses=(status,), terms=(term,) if term else (),
                                  intents=(intent,) if intent else ())  # fmt: skip
                    source, values, key = self._status_range(one)
                    ident = f"{key}.mention_id" if key == "t" else "m.id"
                    order = f"{key}.created_at {direction}, {ident} {direction}"
                    parts.append(f"SELECT id FROM (SELECT {ident} AS id {source} "
                                 f"ORDER BY {order} LIMIT ?) b")  # fmt: skip
                    params += [*values, limit]
        return " UNION ".join(parts), params

    # Reads for trends.py: every aggregate is computed here, in SQL.

    def span(self, filters: Filters) -> tuple[str, str] | None:
        """The first and last created_at of the mentions that pass the filters."""
        where, params = self._where(filters)
        sql = f"SELECT min(m.created_at), max(m.created_at) FROM mentions m{where}"
        row = self._execute(sql, params, filters).fetchone()
        return (row[0], row[1]) if row and row[0] else None

    def period_counts(
        self, filters: Filters, periods: Sequence[tuple[str, str]], group: str | None = None
    ) -> list[tuple[str, str | None, str | None, int]]:
        """(period start, group, sentiment, count) for the mentions that pass the filters.

        `periods` are [start, end) pairs of stored-format UTC times, passed as one JSON array
        so any number of periods is one parameter; `group` is None, "term" or "source". A
        mention with two terms counts once in each term's group.
        """
        where, params = self._where(filters)
        group_sql = {None: "NULL", "source": "m.source", "term": "t.term"}[group]
        join = "JOIN mention_terms t ON t.mention_id = m.id " if group == "term" else ""
        sql = (
            f"SELECT p.lo AS start, {group_sql} AS grp, m.sentiment, "
            f"count(*) FROM {self.db.periods()} JOIN mentions m "
            "ON m.created_at >= p.lo AND m.created_at < p.hi "
            f"{join}{where} GROUP BY start, grp, m.sentiment"
        )
        periods_json = json.dumps([list(p) for p in periods])
        return [tuple(r) for r in self._execute(sql, [periods_json, *params], filters)]

    def top(self, filters: Filters, by: str, limit: int = 10) -> list[Row]:
        """The sources or terms with the most mentions (`by="source"|"term"`), or the authors
        with the most reach (`by="author"`): count, negatives, reach summed and at most."""
        where, params = self._where(filters)
        join, extra = "", ""
        order = "mentions DESC, negative DESC"
        if by == "source":
            key = "m.source"
        elif by == "term":
            key, join = "t.term", " JOIN mention_terms t ON t.mention_id = m.id"
        else:
            key, order = "m.source, m.author", "reach DESC, mentions DESC"
            where += (" AND " if where else " WHERE ") + "m.author IS NOT NULL"
            extra = ", max(m.author_name) AS author_name"
        sql = (
            f"SELECT {key}, count(*) AS mentions, {_NEGATIVES} AS negative, "
            "CAST(coalesce(sum(m.reach), 0) AS BIGINT) AS reach, "
            f"max(m.reach) AS top_reach{extra} "
            f"FROM mentions m{join}{where} GROUP BY {key} ORDER BY {order}, {key} LIMIT ?"
        )
        return self._execute(sql, [*params, limit], filters).fetchall()

    def response_counts(self, filters: Filters) -> list[Row]:
        """Per source: mentions, answered (a reply posted or written by hand), handled,
        ignored, and answered-or-handled."""
        sql = (
            f"WITH r AS ({self._responses_sql(filters)}) SELECT source, count(*) AS mentions, "
            "count(replied_at) AS answered, "
            "sum(CASE WHEN status = 'handled' THEN 1 ELSE 0 END) AS handled, "
            "sum(CASE WHEN status = 'ignored' THEN 1 ELSE 0 END) AS ignored, "
            "sum(CASE WHEN replied_at IS NOT NULL OR status = 'handled' THEN 1 ELSE 0 END) "
            "AS dealt FROM r "
            "GROUP BY source ORDER BY source"
        )
        return self._execute(sql, self._where(filters)[1], filters).fetchall()

    def delay_quantiles(
        self, filters: Filters, until: str, quantiles: Sequence[float], per_source: bool
    ) -> list[Row]:
        """Seconds from creation to the first reply (`until="reply"`) or to the first time
        marked handled (`until="handled"`): for each quantile q, the values at the two ranks
        that straddle position (n - 1) * q (linear interpolation, numpy's default), per
        source or overall ("*")."""
        column = {"reply": "replied_at", "handled": "handled_at"}[until]
        partition = "source" if per_source else "'*'"
        floor = self.db.floor_int
        parts = []
        for q in (float(x) for x in quantiles):
            low = floor(f"(n - 1) * {q!r}")
            parts.append(f"rn = {low} + 1 OR rn = {low} + 1 + "
                         f"CASE WHEN (n - 1) * {q!r} > {low} THEN 1 ELSE 0 END")  # fmt: skip
        wanted = " OR ".join(parts)
        delay = f"{self.db.epoch(column)} - {self.db.epoch('created_at')}"
        sql = (
            f"WITH r AS ({self._responses_sql(filters)}), "
            f"d AS (SELECT {partition} AS source, CASE WHEN {delay} > 0 THEN {delay} ELSE 0 "
            f"END AS seconds FROM r WHERE {column} IS NOT NULL), "
            "o AS (SELECT source, seconds, row_number() OVER (PARTITION BY source "
            "ORDER BY seconds) AS rn, count(*) OVER (PARTITION BY source) AS n FROM d) "
            f"SELECT source, rn, n, seconds FROM o WHERE {wanted} ORDER BY source, rn"
        )
        return self._execute(sql, self._where(filters)[1], filters).fetchall()

    def _responses_sql(self, filters: Filters) -> str:
        where, _ = self._where(filters)
        return (
            "SELECT m.id, m.source, m.status, m.created_at, "
            "(SELECT min(attempted_at) FROM replies WHERE mention_id = m.id "
            "AND outcome IN ('posted', 'link')) AS replied_at, "
            "(SELECT min(at) FROM status_log WHERE mention_id = m.id "
            f"AND status = 'handled' AND assignee IS NULL) AS handled_at FROM mentions m{where}"
        )

    def unanswered(self, filters: Filters, limit: int) -> list[Mention]:
        """Mentions that pass the filters and have no reply posted or written by hand,
        highest reach first."""
        where, params = self._where(filters)
        clause = (
            "NOT EXISTS (SELECT 1 FROM replies r WHERE r.mention_id = m.id "
            "AND r.outcome IN ('posted', 'link'))"
        )
        where += (" AND " if where else " WHERE ") + clause
        sql = f"{self._select}{where} ORDER BY coalesce(m.reach, 0) DESC, m.created_at DESC LIMIT ?"
        return [_mention(row) for row in self._execute(sql, [*params, limit], filters)]

    def bin_counts(
        self, filters: Filters, start: str, end: str, seconds: int
    ) -> list[tuple[int, int]]:
        """(bin number, count) of mentions created in [start, end), in bins of `seconds`
        counted from the Unix epoch; empty bins are absent."""
        where, params = self._where(filters)
        clause = "m.created_at >= ? AND m.created_at < ?"
        where += (" AND " if where else " WHERE ") + clause
        sql = (
            f"SELECT {self.db.epoch('m.created_at')} / {int(seconds)} AS bin, "
            f"count(*) FROM mentions m{where} GROUP BY bin ORDER BY bin"
        )
        return [(r[0], r[1]) for r in self._execute(sql, [*params, start, end], filters)]

    def echo_group(self, root: int, filters: Filters) -> list[Mention]:
        """The original `root` and its echoes that pass the filters, oldest first."""
        # The members are found first (the root's id, the echo_of index) and the filters
        # checked on just those rows: as `id = ? OR echo_of = ?` the planner walked the
        # status index through every open mention instead (0.5 s per feed entry at 100k).
        where, params = self._where(filters)
        clause = "m.id IN (SELECT ? UNION ALL SELECT e.id FROM mentions e WHERE e.echo_of = ?)"
        where = f" WHERE {clause}" + where.replace(" WHERE ", " AND ", 1)
        sql = f"{self._select}{where} ORDER BY m.created_at, m.id"
        return [_mention(row) for row in self._execute(sql, [root, root, *params], filters)]

    def echoes_of(self, ids: Sequence[int]) -> list[int]:
        """The ids of the echoes of these originals."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(
            f"SELECT id FROM mentions WHERE echo_of IN ({marks}) ORDER BY id", list(ids)
        )
        return [r[0] for r in rows]

    def spike_state(self, rule: str, term: str, sentiment: str | None) -> str | None:
        row = self.conn.execute(
            "SELECT state FROM spike_state WHERE rule = ? AND term = ? AND sentiment = ?",
            (rule, term, sentiment or ""),
        ).fetchone()
        return row[0] if row else None

    def set_spike_state(self, rule: str, term: str, sentiment: str | None, state: str) -> None:
        """Joins the caller's transaction, so the state moves with the delivery it queues."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO spike_state VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(rule, term, sentiment) DO UPDATE SET state = excluded.state, "
                "updated_at = excluded.updated_at",
                (rule, term, sentiment or "", state, iso(utcnow())),
            )


class Held(UsageError):
    """Another process holds the database for a job only one may do at a time (watch)."""


def _negated(when: str) -> str:
    """A stored time that sorts the other way round (newer first in a min-heap)."""
    return when.translate(_NEGATE)


_NEGATE = str.maketrans("0123456789", "9876543210")


class LLMCache:
    """The LLM analyzer's answers by mention key (llm_analyzer.Cache)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, keys: Sequence[str], digest: dict[str, str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for key, dig, answer in self.store.conn.execute(
                f"SELECT mention_key, digest, answer FROM llm_cache WHERE mention_key IN ({marks})",
                chunk,
            ):
                if digest.get(key) == dig:
                    found[key] = json.loads(answer)
        return found

    def put(self, rows: Sequence[tuple[str, str, dict]]) -> None:
        now = iso(utcnow())
        with self.store.transaction():
            self.store.conn.executemany(
                "INSERT INTO llm_cache VALUES (?, ?, ?, ?) ON CONFLICT (mention_key) DO UPDATE "
                "SET digest = excluded.digest, answer = excluded.answer, at = excluded.at",
                [(key, dig, json.dumps(answer, ensure_ascii=False), now)
                 for key, dig, answer in rows],
            )  # fmt: skip


# More index ranges than this in one limited read: one plain query instead.
_MAX_BRANCHES = 48


def _mention(row: Row) -> Mention:
    m = Mention(**{name: decode(row[name]) for name, decode in _DECODERS})
    m.id = row["id"]
    m.terms = json.loads(row["terms"]) if row["terms"] else []
    return m


class _Transaction:
    """BEGIN … COMMIT, or ROLLBACK on error; nested use joins the outer one. On SQLite the
    BEGIN is IMMEDIATE: the write lock is taken at once, so writers never deadlock."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.outer = False

    def __enter__(self) -> Any:
        if not self.db.in_transaction:
            self.db.begin()
            self.outer = True
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not self.outer:
            return
        if exc_type is None:
            self.db.commit()
        else:
            self.db.rollback()
