"""Complete capture: backlogs bigger than a page, caps, late indexing and kill -9 lose nothing.

Platforms index late and rank loosely, and caps (X's max_reads_per_poll) cut reading short.
Every source walks back until it reaches what it already stored, re-reads an overlap for
posts that reach the index late, and remembers a gap that a cap or an error left.
"""

from __future__ import annotations

import os
import pkgutil
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import all_platforms

from mentionwatch.testing import platforms

# Every platform the loopback web plays (each can add new items): a new one joins by being there.
SEARCHING = tuple(sorted(m.name for m in pkgutil.iter_modules(platforms.__path__)))
# Yelp's API shows only the three review excerpts a business shows first: no history to walk.
WALKABLE = tuple(name for name in SEARCHING if name != "yelp")


def _keys(project) -> list[str]:
    return [k for (k,) in project.rows("SELECT key FROM mentions")]


def test_backlog_of_250_per_source_with_x_capped_at_100_is_stored_once(project):
    web = project.web
    config = all_platforms(
        web, x={"max_reads_per_poll": 100}, reddit={"subreddits": ["SideProject"]}
    )
    project.write_config(config)
    assert project.run("poll").code == 0
    start = time.time()
    time.sleep(1)  # the next second: every new post is newer than anything the poll saw
    expected = set()
    for name in WALKABLE:
        platform = web.platform(name)
        # 250 new posts since the last poll, a few milliseconds apart (many share a second).
        expected |= {platform.add_item(f"pebblebase backlog {name} {i}", start + 1 + i / 256)
                     for i in range(250)}  # fmt: skip
    # Lobsters' 30 pages a minute would make the third poll wait a minute for its reset
    # (tested in test_source_stores.py): here it is the backlog that is under test.
    web.platform("lobsters").per_minute = 10_000
    reddit = web.platform("reddit")
    expected |= {reddit.add_comment("SideProject", f"pebblebase comment {i}", start + 1 + i / 256)
                 for i in range(250)}  # fmt: skip
    polls = []
    for _ in range(6):
        result = project.run("poll")
        assert result.code == 0, result.err
        polls.append(result.out)
        if "max_reads_per_poll reached" not in result.out and "next poll" not in result.out:
            break
    # X reads at most 100 new posts a poll (a re-read of the last minute is not billed again).
    x_new = [int(re.search(r"^x: (\d+) new", out, re.M).group(1)) for out in polls]
    assert x_new[:3] == [100, 100, 50], polls
    keys = _keys(project)
    assert len(keys) == len(set(keys))
    missing = expected - set(keys)
    assert not missing, sorted(missing)[:5]


def test_a_post_indexed_30_seconds_late_behind_the_cursor_is_found_everywhere(project):
    web = project.web
    project.write_config(all_platforms(web))
    now = time.time()
    for name in SEARCHING:
        web.platform(name).add_item(f"pebblebase fresh on {name}", now - 10)
    assert project.run("poll").code == 0
    # Created 30 s before the newest post the poll saw, searchable only now.
    late = {web.platform(name).add_item(f"pebblebase late on {name}", now - 40)
            for name in SEARCHING}  # fmt: skip
    result = project.run("poll")
    assert result.code == 0, result.err
    assert late <= set(_keys(project)), late - set(_keys(project))


@pytest.mark.both_engines  # the crash guarantee, on PostgreSQL too (see conftest.py)
def test_kill_9_mid_poll_repeated_loses_and_duplicates_nothing(project):
    web = project.web
    project.write_config(all_platforms(web, x={"max_reads_per_poll": 100}))
    now = time.time()
    expected = {web.platform(name).add_item(f"pebblebase note {name} {i}", now - 30 * i)
                for name in WALKABLE for i in range(220)}  # fmt: skip
    web.latency = 0.02
    argv = [sys.executable, "-m", "mentionwatch", "--config", str(project.config),
            "--db", str(project.db), "poll"]  # fmt: skip
    kills = 0
    for wanted in (4, 25, 40):
        before = len(web.requests)
        proc = subprocess.Popen(argv, env=os.environ, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if len(web.requests) - before >= wanted:
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.01)
        proc.wait()
    assert kills >= 2  # really interrupted mid-poll
    web.latency = 0
    for _ in range(5):
        again = project.run("poll")
        assert again.code == 0, again.err
        if "max_reads_per_poll reached" not in again.out and "next poll" not in again.out:
            break
    keys = _keys(project)
    assert len(keys) == len(set(keys))
    assert expected <= set(keys), sorted(expected - set(keys))[:5]
    if project.engine == "sqlite":  # PostgreSQL has no such check; its WAL replays a crash
        assert project.rows("PRAGMA integrity_check") == [("ok",)]


# The sources that, before the guard in common.capture, read a repeated page forever or
# until a quota ran out (the others stopped on a bound of their own).
ENDLESS = ("googleplay", "mastodon", "reddit", "stackexchange", "youtube")


@pytest.mark.parametrize("name", ENDLESS)
def test_a_listing_whose_next_page_repeats_the_last_stops_and_loses_nothing(project, name):
    # A cache in front of the API that ignores the query string, or a cursor that does not
    # move: every page is the first again. Reddit, Mastodon, Stack Exchange and YouTube
    # read it forever (spending the day's quota); Google Play spent its hourly reads.
    web = project.web
    project.write_config(all_platforms(web))
    assert project.run("poll", "--source", name).code == 0
    platform = web.platform(name)
    start = time.time() + 1
    expected = {platform.add_item(f"pebblebase repeat {name} {i}", start + i / 256)
                for i in range(130)}  # fmt: skip
    time.sleep(1)
    fault = web.fail(platform.search_path, 200, stale=True, times=10_000)
    sent = len(web.seen(platform.search_path))
    stuck = project.run_process("poll", "--source", name)  # a process: a loop would time out
    assert stuck.returncode == 1, stuck.stderr
    (line,) = [x for x in stuck.stderr.splitlines() if x.startswith("error: ")]
    assert line.startswith(f"error: {name}: ") and "its paging is stuck" in line
    assert len(web.seen(platform.search_path)) - sent <= 12
    # The gap the stuck poll left is read once the platform pages again.
    fault.times = 0
    for _ in range(3):
        assert project.run("poll", "--source", name).code == 0
    missing = expected - set(_keys(project))
    assert not missing, sorted(missing)[:5]
