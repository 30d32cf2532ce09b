"""Acceptance: a hostile corpus stays inert through every command and format, and credentials
echoed back by a gateway never reach an output, a log or the database."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import time

import pytest

from mentionwatch.testing.demo import demo_config, toml_table
from mentionwatch.testing.hostile import (
    HOSTILE,
    EchoGateway,
    bluesky_post,
    forbidden,
    hn_hit,
    hostile_text,
    reddit_post,
    rss_feed,
)
from mentionwatch.testing.platforms import bluesky, github, mastodon, reddit, stackexchange, x

SGR = re.compile(r"\x1b\[[0-9;]*m")  # the colour codes rich itself writes
BIG = 1_000_000
TERMS = "[[terms]]\nname = 'pebblebase'\nquery = 'pebblebase'\n"


def hostile_world(project) -> dict[str, str]:
    """Hostile mentions on four platforms; returns their keys by name."""
    now = int(time.time())
    web = project.web
    hits = web.platform("hackernews").extra_hits
    hits.append(hn_hit("700001", hostile_text("pebblebase story"), now - 300,
                       title="pebblebase " + HOSTILE["bidi"] + HOSTILE["osc8"],
                       comment_text=None, story_text=hostile_text(), story_id=700001,
                       url="https://evil.example/\x1b]8;;x\x07", author="\u202emallory",
                       _tags=["story", "author_mallory", "story_700001"]))  # fmt: skip
    hits.append(hn_hit("700002", hostile_text(), now - 200, story_id=700001,
                       parent_id=700001, story_title="Ask HN " + HOSTILE["ansi"],
                       author="mal\x1b[2Jlory"))  # fmt: skip
    hits.append(hn_hit("700003", '=HYPERLINK("https://evil.example","pebblebase")', now - 100,
                       author="@SUM(A1)", story_title="-2+3 pebblebase"))  # fmt: skip
    big = "pebblebase " + ("lorem ipsum \x07\u202e dolor " * (BIG // 20))[:BIG]
    hits.append(hn_hit("700004", big, now - 50))
    rd = web.platform("reddit")
    rd.extra_posts.append(reddit_post(rd, "hx0001", "pebblebase " + HOSTILE["title"],
                                      hostile_text(), "u\u200bser\x07"))  # fmt: skip
    bs = web.platform("bluesky")
    bs.extra_posts.append(bluesky_post(bs, "3hostile0001", hostile_text(),
                                       "Evil " + HOSTILE["bidi"] + HOSTILE["osc8"]))  # fmt: skip
    web.platform("rss").extra["hostile.xml"] = rss_feed(
        "Feed " + HOSTILE["ansi"], "pebblebase " + HOSTILE["bidi"], "Author\x07 " + HOSTILE["cr"],
        hostile_text().replace("\x00", ""), "https://feeds.example/1",
    )  # fmt: skip
    config = demo_config(web, project.db, ["bluesky", "hackernews", "reddit"])
    project.write_config(
        config + toml_table("sources.rss", {"feeds": [f"{web.url}/rss/feeds/hostile.xml"]})
    )
    post = "at://did:plc:mayachen7q2w3e4r5t6y/app.bsky.feed.post/3hostile0001"
    return {"hn_story": "hackernews:700001", "hn_comment": "hackernews:700002",
            "hn_formula": "hackernews:700003", "hn_big": "hackernews:700004",
            "reddit": "reddit:t3_hx0001", "bluesky": f"bluesky:{post}"}  # fmt: skip


def assert_inert(label: str, text: str) -> None:
    assert forbidden(text) == [], f"{label}: {forbidden(text)}"


def test_hostile_corpus_stays_inert_everywhere(project):
    keys = hostile_world(project)
    poll = project.run("poll")
    assert poll.code == 0, poll.err
    assert_inert("poll", poll.out + poll.err)
    stored = {k: project.mention(k) for k in keys.values()}
    rss = project.rows("SELECT key FROM mentions WHERE source = 'rss'")
    assert len(rss) == 1 and len(stored) == 6

    # Inert, but not emptied: the words are there, only the controls are gone.
    comment = stored[keys["hn_comment"]]
    assert "[bold red]styled[/]" in comment.text and "looks safe\nEVIL OVERWRITE" in comment.text
    assert "zerowidthjoinedbomshyfiller" in comment.text and "gnp.exe" in comment.text
    assert comment.author == "mal[2Jlory" and comment.title == "Ask HN [31mred[0m[2J[H"
    assert len(stored[keys["hn_big"]].text) > 0.8 * BIG  # controls gone, spaces folded

    outputs = {
        f"feed {fmt}": project.run("feed", "--format", fmt, "--limit", "0").out
        for fmt in ("rich", "plain", "jsonl", "csv")
    }
    coloured = project.run("feed", "--limit", "0", env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"})
    assert "\x1b[" in coloured.out  # rich did colour it
    outputs["feed colour"] = SGR.sub("", coloured.out)
    for name, key in keys.items():
        shown = project.run("show", key)
        assert shown.code == 0, shown.err
        outputs[f"show {name}"] = SGR.sub("", shown.out) + shown.err
        dry = project.run("reply", key, "thanks \x1b]8;;https://evil.example\x07you\x1b]8;;\x07 "
                          "\u202e\x00", "--dry-run")  # fmt: skip
        assert dry.code == 0, dry.err
        outputs[f"reply {name}"] = dry.out + dry.err
    assert "in reply to" in outputs["show hn_comment"]  # the thread was fetched (and inert)
    for fmt in ("csv", "json", "jsonl"):
        outputs[f"export {fmt}"] = project.run("export", "--format", fmt).out
    for name, out in outputs.items():
        if name.endswith("csv"):
            out = out.replace("\r\n", "\n")  # the CSV row terminator
        assert_inert(name, out)

    records = [json.loads(line) for line in outputs["export jsonl"].splitlines()]
    # priority decays with a mention's age, so it moves between the two exports
    assert [{**r, "priority": 0} for r in records] == [
        {**r, "priority": 0} for r in json.loads(outputs["export json"])
    ]
    for record in records:
        for field, value in record.items():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    assert_inert(f"{record['key']} {field}", item)

    csv.field_size_limit(4 * BIG)  # the 1 MB mention is one cell
    rows = list(csv.DictReader(io.StringIO(outputs["export csv"])))
    formula = next(r for r in rows if r["key"] == keys["hn_formula"])
    assert formula["text"].startswith("'=HYPERLINK") and formula["author"] == "'@SUM(A1)"
    assert formula["title"] == "'-2+3 pebblebase"
    for row in rows:
        assert not any(v.lstrip().startswith(("=", "+", "@")) for v in row.values())
        float(row["polarity"])  # a number, not neutralised text
        assert not row["polarity"].startswith("'")

    for table in ("mentions", "polls", "replies", "status_log"):
        for row in project.rows(f"SELECT * FROM {table}"):
            for value in row:
                if isinstance(value, str):
                    assert_inert(table, value)


def test_platform_error_bodies_are_inert_in_show_and_reply(project):
    keys = hostile_world(project)
    assert project.run("poll").code == 0
    body = '{"message": "bad \\u0000 request \\u001b]8;;https://evil.example\\u0007 here \\u202e"}'
    project.web.fail("/hackernews/api/v1/search", 500, times=10, body=body)
    shown = project.run("show", keys["hn_comment"])
    assert shown.code == 0 and "thread not shown" in shown.err and "bad  request" in shown.err
    assert_inert("show", shown.out + shown.err)
    project.web.fail("/reddit/oauth/api/comment", 500, times=10, body=body)
    replied = project.run("reply", keys["reddit"], "Thanks!", "--yes")
    assert replied.code == 1 and "bad  request" in replied.err
    assert_inert("reply", replied.out + replied.err)
    (error,) = [r[0] for r in project.rows("SELECT error FROM replies") if r[0]]
    assert "bad  request" in error
    assert_inert("replies.error", error)


# Every configured credential, and the emulators' own.
SECRETS = (reddit.CLIENT_SECRET, reddit.PASSWORD, bluesky.APP_PASSWORD, mastodon.TOKEN,
           github.TOKEN, x.BEARER, x.USER_TOKEN, stackexchange.KEY)  # fmt: skip


def leaks(project, *texts: str) -> list[str]:
    """Every secret found in the texts or in the database files (raw and URL-encoded)."""
    from urllib.parse import quote

    files = project.contents()
    found = []
    for secret in SECRETS:
        for form in {secret, quote(secret, safe="")}:
            if any(form in t for t in texts) or form.encode() in files:
                found.append(form)
    return found


def gateway_config(project, gateway: EchoGateway) -> None:
    config = demo_config(project.web, project.db).replace(project.web.url, gateway.url)
    project.write_config(config)


@pytest.mark.parametrize("style", ["json", "html", "text"])
def test_echoed_credentials_never_leak(project, style):
    with EchoGateway(project.web.url, echo=["/"], style=style) as gateway:
        gateway_config(project, gateway)
        results = [project.run("poll"), project.run("sources"), project.run("sources", "--check")]
        assert gateway.echoed >= 8
        assert results[0].code == 1 and results[2].code == 1
        assert "rejected" in results[0].err or "Denied" in results[0].err
        assert "***" in results[0].err  # the echo was there, and masked
        texts = [t for r in results for t in (r.out, r.err)]
        assert leaks(project, *texts) == []


def test_tokens_obtained_at_run_time_are_scrubbed_too(project):
    """Logins go through; every API call is answered with an echo of its bearer token."""
    with EchoGateway(project.web.url, echo=["/reddit/oauth", "/bluesky/xrpc/app."]) as gateway:
        gateway_config(project, gateway)
        poll = project.run("poll", "--source", "reddit", "--source", "bluesky")
        assert poll.code == 1 and poll.err.count("***") >= 2
    tokens = list(project.web.platform("reddit").tokens)
    sessions = [json.loads(v) for (v,) in project.rows(
        "SELECT value FROM source_state WHERE source = 'bluesky'")]  # fmt: skip
    tokens += [s[k] for s in sessions for k in ("accessJwt", "refreshJwt")]
    assert len(tokens) >= 3
    logged = " ".join(str(v) for row in project.rows("SELECT * FROM polls") for v in row)
    for token in tokens:
        assert token not in poll.out + poll.err + logged
    assert leaks(project, poll.out, poll.err) == []


def test_debug_tracebacks_and_log_records_are_scrubbed(project, monkeypatch, capsys):
    from mentionwatch import scrub
    from mentionwatch.store import Store

    project.write_config(TERMS + f"[sources.github]\ntoken = '{github.TOKEN}'\n")

    def broken(*args, **kwargs):
        raise RuntimeError(f"boom with {github.TOKEN} and \x1b]0;title\x07")

    Store(project.db).close()
    monkeypatch.setattr(Store, "mentions", broken)
    result = project.run("--debug", "feed")
    assert result.code == 1 and "Traceback" in result.err and "RuntimeError: boom" in result.err
    assert github.TOKEN not in result.err and "\x1b" not in result.err
    plain = project.run("feed")
    assert "unexpected error: RuntimeError" in plain.err and github.TOKEN not in plain.err

    scrub.guard_logging()
    logging.getLogger("mentionwatch.test").error("token %s leaked", github.TOKEN)
    assert github.TOKEN not in capsys.readouterr().err


def test_a_secret_in_a_config_error_is_not_quoted(project):
    project.write_config(TERMS + "[sources.github]\ntoken = 12345678901\n")
    result = project.run("feed")
    assert result.code == 2 and "sources.github.token: expected a string, got int" in result.err
    assert "12345678901" not in result.err


def test_a_name_with_line_breaks_cannot_forge_a_line(project):
    # An author (or display name) is one line: with its line breaks it could print a made-up
    # mention in `feed --format plain` (one line per mention, for grep and cut) or in a header.
    forged = "99\tpositive\thackernews\t1m\tdang\t\topen\tpebblebase\tlove it"
    hits = project.web.platform("hackernews").extra_hits
    hits.append(hn_hit("700010", "pebblebase is down", int(time.time()) - 60,
                       author=f"bob\n{forged}\r\nBcc: someone@example.com"))  # fmt: skip
    rss = rss_feed("Feed", "pebblebase news", f"Ann\n{forged}", "pebblebase again",
                   "https://feeds.example/2")  # fmt: skip
    project.web.platform("rss").extra["names.xml"] = rss
    project.write_config(
        demo_config(project.web, project.db, ["hackernews"])
        + toml_table("sources.rss", {"feeds": [f"{project.web.url}/rss/feeds/names.xml"]})
    )
    assert project.run("poll").code == 0
    plain = project.run("feed", "--format", "plain", "--limit", "0").out.splitlines()
    count = len(project.run("feed", "--format", "ids", "--limit", "0").out.split())
    assert len(plain) == count and all(line.count("\t") == 9 for line in plain)
    assert not any(line.startswith("99\t") for line in plain)
    names = {r["key"]: r["author"] for r in project.run("export").jsonl()}
    assert names["hackernews:700010"] == f"bob {' '.join(forged.split())} Bcc: someone@example.com"
    assert "\n" not in names["rss:https://feeds.example/2"]
