"""Tests run the real CLI against the loopback web; nothing touches the internet."""

from __future__ import annotations

import asyncio
import fcntl
import inspect
import io
import json
import os
import pty
import select
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mentionwatch.testing.server import LoopbackWeb

# Fast retries: the tests exercise the retry logic, not the waiting.
POLL_SETTINGS = "[poll]\nbackoff = 0.01\nretries = 2\ntimeout = 5\n"

# PostgreSQL: a server URL to use (.ci/run starts one and sets it); without it, the tests
# start a throwaway cluster themselves when PostgreSQL's programs are installed. With
# MENTIONWATCH_REQUIRE_PG=1 (CI) a PostgreSQL test that cannot run fails instead of
# skipping. MENTIONWATCH_TEST_ENGINE=postgresql runs every project test on PostgreSQL.
PG_URL_ENV, PG_REQUIRED_ENV, ENGINE_ENV = (
    "MENTIONWATCH_TEST_PG", "MENTIONWATCH_REQUIRE_PG", "MENTIONWATCH_TEST_ENGINE")  # fmt: skip
ENGINES = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_engines: run each test using `project` on SQLite and on PostgreSQL"
    )
    config.addinivalue_line(
        "markers", "sqlite_only: about the SQLite file itself (never run on PostgreSQL)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marked = metafunc.definition.get_closest_marker
    if (
        "db_engine" in metafunc.fixturenames
        and marked("both_engines")
        and not marked("sqlite_only")
    ):
        metafunc.parametrize("db_engine", ENGINES, indirect=True)


@pytest.fixture
def db_engine(request: pytest.FixtureRequest) -> str:
    """The engine a test's database uses: both, for tests marked both_engines."""
    if request.node.get_closest_marker("sqlite_only"):
        return "sqlite"
    return getattr(request, "param", None) or os.environ.get(ENGINE_ENV) or "sqlite"


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """The URL of a PostgreSQL server for this test run, or None (with the reason kept in
    PG_UNAVAILABLE) when none can be had."""
    url = os.environ.get(PG_URL_ENV)
    if url:
        yield url
        return
    import tempfile

    from mentionwatch.testing.postgres import Cluster

    # Under /tmp, not pytest's private folder: the server's own user must reach it.
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="mentionwatch-pg-")))
    try:
        started = cluster.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        PG_UNAVAILABLE.append(f"no PostgreSQL server for the tests: {exc}")
        cluster.stop()
        yield None
        return
    try:
        yield started
    finally:
        cluster.stop()


PG_UNAVAILABLE: list[str] = []


def require_pg(url: str | None) -> str:
    """The server's URL, or skip (fail in CI) saying why there is none."""
    if url:
        return url
    reason = PG_UNAVAILABLE[0] if PG_UNAVAILABLE else "no PostgreSQL server"
    if os.environ.get(PG_REQUIRED_ENV):
        pytest.fail(f"{reason} ({PG_REQUIRED_ENV} is set: PostgreSQL tests must run)")
    pytest.skip(f"{reason}; set {PG_URL_ENV}=postgresql://… or install PostgreSQL")


