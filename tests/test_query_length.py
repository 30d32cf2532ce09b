"""A term longer than a platform's query limit is split into searches whose results are
merged, or the source fails naming the limit: never truncated, never silent."""

from __future__ import annotations

import re
import time

from conftest import all_platforms

# 45 names, about 900 characters as one OR query: past Reddit's and X's 512, GitHub's 256.
NAMES = [f"acmewidget{i:02d}model" for i in range(44)] + ["pebblezeta"]
LONG_TERM = "\n[[terms]]\nname = 'catalogue'\nquery = '" + " OR ".join(NAMES) + "'\n"
SPLIT = ("reddit", "x", "github")
PER_ALTERNATIVE = ("hackernews", "bluesky", "stackexchange")


def test_a_long_query_is_split_and_the_last_name_is_still_found(project):
    web = project.web
    keys = {name: web.platform(name).add_item("I love my new pebblezeta", time.time() - 60)
            for name in SPLIT + PER_ALTERNATIVE}  # fmt: skip
    project.write_config(all_platforms(web).replace("[sources.mastodon]", "[sources.mastodon]\n"
                         "enabled = false") + LONG_TERM)  # fmt: skip
    result = project.run("poll")
    assert result.code == 0, result.err
    stored = {k for (k,) in project.rows("SELECT key FROM mentions")}
    assert set(keys.values()) <= stored
    tagged = project.rows(
        "SELECT m.key FROM mention_terms t JOIN mentions m ON m.id = t.mention_id "
        "WHERE t.term = 'catalogue'"
    )
    # (Owned channels, app reviews and the like, belong to every term: not about searching.)
    searched = {k for (k,) in tagged if k.split(":", 1)[0] in SPLIT + PER_ALTERNATIVE}
    assert searched == set(keys.values())
    reddit = [
        r.arg("q") for r in web.seen("/reddit/oauth/search") if "pebble base" not in r.arg("q")
    ]
    x = [r.arg("query") for r in web.seen("/x/2/tweets/search/recent")
         if "pebble base" not in r.arg("query")]  # fmt: skip
    github = [r.arg("q").split(" in:title")[0] for r in web.seen("/github/search/issues")
              if "pebble base" not in r.arg("q")]  # fmt: skip
    assert len(reddit) > 1 and all(len(q) <= 512 for q in reddit)
    assert len(x) > 1 and all(len(q) <= 512 for q in x)
    assert all(len(q) <= 256 and q.count(" OR ") <= 5 for q in github)
    # Every name is searched somewhere, none twice (per kind, on GitHub).
    for queries in (reddit, x):
        assert sorted(n for q in queries for n in re.findall(r"\w+model|pebblezeta", q)) == sorted(
            NAMES
        )


def test_a_word_too_long_for_any_search_fails_naming_the_limit(project):
    web = project.web
    term = f"\n[[terms]]\nname = 'essay'\nquery = '\"{'pebble ' * 90}\"'\n"
    project.write_config(all_platforms(web) + term)
    result = project.run("poll")
    assert result.code == 1
    errors = [x for x in result.err.splitlines() if x.startswith("error: ")]
    for name, limit in (("reddit", 512), ("x", 512), ("github", 256), ("hackernews", 512)):
        (line,) = [x for x in errors if x.startswith(f"error: {name}: ")]
        assert "term 'essay'" in line and f"allows {limit} characters" in line, line
    # The other term is polled everywhere all the same.
    assert project.rows("SELECT count(*) FROM mentions WHERE source = 'hackernews'")[0][0] > 0
