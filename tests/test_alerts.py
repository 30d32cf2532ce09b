"""Alert rules, the outbox and its channels, through the real CLI against loopback receivers."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
import unicodedata

import pytest

from mentionwatch.render import RECORD_KEYS
from mentionwatch.testing.receivers import Receivers, SmtpReceiver, apprise_to

# Every test here also runs on PostgreSQL (see conftest.py).
pytestmark = pytest.mark.both_engines

HN = """
[[terms]]
name = "pebblebase"
query = 'pebblebase OR "pebble base" -"pebble base camp"'

[sources.hackernews]
base_url = "{web}/hackernews/api/v1"
"""


@pytest.fixture
def rx():
    with Receivers() as receivers:
        yield receivers


def hit(object_id: str, text: str, age: int = 60, author: str = "mallory") -> dict:
    """A Hacker News comment as Algolia returns it, `age` seconds old."""
    created = int(time.time()) - age
    return {
        "objectID": object_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
        "created_at_i": created,
        "author": author,
        "title": None,
        "comment_text": text,
        "story_id": 1,
        "story_title": "Ask HN: what database do you use?",
        "_tags": ["comment", f"author_{author}", "story_1"],
    }


def config(rules: str) -> str:
    return HN + rules


def signed(request, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.header("X-Mentionwatch-Signature-256") or "", expected)


def test_poll_sends_each_rule_exactly_its_mentions_once(project, rx):
    project.write_config(
        config(f"""
[[alerts]]
name = "complaints"
sentiment = ["negative"]
to = ["{rx.url("/hooks/complaints")}"]
secret = "s3cret-value"

[[alerts]]
name = "questions"
intents = ["question"]
to = ["{rx.url("/hooks/questions")}"]
""")
    )
    result = project.run("poll")
    assert result.code == 0, result.err
    assert "alerts: " in result.out and "delivered" in result.out

    negative = {r[0] for r in project.rows("SELECT key FROM mentions WHERE sentiment='negative'")}
    questions = {
        r[0] for r in project.rows("SELECT key FROM mentions WHERE intents LIKE '%\"question\"%'")
    }
    assert negative and questions
    complaints = rx.seen("/hooks/complaints")
    asked = rx.seen("/hooks/questions")
    assert sorted(r.json()["mention"]["key"] for r in complaints) == sorted(negative)
    assert sorted(r.json()["mention"]["key"] for r in asked) == sorted(questions)

    for request in complaints:
        body = request.json()
        assert request.header("Content-Type") == "application/json"
        assert request.header("X-Mentionwatch-Event") == "mention" == body["event"]
        assert body["alert"] == "complaints"
        assert request.header("X-Mentionwatch-Delivery") == body["delivery"]
        assert list(body)[:3] == ["event", "alert", "delivery"]
        assert set(RECORD_KEYS) <= set(body["mention"])
        assert signed(request, "s3cret-value")
    # Without a secret there is no signature header at all.
    assert all(r.header("X-Mentionwatch-Signature-256") is None for r in asked)
    deliveries = [r.header("X-Mentionwatch-Delivery") for r in complaints + asked]
    assert len(set(deliveries)) == len(deliveries)

    seen = len(rx.seen("/hooks"))
    again = project.run("poll")
    assert again.code == 0 and "alerts:" not in again.out
    assert len(rx.seen("/hooks")) == seen  # confirmed deliveries are never sent again


def test_a_failing_channel_keeps_its_backlog_and_holds_up_nobody(project, rx):
    project.write_config(
        config(f"""
