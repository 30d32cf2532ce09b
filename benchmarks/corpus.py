"""Realistic synthetic mentions for the scale benchmarks (ingest, feed_scaling, export).

~300 characters each, words drawn from a Zipf-distributed vocabulary (as real text is),
a brand term in every text and a second term in 15% of them, a few links and @handles,
five sources, reach from a heavy-tailed distribution, created over the last 90 days.
Deterministic for a seed, so every run and every side of a comparison gets the same posts.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from mentionwatch.models import Mention, iso

SOURCES = ("hackernews", "reddit", "x", "bluesky", "mastodon")
TERMS = ("pebblebase", "stonebase")
_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "po", "se", "di", "fa", "gu", "ho", "ji",
              "be", "co", "va", "xe", "zu", "qui", "wo", "an", "el", "is", "or", "um"]  # fmt: skip
_COMMON = ("the", "a", "to", "and", "of", "is", "in", "it", "for", "on", "with", "this", "that",
           "my", "not", "but", "was", "have", "are", "be", "you", "they", "just", "can", "so",
           "at")  # fmt: skip


def vocabulary(size: int = 20_000, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    words = list(_COMMON)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def texts(count: int, seed: int = 1, length: int = 300) -> list[str]:
    """`count` texts of about `length` characters (Zipf words, a term, maybe a link)."""
    rng = random.Random(seed)
    words = vocabulary()
    weights = [1 / (rank + 1) for rank in range(len(words))]
    out = []
    for i in range(count):
        picked = rng.choices(words, weights, k=length // 5)
        picked.insert(rng.randrange(len(picked)), TERMS[0])
        if rng.random() < 0.15:
            picked.insert(rng.randrange(len(picked)), TERMS[1])
        if rng.random() < 0.2:
            picked.append(f"https://example.com/{i}")
        if rng.random() < 0.2:
            picked.insert(0, f"@user{rng.randrange(1000)}")
        text = " ".join(picked)
        out.append(text[: text.rfind(" ", 0, length)] if len(text) > length else text)
    return out


def mentions(count: int, seed: int = 1, start: int = 0) -> list[Mention]:
    """`count` mentions as a source hands them to the poller (terms set, not yet tagged)."""
    rng = random.Random(seed + 1000)
    now = datetime.now(UTC).replace(microsecond=0)
    result = []
    for i, text in enumerate(texts(count, seed)):
        source = SOURCES[i % len(SOURCES)]
        result.append(Mention(
            source=source, native_id=str(start + i), text=text,
            created_at=now - timedelta(seconds=rng.randrange(90 * 86400)),
            url=f"https://{source}.example/{start + i}", author=f"user{rng.randrange(5000)}",
            reach=int(rng.paretovariate(1.2)) - 1,
            terms=[t for t in TERMS if t in text],
        ))  # fmt: skip
    return result


def build_db(path: str, count: int, seed: int = 1) -> None:
    """A mentionwatch database of `count` corpus mentions, labelled (a fixed share of each
    sentiment and intent, some handled), written in bulk: what the feed and export read,
    without spending the benchmark's time on ingest (benchmarks/ingest.py measures that).

    Bulk means: the FTS5 index is built once at the end ('rebuild') instead of by the insert
    trigger row by row, and the mentions' secondary indexes are created after the rows; the
    result is the same database a poll would have written (echo keys aside)."""
    from mentionwatch.store import _INSERT_COLUMNS, Store, _row

    store = Store(path)
    conn = store.conn
    rng = random.Random(seed + 2000)
    labels = ("negative", "neutral", "neutral", "positive", "positive")
    intents = ((), (), ("question",), ("complaint",), ("praise",), ("request",))
    columns, marks = ", ".join(_INSERT_COLUMNS), ",".join("?" * len(_INSERT_COLUMNS))
    schema = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN ('mentions', "
        "'mention_terms') AND sql IS NOT NULL AND (type = 'index' OR name = 'mentions_ai')"
    ).fetchall()
    for kind, name, _ in schema:
        conn.execute(f'DROP {kind.upper()} "{name}"')
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    done = 0
    while done < count:
        chunk = mentions(min(20_000, count - done), seed=seed + done, start=done)
        for i, m in enumerate(chunk):
            m.id = done + i + 1
            m.sentiment = rng.choice(labels)
            m.polarity = round(rng.uniform(-1, 1), 4)
            m.intents = rng.choice(intents)
            m.status = "handled" if rng.random() < 0.3 else "open"
            m.fetched_at = m.created_at
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO mentions ({columns}) VALUES ({marks})",
                         [_row(m) for m in chunk])  # fmt: skip
        conn.executemany(
            "INSERT INTO mention_terms (mention_id, status, created_at, term) VALUES (?, ?, ?, ?)",
            [(done + i + 1, m.status, iso(m.created_at), t)
             for i, m in enumerate(chunk) for t in m.terms])  # fmt: skip
        conn.execute("COMMIT")
        done += len(chunk)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO mentions_fts (mentions_fts) VALUES ('rebuild')")
    for _, _, sql in schema:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("ANALYZE")
    store.close()


def cached_db(folder: str | None, tmp: str, count: int) -> str:
    """The path of a corpus database of `count` mentions: built in `folder` once and reused
    by later runs (a million takes minutes to build), or built in `tmp` when no folder is
    given. A reused database is opened once so that new migrations apply before timing."""
    from pathlib import Path

    from mentionwatch.store import Store

    path = Path(folder or tmp) / f"corpus-{count}.db"
    if folder and path.exists():
        Store(path).close()
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".building")
    for stale in path.parent.glob(partial.name + "*"):
        stale.unlink()
    build_db(str(partial), count)
    partial.rename(path)
    return str(path)
