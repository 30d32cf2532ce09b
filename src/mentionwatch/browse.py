"""`mentionwatch browse`: the database in Datasette, set up for mentions.

Datasette (the optional `datasette` extra) gets metadata that makes the file useful at once:
full-text search over mentions in FTS5's own syntax, descriptions of every column, facets
on source, sentiment and status, and canned queries for what a founder asks first.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mentionwatch.errors import EXIT_FAILED, UsageError

COLUMN_LABELS = {
    "id": "local ID (what show, reply and handle take)",
    "key": "source:native id, unique",
    "source": "where it was said",
    "url": "the mention on its platform",
    "author": "account name",
    "author_name": "display name",
    "title": "its own title, or its thread's for a comment",
    "text": "plain text",
    "created_at": "when it was posted (UTC)",
    "fetched_at": "when mentionwatch saved it (UTC)",
    "sentiment": "positive, neutral or negative",
    "polarity": "-1 (negative) to 1 (positive)",
    "intents": "question, complaint, praise, request (JSON list)",
    "terms": "the terms that found it (JSON list; mention_terms has a row for each)",
    "status": "open, handled or ignored",
    "status_at": "when the status last changed",
    "reach": "points, likes, score…",
    "reply_url": "where to reply by hand",
    "extra": "platform details (JSON)",
}

CANNED_QUERIES = {
    "unanswered_negatives": {
        "title": "Unanswered negative mentions",
        "description": "Open, negative, and no reply posted or opened yet; newest first.",
        "sql": (
            "select m.id, m.source, m.author, m.created_at, m.text, m.url from mentions m\n"
            "where m.sentiment = 'negative' and m.status = 'open' and not exists (\n"
            "  select 1 from replies r where r.mention_id = m.id\n"
            "  and r.outcome in ('posted', 'link'))\n"
            "order by m.created_at desc"
        ),
    },
    "volume_per_day": {
        "title": "Mentions per day",
        "description": "How many mentions each day (UTC), by sentiment.",
        "sql": (
            "select substr(created_at, 1, 10) as day, count(*) as mentions,\n"
            "  sum(sentiment = 'positive') as positive, sum(sentiment = 'neutral') as neutral,\n"
            "  sum(sentiment = 'negative') as negative\n"
            "from mentions group by day order by day desc"
        ),
    },
    "top_authors": {
        "title": "Top authors",
        "description": "Who mentions you most, per source.",
        "sql": (
            "select source, author, count(*) as mentions,\n"
            "  sum(sentiment = 'negative') as negative, max(created_at) as last_seen\n"
            "from mentions where author is not null\n"
            "group by source, author order by mentions desc, last_seen desc limit 100"
        ),
    },
}

# Bookkeeping, and source_state (it holds platform sessions): not listed.
HIDDEN_TABLES = ("_migrations", "cursors", "source_state", "polls")


def metadata(db: Path) -> dict[str, Any]:
    """Datasette metadata for the database file `db` (Datasette names it by its stem)."""
    tables: dict[str, Any] = {
        "mentions": {
            "description": "Every mention, once; search it with FTS5 syntax.",
            "label_column": "key",
            "fts_table": "mentions_fts",
            "fts_pk": "time_key",
            "searchmode": "raw",
            "sort_desc": "created_at",
            "facets": ["source", "sentiment", "status"],
            "columns": COLUMN_LABELS,
        },
        "mention_terms": {"description": "Which terms found each mention."},
        "replies": {"description": "Every reply posted, attempted or opened by hand."},
        "status_log": {"description": "Every status change, with its note."},
    }
    tables.update({name: {"hidden": True} for name in HIDDEN_TABLES})
    return {
        "title": "mentionwatch",
        "description": "What people say about your product.",
        "databases": {db.stem: {"tables": tables, "queries": CANNED_QUERIES}},
    }


def datasette_installed() -> bool:
    return importlib.util.find_spec("datasette") is not None


def serve(db: Path, port: int, open_browser: bool) -> int:
    """Run Datasette on 127.0.0.1:`port` until it stops (Ctrl-C); returns its exit code."""
    if not datasette_installed():
        raise UsageError(
            "browse needs Datasette: pip install 'mentionwatch[datasette]' (or pip install "
            "datasette)"
        )
    _check_port(port)
    with tempfile.TemporaryDirectory(prefix="mentionwatch-browse-") as tmp:
        meta = Path(tmp) / "metadata.json"
        meta.write_text(json.dumps(metadata(db), indent=2), encoding="utf-8")
        argv = [sys.executable, "-m", "datasette", "serve", str(db), "--metadata", str(meta),
                "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
        if open_browser:
            argv.append("--open")
        return _run_until_stopped(argv)


def _check_port(port: int) -> None:
    """A port that is taken is one line here, not Datasette's server log and its exit 3."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise UsageError(
                f"cannot serve Datasette on 127.0.0.1:{port}: {exc.strerror}; stop what uses"
                " it, or pass --port N (0: any free one)"
            ) from None


def _run_until_stopped(argv: list[str]) -> int:
    """Run the server; stopping mentionwatch (Ctrl-C, kill, a closed terminal) stops it too,
    so no Datasette is left holding the port and the database."""
    server = subprocess.Popen(argv)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        server.terminate()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        while True:
            try:
                code = server.wait()
                # Datasette failing (its own lines say why) is exit 1, as design.md's codes
                return 0 if stopping or code == 0 else EXIT_FAILED
            except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: not an error
                stopping = True  # the server, in the same process group, got it too
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)