[[alerts]]
name = "all"
to = ["{rx.url("/hooks/down")}", "{rx.url("/hooks/up")}"]
""")
    )
    rx.answer("/hooks/down", 500, times=100)
    result = project.run("poll")
    assert result.code == 1
    assert "/hooks/down failed: HTTP 500" in result.err
    assert "kept for the next try" in result.err
    stored = project.rows("SELECT count(*) FROM mentions")[0][0]
    assert stored == len(rx.seen("/hooks/up")) > 1  # everything saved; the other channel served
    first_try = rx.seen("/hooks/down")
    assert len(first_try) == 1  # a channel that fails is not hammered with the rest

    rx.behaviours.clear()
    retry = project.run("poll")
    assert retry.code == 0, retry.err
    down = rx.seen("/hooks/down")[1:]
    assert len(down) == stored
    # The retried delivery carries the ID its first attempt had.
    assert first_try[0].header("X-Mentionwatch-Delivery") in {
        r.header("X-Mentionwatch-Delivery") for r in down
    }
    assert len(rx.seen("/hooks/up")) == stored  # nothing re-sent to the channel that worked


def test_a_receiver_that_is_not_there(project, rx):
    dead = Receivers().start()
    url = dead.url("/hooks/gone")
    dead.stop()
    project.write_config(config(f'[[alerts]]\nname = "all"\nto = ["{url}"]\n'))
    result = project.run("poll")
    assert result.code == 1
    assert "channel http://127.0.0.1:" in result.err and "cannot connect" in result.err
    assert project.rows("SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0] > 0


def test_killed_between_sending_and_marking_retries_with_the_same_id(project, rx):
    project.write_config(
        config(f'[[alerts]]\nname = "all"\nto = ["{rx.url("/hooks/a")}"]\n[poll]\ntimeout = 30\n'),
        poll_settings=False,
    )
    rx.hang("/hooks/a", 20)
    argv = [sys.executable, "-m", "mentionwatch", "--config", str(project.config),
            "--db", str(project.db), "poll"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        (first,) = rx.wait_for("/hooks/a", 1, timeout=30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    stored = project.rows("SELECT count(*) FROM mentions")[0][0]
    assert stored > 1  # saved before anything was sent
    rx.behaviours.clear()
    assert project.run("poll").code == 0
    retried = rx.seen("/hooks/a")[1:]
    assert len(retried) == stored  # nothing lost
    ids = [r.header("X-Mentionwatch-Delivery") for r in retried]
    assert first.header("X-Mentionwatch-Delivery") in ids
    assert first.json()["mention"]["key"] == retried[0].json()["mention"]["key"]


def test_a_first_poll_pushes_nothing_older_than_max_age(project, rx):
    hits = project.web.platform("hackernews").extra_hits
    for day in range(1, 31):  # a month of history the first poll finds
        hits.append(hit(f"7000{day:02d}", f"pebblebase day {day}", age=day * 86400 + 3600))
    hits.append(hit("700100", "pebblebase from ten minutes ago", age=600))
    project.write_config(
        config(f'[[alerts]]\nname = "all"\nmax_age = "2h"\nto = ["{rx.url("/hooks/a")}"]\n')
        + "[poll]\nlookback_days = 40\n",
        poll_settings=False,
    )
    assert project.run("poll").code == 0
    keys = {r.json()["mention"]["key"] for r in rx.seen("/hooks/a")}
    assert "hackernews:700100" in keys
    assert not any(k.startswith("hackernews:7000") for k in keys)
    assert project.rows("SELECT count(*) FROM mentions WHERE key LIKE 'hackernews:7000%'")[0][0]


def test_filters_terms_sources_authors_query_priority(project, rx):
    hits = project.web.platform("hackernews").extra_hits
    hits.append(hit("800001", "pebblebase wants a refund, this is broken", author="Alice"))
    hits.append(hit("800002", "pebblebase refund please", author="bob"))
    project.write_config(
        config(f"""
[[alerts]]
name = "refunds"
terms = ["pebblebase"]
sources = ["hackernews"]
authors = ["@alice"]
query = 'refund OR cancel'
min_priority = 0.5
to = ["{rx.url("/hooks/refunds")}"]
""")
    )
    assert project.run("poll").code == 0
    assert [r.json()["mention"]["key"] for r in rx.seen("/hooks/refunds")] == ["hackernews:800001"]


def test_no_alerts_saves_without_queueing(project, rx):
    project.write_config(config(f'[[alerts]]\nname = "all"\nto = ["{rx.url("/hooks/a")}"]\n'))
    assert project.run("poll", "--no-alerts").code == 0
    assert project.rows("SELECT count(*) FROM mentions")[0][0] > 0
    assert project.rows("SELECT count(*) FROM outbox")[0][0] == 0
    assert rx.seen() == []


HOSTILE = (
    "pebblebase is down @everyone @here <!channel> <!here> <@U123ABC> <@&987654> "
    "[click for a refund](https://evil.example/phish) ![x](https://evil.example/p.png) "
    "<https://evil.example|your invoice> <a href='https://evil.example'>link</a> **bold** "
    "\x1b[31mred\x1b[0m \x1b]8;;https://evil.example/\x1b\\osc\x1b]8;;\x1b\\ "
    "\u202egnp.exe\u202c zero\u200bwidth\u2060joiner \ufeffbom"
)
PINGS = ("@everyone", "@here", "<!channel>", "<!here>", "<@U123ABC>", "<@&987654>", "@room")


def assert_inert(text: str) -> None:
    for ping in PINGS:
        assert ping not in text, ping
    assert "](https://evil" not in text and "<https://evil" not in text
    assert "<a href" not in text and "|your invoice>" not in text
    assert "\x1b" not in text
    invisible = [c for c in text if unicodedata.category(c) == "Cf"]
    assert not invisible, [hex(ord(c)) for c in invisible]


def test_hostile_text_arrives_inert_in_slack_discord_ntfy_and_mail(project, rx):
    project.web.platform("hackernews").extra_hits.append(hit("900001", HOSTILE, author="everyone"))
    with SmtpReceiver("founder", "mail-pw") as smtp, apprise_to(rx):
        to = [
            "slack://T0AAAAAAA/B0BBBBBBB/cccccccccccccccccccccccc",
            "discord://1234567890/discord-webhook-token",
            "tgram://123456789:abcdefghijklmnopqrstuvwxyz0123456/12345",
            rx.ntfy_url("acme-alerts"),
            smtp.url("founder@example.com"),
        ]
        project.write_config(
            config(
                f"""
