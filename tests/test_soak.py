"""The concurrency soak (benchmarks/soak.py) for half a minute: 3 `watch` workers and 3
people on one PostgreSQL database, a worker killed with SIGKILL halfway. Every check is on
content (the platforms' request logs and received replies, the webhook's deliveries, the
history); `python benchmarks/soak.py --minutes 5` runs the same for longer."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import threading
from pathlib import Path

import pytest
from test_reply_command import MASTODON, polled, writes

from mentionwatch.models import Filters

SOAK = Path(__file__).parents[1] / "benchmarks" / "soak.py"


def _driver():
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_three_workers_and_three_people_for_half_a_minute(pg_url, tmp_path):
    report = _driver().Soak(pg_url, tmp_path, seconds=30, interval=1.0).run()
    print("\n".join(report.lines()))
    assert report.problems == [], "\n".join(report.lines())
    # It did what it says: new posts, all stored and alerted, races, a takeover.
    assert report.added >= 20 and report.stored > report.added
    assert report.deliveries == report.stored
    assert report.races >= 1 and report.replies_posted >= 1
    assert report.actions["reply refused"] >= 2  # each race: one posts, two are told
    assert report.takeover is not None and report.takeover < 1.25 + 2 + 2 * 1 + 3  # lease, polls
    assert report.runs > 50


# Races the soak found, each made to happen on purpose.


@pytest.mark.both_engines
def test_decisions_are_learned_once_when_several_processes_learn_at_once(project, monkeypatch):
    """Every poll of every worker learns from the decisions made since the last one; four
    learners at the same moment must count each decision once (on PostgreSQL they counted
    it up to four times, and undid reversed lessons as often, until counts went below zero
    and scoring divided by zero). Each learner waits for the others once it has read the
    decisions waiting, so that all four have read them before any has learned them."""
    from mentionwatch import config, relevance
    from mentionwatch.store import Store

    polled(project)
    cfg = config.load(project.config, project.db)
    setup = Store(project.db)
    try:
        ids = [m.id for m in setup.mentions(Filters(statuses=("open",)))]
        assert len(ids) >= 6
        setup.set_status(ids[::2], "handled", actor="alice")
        setup.set_status(ids[1::2], "ignored", actor="bob")
        relevance.learn_now(cfg, setup)
        # Decisions waiting to be learned: lessons reversed (undone, then learned the other
        # way), one reopened, one new.
        setup.set_status(ids[:2], "open", actor="carol")
        setup.set_status(ids[2:4], "ignored", actor="carol")
        setup.set_status(ids[4:5], "handled", actor="carol")
    finally:
        setup.close()
    start, read = threading.Barrier(4), threading.Barrier(4, timeout=2)
    errors: list[BaseException] = []
    real_events = Store.relevance_events

    def events_then_wait(store):
        events = real_events(store)
        # Under the learning lock only one learner is here: the others wait for the lock.
        with contextlib.suppress(threading.BrokenBarrierError):
            read.wait()
        return events

    monkeypatch.setattr(Store, "relevance_events", events_then_wait)

    def learner() -> None:
        store = Store(project.db)
        try:
            start.wait(10)
            relevance.learn_now(cfg, store)
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=learner) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    lessons = project.rows(
        "SELECT term, sum(relevant), sum(1 - relevant) FROM relevance_lessons "
        "WHERE relevant IS NOT NULL GROUP BY term ORDER BY term"
    )
    counts = project.rows(
        "SELECT term, relevant, irrelevant FROM relevance_counts WHERE feature = ? "
        "ORDER BY term", ""  # the row of a term's decisions: the feature ""
    )  # fmt: skip
    assert lessons and [tuple(map(str, r)) for r in counts] == [tuple(map(str, r)) for r in lessons]
    assert project.rows("SELECT count(*) FROM relevance_events") == [(0,)]


def test_a_teammate_finishing_between_the_look_and_the_claim_is_not_answered_again(
    project, monkeypatch
):
    """Bob's reply looks for a teammate's reply, finds none, then claims the mention; Alice's
    reply lands in between (she claimed, posted and released meanwhile): Bob posts nothing."""
    from mentionwatch import team
    from mentionwatch.store import Store

    polled(project)
    real_claim = team.claim

    def alice_finishes_first(store, mention_id, actor, force=False):
        other = Store(project.db)
        try:
            other.add_reply(mention_id, "From Alice", "posted", remote_id="1", url="https://x/1",
                            actor="alice")  # fmt: skip
        finally:
            other.close()
        return real_claim(store, mention_id, actor, force=force)

    monkeypatch.setattr(team, "claim", alice_finishes_first)
    bob = project.run("reply", MASTODON.key, "From Bob", "--yes", env={"MENTIONWATCH_USER": "bob"})
    assert bob.code == 1, bob.err
    assert "alice already replied" in bob.err and "nothing posted" in bob.err
    assert writes(project, MASTODON) == []
    assert project.rows("SELECT count(*) FROM claims") == [(0,)]  # bob's claim was released
