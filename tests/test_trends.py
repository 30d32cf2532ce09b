"""stats and digest through the real CLI, against databases with known contents."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import statistics
import subprocess
import sys
import unicodedata
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from mentionwatch.models import Mention, iso, utcnow
from mentionwatch.store import Store

# Every test here also runs on PostgreSQL (see conftest.py).
pytestmark = pytest.mark.both_engines

CONFIG = """
[[terms]]
name = "pebblebase"
query = "pebblebase"

[[terms]]
name = "quillpad"
query = "quillpad"
"""


def half_past() -> datetime:
    """Half past the current hour, read when used: a constant read at import went stale when
    the suite crossed an hour boundary before these tests ran."""
    return utcnow().replace(minute=30, second=0, microsecond=0)


def seed(project, rows) -> list[int]:
    """Save (source, hours ago, sentiment, terms, text, author, reach) rows; return ids."""
    project.write_config(CONFIG)
    store = Store(project.db)
    ids = []
    try:
        for i, (source, hours, sentiment, terms, text, author, reach) in enumerate(rows):
            m = Mention(
                source=source,
                native_id=f"n{i}",
                text=text,
                created_at=half_past() - timedelta(hours=hours),
                author=author,
                reach=reach,
                terms=list(terms),
                sentiment=sentiment,
                polarity=0.0,
            )
            store.save_page(source, "t", [m], None)
            ids.append(store.resolve([f"{source}:n{i}"])[0])
    finally:
        store.close()
    return ids


def varied(n: int = 40) -> list[tuple]:
    sources = ("x", "reddit", "hackernews", "bluesky")
    sentiments = ("positive", "neutral", "negative", None)
    return [
        (
            sources[i % 4],
            (i * 7) % 120 + 0.25,
            sentiments[i % 3 if i % 11 else 3],
            ("pebblebase",) if i % 3 else ("pebblebase", "quillpad"),
            f"post number {i} about the product, words {i * 13} and more",
            f"user{i % 9}",
            i % 17,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "filters",
    [
        [],
        ["--source", "x", "--source", "reddit"],
        ["--term", "quillpad"],
        ["--sentiment", "negative", "--since", "2d"],
        ["--status", "open", "--search", "number"],
        ["--since", iso(half_past() - timedelta(hours=30)) or ""],
    ],
)
def test_stats_json_agrees_with_export_for_the_same_filters(project, filters):
    seed(project, varied())
    project.run("handle", "3", "4")
    exported = project.run("export", "--format", "jsonl", *filters).jsonl()
    for by in ("hour", "day", "week"):
        result = project.run("stats", "--format", "json", "--by", by, *filters)
        assert result.code == 0, result.err
        rows = json.loads(result.out)
        assert sum(r["total"] for r in rows) == len(exported)
        for label in ("positive", "neutral", "negative"):
            assert sum(r[label] for r in rows) == sum(e["sentiment"] == label for e in exported)
        assert all(
            r["total"] == r["positive"] + r["neutral"] + r["negative"] + r["unscored"] for r in rows
        )


def test_periods_without_mentions_are_present_with_zeros_and_change(project):
    seed(
        project,
        [
            ("x", 50.2, "negative", ("pebblebase",), "a b c d e f g", "a", 1),
            ("x", 49.9, "positive", ("pebblebase",), "h i j k l m n", "b", 1),
            ("x", 1, "negative", ("pebblebase",), "o p q r s t u", "c", 1),
        ],
    )
    rows = json.loads(project.run("stats", "--format", "json", "--by", "hour", "--tz", "UTC").out)
    # design.md's keys, then the ones added since, in this order (the CSV's columns too)
    keys = "period group total positive neutral negative unscored negative_share previous change"
    assert list(rows[0]) == keys.split()
    assert len(rows) in (51, 52)  # every hour from the first mention's to now
    starts = [datetime.fromisoformat(r["period"]) for r in rows]
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(starts))
    assert [i for i, r in enumerate(rows) if r["total"]] == [0, len(rows) - 2]
    first = rows[0]
    assert first["total"] == 2 and first["negative_share"] == 0.5 and first["change"] is None
    assert rows[1]["total"] == 0 and rows[1]["change"] == -1.0 and rows[1]["group"] is None


def test_days_are_the_users_days_and_csv_has_the_same_rows(project):
    moment = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # Sunday 22:00 in New York
    project.write_config(CONFIG)
    store = Store(project.db)
    store.save_page(
        "x",
        "t",
        [
            Mention(
                source="x",
                native_id="1",
                text="pebblebase late",
                created_at=moment,
                terms=["pebblebase"],
                sentiment="neutral",
            )
        ],
        None,
    )
    store.close()
    since = ["--since", "2026-03-01T12:00:00Z"]
    ny = json.loads(
        project.run("stats", "--format", "json", "--tz", "America/New_York", *since).out
    )
    busy = [r for r in ny if r["total"]]
    assert busy[0]["period"] == "2026-03-01T00:00:00-05:00"
    utc = json.loads(project.run("stats", "--format", "json", "--tz", "UTC", *since).out)
    assert next(r for r in utc if r["total"])["period"] == "2026-03-02T00:00:00+00:00"
    weeks = json.loads(
        project.run("stats", "--format", "json", "--tz", "UTC", "--by", "week", *since).out
    )
    assert weeks[0]["period"] == "2026-02-23T00:00:00+00:00"  # the Monday of that week
    table = list(
        csv.DictReader(
            io.StringIO(project.run("stats", "--format", "csv", "--tz", "UTC", *since).out)
        )
    )
    assert [r["period"] for r in table] == [r["period"] for r in utc]
    assert [int(r["total"]) for r in table] == [r["total"] for r in utc]
    bad = project.run("stats", "--tz", "Mars/Olympus")
    assert bad.code == 2 and "--tz" in bad.err and "Mars/Olympus" in bad.err


def test_group_by_term_and_source(project):
    seed(project, varied(12))
    rows = json.loads(project.run("stats", "--format", "json", "--group", "term").out)
    per_group = {}
    for r in rows:
        per_group[r["group"]] = per_group.get(r["group"], 0) + r["total"]
    assert per_group == {"pebblebase": 12, "quillpad": 4}
    periods = {r["period"] for r in rows}
    assert len(rows) == 2 * len(periods)  # each group has every period, zeros included
    by_source = json.loads(project.run("stats", "--format", "json", "--group", "source").out)
    assert {r["group"] for r in by_source} == {"x", "reddit", "hackernews", "bluesky"}
    assert project.run("stats", "--group", "colour").code == 2


def test_response_figures_against_known_reply_and_handle_times(project):
    ids = seed(
        project,
        [
            ("x", 10, "negative", ("pebblebase",), f"text {i} words here now", "a", 0)
            for i in range(6)
        ]
        + [
            ("reddit", 10, "neutral", ("pebblebase",), f"other {i} words here now", "b", 0)
            for i in range(3)
        ],
    )
    created = half_past() - timedelta(hours=10)
    reply_minutes = {ids[0]: 5, ids[1]: 20, ids[2]: 60, ids[3]: 240, ids[6]: 30}
    handle_minutes = {ids[0]: 6, ids[1]: 25, ids[2]: 90, ids[6]: 600, ids[7]: 45}
    store = Store(project.db)
    for mention_id, minutes in reply_minutes.items():
        rid = store.add_reply(mention_id, "thanks", "posted")
        store.conn.execute(
            "UPDATE replies SET attempted_at = ? WHERE id = ?",
            (iso(created + timedelta(minutes=minutes)), rid),
        )
    store.add_reply(ids[4], "never sent", "failed")  # a failed reply is not an answer
    for mention_id, minutes in handle_minutes.items():
        store.set_status([mention_id], "handled")
        store.conn.execute(
            "UPDATE status_log SET at = ? WHERE mention_id = ?",
            (iso(created + timedelta(minutes=minutes)), mention_id),
        )
    store.set_status([ids[8]], "ignored")
    store.close()

    rows = {
        r["source"]: r
        for r in json.loads(project.run("stats", "--format", "json", "--table", "responses").out)
    }

    def quantiles(minutes):
        seconds = sorted(m * 60 for m in minutes)
        cuts = statistics.quantiles(seconds, n=10, method="inclusive")
        return round(statistics.median(seconds)), round(cuts[-1])

    x = rows["x"]
    assert (x["mentions"], x["answered"], x["handled"], x["ignored"]) == (6, 4, 3, 0)
    assert x["answered_or_handled"] == 4 and x["answered_or_handled_share"] == round(4 / 6, 4)
    assert (x["reply_median_seconds"], x["reply_p90_seconds"]) == quantiles([5, 20, 60, 240])
    assert (x["handled_median_seconds"], x["handled_p90_seconds"]) == quantiles([6, 25, 90])
    reddit = rows["reddit"]
    assert (reddit["answered"], reddit["handled"], reddit["ignored"]) == (1, 2, 1)
    assert reddit["answered_or_handled_share"] == 1.0  # the ignored one needed nothing
    assert reddit["reply_median_seconds"] == reddit["reply_p90_seconds"] == 1800
    overall = rows["all"]
    assert overall["mentions"] == 9
    assert (overall["reply_median_seconds"], overall["reply_p90_seconds"]) == quantiles(
        [5, 20, 60, 240, 30]
    )
    assert (overall["handled_median_seconds"], overall["handled_p90_seconds"]) == quantiles(
        [6, 25, 90, 600, 45]
    )
    text = project.run("stats", "--format", "plain").out
    assert re.search(r"x\s+4/6\s+67%\s+40m\s+3\.1h\s+25m\s+1\.3h", text), text


def test_top_sources_and_authors_by_reach(project):
    seed(
        project,
        [
            ("x", 1, "negative", ("pebblebase",), "one two three four five six", "big", 900),
            ("x", 2, "neutral", ("pebblebase",), "seven eight nine ten eleven twelve", "big", 100),
            ("reddit", 3, "positive", ("pebblebase",), "a b c d e f g h", "mid", 500),
            ("reddit", 3, "positive", ("pebblebase",), "i j k l m n o p", "mid2", 5),
            ("reddit", 4, "negative", ("pebblebase",), "q r s t u v w x", None, 5000),
        ],
    )
    authors = json.loads(project.run("stats", "--format", "json", "--table", "authors").out)
    assert [(a["author"], a["reach"]) for a in authors] == [
        ("big", 1000),
        ("mid", 500),
        ("mid2", 5),
    ]
    sources = json.loads(project.run("stats", "--format", "json", "--table", "sources").out)
    assert [(s["source"], s["mentions"], s["negative"]) for s in sources] == [
        ("reddit", 3, 1),
        ("x", 2, 1),
    ]


@pytest.mark.parametrize("table", ["periods", "sources", "authors", "responses"])
def test_each_table_has_its_own_csv_header_even_with_no_rows(project, table):
    seed(project, [("x", 1, "negative", ("pebblebase",), "pebblebase broke", "big", 9)])
    store = Store(project.db)
    store.add_reply(store.resolve(["x:n0"])[0], "sorry", "posted")
    store.close()
    rows = json.loads(project.run("stats", "--format", "json", "--table", table).out)
    full = project.run("stats", "--format", "csv", "--table", table).out.splitlines()
    assert full[0].split(",") == list(rows[0]) and len(full) == len(rows) + 1
    assert "source" in full[0] if table != "periods" else full[0].startswith("period,group,")
    nothing = ("--search", "nosuchword")
    empty = project.run("stats", "--format", "csv", "--table", table, *nothing)
    assert empty.code == 0, empty.err
    assert empty.out.splitlines()[0] == full[0]
    if table != "periods":  # periods with no mentions are listed with zeros
        assert empty.out.splitlines() == [full[0]]
        assert project.run("stats", "--format", "json", "--table", table, *nothing).out == "[]\n"


def _on_terminal(project, *args: str, columns: int = 80) -> str:
    """Run the CLI with stdout on a pseudo-terminal of `columns` columns; what it printed."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm-256color"}
    argv = [
        sys.executable,
        "-m",
        "mentionwatch",
        "--config",
        str(project.config),
        "--db",
        str(project.db),
        *args,
    ]
    proc = subprocess.Popen(argv, stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_chart_fits_80_columns_on_a_terminal_and_is_absent_in_pipes(project):
    rows = [
        (
            "x",
            h,
            ("positive", "neutral", "negative")[h % 3],
            ("pebblebase",),
            f"words {h} here and there today",
            "u",
            1,
        )
        for h in range(0, 48, 1)
    ]
    rows += [
        ("x", 5, "negative", ("pebblebase",), f"pile {i} up of complaints today", "v", 1)
        for i in range(40)
    ]
    seed(project, rows)
    screen = _on_terminal(project, "stats", "--by", "hour", "--since", "2d")
    visible = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen).replace("\r", "")
    bars = [line for line in visible.splitlines() if "█" in line]
    assert len(bars) >= 48
    assert all(len(line) <= 80 for line in visible.splitlines())
    busiest = max(bars, key=lambda line: line.count("█"))
    assert "   41 " in busiest or " 41 " in busiest  # 40 piled up plus the hourly one
    assert "\x1b[" in screen  # coloured on a terminal
    piped = project.run_process("stats", "--by", "hour", "--since", "2d")
    assert piped.returncode == 0
    assert "█" not in piped.stdout and "\x1b[" not in piped.stdout
    assert "total 88" in piped.stdout