[[alerts]]
name = "hostile"
query = "refund"
to = {to!r}
""".replace("'", '"')
            )
        )
        result = project.run("poll")
        assert result.code == 0, result.err
        mail = smtp.wait_for(1)
    slack, discord, telegram = rx.seen("/slack"), rx.seen("/discord"), rx.seen("/telegram")
    ntfy = rx.ntfy_messages("acme-alerts")
    assert len(slack) == len(discord) == len(telegram) == len(ntfy) == len(mail) == 1
    bodies = {
        "slack": slack[0].body.decode(),
        "discord": discord[0].json()["content"],
        "telegram": telegram[0].json()["text"],
        "ntfy": ntfy[0]["title"] + "\n" + ntfy[0]["message"],
        "mail": mail[0]["Subject"] + "\n" + mail[0].get_body().get_content(),
    }
    for service, text in bodies.items():
        assert "pebblebase is down" in text, service  # the message is there, readable
        assert "mentionwatch reply" in text, service
        assert "evil.example/phish" in text, service  # a disguised link shows where it goes
        assert_inert(text)
    assert mail[0].get_content_type() == "text/plain"


def test_grouping_and_the_hourly_cap(project, rx):
    hits = project.web.platform("hackernews").extra_hits
    project.write_config(
        config(f"""
[[alerts]]
name = "grouped"
to = ["{rx.ntfy_url("grouped")}"]

