"""Alert channels that misbehave on the wire (a slow loris, a huge answer…), through the real
CLI: the poll ends in its time, memory stays flat, and nothing is lost or sent twice."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from test_alerts import HN as ALERTS_HN
from test_watch import Watch

from mentionwatch.models import utcnow
from mentionwatch.testing.receivers import Receivers

HN = ALERTS_HN + "\n[poll]\nbackoff = 0.01\nretries = 2\ntimeout = 1\n"


@pytest.fixture
def rx():
    with Receivers() as receivers:
        yield receivers


@pytest.fixture
def ntfy():
    """An ntfy server of its own: ntfy publishes at the root, where a switch would also catch
    every other channel's requests."""
    with Receivers() as receivers:
        yield receivers


def two_hooks(rx: Receivers) -> str:
    hooks = f'"{rx.url("/hooks/bad")}", "{rx.url("/hooks/ok")}"'
    return HN + f'[[alerts]]\nname = "all"\nto = [{hooks}]\n'


def test_a_receiver_that_trickles_its_answer_is_given_up_on_in_time(project, rx):
    # A slow loris: a byte of the answer's head every 0.05 s, for far longer than the
    # timeout (a second). httpx's timeouts are per read, so every byte restarted them.
    rx.trickle("/hooks/bad", 30)
    project.write_config(two_hooks(rx), poll_settings=False)
    result = project.run("poll")
    assert result.code == 1
    assert "/hooks/bad failed: no answer within 1s; " in result.err
    stored = project.rows("SELECT count(*) FROM mentions")[0][0]
    assert len(rx.seen("/hooks/ok")) == stored > 1  # the other channel was served
    first = rx.seen("/hooks/bad")
    assert len(first) == 1

    again = project.run("poll")
    assert again.code == 0, again.err
    retried = rx.seen("/hooks/bad")[1:]
    assert len(retried) == stored  # nothing lost
    assert first[0].header("X-Mentionwatch-Delivery") in {
        r.header("X-Mentionwatch-Delivery") for r in retried
    }
    assert len(rx.seen("/hooks/ok")) == stored  # nothing sent twice


@pytest.mark.parametrize("status", [200, 500])
def test_a_huge_answer_is_never_read_whole(project, rx, status):
    size = 256 * 2**20
    rx.huge("/hooks/bad", size, status=status)
    project.write_config(two_hooks(rx), poll_settings=False)
    result = project.run("poll")
    (written,) = rx.wait_written()
    # The client hung up after the first bytes (what the sockets' buffers hold), instead of
    # reading a quarter of a gigabyte into memory.
    assert written < 32 * 2**20
    stored = project.rows("SELECT count(*) FROM mentions")[0][0]
    pending = project.rows("SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0]
    if status == 200:  # a 2xx is the answer, whatever follows it
        assert result.code == 0, result.err
        assert pending == 0
    else:
        assert result.code == 1
        assert "/hooks/bad failed: HTTP 500: AAAA" in result.err
        assert pending == stored  # every one kept for the next try
        assert len(rx.seen("/hooks/bad")) == 1  # the first failed: the rest wait, untried


def test_an_apprise_service_that_trickles_does_not_hold_the_poll(project, rx, ntfy):
    # Apprise's services time out per read too: a slow loris ntfy server held a cron poll
    # for as long as it kept trickling. The poll gives up on a channel silent for three
    # timeouts, and ends without waiting for its sender (Python joins Apprise's pool threads
    # at exit); its deliveries wait for the next poll, the other channel is served.
    ntfy.trickle("/", 600)  # longer than run_process waits
    hooks = f'"{ntfy.ntfy_url("acme")}", "{rx.url("/hooks/ok")}"'
    project.write_config(HN + f'[[alerts]]\nname = "all"\nto = [{hooks}]\n', poll_settings=False)
    result = project.run_process("poll")
    assert result.returncode == 1
    assert "channel ntfy://127.0.0.1" in result.stderr
    assert "failed: no answer within 3s; sent again next time" in result.stderr
    stored = project.rows("SELECT count(*) FROM mentions")[0][0]
    assert len(rx.seen("/hooks/ok")) == stored
    assert project.rows("SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0] == stored

    again = project.run("poll")
    assert again.code == 0, again.err
    assert len(ntfy.ntfy_messages("acme")) >= 1
    assert project.rows("SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0] == 0
    assert len(rx.seen("/hooks/ok")) == stored


def test_a_receivers_retry_after_is_waited_for(project, rx):
    # watch retries a failed delivery when its next_at comes; a 429's Retry-After puts it
    # there, where a bare failure backs off from seconds.
    rx.answer("/hooks/bad", 429, times=100, headers={"Retry-After": "3600"})
    rx.answer("/hooks/ok", 500, times=100)
    project.write_config(two_hooks(rx), poll_settings=False)
    assert project.run("poll").code == 1

    def next_tries(status: str) -> list[datetime]:
        rows = project.rows("SELECT outcome, next_at FROM outbox WHERE state = 'pending'")
        return [datetime.fromisoformat(at) for outcome, at in rows if outcome.startswith(status)]

    assert min(next_tries("HTTP 429")) > utcnow() + timedelta(minutes=55)
    assert max(next_tries("HTTP 500")) < utcnow() + timedelta(minutes=1)


def test_watch_stops_on_sigterm_with_an_apprise_service_trickling(project, rx, ntfy):
    # At exit Python joins Apprise's pool threads: watch said it had stopped, then hung for
    # as long as the service trickled. It ends now, the deliveries pending.
    ntfy.trickle("/", 600)
    hooks = f'"{ntfy.ntfy_url("acme")}", "{rx.url("/hooks/ok")}"'
    project.write_config(HN + f'[[alerts]]\nname = "all"\nto = [{hooks}]\n', poll_settings=False)
    watch = Watch(project, "--interval", "1h")
    try:
        assert watch.wait_until(lambda: ntfy.seen("/") and rx.seen("/hooks/ok"), 30), watch.lines
    finally:
        code, _ = watch.stop()  # waits 15 s at most
    assert code == 0, watch.lines
    assert any("no answer before shutdown" in line for line in watch.lines), watch.lines
    stored = project.rows("SELECT count(*) FROM mentions")[0][0]
    pending = project.rows("SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0]
    assert pending == stored  # the ntfy channel's, kept for the next run


def test_alerts_test_gives_up_on_a_service_that_trickles(project, rx, ntfy):
    # The test send is not queued: it waited for as long as the service kept trickling.
    ntfy.trickle("/", 600)  # longer than run_process waits
    hooks = f'"{ntfy.ntfy_url("acme")}", "{rx.url("/hooks/ok")}"'
    project.write_config(HN + f'[[alerts]]\nname = "all"\nto = [{hooks}]\n', poll_settings=False)
    result = project.run_process("alerts", "test", "all")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert any(x.startswith("FAIL  ntfy://") and x.endswith(": no answer within 3s") for x in lines)
    assert any(x.startswith("ok    http://127.0.0.1") for x in lines), lines
    assert len(rx.seen("/hooks/ok")) == 1
