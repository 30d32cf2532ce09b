"""The threads source end to end: keyword search within Meta's 2,200-a-day budget, paging,
errors, replies, and no direct messages."""

from __future__ import annotations

import json
import time

import pytest

from mentionwatch.testing.platforms.threads import TOKEN

CONFIG = f"""
[[terms]]
name = "pebblebase"
query = 'pebblebase OR "pebble base" -"pebble base camp"'

[sources.threads]
base_url = "{{web}}/threads/v1.0"
token = "{TOKEN}"
"""
DOWN = "threads:18094722011223401"
SHORT_TIMEOUT = "\n[poll]\nbackoff = 0.01\nretries = 2\ntimeout = 0.5\n"


def polled(project, config: str = CONFIG, **kwargs):
    project.write_config(config, **kwargs)
    result = project.run("poll")
    assert result.code == 0, result.err
    return result


def searches(project) -> list:
    return project.web.seen("/threads/v1.0/keyword_search")


def test_keyword_search_recent_since_the_lookback_and_matched_locally(project):
    polled(project)
    keys = {k for (k,) in project.rows("SELECT key FROM mentions")}
    assert DOWN in keys and "threads:18094722011223455" in keys
    first = searches(project)[0]
    assert first.query["search_type"] == ["RECENT"] and first.query["limit"] == ["100"]
    assert abs(int(first.query["since"][0]) - (time.time() - 7 * 86400)) < 120
    assert {r.query["q"][0] for r in searches(project)} == {"pebblebase", "pebble base"}
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    record = next(r for r in project.run("export", "--format", "jsonl").jsonl()
                  if r["key"] == DOWN)  # fmt: skip
    assert record["author"] == "kofi.dev" and record["reach"] is None
    assert record["url"] == "https://www.threads.net/@kofi.dev/post/DA1pbDown01"


def test_the_next_poll_reads_from_the_newest_post_seen_minus_the_overlap(project):
    polled(project)
    before = len(searches(project))
    newest = max(p["timestamp"] for p in project.web.platform("threads").posts())
    key = project.web.platform("threads").add_item("pebblebase just shipped dark mode", time.time())
    again = project.run("poll")
    assert again.code == 0 and "threads: 1 new" in again.out
    assert key in {k for (k,) in project.rows("SELECT key FROM mentions")}
    since = int(searches(project)[before].query["since"][0])
    from datetime import datetime

    mark = datetime.strptime(newest, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    assert mark - 600 - 2 <= since <= mark - 600 + 2


def test_a_backlog_is_paged_and_stored_once(project):
    polled(project)
    platform = project.web.platform("threads")
    now = time.time()
    keys = {platform.add_item(f"pebblebase backlog {i}", now - i) for i in range(230)}
    result = project.run("poll")
    assert result.code == 0, result.err
    stored = [k for (k,) in project.rows("SELECT key FROM mentions")]
    assert keys <= set(stored) and len(stored) == len(set(stored))
    assert [r for r in searches(project) if r.query.get("after")]


def test_the_daily_search_budget_is_counted_shown_and_respected(project):
    project.write_config(CONFIG + "max_searches_per_day = 3\n")
    first = project.run("poll")
    assert first.code == 0, first.err
    shown = project.run("sources")
    assert "2 of 3 keyword searches in the last 24 h" in shown.out
    project.web.platform("threads").add_item("pebblebase new one", time.time())
    second = project.run("poll")
    assert second.code == 0, second.err
    assert "the keyword search budget is spent; the rest waits: 3 of 3" in second.out
    asked = len(searches(project))
    third = project.run("poll")
    assert third.code == 0 and len(searches(project)) == asked  # nothing asked past the budget
    # Searches that find nothing are not counted (Meta does not count them either).
    state = project.rows("SELECT value FROM source_state WHERE source = 'threads' AND key = ?",
                         "searches")  # fmt: skip
    assert len(json.loads(state[0][0])) == 3


def test_meta_refusing_a_search_past_the_budget_is_a_rate_limit(project):
    project.web.platform("threads").search_quota = 0
    project.write_config(CONFIG)
    result = project.run("poll")
    assert result.code == 1
    assert "(#613) Calls to this api have exceeded the rate limit." in result.err
    assert "try again then" in result.err


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (lambda p: setattr(p, "expired", True), "Session has expired"),
        (None, "(#10) Application does not have permission for this action"),
    ],
    ids=["expired", "no-permission"],
)
def test_errors_are_one_line_with_the_fix(project, fault, says):
    if fault:
        fault(project.web.platform("threads"))
    else:
        project.web.fail("/threads/v1.0/keyword_search", 403, times=10, body=json.dumps(
            {"error": {"message": "(#10) Application does not have permission for this action",
                       "type": "OAuthException", "code": 10, "fbtrace_id": "A1"}}))  # fmt: skip
    project.write_config(CONFIG)
    result = project.run("poll")
    assert result.code == 1
    (line,) = [x for x in result.err.splitlines() if x.startswith("error: threads")]
    assert says in line
    assert ("sources.threads.token" if fault else "threads_keyword_search") in line
    assert TOKEN not in result.err


