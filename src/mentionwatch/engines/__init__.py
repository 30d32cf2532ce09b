"""The two database engines behind the one store (store.py): SQLite (the embedded default,
engines/sqlite.py) and PostgreSQL (a team's shared database, engines/postgres.py).

store.py holds every query, written once with `?` placeholders in the SQL both engines
speak; an engine module holds only what differs: connecting, transactions and locks, the
few SQL words the two spell differently (full-text search, JSON, epoch seconds, DDL types),
and the one-at-a-time lock of a job such as `watch`. psycopg is imported only when a
location is a PostgreSQL URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

URL_SCHEMES = ("postgresql://", "postgres://")


def is_url(location: object) -> bool:
    """True when a database location names a PostgreSQL server rather than a file."""
    return isinstance(location, str) and location.lower().startswith(URL_SCHEMES)


def module(location: Path | str) -> Any:
    """The engine module for a location (psycopg is loaded only for a URL)."""
    if is_url(location):
        from mentionwatch.engines import postgres

        return postgres
    from mentionwatch.engines import sqlite

    return sqlite


def connect(location: Path | str, *, readonly: bool = False) -> Any:
    """An open engine for `location`: a PostgreSQL URL, or a SQLite file (":memory:" too)."""
    return module(location).Engine(location, readonly=readonly)


def label(location: Path | str) -> str:
    """How messages name a database: a file's path, or a URL with its password masked."""
    if is_url(location):
        from mentionwatch.engines.urls import masked

        return masked(str(location))
    return str(location)
