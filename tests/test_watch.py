"""`mentionwatch watch`: schedules, alert latency, signals, one watch per database."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import pytest

from mentionwatch.testing.receivers import Receivers

CONFIG = """
[[terms]]
name = "pebblebase"
query = "pebblebase"

[sources.hackernews]
base_url = "{web}/hackernews/api/v1"

[sources.rss]
feeds = ["{web}/rss/feeds/blog.xml"]

[[alerts]]
name = "all"
to = ["HOOK"]
"""


class Watch:
    """`mentionwatch watch …` as a separate process; its stderr lines collected as they come."""

    def __init__(self, project, *args: str) -> None:
        argv = [sys.executable, "-m", "mentionwatch", "--config", str(project.config),
                "--db", str(project.db), "watch", *args]  # fmt: skip
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def events(self) -> list[dict]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def wait_until(self, check, timeout: float = 15.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if check():
                return True
            time.sleep(0.05)
        return False

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, float]:
        start = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=15)
        self._reader.join(5)
        return code, time.monotonic() - start


@pytest.fixture
def rx():
    with Receivers() as receivers:
        yield receivers


def new_hit(object_id: str, text: str) -> dict:
    now = int(time.time())
    return {
        "objectID": object_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "created_at_i": now,
        "author": "newcomer",
        "title": None,
        "comment_text": text,
        "story_id": 1,
        "story_title": "Ask HN: databases?",
        "_tags": ["comment", "author_newcomer", "story_1"],
    }


@pytest.mark.sqlite_only
def test_watch_alerts_within_the_interval_stops_cleanly_and_is_alone(project, rx):
    project.write_config(CONFIG.replace("HOOK", rx.url("/hooks/w")))
    watch = Watch(project, "--interval", "1s")
    try:
        assert watch.wait_until(lambda: rx.seen("/hooks/w")), watch.lines  # the first poll's
        assert watch.wait_until(lambda: sum("hackernews:" in x for x in watch.lines) >= 2)
        second = project.run_process("watch", "--interval", "1s")
        assert second.returncode == 2
        assert f"PID {watch.proc.pid}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1

        before = len(rx.seen("/hooks/w"))
        appeared = time.time()
        project.web.platform("hackernews").extra_hits.append(new_hit("990001", "pebblebase?"))
        got = rx.wait_for("/hooks/w", before + 1, timeout=10)
        assert got[-1].json()["mention"]["key"] == "hackernews:990001"
        assert got[-1].at - appeared <= 1.0 + 2.0  # the interval plus a second or two
    finally:
        code, took = watch.stop()
    assert code == 0 and took < 5
    polls = [x for x in watch.lines if " hackernews: " in x and "next poll in" in x]
    assert len(polls) >= 3  # one line per poll, off a terminal
    assert "\x1b" not in "\n".join(watch.lines)
    assert watch.lines[-1].endswith("alert(s) delivered")
    assert len(rx.seen("/hooks/w")) == project.rows("SELECT count(*) FROM mentions")[0][0]


def test_sigint_flushes_what_the_last_poll_saved(project, rx):
    project.write_config(CONFIG.replace("HOOK", rx.url("/hooks/w")))
    rx.slow("/hooks/w", 0.3, times=100)  # deliveries still in flight when the signal comes
    watch = Watch(project, "--interval", "30s", "--log-format", "json")
    polled = lambda: {e.get("source") for e in watch.events()}  # noqa: E731
    assert watch.wait_until(lambda: {"hackernews", "rss"} <= polled() and rx.seen("/hooks/w"))
    code, took = watch.stop(signal.SIGINT)
    assert code == 0 and took < 5
    events = watch.events()
    assert events[0]["event"] == "start" and events[-1]["event"] == "stop"
    assert {e["source"] for e in events if e["event"] == "poll"} == {"hackernews", "rss"}
    assert all(isinstance(e["new"], int) and e["next_poll_in"] > 20 for e in events
               if e["event"] == "poll")  # fmt: skip
    # What was not confirmed before the deadline stays pending, to go out next time.
    sent = project.rows("SELECT count(*) FROM outbox WHERE state = 'sent'")[0][0]
    pending = project.rows("SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0]
    assert sent + pending == project.rows("SELECT count(*) FROM mentions")[0][0]
    assert sent >= 1


@pytest.mark.both_engines  # on PostgreSQL watch also renews leases: --once must still end
def test_once_polls_every_source_once_and_delivers(project, rx):
    project.write_config(CONFIG.replace("HOOK", rx.url("/hooks/w")))
    done = project.run_process("watch", "--once")
    assert done.returncode == 0, done.stderr
    assert len(rx.seen("/hooks/w")) == project.rows("SELECT count(*) FROM mentions")[0][0] > 0
    assert sum(" next poll in " in line for line in done.stderr.splitlines()) == 2


def test_a_rate_limited_source_only_delays_itself(project, rx):
    project.write_config(CONFIG.replace("HOOK", rx.url("/hooks/w")))
    project.web.fail("/hackernews", status=429, times=1000, headers={"Retry-After": "3600"})
    watch = Watch(project, "--interval", "0.5s", "--log-format", "json")
    try:
        rss_polls = lambda: [e for e in watch.events() if e.get("source") == "rss"]  # noqa: E731
        assert watch.wait_until(lambda: len(rss_polls()) >= 3)
    finally:
        assert watch.stop()[0] == 0
    hn = [e for e in watch.events() if e.get("source") == "hackernews"]
    assert len(hn) == 1 and "rate limited" in hn[0]["errors"][0]
    assert hn[0]["next_poll_in"] >= 3600


def test_intervals_per_source_and_x_polls_less_often(tmp_path):
    from mentionwatch import config
    from mentionwatch.watch import interval_for

    path = tmp_path / "c.toml"
    path.write_text(
        '[poll]\ninterval = "2m"\n[sources.hackernews]\ninterval = "30s"\n[sources.github]\n'
        '[sources.x]\nbearer_token = "t"\n'
    )
    cfg = config.load(path, tmp_path / "db")
    got = {name: interval_for(s, cfg, None) for name, s in cfg.sources.items()}
    assert got == {"hackernews": 30, "github": 120, "x": 900}
    assert {name: interval_for(s, cfg, 5) for name, s in cfg.sources.items()} == {
        "hackernews": 5, "github": 5, "x": 5
    }  # fmt: skip
    path.write_text('[poll]\ninterval = "often"\n')
    with pytest.raises(config.ConfigError, match=r"c.toml:2: poll.interval: cannot read"):
        config.load(path, tmp_path / "db")


def test_at_shutdown_senders_stop_after_the_message_they_are_sending(project, rx):
    from mentionwatch import config, delivery
    from mentionwatch.store import Store

    project.write_config(CONFIG.replace("HOOK", rx.url("/hooks/s")))
    rx.answer("/hooks/s", 500, times=1000)
    project.run("poll")  # the channel is down: every delivery stays pending
    rx.behaviours.clear()
    rx.slow("/hooks/s", 0.3, times=1000)
    before = len(rx.seen("/hooks/s"))
    cfg = config.load(project.config, project.db)
    store = Store(cfg.database)
    try:
        dispatcher = delivery.Dispatcher(cfg, store)
        dispatcher.start()
        time.sleep(0.1)  # the first message is on its way
        (report,) = dispatcher.abandon(1.0)
        # It was answered within the wait and recorded; no more went out, none is on its way.
        assert report.delivered == 1 and len(rx.seen("/hooks/s")) == before + 1
        assert not [t for t in threading.enumerate() if t.daemon and t.is_alive()
                    and t.name != "MainThread" and "_channel_worker" in repr(t)]  # fmt: skip
    finally:
        store.close()
    pending = project.rows("SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0]
    assert project.rows("SELECT count(*) FROM outbox WHERE state = 'sent'")[0][0] == 1
    assert pending == project.rows("SELECT count(*) FROM mentions")[0][0] - 1 > 0
