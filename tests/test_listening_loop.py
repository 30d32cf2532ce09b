"""The spine, end to end: config → poll → dedup → feed, handle and export."""

from __future__ import annotations

import pytest
from conftest import HN_AND_RSS

from mentionwatch.render import RECORD_KEYS

# Every test here also runs on PostgreSQL (see conftest.py).
pytestmark = pytest.mark.both_engines

DESIGN_KEYS = (
    "id", "key", "source", "url", "author", "author_name", "title", "text", "created_at",
    "fetched_at", "terms", "sentiment", "polarity", "status", "reach", "reply_url",
)  # fmt: skip


def test_poll_then_feed_shows_verified_mentions(project):
    project.write_config(HN_AND_RSS)
    first = project.run("poll")
    assert first.code == 0, first.err
    assert "hackernews: 10 new" in first.out
    assert "rss: 3 new" in first.out

    records = project.run("feed", "--format", "jsonl", "--limit", "0").jsonl()
    authors = {r["author"] for r in records}
    # Algolia prefix-matched "pebblebased" and the excluded "Pebble Base Camp": neither stored.
    assert "bikeshedder" not in authors
    assert "alpinist" not in authors
    assert {"grumpyops", "tptacek_fan", "Priya Raman"} <= authors
    assert [r["created_at"] for r in records] == sorted(
        (r["created_at"] for r in records), reverse=True
    )


def test_second_poll_adds_nothing_and_feeds_answer_304(project):
    project.write_config(HN_AND_RSS)
    project.run("poll")
    count = project.rows("SELECT count(*) FROM mentions")[0][0]
    again = project.run("poll")
    assert again.code == 0
    assert "0 new mention(s)" in again.out
    assert project.rows("SELECT count(*) FROM mentions")[0][0] == count
    blog_requests = project.web.seen("/rss/feeds/blog.xml")
    assert len(blog_requests) == 2
    assert "if-none-match" in blog_requests[1].headers
    assert "unchanged" in again.out
    # The HN cursor moved: the second search only asks for recent items.
    hn = project.web.seen("/hackernews/api/v1/search_by_date")
    first_since = int(hn[0].query["numericFilters"][0].split(">=")[1])
    second_since = int(hn[-1].query["numericFilters"][0].split(">=")[1])
    assert second_since > first_since


def test_mention_found_by_two_terms_is_stored_once_with_both(project):
    project.write_config(
        HN_AND_RSS
        + """
[[terms]]
name = "pebble-io"
query = "pebblebase.io"
"""
    )
    project.run("poll")
    rows = project.rows("SELECT count(*) FROM mentions WHERE native_id = '42820300'")
    assert rows[0][0] == 1
    (record,) = [r for r in project.run("export").jsonl() if r["key"] == "hackernews:42820300"]
    assert record["terms"] == ["pebble-io", "pebblebase"]
    # found by each term in its own job: the second save added its term to the row's copy
    stored = project.rows("SELECT terms FROM mentions WHERE native_id = '42820300'")
    assert stored == [('["pebble-io", "pebblebase"]',)]


def test_jsonl_has_the_design_keys_then_the_triage_keys(project):
    project.write_config(HN_AND_RSS)
    project.run("poll")
    records = project.run("export", "--format", "jsonl").jsonl()
    assert records
    for rec in records:
        assert tuple(rec) == RECORD_KEYS
        assert (
            *DESIGN_KEYS,
            "intents",
            "priority",
            "echo_of",
            "relevance",
            "assignee",
        ) == RECORD_KEYS
        assert rec["created_at"].endswith("Z") and rec["fetched_at"].endswith("Z")
        assert rec["sentiment"] in ("positive", "neutral", "negative")
        assert -1 <= rec["polarity"] <= 1
        assert rec["status"] == "open"
    story = next(r for r in records if r["key"] == "hackernews:42817001")
    assert story["reach"] == 184
    assert story["url"] == "https://news.ycombinator.com/item?id=42817001"
    comment = next(r for r in records if r["key"] == "hackernews:42818210")
    assert comment["text"].startswith("How does Pebblebase handle backups? I couldn't find")
    assert comment["reply_url"] == (
        "https://news.ycombinator.com/reply?id=42818210&goto=item%3Fid%3D42817001%2342818210"
    )
    alert = next(r for r in records if "techdaily" in (r["url"] or ""))
    assert alert["url"] == "https://techdaily.example.net/2026/11/pebblebase-seed"
    assert alert["title"] == "Pebblebase raises seed round to make databases boring again"


