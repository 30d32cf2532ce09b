"""Pile-up (spike) and digest alerts through the outbox, the real CLI and loopback receivers.

Time moves with time-machine where a test needs a day to pass (it moves datetime.now and
time.time in every thread of this process; monotonic clocks, which timeouts use, stay real).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from test_alerts import hit

from mentionwatch.alerts import Every
from mentionwatch.models import Mention, parse_iso, utcnow
from mentionwatch.render import RECORD_KEYS
from mentionwatch.store import Store
from mentionwatch.testing.receivers import Receivers, SmtpReceiver, apprise_to

HN = """
[[terms]]
name = "pebblebase"
query = 'pebblebase OR "pebble base"'

[sources.hackernews]
base_url = "{web}/hackernews/api/v1"
"""
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def rx():
    with Receivers() as receivers:
        yield receivers


def seed(project, *posts: tuple) -> None:
    """Save (hours ago, text[, sentiment, reach]) posts about pebblebase, as polls would."""
    store = Store(project.db)
    now = utcnow()
    try:
        for i, (hours, text, *more) in enumerate(posts):
            m = Mention(
                source="reddit",
                native_id=f"seed{i}-{now.timestamp():.0f}",
                text=text,
                author=f"user{i}",
                created_at=now - timedelta(hours=hours),
                terms=["pebblebase"],
                sentiment=more[0] if more else "neutral",
                reach=more[1] if len(more) > 1 else None,
                polarity=0.0,
                url=f"https://reddit.example/{i}",
            )
            store.save_page("reddit", "seed", [m], None)
    finally:
        store.close()


def quiet_history(project, per_day: int = 3) -> None:
    """Thirteen days of a quiet brand (the loopback HN adds ten posts of the last 14 hours)."""
    count = 13 * per_day
    step = 24 * 13 / count
    seed(project, *((24 * 13 - i * step, f"note {i}: pebblebase works for team {i}")
                    for i in range(count)))  # fmt: skip


PINGS = ("@everyone", "@here", "<!channel>", "<@U123ABC>")
HOSTILE = "@everyone <!channel> pebblebase [refund](https://evil.example/x) \x1b[2J\u200b"


def assert_inert(text: str) -> None:
    for ping in PINGS:
        assert ping not in text, ping
    assert "](https://evil" not in text and "<https://evil" not in text
    assert "\x1b" not in text
    assert not [c for c in text if unicodedata.category(c) == "Cf"]


def pile_up(project, count: int = 20, echoes: int = 3) -> None:
    """`count` unhappy comments in the last 40 minutes, and `echoes` retweets of the first."""
    hits = project.web.platform("hackernews").extra_hits
    words = "@everyone <!channel> pebblebase lost my data again [refund](https://evil.example/x)"
    for i in range(count):
        text = f"{words}, awful outage number {i} today"
        hits.append(hit(f"77{i:03d}", text, age=40 * 60 * (1 - i / count), author=f"angry{i}"))
    for j in range(echoes):
        text = f"RT @angry0: {words}, awful outage number 0 today"
        hits.append(hit(f"78{j:03d}", text, age=60, author=f"echo{j}"))


def spike_rules(rx, smtp) -> str:
    return f"""
[[alerts]]
name = "pile-ups"
on = "spike"
follow_up = true
secret = "s3cret"
to = ["{rx.url("/hooks/spikes")}", "{rx.ntfy_url("spikes")}", "{smtp.url()}"]

[[alerts]]
name = "unhappy pile-ups"
on = "spike"
sentiment = ["negative"]
to = ["{rx.url("/hooks/unhappy")}"]

