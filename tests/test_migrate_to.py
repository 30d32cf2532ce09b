"""`mentionwatch migrate-to`: SQLite → PostgreSQL → SQLite loses nothing, and is safe to
run again."""

from __future__ import annotations

import pytest
from test_reply_command import MASTODON, polled


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)
def test_a_round_trip_through_postgresql_gives_identical_exports(project, tmp_path):
    server = project.db  # a fresh schema on the test server
    project.db = tmp_path / "mentions.db"
    project.engine = "sqlite"
    polled(project)
    key = MASTODON.key
    assert project.run("assign", key, "alice").code == 0
    assert project.run("handle", key, "--note", "done", env={"MENTIONWATCH_USER": "bob"}).code == 0
    assert project.run("reply", key, "Thanks!", "--yes", "--keep-open").code == 0
    before = _export(project)

    moved = project.run("migrate-to", server)
    assert moved.code == 0, moved.err
    assert "every table's count matches" in moved.err and "mentions:" in moved.err
    again = project.run("migrate-to", server)  # an interrupted copy is simply run again
    assert again.code == 0, again.err

    back = tmp_path / "back.db"
    home = project.run("--db", server, "migrate-to", str(back))
    assert home.code == 0, home.err
    on_server = _export(project, server)
    assert on_server == before
    assert _export(project, back) == before
    # History, replies, cursors and the outbox came along.
    for db in (server, back):
        shown = project.run("--db", str(db), "show", key, "--offline").out
        assert "handled  by bob  (done)" in shown and "assigned to alice" in shown
        assert "Thanks!" in shown
    counts = [
        "SELECT count(*) FROM cursors",
        "SELECT count(*) FROM outbox",
        "SELECT count(*) FROM status_log",
        "SELECT count(*) FROM replies",
    ]
    here = [project.rows(q) for q in counts]
    project.db = back
    assert [project.rows(q) for q in counts] == here
    # The copy keeps working: new mentions get new ids after the copied ones.
    search = project.run("--db", server, "feed", "--search", "pebblebase", "-f", "ids")
    assert search.code == 0 and search.out.split()


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)
def test_a_destination_with_other_mentions_is_refused(project, tmp_path):
    server = project.db
    polled(project)  # the server has its own mentions
    project.db = tmp_path / "other.db"
    project.engine = "sqlite"
    project.write_config(
        project.config.read_text().replace("pebblebase", "zzz-nothing-matches"),
        poll_settings=False,
    )
    project.run("poll")
    from mentionwatch.models import Mention, utcnow
    from mentionwatch.store import Store

    store = Store(project.db)
    store.save_page("x", "t", [Mention(source="x", native_id="1", text="other", created_at=utcnow(),
                                       terms=["zzz"])], None)  # fmt: skip
    store.close()
    refused = project.run("migrate-to", server)
    assert refused.code == 1
    assert "already holds other mentions" in refused.err
    same = project.run("migrate-to", str(project.db))
    assert same.code == 2 and "is the database being copied" in same.err


def _export(project, db=None) -> list[dict]:
    args = ["--db", str(db)] if db is not None else []
    result = project.run(*args, "export", "--format", "jsonl")
    assert result.code == 0, result.err
    # priority moves with the clock (freshness); everything else must be the same.
    return [{k: v for k, v in r.items() if k != "priority"} for r in result.jsonl()]