@pytest.mark.sqlite_only
def test_stats_and_digest_import_nothing_heavy(project):
    from test_lazy_imports import loaded_modules

    seed(project, varied(5))
    assert loaded_modules(project, "stats") == set()
    assert loaded_modules(project, "digest") == set()


def test_digest_in_every_format_keeps_hostile_text_inert(project):
    hostile = "@everyone [click](https://evil.example) <script>alert(1)</script> \x1b[2J pebblebase"
    rows = [
        ("x", 31 + h, "neutral", ("pebblebase",), f"baseline {h} words here today", "u", 1)
        for h in range(0, 24 * 14, 6)
    ]
    rows += [
        ("x", 0.5, "negative", ("pebblebase",), f"{hostile} pile {i} of words", f"p{i}", 9)
        for i in range(25)
    ]
    rows += [("reddit", 3, "positive", ("pebblebase",), "love it a lot, thanks team", "fan", 2)]
    seed(project, rows)
    data = json.loads(project.run("digest", "--since", "1d", "--format", "json").out)
    assert data["total"] == 26 and data["negative"] == 25 and data["positive"] == 1
    assert data["open"] == 26 and data["previous"]["total"] == 3
    assert data["spikes"] and data["spikes"][0]["term"] == "pebblebase"
    assert data["spikes"][0]["count"] >= 10 and data["spikes"][0]["examples"]
    assert len(data["unanswered_negative"]) == 5 and len(data["top_open"]) == 5
    assert data["responses"][-1]["source"] == "all"
    markdown = project.run("digest", "--format", "markdown").out
    assert "@everyone" not in markdown and "\uff20everyone" in markdown  # a look-alike
    assert "](https://evil" not in markdown and "click (https://evil.example)" in markdown
    assert "<script>" not in markdown and not any(unicodedata.category(c) == "Cf" for c in markdown)
    assert "\x1b" not in markdown
    page = project.run("digest", "--format", "html").out
    assert "<script>" not in page and "&lt;script&gt;" in page and "\x1b" not in page
    text = project.run("digest", "--format", "text").out
    assert "Spikes:" in text and "Unanswered negative:" in text and "\x1b" not in text
    rich = project.run("digest").out
    assert "Answer first" in rich and "\x1b" not in rich
    assert project.run("digest", "--format", "pdf").code == 2