[[alerts]]
name = "reddit pile-ups"
on = "spike"
sources = ["reddit"]
to = ["{rx.url("/hooks/reddit")}"]
"""


def test_a_pile_up_alerts_once_per_episode_and_says_when_it_is_over(project, rx):
    with SmtpReceiver() as smtp:
        project.write_config(HN + spike_rules(rx, smtp))
        quiet_history(project)
        pile_up(project)
        first = project.run("poll")
        assert first.code == 0, first.err
        mail = smtp.wait_for(1)
        (event,) = [r.json() for r in rx.seen("/hooks/spikes")]
        (unhappy,) = [r.json() for r in rx.seen("/hooks/unhappy")]

        spike = event["spike"]
        assert event["event"] == "spike" and event["alert"] == "pile-ups"
        assert list(event)[:3] == ["event", "alert", "delivery"]
        assert spike["term"] == "pebblebase" and spike["sentiment"] is None
        assert spike["kind"] == "start" and spike["count"] >= 20 and spike["baseline"] < 2
        assert parse_iso(spike["window_start"]) < parse_iso(spike["window_end"]) <= utcnow()
        assert spike["echoes"] == 3
        assert 1 <= len(spike["examples"]) <= 3 and set(RECORD_KEYS) <= set(spike["examples"][0])
        roots = [r["echo_of"] or r["id"] for r in spike["examples"]]
        assert len(set(roots)) == len(roots)  # an original, not three copies of it
        assert unhappy["spike"]["sentiment"] == "negative" and unhappy["spike"]["count"] >= 7
        assert rx.seen("/hooks/reddit") == []  # the pile-up is on Hacker News

        request = rx.seen("/hooks/spikes")[0]
        assert request.header("X-Mentionwatch-Event") == "spike"
        assert (
            request.header(
                "X-Mentionwatch-Signature-256",
            )
            is not None
        )

        (note,) = rx.ntfy_messages("spikes")
        text = note["title"] + "\n" + note["message"]
        assert "pile-up · pebblebase" in note["title"]
        assert "mentions of pebblebase from" in text and "3 of them repeat other posts" in text
        assert "See them: mentionwatch feed --term pebblebase --since " in text
        assert "\uff20everyone" in text and "evil.example/x" in text
        assert_inert(text)
        (letter,) = mail
        assert "pile-up" in letter["Subject"]
        assert_inert(letter["Subject"] + letter.get_body().get_content())

        # Every later poll of the same episode is quiet.
        seen = len(rx.seen("/"))
        again = project.run("poll")
        assert again.code == 0 and "alerts:" not in again.out
        assert len(rx.seen("/")) == seen

        # A day later the pile-up is over: the rule with follow_up says so, once.
        with time_machine.travel(utcnow() + timedelta(hours=26), tick=True):
            assert project.run("poll").code == 0
            smtp.wait_for(2)
            assert project.run("poll").code == 0
        ends = [r.json()["spike"] for r in rx.seen("/hooks/spikes")[1:]]
        assert [s["kind"] for s in ends] == ["end"]
        assert ends[0]["window_start"] == spike["window_start"] and ends[0]["count"] >= 20
        assert len(rx.seen("/hooks/unhappy")) == 1  # no follow_up: no end event
        (_, over) = rx.ntfy_messages("spikes")
        assert over["title"] == "pile-up over · pebblebase" and "is over" in over["message"]
    subjects = project.rows("SELECT alert, subject FROM outbox WHERE event = 'spike'")
    assert len(subjects) == 3 + 1 + 3  # start and end on three channels; start on one


def test_a_quiet_brand_with_a_few_more_posts_is_no_pile_up(project, rx):
    project.write_config(HN + f'[[alerts]]\nname = "p"\non = "spike"\nto = ["{rx.url()}"]\n')
    quiet_history(project, per_day=20)
    pile_up(project, count=3, echoes=0)  # with HN's own, 5 in the last hour: 0.8 expected
    assert project.run("poll").code == 0
    assert rx.seen("/hooks") == []
    assert project.rows("SELECT count(*) FROM outbox")[0][0] == 0


def digest_rules(rx, smtp) -> str:
    return f"""
[[alerts]]
name = "morning"
on = "digest"
every = "daily 09:00"
to = ["{rx.url("/hooks/digest")}", "{smtp.url()}", "{rx.ntfy_url("digest")}",
      "slack://T0AAAAAAA/B0BBBBBBB/cccccccccccccccccccccccc"]