def test_without_keyword_search_approval_only_own_posts_are_found(project):
    project.web.platform("threads").own_posts_only = True
    polled(project)
    assert project.rows("SELECT author FROM mentions") == [("pebblebase",)]


def test_sources_check_counts_searches_of_every_app(project):
    polled(project)
    result = project.run("sources", "--check")
    assert result.code == 0, result.err
    line = next(x for x in result.out.splitlines() if x.startswith("ok    threads"))
    assert line == (
        "ok    threads: authenticated as @pebblebase; 3 keyword searches in the last 24 h "
        "across all apps (Meta allows 2200); 2 of 2200 keyword searches counted here in 24 h"
    )


def test_reply_is_published_in_one_call_and_found_after_a_timeout(project):
    polled(project, CONFIG + SHORT_TIMEOUT, poll_settings=False)
    project.web.fail("/threads/v1.0/me/threads", accept=True, delay=1.5)
    first = project.run("reply", DOWN, "Sorry Kofi, we're on it", "--yes")
    assert first.code == 1 and "may have accepted it" in first.err
    second = project.run("reply", DOWN, "Sorry Kofi, we're on it", "--yes")
    assert second.code == 0, second.err
    platform = project.web.platform("threads")
    assert [p["replied_to"] for p in platform.published] == [{"id": "18094722011223401"}]
    (request,) = [r for r in project.web.seen("/threads/v1.0/me/threads") if r.method == "POST"]
    assert request.form() == {
        "media_type": "TEXT", "text": "Sorry Kofi, we're on it",
        "reply_to_id": "18094722011223401", "auto_publish_text": "true",
    }  # fmt: skip
    posted = project.rows("SELECT url FROM replies WHERE outcome = 'posted'")[0][0]
    assert posted.startswith("https://www.threads.net/@pebblebase/post/")


def test_a_refused_reply_and_the_500_character_limit(project):
    polled(project)
    project.web.platform("threads").reply_refusals.add("18094722011223401")
    refused = project.run("reply", DOWN, "Hi", "--yes")
    assert refused.code == 1
    assert "threads: reply refused (HTTP 403): (#10) Application does not have permission" in (
        refused.err)  # fmt: skip
    long = project.run("reply", DOWN, "x" * 501, "--yes")
    assert long.code == 2 and "501 characters; threads allows 500" in long.err


def test_no_direct_messages_on_threads(project):
    polled(project)
    result = project.run("reply", DOWN, "Hi", "--private", "--dry-run")
    assert result.code == 2
    assert "threads has no direct messages in its API" in result.err


def test_a_wrong_budget_type_is_a_config_error_naming_the_line(project):
    project.write_config(CONFIG + 'max_searches_per_day = "lots"\n')
    result = project.run("poll")
    assert result.code == 2
    assert "sources.threads.max_searches_per_day: expected an integer" in result.err
    assert "config.toml:9: " in result.err  # file:line