def test_the_hour_the_clocks_go_back_is_two_periods_each_with_its_own_mentions(project):
    # New York, 2026-11-01: 01:00-02:00 happens twice, at -04:00 (05:00Z) and -05:00 (06:00Z)
    project.write_config(CONFIG)
    store = Store(project.db)
    first, second = (
        datetime(2026, 11, 1, 5, 10, tzinfo=UTC),
        datetime(2026, 11, 1, 6, 20, tzinfo=UTC),
    )
    for i, (moment, sentiment) in enumerate([(first, "positive"), (second, "negative")]):
        m = Mention(source="x", native_id=str(i), text="pebblebase", created_at=moment,
                    terms=["pebblebase"], sentiment=sentiment)  # fmt: skip
        store.save_page("x", "t", [m], None)
    store.close()
    args = ["--by", "hour", "--tz", "America/New_York", "--since", "2026-11-01T04:00:00Z"]
    rows = json.loads(project.run("stats", "--format", "json", *args).out)
    assert [(r["period"], r["positive"], r["negative"]) for r in rows[:4]] == [
        ("2026-11-01T00:00:00-04:00", 0, 0),
        ("2026-11-01T01:00:00-04:00", 1, 0),
        ("2026-11-01T01:00:00-05:00", 0, 1),
        ("2026-11-01T02:00:00-05:00", 0, 0),
    ]
    assert sum(r["total"] for r in rows) == 2
    table = list(csv.DictReader(io.StringIO(project.run("stats", "--format", "csv", *args).out)))
    assert [r["period"] for r in table] == [r["period"] for r in rows]