[[alerts]]
name = "capped"
group = false
max_per_hour = 3
to = ["{rx.ntfy_url("capped")}"]
""")
    )
    assert project.run("poll").code == 0
    stored = project.rows("SELECT count(*) FROM mentions")[0][0]
    (grouped,) = rx.ntfy_messages("grouped")
    assert grouped["title"] == f"grouped: {stored} new mentions"
    assert f"and {stored - 5} more" in grouped["message"]
    capped = rx.ntfy_messages("capped")
    assert len(capped) == 3  # two single messages, then one for the rest
    assert capped[-1]["title"] == f"capped: {stored - 2} new mentions"

    hits.append(hit("910001", "pebblebase one more"))
    result = project.run("poll")
    assert result.code == 0
    assert "1 held by max_per_hour" in result.out
    assert len(rx.ntfy_messages("capped")) == 3
    assert project.rows(
        "SELECT count(*) FROM outbox WHERE alert = 'capped' AND state = 'pending'"
    ) == [(1,)]


def test_command_channel_gets_the_event_on_stdin(project, rx, tmp_path):
    out = tmp_path / "events"
    script = tmp_path / "hook.py"
    script.write_text(
        "import json, os, sys\n"
        "event = json.load(sys.stdin)\n"
        f"with open({str(out)!r}, 'a') as f:\n"
        "    f.write(os.environ['MENTIONWATCH_DELIVERY'] + ' ' + event['mention']['key'] + '\\n')\n"
    )
    project.write_config(
        config(f'[[alerts]]\nname = "cmd"\ncommand = [{sys.executable!r}, {str(script)!r}]\n')
    )
    assert project.run("poll").code == 0, project.run("alerts", "log").out
    lines = out.read_text().splitlines()
    assert len(lines) == project.rows("SELECT count(*) FROM mentions")[0][0]
    assert all(line.split()[1].startswith("hackernews:") for line in lines)


TO = 'name = "a"\nto = ["https://x.example/h"]\n'
BAD_RULES = [
    (TO + 'colour = "red"', "alerts[0].colour", "unknown key"),
    ('name = "a"\nto = ["not a url"]', "alerts[0].to", "not a channel URL"),
    ('name = "a"\nto = ["https://hooks.slack.com/services/T/B/C"]', "alerts[0].to", "slack://"),
    (TO + 'terms = ["nope"]', "alerts[0].terms", "unknown term"),
    (TO + 'sources = ["myspace"]', "alerts[0].sources", "unknown source"),
    (TO + 'sentiment = ["angry"]', "alerts[0].sentiment", "unknown value"),
    (TO + 'on = "storm"', "alerts[0].on", "expected one of: mention, spike, digest"),
    (TO + 'on = "digest"', "alerts[0].every", "needs a schedule"),
    (TO + 'on = "digest"\nevery = "dayly 09:00"', "alerts[0].every", '"weekly DAY HH:MM"'),
    (TO + 'on = "digest"\nevery = "daily 25:00"', "alerts[0].every", "not a time of day"),
    (TO + 'on = "digest"\nevery = "weekly mo 09:00"', "alerts[0].every", "unknown day"),
    (TO + 'every = "daily 09:00"', "alerts[0].every", 'only for on = "digest" rules'),
    (
        TO + 'on = "digest"\nevery = "daily 9:00"\nmax_age = "1h"',
        "alerts[0].max_age",
        'only for on = "mention"',
    ),
    (TO + 'on = "spike"\nquery = "refund"', "alerts[0].query", "count mentions by terms"),
    (TO + 'on = "spike"\nmin_count = 0', "alerts[0].min_count", "from 1"),
    (TO + 'on = "spike"\np_value = 0.5', "alerts[0].p_value", "a probability"),
    (TO + 'on = "spike"\nfollow_up = "yes"', "alerts[0].follow_up", "true or false"),
    (TO + "follow_up = true", "alerts[0].follow_up", 'only for on = "spike"'),
    (TO + 'max_age = "soon"', "alerts[0].max_age", "duration"),
    (TO + "query = '\"open'", "alerts[0].query", "quote"),
    ('name = "a"', "alerts[0].to", "somewhere to send"),
    ('name = "a"\nto = ["bogus://nothing"]', "alerts[0].to", "Apprise does not know"),
    (TO + "max_per_hour = 0", "alerts[0].max_per_hour", "at least 1"),
    (TO + "group = 1", "alerts[0].group", "true or false"),
    (TO + 'command = ""', "alerts[0].command", "program"),
    (TO + "\n[[alerts]]\n" + TO, "alerts[1].name", "a second rule"),
]


@pytest.mark.parametrize(("rule", "key", "says"), BAD_RULES)
def test_bad_rules_are_one_line_naming_file_line_and_key(project, rule, key, says):
    project.write_config(config(f"\n[[alerts]]\n{rule}\n"))
    result = project.run("poll")
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert f"{project.config}:" in line and key in line and says in line
    header = project.config.read_text().splitlines().index("[[alerts]]") + 1
    assert int(line.split(f"{project.config}:")[1].split(":")[0]) >= header


def test_alerts_lists_rules_with_secrets_masked(project, rx):
    os.environ["NTFY_TOKEN"] = "tk_secret_ntfy_token_123"
    try:
        project.write_config(
            config(f"""
[[alerts]]
name = "complaints"
sentiment = ["negative"]
to = ["{rx.url("/hooks/a")}?token=hook-secret-987", "ntfy://${{NTFY_TOKEN}}@127.0.0.1:{rx.port}/acme"]
secret = "signing-secret-456"
""")
        )
        assert project.run("poll").code == 0
        listing = project.run("alerts")
        log = project.run("alerts", "log")
    finally:
        del os.environ["NTFY_TOKEN"]
    assert listing.code == 0
    assert "complaints" in listing.out and "sentiment: negative" in listing.out
    assert "delivered" in listing.out and "webhooks signed" in listing.out
    for out in (listing.out, log.out):
        assert "hook-secret-987" not in out and "tk_secret_ntfy_token_123" not in out
        assert "signing-secret-456" not in out
    assert "token=***" in listing.out
    assert "ok" in log.out and "complaints" in log.out


def test_alerts_log_limit_is_like_the_feeds(project, rx):
    project.write_config(config(f'[[alerts]]\nname = "all"\nto = ["{rx.url("/hooks/a")}"]\n'))
    assert project.run("poll").code == 0
    everything = project.run("alerts", "log", "--limit", "0")
    assert everything.code == 0 and len(everything.out.splitlines()) == len(rx.seen("/hooks/a"))
    assert len(project.run("alerts", "log", "-n", "2").out.splitlines()) == 2
    negative = project.run("alerts", "log", "--limit", "-1")
    assert negative.code == 2 and "-1 is not in the range x>=0" in negative.err


def test_alerts_test_sends_a_sample_and_says_what_each_channel_answered(project, rx):
    project.write_config(
        config(f"""
