"""--search speaks FTS5: OR, NOT/-word, "phrases", prefix*, author:/title:/text: columns;
a malformed query is one clear line."""

from __future__ import annotations

import time

import pytest

from mentionwatch.search import SearchError, fts_query

# Every test here also runs on PostgreSQL (see conftest.py).
pytestmark = pytest.mark.both_engines

CONFIG = """
[[terms]]
name = "pebblebase"
query = "pebblebase"

[sources.hackernews]
base_url = "{web}/hackernews/api/v1"
"""
HITS = {
    "800001": ("alice", "Ask HN: databases", "pebblebase is down again for me"),
    "800002": ("bob", "Ask HN: databases", "pebblebase had an outage yesterday"),
    "800003": ("carol", "Show HN: dark mode", "pebblebase dark mode looks great, see acme.dev"),
    "800004": ("dave", "Ask HN: databases", "pebblebase backups and restore worked fine"),
    "800005": ("alice", "Tell HN: pebbles", "pebblebase backup is slow, restore is slower"),
}


@pytest.fixture
def searchable(project):
    hits = project.web.platform("hackernews").extra_hits
    for object_id, (author, story, text) in HITS.items():
        hits.append({
            "objectID": object_id, "created_at_i": int(time.time()) - 60, "author": author,
            "title": None, "comment_text": text, "story_id": 7, "story_title": story,
            "_tags": ["comment", f"author_{author}", "story_7"],
        })  # fmt: skip
    project.write_config(CONFIG)
    assert project.run("poll").code == 0
    return project


def found(project, query: str) -> set[str]:
    result = project.run("export", "--search", query)
    assert result.code == 0, result.err
    return {r["key"].removeprefix("hackernews:") for r in result.jsonl()} & set(HITS)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("down", {"800001"}),
        ("down outage", set()),
        ("down OR outage", {"800001", "800002"}),
        ('"dark mode"', {"800003"}),
        ('"mode dark"', set()),
        ("backup*", {"800004", "800005"}),
        ("backup* NOT slow", {"800004"}),
        ("backup* -slow", {"800004"}),
        ('restore -"is slower"', {"800004"}),
        ("author:alice", {"800001", "800005"}),
        ("author:alice down", {"800001"}),
        ("title:pebbles", {"800005"}),
        ('title:"dark mode" OR author:bob', {"800002", "800003"}),
        ("(down OR outage) -yesterday", {"800001"}),
        ("acme.dev", {"800003"}),
        ("DOWN", {"800001"}),
    ],
)
def test_search_language(searchable, query, expected):
    assert found(searchable, query) == expected


def test_feed_searches_the_same_way(searchable):
    result = searchable.run("feed", "--search", "down OR outage", "--format", "jsonl")
    keys = {r["key"] for r in result.jsonl()}
    assert {"hackernews:800001", "hackernews:800002"} <= keys
    assert keys == {f"hackernews:{k}" for k in found(searchable, "down OR outage")} | (
        keys - {f"hackernews:{k}" for k in HITS}
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('"dark mode', "unclosed quote"),
        ("down OR", "OR needs a word after it"),
        ("OR down", "OR needs a word before it"),
        ("(down OR outage", "'(' without its ')'"),
        ("down)", "')' without its '('"),
        ("colour:red", "unknown column 'colour:'"),
        ("-spam", "needs a word to find before it"),
        ("   ", "empty query"),
        ("author:", "author: needs a word after it"),
    ],
)
def test_a_malformed_query_is_one_line(searchable, query, message):
    for command in ("feed", "export"):
        result = searchable.run(command, "--search", query)
        assert result.code == 2 and result.out == ""
        assert message in result.err and result.err.count("\n") == 1, result.err
        assert result.err.startswith("mentionwatch: --search: ")


def test_fts_query_output_is_valid_fts5():
    """Whatever the translation lets through, SQLite's FTS5 parses."""
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(text, title, author)")
    queries = (
        "a b",
        "a OR b",
        '"a b"*',
        "a* -b",
        'author:x title:"y z"',
        "@acme.dev",
        "x-ray",
        "(a OR b) NOT c",
        "naïve café",
        "C++",
        "3.14*",
        "url:http://x.y",
    )
    for query in queries:
        try:
            translated = fts_query(query)
        except SearchError:
            continue
        conn.execute("SELECT * FROM t WHERE t MATCH ?", (translated,)).fetchall()
