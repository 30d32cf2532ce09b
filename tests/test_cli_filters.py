"""Filters never fail silently: every named value is checked, repeats mean "any of", and an
empty or shortened feed says why."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
from conftest import HN_AND_RSS

# Every test here also runs on PostgreSQL (see conftest.py).
pytestmark = pytest.mark.both_engines


@pytest.fixture
def polled(project):
    project.write_config(HN_AND_RSS)
    assert project.run("poll").code == 0
    return project


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--source", "reddti"], ["unknown source 'reddti'", "did you mean 'reddit'?", "bluesky"]),
        (["--term", "nope"], ["unknown term 'nope'", "pebblebase"]),
        (["--status", "done"], ["unknown status 'done'", "open, handled, ignored, all"]),
        (["--sentiment", "angry"], ["unknown sentiment 'angry'", "positive, neutral, negative"]),
        (["--intent", "rant"], ["unknown intent 'rant'", "question"]),
        (["--format", "xml"], ["unknown format 'xml'", "rich, plain, jsonl, json, csv, ids"]),
        (["--sort", "oldest"], ["unknown order 'oldest'", "newest, priority"]),
    ],
)
def test_a_wrong_value_is_one_line_naming_the_valid_ones(polled, args, expected):
    result = polled.run("feed", *args)
    assert result.code == 2 and result.out == ""
    assert len(result.err.strip().splitlines()) == 1
    for text in expected:
        assert text in result.err
    assert "Traceback" not in result.err


def test_export_and_poll_check_the_same_values(polled):
    for command in (["export", "--source", "reddti"], ["poll", "--source", "reddti"]):
        result = polled.run(*command)
        assert result.code == 2 and "did you mean 'reddit'?" in result.err, command
    assert "unknown format 'xml'" in polled.run("export", "--format", "xml").err
    assert "unknown term 'gone'" in polled.run("poll", "--term", "gone").err


def test_names_are_case_insensitive(polled):
    lower = polled.run("feed", "--source", "hackernews", "--format", "ids").out.split()
    assert lower
    upper = polled.run("feed", "--source", "HackerNews", "--term", "PebbleBase",
                       "--status", "OPEN", "--format", "IDS")  # fmt: skip
    assert upper.code == 0 and upper.out.split() == lower


def test_a_term_only_stored_mentions_have_still_filters(polled):
    """A term removed from the config still names its stored mentions."""
    polled.write_config(HN_AND_RSS.replace('name = "pebblebase"', 'name = "other"'))
    result = polled.run("feed", "--term", "pebblebase", "--format", "ids")
    assert result.code == 0 and result.out.split()


def test_repeated_filters_mean_any_of(polled):
    def keys(*args: str) -> set[str]:
        result = polled.run("export", *args)
        assert result.code == 0, result.err
        return {r["key"] for r in result.jsonl()}

    hn, rss = keys("--source", "hackernews"), keys("--source", "rss")
    assert hn and rss and keys("--source", "hackernews", "--source", "rss") == hn | rss
    pos, neg = keys("--sentiment", "positive"), keys("--sentiment", "negative")
    assert pos and neg and keys("--sentiment", "positive", "--sentiment", "negative") == pos | neg
    question, praise = keys("--intent", "question"), keys("--intent", "praise")
    assert keys("--intent", "question", "--intent", "praise") == question | praise

    ids = polled.run("feed", "--format", "ids", "--limit", "2").out.split()
    polled.run("handle", ids[0])
    polled.run("ignore", ids[1])
    handled_or_ignored = polled.run("feed", "--status", "handled", "--status", "ignored",
                                    "--format", "ids")  # fmt: skip
    assert sorted(handled_or_ignored.out.split()) == sorted(ids)
    assert keys("--status", "handled", "--status", "ignored") == keys("--status", "handled") | keys(
        "--status", "ignored"
    )


def test_an_empty_feed_says_why(polled):
    ids = polled.run("feed", "--format", "ids", "--limit", "0").out.split()
    polled.run("handle", *ids[:-1])
    polled.run("ignore", ids[-1])
    empty = polled.run("feed")
    assert empty.code == 0
    assert empty.out.strip() == (
        f"no open mentions match; {len(ids) - 1} handled and 1 ignored are hidden: --status all"
    )
    assert "no open mentions match these filters" in polled.run("feed", "--since", "1s").out
    assert (
        polled.run("feed", "--status", "all", "--limit", "1")
        .out.strip()
        .endswith(f"{len(ids) - 1} more: --limit 0 shows all")
    )


def test_an_empty_database_says_to_poll(project):
    project.write_config(HN_AND_RSS)
    project.run("poll", "--source", "rss", "--term", "pebblebase")
    project.execute("DELETE FROM mention_terms", "DELETE FROM echo_keys", "DELETE FROM mentions")
    assert "no mentions yet: run 'mentionwatch poll'" in project.run("feed").out


def test_limit_says_how_many_more(polled):
    total = len(polled.run("feed", "--format", "ids", "--limit", "0").out.split())
    out = polled.run("feed", "--limit", "2").out
    assert out.count("\n\n") >= 2  # two entries, then the note
    assert out.strip().splitlines()[-1] == f"{total - 2} more: --limit 0 shows all"
    assert "more:" not in polled.run("feed", "--limit", "0").out
    # Data for scripts is not interrupted by talk:
    piped = polled.run("feed", "--limit", "2", "--format", "jsonl")
    assert len(piped.jsonl()) == 2 and piped.err == ""


@pytest.mark.sqlite_only
def test_feed_without_a_database_says_so_and_creates_nothing(project, tmp_path):
    project.write_config(HN_AND_RSS)
    for args in (["feed"], ["export"], ["show", "1"], ["handle", "1"]):
        result = project.run(*args)
        assert result.code == 2, args
        assert "no database at" in result.err and "mentionwatch poll" in result.err
    assert not project.db.exists()
    sources = project.run("sources")
    assert sources.code == 0 and "never polled" in sources.out and not project.db.exists()
    # No --config, no --db: the defaults under the (test's) home stay untouched.
    proc = subprocess.run([sys.executable, "-m", "mentionwatch", "feed"], capture_output=True,
                          text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2 and "no database at" in proc.stderr
    assert not (tmp_path / "xdg-data").exists() and not (tmp_path / "home").exists()


def test_export_picks_the_format_from_the_file_name(polled, tmp_path):
    expected = len(polled.run("export").jsonl())
    csv_file = tmp_path / "out.csv"
    result = polled.run("export", "-o", str(csv_file))
    assert result.code == 0 and "as CSV" in result.err
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text())))
    assert len(rows) == expected and "key" in rows[0]
    json_file = tmp_path / "out.json"
    polled.run("export", "-o", str(json_file))
    assert len(json.loads(json_file.read_text())) == expected
    for name in ("out.jsonl", "out.NDJSON"):
        polled.run("export", "-o", str(tmp_path / name))
        lines = (tmp_path / name).read_text().splitlines()
        assert len(lines) == expected and json.loads(lines[0])["key"]
    # --format says otherwise:
    polled.run("export", "--format", "jsonl", "-o", str(csv_file))
    assert json.loads(csv_file.read_text().splitlines()[0])["key"]
    unknown = polled.run("export", "-o", str(tmp_path / "out.txt"))
    assert unknown.code == 2 and "--format jsonl|json|csv" in unknown.err
    assert not (tmp_path / "out.txt").exists()
    assert polled.run("export", "-o", str(tmp_path / "x.txt"), "-f", "csv").code == 0


def test_reply_preview_reads_well_for_platforms_without_an_api(polled):
    result = polled.run("reply", "1", "Thanks!", "--dry-run")
    assert result.code == 0
    assert "Your reply, to paste on the reply page (7 characters):" in result.out
    assert "Your to paste" not in result.out


def test_tracebacks_only_with_debug(polled):
    """An unexpected error (here: a damaged row) is one line; --debug shows the traceback."""
    polled.execute("UPDATE mentions SET extra = '{broken' WHERE id = 1")
    plain = polled.run_process("show", "1", "--offline")
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert plain.stderr.count("\n") == 1 and "rerun with --debug" in plain.stderr
    debug = polled.run_process("--debug", "show", "1", "--offline")
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    usage = polled.run_process("--debug", "feed", "--source", "nope")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_a_poll_with_nothing_to_poll_says_why_instead_of_0_new(project):
    limited = HN_AND_RSS.replace(
        '-"pebble base camp"\'', '-"pebble base camp"\'\nsources = ["hackernews"]'
    )
    project.write_config(limited + '\n[[terms]]\nname = "quill"\nquery = "quill"\n'
                         'sources = ["reddit"]\n')  # fmt: skip
    result = project.run("poll", "--source", "rss")
    assert result.code == 2 and result.out == ""
    assert result.err == (
        "mentionwatch: nothing to poll on rss: term 'pebblebase' is only for hackernews; term"
        " 'quill' is only for reddit; poll one of those, or add rss to a term's sources in the"
        " config\n"
    )
    assert project.run("poll", "--source", "hackernews", "--term", "quill").code == 2
    project.write_config(limited.replace('"hackernews"]', '"reddit"]'))  # reddit is not enabled
    for command in (["poll"], ["watch", "--once"]):
        nothing = project.run(*command)
        assert nothing.code == 2 and "nothing to poll on hackernews, rss: term" in nothing.err
    project.write_config(limited)
    assert project.rows("SELECT count(*) FROM polls")[0][0] == 0  # nothing was asked
    fine = project.run("poll", "--source", "hackernews")
    assert fine.code == 0 and "hackernews: 10 new" in fine.out


def test_an_export_that_fails_midway_leaves_the_file_that_was_there(polled, tmp_path, monkeypatch):
    backup = tmp_path / "backup.jsonl"
    assert polled.run("export", "-o", str(backup)).code == 0
    before = backup.read_bytes()
    from mentionwatch import render

    def disk_full(out, rows):  # the disk fills up after the first record
        out.write(json.dumps(next(iter(render.records(rows)))) + "\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(render.WRITERS, "jsonl", disk_full)
    failed = polled.run("export", "-o", str(backup))
    assert failed.code == 2
    assert failed.err == f"mentionwatch: cannot write {backup}: No space left on device\n"
    assert backup.read_bytes() == before  # last night's backup, whole
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".backup")] == []