"""


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A Berlin wall-clock time in March 2026 (CET, UTC+1, before the DST change)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=BERLIN)


def between(project, since: str, until: str) -> int:
    return project.rows(
        "SELECT count(*) FROM mentions WHERE created_at >= ? AND created_at < ?", since, until
    )[0][0]


def test_digests_go_out_when_due_late_once_after_sleep_and_never_twice(project, rx, monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    with SmtpReceiver() as smtp, apprise_to(rx):
        project.write_config(HN + digest_rules(rx, smtp))
        with time_machine.travel(at(10, 8, 50), tick=True):
            seed(project, (30, "pebblebase two days ago"),
                 (20, f"{HOSTILE} yesterday", "negative", 500),
                 (3, "pebblebase this morning, sadly broken again"))  # fmt: skip
            # The first look: yesterday's 09:00 digest is the last one due, so it goes now.
            assert project.run("poll").code == 0
            smtp.wait_for(1)
        with time_machine.travel(at(10, 10, 30), tick=True):
            # The laptop slept through 09:00: today's digest goes out late, once.
            assert project.run("poll").code == 0
            smtp.wait_for(2)
            assert project.run("poll").code == 0
            assert project.run("poll").code == 0
        with time_machine.travel(at(13, 11, 0), tick=True):
            # Three days asleep: one digest covering them, not three.
            assert project.run("poll").code == 0
            mail = smtp.wait_for(3)
            assert project.run("poll").code == 0
    events = [r.json() for r in rx.seen("/hooks/digest")]
    periods = [(e["digest"]["since"], e["digest"]["until"]) for e in events]
    assert periods == [
        ("2026-03-08T08:00:00Z", "2026-03-09T08:00:00Z"),
        ("2026-03-09T08:00:00Z", "2026-03-10T08:00:00Z"),
        ("2026-03-10T08:00:00Z", "2026-03-13T08:00:00Z"),
    ]
    for e in events:
        d = e["digest"]
        assert e["event"] == "digest" and e["alert"] == "morning"
        assert {"since", "until", "total", "positive", "neutral", "negative", "open"} <= set(d)
        assert d["total"] == between(project, d["since"], d["until"])
        assert d["positive"] + d["neutral"] + d["negative"] <= d["total"]
        assert d["every"] == "daily 09:00" and d["zone"] == "Europe/Berlin"
    assert events[1]["digest"]["total"] >= 2  # yesterday's post and this morning's
    assert len({r.header("X-Mentionwatch-Delivery") for r in rx.seen("/hooks/digest")}) == 3
    assert len(mail) == 3 and len(rx.seen("/slack")) == 3

    letter = mail[1]
    assert letter.get_content_type() == "multipart/alternative"
    html = letter.get_body(("html",)).get_content()
    plain = letter.get_body(("plain",)).get_content()
    assert "<h2>mentionwatch digest 2026-03-09 09:00 – 2026-03-10 09:00</h2>" in html
    assert "mentionwatch digest 2026-03-09 09:00" in plain and "<h2>" not in plain
    assert "morning:" in letter["Subject"] and "mentions" in letter["Subject"]
    chat = rx.seen("/slack")[1].json()["attachments"][0]["text"]
    assert "mentionwatch digest 2026-03-09 09:00" in chat and "*Answer first*" in chat
    defused = "\uff20everyone \u2039!channel\u203a pebblebase refund (https://evil.example/x)"
    assert defused in chat  # the hostile mention: readable, inert
    phone = rx.ntfy_messages("digest")[1]["message"]
    assert "Answer first:" in phone and defused in phone
    for text in (chat, phone, plain, html):
        assert_inert(text)

    log = project.run("alerts", "log", "--alert", "morning")
    assert log.code == 0 and log.out.count("morning →") == 12 == log.out.count("1 digest: ")
    listing = project.run("alerts", env={"TZ": "Europe/Berlin"})
    assert "on digest; every daily 09:00 (Europe/Berlin time)" in listing.out
    assert "3 sent" in listing.out


def test_watch_sends_pile_ups_and_digests_and_cron_does_not_repeat_them(project, rx):
    project.write_config(
        HN + f'[[alerts]]\nname = "m"\non = "digest"\nevery = "weekly wed 18:00"\n'
        f'to = ["{rx.url("/hooks/digest")}"]\n'
        f'[[alerts]]\nname = "p"\non = "spike"\nto = ["{rx.url("/hooks/spike")}"]\n'
    )
    quiet_history(project)
    pile_up(project)
    watch = subprocess.Popen(
        [sys.executable, "-m", "mentionwatch", "--config", str(project.config), "--db",
         str(project.db), "watch", "--interval", "1h"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # The digest of the last week at once (a new rule's first); the pile-up after the
        # first poll saved it.
        assert len(rx.wait_for("/hooks/digest", 1, timeout=30)) == 1
        assert len(rx.wait_for("/hooks/spike", 1, timeout=30)) == 1
    finally:
        watch.send_signal(signal.SIGTERM)
        _, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    assert rx.seen("/hooks/spike")[0].json()["spike"]["kind"] == "start"
    assert project.run("poll").code == 0  # cron's poll finds both queued already
    time.sleep(0.2)
    assert len(rx.seen("/hooks/digest")) == len(rx.seen("/hooks/spike")) == 1


def test_watch_wakes_up_for_a_digest_when_it_is_due(project, rx, monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    project.write_config(
        HN + f'[[alerts]]\nname = "m"\non = "digest"\nevery = "daily 09:00"\n'
        f'to = ["{rx.url("/hooks/digest")}"]\n'
    )

    def stop_after_two() -> None:
        rx.wait_for("/hooks/digest", 2, timeout=20)
        os.kill(os.getpid(), signal.SIGINT)  # watch's own handler: it stops cleanly

    with time_machine.travel(
        at(
            10,
            8,
            59,
        )
        + timedelta(seconds=58),
        tick=True,
    ):
        stopper = threading.Thread(target=stop_after_two, daemon=True)
        stopper.start()
        result = project.run("watch", "--interval", "1h")
        stopper.join(5)
    assert result.code == 0, result.err
    until = [r.json()["digest"]["until"] for r in rx.seen("/hooks/digest")]
    assert until == ["2026-03-09T08:00:00Z", "2026-03-10T08:00:00Z"]
    assert rx.seen("/hooks/digest")[1].at >= at(10, 9).timestamp()  # not before it was due


def test_alerts_test_sends_a_sample_pile_up_and_the_last_digest(project, rx):
    project.write_config(
        HN
        + f"""