@pytest.fixture
def pg_url(pg_server: str | None) -> Iterator[str]:
    """A fresh, empty database on the test server: its own schema, dropped afterwards."""
    url = require_pg(pg_server)
    import uuid

    schema = f"t_{uuid.uuid4().hex[:16]}"
    yield f"{url}{'&' if '?' in url else '?'}schema={schema}"
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass
class Result:
    code: int
    out: str
    err: str

    def jsonl(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture(scope="session", autouse=True)
def _one_ca_certificate(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every httpx client loads its CA bundle when it is made: certifi's ~150 certificates
    cost ~75 ms here, for each poll, reply and delivery the suite runs (in-process and in
    the CLI processes it starts). Nothing here speaks TLS (the loopback web is plain HTTP),
    so the tests point httpx at a bundle of one certificate (SSL_CERT_FILE, which httpx
    honours); the code that builds the clients is the same."""
    import re

    import certifi

    bundle = Path(certifi.where()).read_text(encoding="ascii")
    first = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n", bundle, re.S)
    assert first, certifi.where()
    one = tmp_path_factory.mktemp("ca") / "one.pem"
    one.write_text(first.group(0), encoding="ascii")
    os.environ["SSL_CERT_FILE"] = str(one)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's real config, database or environment."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    for name in ("MENTIONWATCH_CONFIG", "MENTIONWATCH_DB", "NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    from mentionwatch import scrub

    scrub.forget()  # one process runs every test: no test's secrets mask another's text


@pytest.fixture
def web() -> Iterator[LoopbackWeb]:
    with LoopbackWeb() as server:
        yield server


class Project:
    """A config file and a database (a file in a temporary folder, or a fresh schema on the
    PostgreSQL test server), and a way to run the CLI on them."""

    def __init__(self, tmp_path: Path, web: LoopbackWeb, db: Path | str | None = None) -> None:
        self.dir = tmp_path
        self.web = web
        self.config = tmp_path / "config.toml"
        self.db: Any = db or tmp_path / "mentions.db"
        self.engine = "postgresql" if isinstance(self.db, str) else "sqlite"

    def write_config(self, body: str, *, poll_settings: bool = True) -> Path:
        text = body.replace("{web}", self.web.url)
        self.config.write_text(text + ("\n" + POLL_SETTINGS if poll_settings else ""))
        self.config.chmod(0o600)  # it holds test credentials: readable by others would warn
        return self.config

    def run(self, *args: str, input: str | None = None, env: dict | None = None) -> Result:
        """Run `mentionwatch --config … --db … ARGS` in-process, as the console script does."""
        from mentionwatch import cli

        argv = ["mentionwatch", "--config", str(self.config), "--db", str(self.db), *args]
        out, err = io.StringIO(), io.StringIO()
        saved = sys.argv, sys.stdin, sys.stdout, sys.stderr
        saved_env = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        sys.argv, sys.stdin, sys.stdout, sys.stderr = argv, io.StringIO(input or ""), out, err
        cli.state.__init__()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv, sys.stdin, sys.stdout, sys.stderr = saved
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return Result(code, out.getvalue(), err.getvalue())

    def run_process(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """Run the CLI as a separate process (for signals, pipes and start-up behaviour)."""
        argv = [sys.executable, "-m", "mentionwatch", "--config", str(self.config),
                "--db", str(self.db), *args]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)

    def rows(self, sql: str, *params: object) -> list[tuple]:
        """The rows a query (with ? placeholders) reads from the project's database."""
        if self.engine == "sqlite":
            with sqlite3.connect(self.db) as conn:
                return conn.execute(sql, params).fetchall()
        from mentionwatch import engines

        db = engines.connect(self.db)
        try:
            return [tuple(r) for r in db.execute(sql, params).fetchall()]
        finally:
            db.close()

    def execute(self, *statements: str) -> None:
        """Run statements (no parameters) on the project's database, in one transaction."""
        if self.engine == "sqlite":
            with sqlite3.connect(self.db) as conn:
                for sql in statements:
                    conn.execute(sql)
            return
        from mentionwatch import engines

        db = engines.connect(self.db)
        try:
            db.begin()
            for sql in statements:
                db.execute(sql)
            db.commit()
        finally:
            db.close()

    def contents(self, skip: tuple[str, ...] = ()) -> bytes:
        """Every row of every table (but `skip`), to look for what must never be stored."""
        from mentionwatch import engines

        db = engines.connect(self.db)
        try:
            tables = sorted(db.tables() - set(skip))
            rows = [repr(db.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables]
        finally:
            db.close()
        return "\n".join(rows).encode()

    def mention(self, key: str) -> Any:
        """The stored `Mention` with this key (or integer id)."""
        from mentionwatch.store import Store

        store = Store(self.db)
        try:
            return store.get(store.resolve([key])[0])
        finally:
            store.close()

    def call_source(self, name: str, action: Callable[[Any], Any]) -> Any:
        """Build source `name` from the project's config, as the poller and the reply command
        do (its state in the project's database, one httpx client), and return action(source),
        awaited when it is a coroutine."""
        from mentionwatch import config
        from mentionwatch.http import open_client
        from mentionwatch.poller import build_source
        from mentionwatch.store import Store

        cfg = config.load(self.config, self.db)
        store = Store(cfg.database)

        async def main() -> Any:
            async with open_client(cfg.poll) as client:
                result = action(build_source(cfg.sources[name], cfg, store, client))
                return await result if inspect.isawaitable(result) else result

        try:
            return asyncio.run(main())
        finally:
            store.close()


@pytest.fixture
def project(tmp_path: Path, web: LoopbackWeb, db_engine: str, request: pytest.FixtureRequest
            ) -> Project:  # fmt: skip
    if db_engine == "postgresql":
        return Project(tmp_path, web, request.getfixturevalue("pg_url"))
    return Project(tmp_path, web)


HN_AND_RSS = """
[[terms]]
name = "pebblebase"
query = 'pebblebase OR "pebble base" -"pebble base camp"'

[sources.hackernews]
base_url = "{web}/hackernews/api/v1"

[sources.rss]
feeds = ["{web}/rss/feeds/blog.xml", "{web}/rss/feeds/alerts.atom"]
"""


# Every platform the loopback web plays, the way `mentionwatch demo` points at them, plus the
# feed that Platform.add_item() writes for RSS.
TERM = """
[[terms]]
name = "pebblebase"
query = 'pebblebase OR "pebble base" -"pebble base camp"'
"""


def all_platforms(web: LoopbackWeb, **overrides: dict[str, Any]) -> str:
    """A config with every platform, each table updated with `overrides[name]`."""
    from mentionwatch.testing.demo import toml_table

    tables = []
    for name, platform in sorted(web.platforms.items()):
        settings = {**platform.source_settings(), **overrides.get(name, {})}
        if name == "rss":
            settings["feeds"] = [*settings["feeds"], f"{web.base_url('rss')}/feeds/more.xml"]
        tables.append(toml_table(f"sources.{name}", settings))
    return TERM + "\n".join(tables)


def run_pty(
    argv: list[str],
    columns: int = 100,
    rows: int = 500,
    env: dict | None = None,
    input: str | None = None,
    cwd: Path | None = None,
) -> tuple[int, str]:
    """Run argv on a pseudo-terminal of the given size, as a person at a terminal would
    (typing `input`); returns its exit code and everything it printed, raw."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    full_env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns),
                "LINES": str(rows), **(env or {})}  # fmt: skip
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=full_env,
                            cwd=cwd, start_new_session=True)  # fmt: skip
    os.close(slave)
    if input:
        os.write(master, input.encode())
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    code = proc.wait(timeout=30)
    os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
