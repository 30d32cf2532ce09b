"""A team on one database: who did what, assignments, and never answering a mention twice.
Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from test_reply_command import MASTODON, polled, writes

pytestmark = pytest.mark.both_engines


def as_user(name: str) -> dict[str, str]:
    return {"MENTIONWATCH_USER": name}


def test_every_change_names_who_made_it_and_show_lists_it(project):
    polled(project)
    project.config.write_text(project.config.read_text() + '\n[me]\nname = "Carol"\n')
    key = MASTODON.key
    assert project.run("assign", key, "alice", env=as_user("dana")).code == 0
    done = project.run("handle", key, "--note", "sent a DM", env=as_user("bob"))
    assert done.code == 0, done.err
    assert project.run("reopen", key).code == 0  # no MENTIONWATCH_USER: [me] name
    history = project.rows(
        "SELECT s.status, s.actor, s.assignee, s.note FROM status_log s JOIN mentions m "
        "ON m.id = s.mention_id WHERE m.key = ? ORDER BY s.id",
        key,
    )
    assert history == [
        ("open", "dana", "alice", None),
        ("handled", "bob", None, "sent a DM"),
        ("open", "Carol", None, None),
    ]
    shown = project.run("show", key, "--offline")
    assert shown.code == 0, shown.err
    lines = [line.strip() for line in shown.out.splitlines()]
    assert "assigned to: alice" in lines
    assert any(line.endswith("assigned to alice  by dana") for line in lines)
    assert any(line.endswith("handled  by bob  (sent a DM)") for line in lines)
    assert any(line.endswith("open  by Carol") for line in lines)


def test_feed_mine_unassigned_and_assignee(project):
    polled(project)
    ids = project.run("feed", "--format", "ids", "--limit", "0").out.split()
    assert len(ids) >= 4
    a, b, c = ids[:3]
    assert project.run("assign", a, b, "alice").code == 0
    moved = project.run("assign", c, "me", env=as_user("bob"))
    assert moved.code == 0 and "1 of 1 mention(s) assigned to bob" in moved.err

    def feed(*args: str, user: str = "alice") -> list[str]:
        result = project.run("feed", "--format", "ids", "--limit", "0", *args, env=as_user(user))
        assert result.code == 0, result.err
        return result.out.split()

    assert sorted(feed("--mine")) == sorted([a, b])
    assert feed("--mine", user="bob") == [c]
    assert feed("--assignee", "bob") == [c]
    assert sorted(feed("--assignee", "bob", "--assignee", "alice")) == sorted([a, b, c])
    assert sorted(feed("--unassigned")) == sorted(set(ids) - {a, b, c})
    assert sorted(feed("--unassigned", "--assignee", "bob")) == sorted(set(ids) - {a, b})
    records = project.run("export", "--format", "jsonl").out
    assert '"assignee": "alice"' in records and '"assignee": null' in records

    again = project.run("assign", a, "alice")
    assert "0 of 1 mention(s) assigned to alice" in again.err
    assert project.run("unassign", a).code == 0
    assert feed("--mine") == [b]
    assert project.run("assign", "99999", "alice").code == 2
    bad = project.run("assign", a)
    assert bad.code == 2 and "then the name" in bad.err


def test_a_teammate_answering_keeps_the_second_reply_from_posting(project):
    """Alice's reply is on its way (the platform answers slowly); Bob replies at the same
    moment: he is told Alice is answering, nothing of his is posted."""
    polled(project)
    project.web.fail(MASTODON.write, status=200, accept=True, delay=3.0)
    argv = [sys.executable, "-m", "mentionwatch", "--config", str(project.config),
            "--db", str(project.db), "reply", MASTODON.key, "From Alice", "--yes"]  # fmt: skip
    alice = subprocess.Popen(argv, env={**_env(), "MENTIONWATCH_USER": "alice"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 20
    while not writes(project, MASTODON) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writes(project, MASTODON), "alice's reply never reached the platform"
    bob = project.run("reply", MASTODON.key, "From Bob", "--yes", env=as_user("bob"))
    _, err = alice.communicate(timeout=60)
    assert alice.returncode == 0, err
    assert bob.code == 1
    assert "alice is answering mention" in bob.err and "--force" in bob.err
    assert len(writes(project, MASTODON)) == 1

    # Once she has answered, Bob is told so; --force posts his too.
    late = project.run("reply", MASTODON.key, "From Bob", "--yes", env=as_user("bob"))
    assert late.code == 1 and "alice already replied" in late.err
    assert len(writes(project, MASTODON)) == 1
    forced = project.run("reply", MASTODON.key, "From Bob", "--yes", "--force",
                         env=as_user("bob"))  # fmt: skip
    assert forced.code == 0, forced.err
    assert len(writes(project, MASTODON)) == 2
    who = project.rows(
        "SELECT r.actor, r.text FROM replies r JOIN mentions m ON m.id = r.mention_id "
        "WHERE m.key = ? AND r.outcome = 'posted' ORDER BY r.id",
        MASTODON.key,
    )
    assert who == [("alice", "From Alice"), ("bob", "From Bob")]
    assert project.rows("SELECT count(*) FROM claims") == [(0,)]


def test_a_claim_left_by_a_dead_process_expires(project):
    polled(project)
    from mentionwatch.store import Store

    store = Store(project.db)
    try:
        (mention_id,) = store.resolve([MASTODON.key])
        assert store.claim(mention_id, "alice", "alice-token", 60) is None
        assert store.claim(mention_id, "bob", "bob-token", 60)["actor"] == "alice"
        # A claim whose process died: its expiry has passed.
        store.db.execute("UPDATE claims SET expires_at = ?", ["2000-01-01T00:00:00Z"])
    finally:
        store.close()
    result = project.run("reply", MASTODON.key, "Hello", "--yes", env=as_user("bob"))
    assert result.code == 0, result.err
    assert len(writes(project, MASTODON)) == 1


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
