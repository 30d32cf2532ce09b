"""Team storage when things go wrong, through the real CLI: a password in the URL (never
shown, wherever libpq reads it from), the server dropping connections under a `watch`."""

from __future__ import annotations

import pytest
from test_watch import CONFIG as WATCHED
from test_watch import Watch, new_hit
from test_watch import rx as rx  # the receivers fixture

CONFIG = """
[[terms]]
name = "pebblebase"
query = "pebblebase"
"""


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://team@127.0.0.1:1/mentions?password=Qp7-secret-pw&sslmode=disable",
        "postgresql://team:Qp7-secret-pw@127.0.0.1:1/mentions?schema=acme",
    ],
)
def test_a_password_in_the_database_url_is_never_shown(project, url):
    project.write_config(CONFIG)
    for args in (["feed"], ["poll"], ["--debug", "feed"]):
        result = project.run("--db", url, *args)
        assert result.code == 1
        assert "cannot connect to the database postgresql://team" in result.err
        assert "Qp7-secret-pw" not in result.out + result.err
    project.write_config(CONFIG + f'\n[storage]\nurl = "{url}"\n')
    result = project.run("feed")
    assert "Qp7-secret-pw" not in result.out + result.err


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)
def test_watch_carries_on_when_the_server_drops_its_connections(project, rx):
    # A server restart or failover drops every connection. watch saw "the connection is
    # closed" on every later statement, its delivery thread died, and nothing new was
    # saved or sent until it was restarted.
    project.write_config(WATCHED.replace("HOOK", rx.url("/hooks/w")))
    watch = Watch(project, "--interval", "1s")
    keys = lambda: {r.json()["mention"]["key"] for r in rx.seen("/hooks/w")}  # noqa: E731
    try:
        # Once the first alerts are confirmed (what is being sent when the server drops the
        # connection may be sent again: at least once; this test is not about it)…
        assert watch.wait_until(keys, 30), watch.lines
        assert watch.wait_until(lambda: not project.rows(
            "SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0], 30)  # fmt: skip
        project.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> "
            "pg_backend_pid() AND application_name LIKE 'mentionwatch%'"
        )
        project.web.platform("hackernews").extra_hits.append(new_hit("990002", "pebblebase?"))
        assert watch.wait_until(lambda: "hackernews:990002" in keys(), 30), watch.lines
    finally:
        code, _ = watch.stop()
    assert code == 0, watch.lines[-5:]
    assert not [line for line in watch.lines if "Traceback" in line], watch.lines
    keys = [key for (key,) in project.rows("SELECT key FROM mentions")]
    assert "hackernews:990002" in keys and len(keys) == len(set(keys))
