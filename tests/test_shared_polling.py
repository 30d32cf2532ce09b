"""Several `watch` processes on one PostgreSQL database share the (source × term) jobs:
each job is polled by one worker at a time, a killed worker's jobs are taken over, every
mention is stored once and every alert delivered once across the workers."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time

import pytest
from test_watch import Watch, new_hit
from test_watch import rx as rx  # the receivers fixture

TERMS = ["pebblebase", "acme", "widgetly", "gizmo"]
CONFIG = (
    "".join(f'[[terms]]\nname = "{t}"\nquery = "{t}"\n\n' for t in TERMS)
    + """
[sources.hackernews]
base_url = "{web}/hackernews/api/v1"

[[alerts]]
name = "all"
to = ["HOOK"]
"""
)


@pytest.fixture
def shared(project):
    if project.engine != "postgresql":
        pytest.skip("shared polling is for a PostgreSQL database")
    return project


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)
def test_three_workers_split_the_jobs_and_survive_a_kill(shared, rx):
    project = shared
    project.write_config(CONFIG.replace("HOOK", rx.url("/hooks/w")))
    start = time.monotonic()
    workers = [Watch(project, "--interval", "1s") for _ in range(3)]
    try:
        searches = lambda: project.web.seen("/hackernews/api/v1/search")  # noqa: E731
        assert workers[0].wait_until(lambda: len(searches()) >= 12, timeout=30)
        assert workers[0].wait_until(lambda: len(_holders(project)) >= 2, timeout=15), _leases(
            project
        )
        # Kill the worker that holds the most jobs: its jobs resume elsewhere.
        holders = collections.Counter(h for _, h in _leases(project))
        victim = next(w for w in workers if _name(w) == holders.most_common(1)[0][0])
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        survivors = [w for w in workers if w is not victim]
        # Within its lease (1.25 intervals + 2 s) and one more interval.
        assert survivors[0].wait_until(
            lambda: _name(victim) not in _holders(project) and len(_leases(project)) == 4,
            timeout=6,
        ), _leases(project)
        before = len(rx.seen("/hooks/w"))
        project.web.platform("hackernews").extra_hits.append(new_hit("990001", "acme gizmo?"))
        got = rx.wait_for("/hooks/w", before + 1, timeout=10)
        assert any(r.json()["mention"]["key"] == "hackernews:990001" for r in got)
        time.sleep(1.5)  # a few more polls by both survivors
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.stop()
    elapsed = time.monotonic() - start
    for w in survivors:
        assert w.proc.returncode == 0, w.lines[-5:]
    # No job polled by several workers: about one search per term per interval, not three.
    per_term = collections.Counter((r.arg("query") or "").strip('"') for r in searches())
    assert set(per_term) == set(TERMS)
    assert max(per_term.values()) <= elapsed * 1.5 + 3, (per_term, elapsed)
    # Every mention stored once, every alert delivered once (one delivery ID each).
    keys = [k for (k,) in project.rows("SELECT key FROM mentions")]
    assert "hackernews:990001" in keys and len(keys) == len(set(keys))
    delivered = [r.json() for r in rx.seen("/hooks/w")]
    ids = [r["delivery"] for r in delivered]
    mentions = [r["mention"]["key"] for r in delivered]
    assert sorted(mentions) == sorted(keys)
    assert len(ids) == len(set(ids))
    assert project.rows("SELECT count(*) FROM outbox WHERE state != 'sent'") == [(0,)]
    # Stopped workers gave their leases back.
    assert _holders(project) == set()


def _name(watch: Watch) -> str:
    return f"{os.uname().nodename}:{watch.proc.pid}"


def _leases(project) -> list[tuple[str, str]]:
    return [
        (job, holder)
        for job, holder in project.rows(
            "SELECT job, holder FROM leases WHERE job LIKE 'hackernews %' AND holder IS NOT "
            "NULL AND expires_at > ?",
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
    ]


def _holders(project) -> set[str]:
    return {holder for _, holder in _leases(project)}


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)
def test_poll_leaves_a_running_watch_its_jobs_and_sources_names_the_holders(shared, rx):
    """A cron `poll` beside a running `watch`: it skips the jobs the worker holds (and says
    so in one line), polls the free ones under its own lease, and `sources` shows who holds
    each job."""
    project = shared
    project.write_config(CONFIG.replace("HOOK", rx.url("/hooks/w")))
    searches = lambda: project.web.seen("/hackernews/api/v1/search")  # noqa: E731
    watch = Watch(project, "--interval", "60s")
    try:
        assert watch.wait_until(lambda: len(searches()) >= 4, timeout=30), watch.lines
        assert watch.wait_until(lambda: len(_leases(project)) == 4), _leases(project)
        listed = project.run("sources")
        assert listed.code == 0, listed.err
        jobs = listed.out.split("\njob ")[1].splitlines()[1:]
        held = {" ".join(r[:2]): r[2:] for r in map(str.split, jobs) if r}
        assert set(held) == {f"hackernews {t}" for t in TERMS}, listed.out
        assert all(who[:2] == ["watch", _name(watch)] and who[-1] == "left"
                   for who in held.values()), listed.out  # fmt: skip

        before = len(searches())
        polled = project.run("poll")
        assert polled.code == 0, polled.err
        assert len(searches()) == before  # nothing the worker holds was searched again
        said = [line for line in polled.err.splitlines() if "skipped" in line]
        assert len(said) == 1, polled.err
        assert said[0].startswith(f"poll: skipped 4 job(s) leased to watch {_name(watch)}")
        assert "hackernews acme" in said[0]
        assert _holders(project) == {_name(watch)}  # poll took nothing from it
    finally:
        code, _ = watch.stop()
    assert code == 0
    # Nobody holds the jobs now: poll takes them all (under its own lease while it runs).
    project.web.fail("/hackernews/api/v1/search", status=200, accept=True, delay=1.5)
    slow = subprocess.Popen(
        [sys.executable, "-m", "mentionwatch", "--config", str(project.config), "--db",
         str(project.db), "poll"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert watch.wait_until(lambda: len(_holders(project)) == 1, timeout=20), _leases(project)
        (holder,) = _holders(project)
        assert holder == f"poll {os.uname().nodename}:{slow.pid}"
        during = project.run("sources").out
        assert f"poll {os.uname().nodename}:{slow.pid}" in during
    finally:
        out, err = slow.communicate(timeout=60)
    assert slow.returncode == 0, err
    assert "skipped" not in err and "hackernews:" in out
    assert _holders(project) == set()  # given back at the end
    assert "nobody now" in project.run("sources").out


@pytest.mark.sqlite_only
def test_a_cron_poll_beside_a_watch_leaves_it_the_channel_it_is_sending(project, rx):
    """One SQLite file, a running `watch` busy sending alerts to a slow webhook, and a cron
    `poll`: the poll saves its new mentions but sends nothing the watch is sending (it says
    so); the watch sends the poll's alerts too, each exactly once."""
    project.write_config(CONFIG.replace("HOOK", rx.url("/hooks/w")))
    rx.slow("/hooks/w", 0.4, times=1000)
    watch = Watch(project, "--interval", "60s")
    try:
        assert watch.wait_until(lambda: rx.seen("/hooks/w"), timeout=30), watch.lines
        hn = project.web.platform("hackernews")
        hn.extra_hits += [new_hit("990001", "acme?"), new_hit("990002", "gizmo!")]
        polled = project.run("poll")
        assert polled.code == 0, polled.err
        assert "2 new mention(s)" in polled.out
        assert "left to another mentionwatch process" in polled.out, polled.out
        stored = project.rows("SELECT count(*) FROM mentions")[0][0]
        assert watch.wait_until(lambda: len(rx.seen("/hooks/w")) >= stored, timeout=60)
        time.sleep(0.5)  # nothing more comes
    finally:
        code, _ = watch.stop()
    assert code == 0
    delivered = [r.json() for r in rx.seen("/hooks/w")]
    ids = [d["delivery"] for d in delivered]
    assert len(ids) == len(set(ids)) == stored
    keys = sorted(d["mention"]["key"] for d in delivered)
    assert keys == sorted(k for (k,) in project.rows("SELECT key FROM mentions"))
    assert {"hackernews:990001", "hackernews:990002"} <= set(keys)
