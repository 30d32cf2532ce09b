"""Triage in the feed, rescoring, and replying where a platform has no reply API."""

from __future__ import annotations

import sys

import pytest
from conftest import HN_AND_RSS

# Every test here also runs on PostgreSQL (see conftest.py).
pytestmark = pytest.mark.both_engines

TEMPLATES = """
[templates]
thanks = "Thanks {author}! Glad {term} helps."
help = "Sorry {author}, we're on it: {url}"
broken = "Hi {name}"
"""


def test_feed_sorted_by_priority_puts_complaints_first(project):
    project.write_config(HN_AND_RSS)
    project.run("poll")
    ranked = project.run("feed", "--sort", "priority", "--format", "jsonl").jsonl()
    priorities = [r["priority"] for r in ranked]
    assert priorities == sorted(priorities, reverse=True)
    assert ranked[0]["sentiment"] == "negative"
    praise = [i for i, r in enumerate(ranked) if "praise" in r["intents"]]
    complaints = [i for i, r in enumerate(ranked) if "complaint" in r["intents"]]
    assert complaints and praise and min(complaints) < min(praise)


def test_intent_filter(project):
    project.write_config(HN_AND_RSS)
    project.run("poll")
    questions = project.run("feed", "--intent", "question", "--format", "jsonl").jsonl()
    assert questions and all("question" in r["intents"] for r in questions)
    assert any("backups" in r["text"] for r in questions)
    assert project.run("feed", "--intent", "rant").code == 2
    rich = project.run("feed", "--intent", "question").out
    assert "?question" in rich


def test_rescore_with_another_analyzer(project):
    project.write_config(HN_AND_RSS)
    project.run("poll")
    before = {r["key"]: r["polarity"] for r in project.run("export").jsonl()}
    result = project.run("rescore", "--analyzer", "textblob")
    assert result.code == 0, result.err
    assert f"rescored {len(before)} mention(s)" in result.err
    after = {r["key"]: r["polarity"] for r in project.run("export").jsonl()}
    assert after.keys() == before.keys() and after != before
    assert project.run("rescore").code == 0
    assert {r["key"]: r["polarity"] for r in project.run("export").jsonl()} == before


def test_sentiment_jsonl_has_intents(project):
    project.write_config("")
    rows = project.run(
        "sentiment", "--format", "jsonl", "Been waiting 70 minutes on hold. Can you help?"
    ).jsonl()
    assert rows[0]["sentiment"] == "negative"
    assert {"question", "complaint"} <= set(rows[0]["intents"])


def test_reply_without_api_prints_the_reply_page_and_records_it(project):
    project.write_config(HN_AND_RSS + TEMPLATES)
    project.run("poll")
    result = project.run("reply", "hackernews:42818210", "--template", "help", "--yes")
    assert result.code == 0, result.err
    link = "https://news.ycombinator.com/reply?id=42818210&goto=item%3Fid%3D42817001%2342818210"
    assert link in result.out.splitlines()
    assert "Sorry dang_it, we're on it: https://news.ycombinator.com/item?id=42818210" in result.out
    assert "no reply API" in result.err and "mentionwatch handle" in result.err
    shown = project.run("show", "hackernews:42818210").out
    assert "link" in shown and "Sorry dang_it" in shown
    # Not confirmed as posted, so it stays open.
    assert project.rows("SELECT status FROM mentions WHERE native_id='42818210'") == [("open",)]


def test_reply_dry_run_records_nothing(project):
    project.write_config(HN_AND_RSS + TEMPLATES)
    project.run("poll")
    result = project.run("reply", "hackernews:42817455", "--template", "thanks", "--dry-run")
    assert result.code == 0
    assert "Thanks tptacek_fan! Glad pebblebase helps." in result.out
    assert project.rows("SELECT count(*) FROM replies") == [(0,)]


def test_reply_templates_listing_and_errors(project):
    project.write_config(HN_AND_RSS + TEMPLATES)
    project.run("poll")
    listing = project.run("reply", "--list-templates")
    assert "thanks: Thanks {author}! Glad {term} helps." in listing.out
    missing = project.run("reply", "1", "--template", "nope")
    assert (
        missing.code == 2 and "unknown template 'nope'" in missing.err and "thanks" in missing.err
    )
    broken = project.run("reply", "1", "--template", "broken")
    assert broken.code == 2 and "unknown placeholder 'name'" in broken.err
    assert project.run("reply", "12345", "hi").code == 2
    no_text = project.run("reply", "1")
    assert no_text.code == 2 and "no reply text" in no_text.err


def test_reply_text_from_editor(tmp_path, monkeypatch):
    """With no TEXT on a terminal, $EDITOR gets the mention quoted in comments, like git."""
    from mentionwatch import replies
    from mentionwatch.models import Mention, utcnow

    seen = tmp_path / "seen.txt"
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys\n"
        "path = sys.argv[1]\n"
        "text = open(path).read()\n"
        f"open({str(seen)!r}, 'w').write(text)\n"
        "open(path, 'w').write('Thanks for the report!\\n' + text)\n"
    )
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    mention = Mention("hackernews", "1", "first line\nsecond [b]line", utcnow(), author="ann")
    assert replies.compose_in_editor(mention) == "Thanks for the report!"
    quoted = seen.read_text()
    assert "# first line\n# second [b]line" in quoted
    assert "reply to ann on hackernews" in quoted