def test_handle_from_stdin_pipeline_and_hidden_counts(project):
    project.write_config(HN_AND_RSS)
    project.run("poll")
    ids = project.run("feed", "--source", "rss", "--format", "ids").out
    assert len(ids.split()) == 3
    handled = project.run("handle", "-", "--note", "answered on the blog", input=ids)
    assert handled.code == 0
    assert "3 of 3 mention(s) marked handled" in handled.err
    feed = project.run("feed")
    assert " rss " not in feed.out
    assert "3 handled hidden" in feed.out
    statuses = {r["status"] for r in project.run("export", "--source", "rss").jsonl()}
    assert statuses == {"handled"}
    reopened = project.run("reopen", ids.split()[0])
    assert reopened.code == 0
    shown = project.run("show", ids.split()[0])
    assert "answered on the blog" in shown.out
    assert "handled" in shown.out and "open" in shown.out


def test_unknown_ids_change_nothing_and_exit_2(project):
    project.write_config(HN_AND_RSS)
    project.run("poll")
    result = project.run("handle", "1", "999", "nope:1")
    assert result.code == 2
    assert "unknown mention ID or key: 999, nope:1" in result.err
    assert project.rows("SELECT count(*) FROM mentions WHERE status != 'open'")[0][0] == 0


def test_show_accepts_key(project):
    project.write_config(HN_AND_RSS)
    project.run("poll")
    shown = project.run("show", "hackernews:42819934")
    assert shown.code == 0
    assert "grumpyops" in shown.out
    assert "Support took 3 days to answer" in shown.out


def test_filters(project):
    project.write_config(HN_AND_RSS)
    project.run("poll")
    recent = project.run("feed", "--since", "3h", "--format", "jsonl").jsonl()
    assert recent and all(r["author"] != "tptacek_fan" for r in recent)
    found = project.run("feed", "--search", "backups", "--format", "jsonl").jsonl()
    assert [r["author"] for r in found] == ["dang_it"]
    bad = project.run("feed", "--since", "yesterday-ish")
    assert bad.code == 2 and "--since" in bad.err
    assert project.run("feed", "--sentiment", "angry").code == 2


def test_export_csv_to_file(project, tmp_path):
    project.write_config(HN_AND_RSS)
    project.run("poll")
    out = tmp_path / "mentions.csv"
    result = project.run("export", "--format", "csv", "-o", str(out))
    assert result.code == 0
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(RECORD_KEYS)
    assert len(lines) > 10


def test_sentiment_command(project):
    project.write_config("")
    result = project.run("sentiment", "I love this product", "This is terrible and broken")
    assert result.code == 0
    first, second = result.out.splitlines()
    assert first.startswith("positive") and second.startswith("negative")
    piped = project.run("sentiment", "--format", "jsonl", input="great tool\n\nawful\n")
    rows = piped.jsonl()
    assert [r["text"] for r in rows] == ["great tool", "awful"]
    assert rows[0]["sentiment"] == "positive"
    assert project.run("sentiment", "--analyzer", "nope", "x").code == 2


def test_show_fetches_what_a_comment_replies_to_once(project):
    project.write_config(HN_AND_RSS)
    project.run("poll")
    assert "in reply to" not in project.run("show", "hackernews:42820300", "--offline").out
    shown = project.run("show", "hackernews:42820300")
    assert shown.code == 0, shown.err
    assert "in reply to dang_it  https://news.ycombinator.com/item?id=42818210" in shown.out
    assert "How does Pebblebase handle backups?" in shown.out
    fetched = len(project.web.seen("/hackernews/api/v1/items/"))
    assert fetched == 1
    project.run("show", "hackernews:42820300")  # kept with the mention: no second request
    assert len(project.web.seen("/hackernews/api/v1/items/")) == fetched

    on_story = project.run("show", "hackernews:42819934").out
    assert "in reply to mkessler" in on_story
    assert "Show HN: Pebblebase – a tiny hosted database for side projects" in on_story


def test_show_without_the_platform_still_shows_the_mention(project):
    project.write_config(HN_AND_RSS)
    project.run("poll")
    project.web.fail("/hackernews/", 500, times=10)
    shown = project.run("show", "hackernews:42820300")
    assert shown.code == 0
    assert "SQLite semantics" in shown.out
    assert "thread not shown: hackernews: HTTP 500" in shown.err


def test_own_accounts_are_not_mentions(project):
    project.write_config(HN_AND_RSS, poll_settings=False)
    project.config.write_text(
        project.config.read_text() + '\n[poll]\nbackoff = 0.01\nignore_authors = ["@MKessler"]\n'
    )
    assert project.run("poll").code == 0
    authors = {r["author"] for r in project.run("export").jsonl()}
    assert "mkessler" not in authors and "grumpyops" in authors


def test_an_unknown_option_is_a_usage_error_not_a_crash(project):
    project.write_config(HN_AND_RSS)
    result = project.run("feed", "--no-such-option")
    assert result.code == 2
    assert "No such option: --no-such-option" in result.err
    assert "unexpected" not in result.err
