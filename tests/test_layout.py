"""The feed on a real terminal (a pseudo-terminal) at 80 and 200 columns: headers never
wrap, URLs are never split, hyperlinks only from validated URLs, long output is paged."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from conftest import run_pty as terminal

from mentionwatch.render import link_target, supports_hyperlinks
from mentionwatch.testing.demo import demo_config

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\]8;[^\x1b]*\x1b\\")
LONG_URL = "https://example.com/" + "very-long-path-segment/" * 8 + "end?q=pebblebase&x=1"


def run_pty(argv: list[str], columns: int, rows: int = 500, env: dict | None = None) -> str:
    return terminal(argv, columns, rows, env)[1]


@pytest.fixture
def demo_project(project):
    project.write_config(demo_config(project.web, project.db))
    project.web.platform("hackernews").extra_hits.append({
        "objectID": "700001", "created_at_i": int(time.time()) - 30, "author": "longurl",
        "title": None, "comment_text": f"pebblebase docs moved to {LONG_URL} — read it",
        "story_id": 9, "story_title": "Ask HN: where are the pebblebase docs?",
        "_tags": ["comment", "author_longurl", "story_9"],
    })  # fmt: skip
    assert project.run("poll").code == 0
    return project


def feed_argv(project, *args: str) -> list[str]:
    return [sys.executable, "-m", "mentionwatch", "--config", str(project.config), "--db",
            str(project.db), "feed", "--limit", "0", *args]  # fmt: skip


@pytest.mark.parametrize("columns", [80, 200])
def test_feed_fits_the_terminal_and_keeps_urls_whole(demo_project, columns):
    raw = run_pty(feed_argv(demo_project), columns)
    text = ANSI.sub("", raw)
    lines = text.splitlines()
    assert len([line for line in lines if re.match(r"^\s+\d+ \[", line)]) > 20
    urls = {r["url"] for r in demo_project.run("export").jsonl() if r["url"]}
    assert max(map(len, urls)) > 80 - 6  # some do not fit after the indent at 80 columns
    urls.add(LONG_URL)  # in a mention's text
    for url in urls:
        assert url in text, url  # whole: never cut by a line break
    for line in lines:
        assert not line.strip().startswith("pebblebase") or " " in line.strip(), line
        if re.match(r"^\s+\d+ \[", line):  # a header: one line, within the width
            assert len(line) <= columns, line
    assert "\x1b[" in raw  # colours on a terminal
    assert "\x1b]8;" not in raw  # no hyperlinks unless the terminal is known to show them


def test_hyperlinks_on_terminals_that_show_them(demo_project):
    raw = run_pty(feed_argv(demo_project), 120, env={"FORCE_HYPERLINK": "1"})
    targets = re.findall(r"\x1b\]8;[^;]*;([^\x1b]*)\x1b\\", raw)
    urls = {r["url"] for r in demo_project.run("export").jsonl() if r["url"]}
    assert set(targets) - {""} == urls
    assert all(link_target(t) == t for t in targets if t)


def test_hyperlinks_only_from_validated_urls():
    assert link_target("https://example.com/a?b=c") == "https://example.com/a?b=c"
    for bad in (
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https://x.com/\x1b]8;;evil",
        "https://exa mple.com",
        "http://",
        "data:text/html,hi",
        "https://ex.com/é",
    ):
        assert link_target(bad) is None, bad
    assert supports_hyperlinks({"TERM_PROGRAM": "WezTerm"}, True)
    assert not supports_hyperlinks({"TERM_PROGRAM": "WezTerm"}, False)
    assert not supports_hyperlinks({"TERM": "xterm"}, True)
    assert supports_hyperlinks({"FORCE_HYPERLINK": "1"}, False)


def test_long_output_goes_through_the_pager_only_on_a_terminal(demo_project, tmp_path):
    paged = tmp_path / "paged.txt"
    pager = {"PAGER": f"{sys.executable} -c \"import sys; open({str(paged)!r}, 'w')"
                      f".write(sys.stdin.read())\""}  # fmt: skip
    run_pty(feed_argv(demo_project), 100, rows=24, env=pager)
    assert paged.exists() and paged.read_text().count("\n") > 24
    assert "\x1b[" in paged.read_text()  # colours pass through to the pager
    paged.unlink()
    shown = run_pty(feed_argv(demo_project, "--limit", "2"), 100, rows=24, env=pager)
    assert not paged.exists() and "more: --limit 0 shows all" in shown  # short: printed
    run_pty(feed_argv(demo_project, "--no-pager"), 100, rows=24, env=pager)
    run_pty([*feed_argv(demo_project)[:-3], "show", "1", "--no-pager"], 100, rows=5, env=pager)
    assert not paged.exists()
    piped = subprocess.run(feed_argv(demo_project), capture_output=True, text=True,
                           env={**os.environ, **pager})  # fmt: skip
    assert piped.returncode == 0 and not paged.exists() and piped.stdout.count("\n") > 24
