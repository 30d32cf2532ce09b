"""Hostile text stays inert; broken platforms and bad config give one clear line."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import HN_AND_RSS

from mentionwatch.testing.hostile import hn_hit

# Every test here also runs on PostgreSQL (see conftest.py).
pytestmark = pytest.mark.both_engines

HOSTILE = (
    "pebblebase [bold red]x[/] \x1b[31mred\x1b[0m \x1b]8;;https://evil.example/\x1b\\click\x1b]8;;"
    "\x1b\\ \x9b2J done"
)


def hostile_hit(object_id: str, text: str, created: int | None = None) -> dict:
    return hn_hit(object_id, text, created or int(time.time()) - 60)


def test_hostile_text_is_inert_in_every_format(project):
    project.web.platform("hackernews").extra_hits.append(hostile_hit("900001", HOSTILE))
    project.write_config(HN_AND_RSS)
    assert project.run("poll").code == 0
    stored = project.rows("SELECT text FROM mentions WHERE native_id = '900001'")[0][0]
    assert "\x1b" not in stored and "\x9b" not in stored
    assert "[bold red]x[/]" in stored

    # A terminal that takes colour: our styling appears, the mention's escapes do not.
    coloured = project.run("feed", env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"})
    assert "\x1b[" in coloured.out  # rich did colour the feed
    for out in (coloured.out, project.run("feed", "--format", "plain").out):
        assert "[bold red]x[/]" in out
        assert "\x1b]8" not in out
        assert "\x1b[31m" not in out and "\x9b" not in out
    for fmt in ("jsonl", "json", "csv", "ids"):
        out = project.run("export" if fmt != "ids" else "feed", "--format", fmt).out
        assert "\x1b" not in out and "\x9b" not in out
    shown = project.run("show", "hackernews:900001", env={"FORCE_COLOR": "1"}).out
    assert "[bold red]x[/]" in shown and "\x1b]8" not in shown


def test_csv_neutralises_formulas(project):
    hits = project.web.platform("hackernews").extra_hits
    hits.append(hostile_hit("900002", '=HYPERLINK("https://evil.example","pebblebase")'))
    hits[-1]["author"] = "@SUM(A1)"
    project.write_config(HN_AND_RSS)
    project.run("poll")
    rows = list(csv.DictReader(io.StringIO(project.run("export", "--format", "csv").out)))
    row = next(r for r in rows if r["key"] == "hackernews:900002")
    assert row["text"].startswith("'=HYPERLINK")
    assert row["author"] == "'@SUM(A1)"
    assert not any(v.startswith(("=", "+", "@")) for r in rows for v in r.values())


def test_piped_output_has_no_colour(project):
    project.write_config(HN_AND_RSS)
    project.run("poll")
    proc = project.run_process("feed")
    assert proc.returncode == 0
    assert "\x1b" not in proc.stdout
    assert "grumpyops" in proc.stdout
    assert not any(c in proc.stdout for c in "┏━┃╭─│")  # no box drawing
    poll = project.run_process("poll")
    assert "\x1b" not in poll.stdout + poll.stderr  # no progress bar when not on a terminal


def test_quiet_poll_prints_nothing_on_success(project):
    project.write_config(HN_AND_RSS)
    result = project.run("poll", "--quiet")
    assert result.code == 0
    assert result.out == "" and result.err == ""


def test_retry_after_429_is_honoured(project):
    project.write_config(HN_AND_RSS)
    project.web.fail("/hackernews/", 429, times=1, headers={"Retry-After": "1"})
    started = time.monotonic()
    result = project.run("poll")
    assert result.code == 0, result.err
    assert time.monotonic() - started >= 1.0
    assert "hackernews: 10 new" in result.out


def test_long_rate_limit_fails_that_source_only(project):
    project.write_config(HN_AND_RSS)
    project.web.fail("/hackernews/", 429, times=5, headers={"Retry-After": "3600"})
    result = project.run("poll")
    assert result.code == 1
    assert "hackernews: rate limited" in result.err and "60 min" in result.err
    assert "rss: 3 new" in result.out
    assert project.rows("SELECT count(*) FROM mentions WHERE source = 'rss'")[0][0] == 3


@pytest.mark.parametrize("reset", ["inf", "1e308", "99999999999999"])
def test_an_absurd_reset_header_is_taken_as_a_day(project, reset):
    # Hostile or broken headers: no platform's limit resets more than a day away.
    project.write_config(HN_AND_RSS)
    project.web.fail("/hackernews/", 429, times=5, headers={"Retry-After": reset})
    result = project.run("poll")
    assert result.code == 1
    (line,) = [x for x in result.err.splitlines() if x.startswith("error: ")]
    assert line.startswith("error: hackernews: rate limited by ")
    assert line.endswith("it resets in 24 h 0 min, try again then")
    assert "rss: 3 new" in result.out


def test_a_server_that_trickles_its_answer_does_not_hold_the_poll(project):
    # A slow loris: the answer's head a byte every 0.05 s, each well within the timeout
    # (httpx's timeouts are per read), for longer than the test waits for the process.
    project.write_config("[poll]\nbackoff = 0.01\nretries = 1\ntimeout = 0.5\n" + HN_AND_RSS,
                         poll_settings=False)  # fmt: skip
    project.web.fail("/hackernews/", trickle=600, times=2)
    result = project.run_process("poll")
    assert result.returncode == 1, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert line.startswith("error: hackernews: request to ")
    assert line.endswith(" timed out after 2 attempts (ReadTimeout)")
    assert "rss: 3 new" in result.stdout
    result = project.run("poll")  # the server answers again: nothing was lost
    assert result.code == 0, result.err
    assert "hackernews: 10 new" in result.out


def test_server_error_html_and_truncated_bodies_are_clear_errors(project):
    project.write_config(HN_AND_RSS)
    project.web.fail("/hackernews/", 500, times=10)
    result = project.run("poll", "--quiet")
    assert result.code == 1
    assert "hackernews: HTTP 500" in result.err and "after 3 attempts" in result.err
    assert project.rows("SELECT count(*) FROM mentions WHERE source = 'rss'")[0][0] == 3

    project.web.faults.clear()
    project.web.fail("/hackernews/", 200, body="<html><title>Oops</title></html>",
                     content_type="text/html")  # fmt: skip
    result = project.run("poll", "--quiet")
    assert result.code == 1
    assert "hackernews: got an HTML page (text/html) where JSON was expected" in result.err

    project.web.fail("/hackernews/", 200, truncate=True)
    result = project.run("poll", "--quiet")
    assert result.code == 1
    assert "malformed or truncated" in result.err
    assert len(result.err.strip().splitlines()) == 2  # the error and the summary line

    project.web.fail("/rss/feeds/blog.xml", 200, body="this is not a feed",
                     content_type="text/plain")  # fmt: skip
    result = project.run("poll", "--source", "rss")
    assert result.code == 1 and "blog.xml is not a readable feed" in result.err


def test_config_errors_name_the_key(project, monkeypatch):
    cases = {
        "[sources.hackernews]\nenabeld = true\n": ("sources.hackernews.enabeld", "unknown key"),
        "[sources.hackernews]\nenabled = 'yes'\n": ("sources.hackernews.enabled", "true or false"),
        '[sources.rss]\nfeeds = ["${NOT_SET_ANYWHERE}"]\n': (
            "sources.rss.feeds",
            "NOT_SET_ANYWHERE",
        ),
        "[[terms]]\nname = 'x'\nquery = '\"unbalanced'\n": ("terms[0].query", "unbalanced"),
        "[colours]\n": ("colours", "unknown key"),
        "[[terms]]\nquery = 'a'\n[sources.myspace]\n": ("sources.myspace", "unknown source"),
        "this is = = not toml": ("invalid TOML", "line 1"),
    }
    for body, (key, reason) in cases.items():
        project.write_config(body, poll_settings=False)
        result = project.run("poll")
        assert result.code == 2, body
        assert len(result.err.strip().splitlines()) == 1, result.err
        assert key in result.err and reason in result.err and str(project.config) in result.err


def test_config_error_has_line_number(project):
    project.write_config("[[terms]]\nname = 'a'\n\n[sources.hackernews]\nbase_url = 42\n",
                         poll_settings=False)  # fmt: skip
    result = project.run("poll")
    assert f"{project.config}:5: sources.hackernews.base_url: expected a string" in result.err


def test_env_substitution(project, monkeypatch):
    monkeypatch.setenv("FEED_HOST", project.web.url)
    project.write_config(
        "[[terms]]\nquery = 'pebblebase'\n[sources.rss]\n"
        'feeds = ["${FEED_HOST}/rss/feeds/blog.xml"]\n'
    )
    result = project.run("poll")
    assert result.code == 0 and "rss: 1 new" in result.out


def test_kill_during_poll_loses_and_duplicates_nothing(project):
    """kill -9 in the middle of a multi-page poll, then poll again: every hit exactly once."""
    now = int(time.time())
    hits = project.web.platform("hackernews").extra_hits
    hits += [hostile_hit(str(800000 + i), f"pebblebase note {i}", now - 60 - i) for i in range(450)]
    project.write_config(HN_AND_RSS)
    project.web.latency = 0.25
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "mentionwatch", "--config", str(project.config),
            "--db", str(project.db), "poll"]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pages = len(project.web.seen("/hackernews/api/v1/search_by_date"))
        if pages >= 3:  # two pages saved, more to come
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved_before = project.rows("SELECT count(*) FROM mentions")[0][0]
    assert saved_before < 450 + 13  # really interrupted mid-poll
    project.web.latency = 0
    again = project.run("poll")
    assert again.code == 0, again.err
    keys = [k for (k,) in project.rows("SELECT key FROM mentions")]
    assert len(keys) == len(set(keys)) == 450 + 13
    if project.engine == "sqlite":  # PostgreSQL has no such check; its WAL replays a crash
        assert project.rows("PRAGMA integrity_check") == [("ok",)]


@pytest.mark.sqlite_only
def test_init_writes_a_working_config(project, tmp_path):
    project.config = tmp_path / "new" / "config.toml"
    result = project.run("init")
    assert result.code == 0, result.err
    text = project.config.read_text()
    assert "[[terms]]" in text and "[sources.hackernews]" in text
    assert project.db.exists()
    again = project.run("init")
    assert again.code == 2 and "already exists" in again.err
    assert project.run("init", "--force").code == 0


@pytest.mark.sqlite_only
def test_a_file_that_is_not_a_database_is_a_clear_error(project):
    project.write_config(HN_AND_RSS)
    project.db.write_text("these are my notes, not a database")
    result = project.run("feed")
    assert result.code == 2
    assert result.err.strip() == (
        f"mentionwatch: cannot open the database {project.db}: file is not a database; "
        "pass --db PATH for another one"
    )
    assert project.db.read_text() == "these are my notes, not a database"


@pytest.mark.sqlite_only
def test_a_folder_given_as_the_database_is_a_clear_error(project):
    project.write_config(HN_AND_RSS)
    folder = project.dir / "data"
    folder.mkdir()
    for command in ("feed", "poll", "handle"):
        result = project.run("--db", str(folder), command, *(["1"] if command == "handle" else []))
        assert result.code == 2, command
        assert result.err == (
            f"mentionwatch: cannot open the database {folder}: it is a folder, not a database"
            f" file; pass --db {folder / 'mentions.db'}\n"
        )
    assert list(folder.iterdir()) == []