[[alerts]]
name = "complaints"
to = ["{rx.url("/hooks/a")}", "{rx.url("/hooks/broken")}", "{rx.ntfy_url("acme")}"]
secret = "k"
""")
    )
    rx.answer("/hooks/broken", 503)
    result = project.run("alerts", "test", "complaints")
    assert result.code == 1
    assert "ok    http://127.0.0.1" in result.out and "FAIL  http://127.0.0.1" in result.out
    assert "HTTP 503" in result.out
    (hook,) = rx.seen("/hooks/a")
    assert hook.json()["test"] is True and signed(hook, "k")
    # the sample is a whole JSONL record: a receiver that checks the keys accepts it
    assert list(hook.json()["mention"]) == list(RECORD_KEYS)
    (push,) = rx.ntfy_messages("acme")
    assert push["title"] == "mentionwatch test · complaints"
    assert project.run("alerts", "test", "nope").code == 2
    assert "(test)" in project.run("alerts").out


def test_messages_defuse_what_every_chat_service_would_interpret():
    from mentionwatch.channels import grouped_message, single_message

    record = {
        "id": 7, "source": "bluesky", "sentiment": "negative", "terms": ["acme"],
        "author": "@here", "title": None, "url": "https://bsky.app/profile/x/post/1 @everyone",
        "text": "<!channel> <!here> <!everyone> <@U123> <#C999|general> @room "
        "<https://evil.example|your invoice> [a](https://evil.example) [ref]: https://evil.example "
        "\u2028line\u2029para \u200f\u202aEvil\u202c \x1b[2J",
    }  # fmt: skip
    for title, body in (single_message("rule", record), grouped_message("rule", [record] * 7)):
        text = title + "\n" + body
        assert_inert(text)
        for token in ("<!", "<#", "<@", "<https", "[a]", "[ref]"):
            assert token not in text
        assert "\u2028" not in text and "\u2029" not in text and "\u202a" not in text
    title, body = single_message("rule", record)
    assert title == "negative · bluesky · acme — ＠here"
    assert "mentionwatch reply 7" in body
    assert "https://bsky.app/profile/x/post/1%20%40everyone" in body
    assert "and 2 more" in grouped_message("rule", [record] * 7)[1]


def test_the_demo_shows_an_alert_arriving(project):
    result = project.run("demo")
    assert result.code == 0, result.err
    landed = [line for line in result.err.splitlines() if "webhook received mention" in line]
    assert landed and all("(signature ok)" in line for line in landed)
    assert f"alerts: {len(landed)} delivered" in result.out


def test_a_failing_apprise_channel_says_why_and_stores_no_secret(project, rx):
    token = "tk_secret_token_42"
    project.write_config(
        config(f'[[alerts]]\nname = "phone"\nto = ["ntfy://{token}@127.0.0.1:{rx.port}/acme"]\n')
    )
    rx.answer("/", 500, times=10)
    result = project.run("poll")
    assert result.code == 1
    assert "channel ntfy://" in result.err and "injected HTTP 500" in result.err
    assert rx.seen("/")[0].header("Authorization") == f"Bearer {token}"  # it was really sent
    listing = project.run("alerts").out + project.run("alerts", "log").out
    stored = project.rows("SELECT * FROM alert_log") + project.rows("SELECT * FROM outbox")
    for text in (result.out, result.err, listing, repr(stored)):
        assert token not in text


def test_an_unset_variable_in_a_rule_stops_only_the_commands_that_deliver(project, rx):
    project.write_config(
        config(f"""
[[alerts]]
name = "complaints"
to = ["{rx.url("/hooks/a")}"]
secret = "${{PB_HOOK_SECRET_UNSET}}"
""")
    )
    assert project.run("poll", "--no-alerts").code == 0
    feed = project.run("feed", "--format", "ids")
    assert feed.code == 0 and feed.out.strip()
    assert project.run("alerts").code == 0
    polled = project.run("poll")
    assert polled.code == 2
    assert "alerts[0].secret: environment variable PB_HOOK_SECRET_UNSET is not set" in polled.err
    assert rx.seen() == []