[[alerts]]
name = "pile-ups"
on = "spike"
sentiment = ["negative"]
to = ["{rx.url("/hooks/spike")}", "{rx.ntfy_url("t")}"]

[[alerts]]
name = "weekly"
on = "digest"
every = "weekly mon 09:00"
to = ["{rx.url("/hooks/digest")}"]
"""
    )
    spike = project.run("alerts", "test", "pile-ups")
    assert spike.code == 0, spike.err
    (event,) = [r.json() for r in rx.seen("/hooks/spike")]
    assert event["event"] == "spike" and event["test"] is True
    assert event["spike"]["term"] == "pebblebase" and event["spike"]["sentiment"] == "negative"
    assert event["spike"]["examples"][0]["text"].startswith("This is a test alert")
    (note,) = rx.ntfy_messages("t")
    assert note["title"].startswith("mentionwatch test · pile-up · pebblebase (negative)")
    digest = project.run("alerts", "test", "weekly")
    assert digest.code == 0, digest.err
    (event,) = [r.json() for r in rx.seen("/hooks/digest")]
    assert event["event"] == "digest" and event["test"] is True
    since, until = (parse_iso(event["digest"][k]) for k in ("since", "until"))
    assert until - since == timedelta(days=7) and until <= utcnow()
    assert project.rows("SELECT count(*) FROM outbox")[0][0] == 0  # tests skip the outbox
    log = project.run("alerts", "log")
    assert log.out.count("  test: ") == 3
    listing = project.run("alerts").out
    assert "on spike; sentiment: negative; per term and sentiment" in listing
    assert "on digest; every weekly mon 09:00" in listing


def test_schedules_in_local_time():
    daily, weekly = Every.parse("daily 9:00"), Every.parse("Weekly Monday 09:30")
    assert str(daily) == "daily 09:00" and str(weekly) == "weekly mon 09:30"
    # Europe/Berlin moves to summer time on Sunday 2026-03-29: 09:00 stays 09:00 on the wall.
    saturday, monday = at(28, 12), datetime(2026, 3, 30, 8, tzinfo=BERLIN)
    assert daily.latest(saturday, BERLIN).astimezone(UTC) == datetime(2026, 3, 28, 8, tzinfo=UTC)
    assert daily.latest(monday, BERLIN).astimezone(UTC) == datetime(2026, 3, 29, 7, tzinfo=UTC)
    assert daily.following(saturday, BERLIN) == datetime(2026, 3, 29, 9, tzinfo=BERLIN)
    assert daily.latest(at(28, 9), BERLIN) == at(28, 9)  # at the moment itself: due
    assert weekly.latest(monday, BERLIN) == datetime(2026, 3, 23, 9, 30, tzinfo=BERLIN)
    assert weekly.before(weekly.latest(monday, BERLIN), BERLIN) == at(16, 9, 30)
    assert weekly.following(monday, BERLIN) == datetime(2026, 3, 30, 9, 30, tzinfo=BERLIN)
    for bad in ("daily", "hourly 09:00", "daily 09:00 extra", "weekly fr 09:00", "daily 9.00", 9):
        with pytest.raises(ValueError):
            Every.parse(bad)


def test_spike_and_digest_rules_count_by_the_filters_the_store_counts(project, rx):
    from mentionwatch import config

    project.write_config(
        HN
        + f"""
[[alerts]]
name = "s"
on = "spike"
terms = ["pebblebase"]
sentiment = ["negative", "neutral"]
sources = ["hackernews", "reddit"]
intents = ["complaint"]
min_relevance = 0.5
min_count = 12
to = ["{rx.url()}"]
"""
    )
    (rule,) = config.load(project.config, project.db).alerts
    counted = rule.counted()
    assert counted.terms == ("pebblebase",) and counted.sentiments == ("negative", "neutral")
    assert counted.sources == ("hackernews", "reddit") and counted.intents == ("complaint",)
    assert counted.min_relevance == 0.5 and counted.statuses == ()
    assert rule.spike == {"min_count": 12} and not rule.follow_up
