"""GitHub issue and pull-request search, end to end through the CLI, and replies."""

from __future__ import annotations

import re
import time

import pytest
from conftest import HN_AND_RSS, TERM

from mentionwatch.http import SourceError
from mentionwatch.models import Mention, parse_iso
from mentionwatch.sources.github import GitHub
from mentionwatch.testing.platforms.github import LOGIN, TOKEN
from mentionwatch.testing.server import HTML_BLOCKED

WITH_TOKEN = f"""
[sources.github]
base_url = "{{web}}/github"
token = "{TOKEN}"
"""
ANONYMOUS = '\n[sources.github]\nbase_url = "{web}/github"\n'
SEARCH = "/github/search/issues"


def github_records(project) -> dict[str, dict]:
    return {r["url"]: r for r in project.run("export").jsonl() if r["source"] == "github"}


def test_poll_stores_issues_and_prs_field_by_field(project):
    project.write_config(HN_AND_RSS + WITH_TOKEN)
    result = project.run("poll")
    assert result.code == 0, result.err
    records = github_records(project)
    # The near miss ("pebblebased theme") is dropped; the 30-day-old issue is outside the
    # first poll's lookback.
    assert set(records) == {
        "https://github.com/sidequest-labs/launchpad/issues/212",
        "https://github.com/alicedev/habit-tracker/issues/48",
        "https://github.com/sqlkit-dev/sqlkit/pull/1290",
        "https://github.com/kenji-t/notes-sync/issues/7",
        "https://github.com/pebblebase/pebble-cli/issues/331",
    }
    bug = records["https://github.com/alicedev/habit-tracker/issues/48"]
    assert bug["key"] == "github:https://github.com/alicedev/habit-tracker/issues/48"
    assert bug["author"] == "alicedev"
    assert bug["author_name"] is None  # search results carry no display name
    assert bug["title"] == "Connections to Pebblebase drop every few minutes"
    assert bug["text"].startswith("Since Tuesday the app loses its connection to Pebblebase")
    assert bug["reach"] == 6 + 4  # comments + reactions
    assert bug["reply_url"] == bug["url"]
    created = parse_iso(bug["created_at"])
    assert bug["created_at"].endswith("Z")
    assert abs(time.time() - 10 * 3600 - created.timestamp()) < 120
    feature = records["https://github.com/sidequest-labs/launchpad/issues/212"]
    assert "<!--" not in feature["text"] and "Describe the feature" not in feature["text"]
    assert "\r" not in feature["text"]
    question = records["https://github.com/kenji-t/notes-sync/issues/7"]
    assert question["author"] is None and question["text"] == "" and question["reach"] == 0
    locked = records["https://github.com/pebblebase/pebble-cli/issues/331"]
    assert locked["reach"] == 41
    # Two searches per term (GitHub wants is:issue or is:pr), with the API version pinned.
    searches = project.web.seen(SEARCH)
    queries = sorted(r.arg("q") for r in searches)
    assert [q.split(" is:")[1].split()[0] for q in queries] == ["issue", "pr"]
    assert queries[0].startswith('("pebblebase" OR "pebble base") in:title,body is:')
    for request in searches:
        assert request.headers["x-github-api-version"] == "2022-11-28"
        assert request.headers["accept"] == "application/vnd.github+json"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert (request.arg("sort"), request.arg("order")) == ("created", "desc")
        assert (request.arg("per_page"), request.arg("advanced_search")) == ("100", "true")


def test_second_poll_sends_the_newest_creation_time_and_stores_nothing(project):
    project.write_config(ANONYMOUS + HN_AND_RSS)
    assert project.run("poll").code == 0
    count = project.rows("SELECT count(*) FROM mentions WHERE source = 'github'")[0][0]
    first = project.web.seen(SEARCH)[0]
    assert _sent_since(first) == pytest.approx(time.time() - 7 * 86400, abs=60)
    again = project.run("poll")
    assert again.code == 0, again.err
    assert project.rows("SELECT count(*) FROM mentions WHERE source = 'github'")[0][0] == count
    assert "github: 0 new" in again.out
    issues, prs = (
        [r for r in project.web.seen(SEARCH)[2:] if f"is:{kind}" in r.arg("q")]
        for kind in ("issue", "pr")
    )
    # Each search's cursor is the newest item it fetched (for issues the near miss, 2 h old:
    # rejected locally, but seen; for pull requests one 6 h old), minus ten minutes for the
    # search index's lag.
    assert _sent_since(issues[-1]) == pytest.approx(time.time() - 2 * 3600 - 600, abs=60)
    assert _sent_since(prs[-1]) == pytest.approx(time.time() - 6 * 3600 - 600, abs=60)
    last = prs[-1]
    assert "authorization" not in last.headers


def _sent_since(request) -> float:
    return parse_iso(request.arg("q").split("created:>=")[1]).timestamp()


def test_a_search_that_timed_out_is_asked_again_next_poll(project):
    # GitHub answers a search that hits its time limit with what it found in time and
    # incomplete_results: true. What it left out must not fall behind the cursor.
    project.write_config(TERM + WITH_TOKEN)
    assert project.run("poll").code == 0
    github = project.web.platform("github")
    start = time.time() - 3600  # far behind the ten minutes every poll reads again
    expected = {github.add_item(f"pebblebase timeout {i}", start + 60 * i) for i in range(40)}
    github.timeouts = 1
    partial = project.run("poll")
    assert partial.code == 0, partial.err
    assert "search timed out" in partial.out
    assert len(expected & set(_github_keys(project))) == 20  # what it found in time
    again = project.run("poll")
    assert again.code == 0, again.err
    missing = expected - set(_github_keys(project))
    assert not missing, sorted(missing)[:5]
    # Complete this time: the range is done, and the poll after reads only the overlap.
    assert project.run("poll").code == 0
    assert _sent_since(project.web.seen(SEARCH)[-2]) > start + 39 * 60 - 700


def _github_keys(project) -> list[str]:
    return [k for (k,) in project.rows("SELECT key FROM mentions WHERE source = 'github'")]


def test_rate_limit_waits_are_honoured_and_the_poll_succeeds(project):
    project.write_config(HN_AND_RSS + WITH_TOKEN)
    # The primary limit (remaining 0, reset in a second), then the secondary one (retry-after).
    reset = str(int(time.time()) + 1)
    primary = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    project.web.fail(SEARCH, 403, headers=primary, body='{"message": "API rate limit exceeded"}')
    secondary = '{"message": "You have exceeded a secondary rate limit. Please wait."}'
    project.web.fail(SEARCH, 403, headers={"retry-after": "1"}, body=secondary)
    started = time.monotonic()
    result = project.run("poll")
    assert result.code == 0, result.err
    assert time.monotonic() - started >= 1.5
    assert len(github_records(project)) == 5


LONG_RESET = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 3600)}
VALIDATION = (
    '{"message": "Validation Failed", "errors": [{"message": "The listed users and '
    'repositories cannot be searched", "code": "invalid"}]}'
)
FAILURES = [
    (401, {"body": '{"message": "Bad credentials", "status": "401"}'}, "HTTP 401 from"),
    (403, {"body": HTML_BLOCKED, "content_type": "text/html"}, "got an HTML page"),
    (429, {"headers": LONG_RESET}, "rate limited by 127.0.0.1"),
    (500, {"times": 5}, "HTTP 500 from"),
    (200, {"truncate": True}, "the JSON body is malformed or truncated"),
    (422, {"body": VALIDATION}, "Validation Failed: The listed users and repositories cannot"),
]


def test_each_failure_fails_github_only_with_a_clear_line(project):
    project.write_config(HN_AND_RSS + WITH_TOKEN)
    for status, fault, expected in FAILURES:
        if status == 429:  # an hour from now, not from when the module was imported
            reset = {**LONG_RESET, "x-ratelimit-reset": str(int(time.time()) + 3600)}
            fault = {**fault, "headers": reset}
        project.web.fail(SEARCH, status, **fault)
        result = project.run("poll")
        assert result.code == 1, (status, result.err)
        errors = [x for x in result.err.splitlines() if x.startswith("error: ")]
        assert len(errors) == 1 and errors[0].startswith("error: github: "), result.err
        assert expected in errors[0]
        if status == 429:  # the reset was set an hour ahead when this module was imported
            assert re.search(r"resets in (5\d|60) min", errors[0]), errors[0]
        assert TOKEN not in result.out + result.err
        # The other sources poll all the same.
        assert "hackernews: " in result.out
    assert project.rows("SELECT count(*) FROM mentions WHERE source = 'hackernews'")[0][0] == 10
    assert project.rows("SELECT count(*) FROM mentions WHERE source = 'github'")[0][0] == 0
    # A wrong token: GitHub's reason, never the token itself.
    project.write_config(HN_AND_RSS + WITH_TOKEN.replace(TOKEN, "ghp_wrongwrongwrong"))
    result = project.run("poll")
    assert result.code == 1
    assert "error: github: HTTP 401" in result.err and "Bad credentials" in result.err
    assert "ghp_wrongwrongwrong" not in result.out + result.err


def test_malformed_items_are_named_and_the_rest_of_the_page_is_kept(project):
    platform = project.web.platform("github")
    repo = {"repository_url": "https://api.github.com/repos/a/b"}
    platform.extra_items += [
        {**repo, "html_url": "https://github.com/a/b/issues/1", "number": "1",
         "title": "Pebblebase", "created_at": _iso_ago(600)},
        {**repo, "html_url": None, "number": 2, "created_at": "2099-01-01T00:00:00Z",
         "title": "Pebblebase"},
        {**repo, "html_url": "https://github.com/a/b/issues/4", "number": 4,
         "created_at": _iso_ago(3600), "title": "Pebblebase \x1b[31mred\x1b[0m", "body": None,
         "user": None, "comments": None},
    ]  # fmt: skip
    project.write_config(HN_AND_RSS + WITH_TOKEN)
    result = project.run("poll")
    assert result.code == 1
    (line,) = [x for x in result.err.splitlines() if x.startswith("error: ")]
    assert line.startswith("error: github: ")
    assert 'has "number": a string where a number belongs' in line
    assert 'has "html_url": null where a string belongs' in line
    records = github_records(project)
    assert len(records) == 6  # the five good ones of the fixture, and the odd but valid one
    odd = records["https://github.com/a/b/issues/4"]
    assert odd["title"] == "Pebblebase [31mred[0m" and odd["text"] == ""
    assert odd["author"] is None and odd["reach"] == 0
    assert "hackernews: 10 new" in result.out


def test_check_says_who_we_are(project):
    project.write_config(HN_AND_RSS + WITH_TOKEN)
    assert project.call_source("github", lambda s: s.check()) == f"authenticated as {LOGIN}"
    project.write_config(HN_AND_RSS + ANONYMOUS)
    line = project.call_source("github", lambda s: s.check())
    assert line.startswith("anonymous (no token): search works, 10 searches left")


# Replies: called directly, as the reply command does.


def _iso_ago(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))


def _mention(owner: str, repo: str, number: int) -> Mention:
    url = f"https://github.com/{owner}/{repo}/issues/{number}"
    return Mention(
        source="github",
        native_id=url,
        text="",
        created_at=parse_iso("2026-01-01T00:00:00Z"),
        url=url,
        extra={"owner": owner, "repo": repo, "number": number},
    )


def test_reply_posts_an_issue_comment_and_find_reply_finds_it(project):
    project.write_config(HN_AND_RSS + WITH_TOKEN)
    mention = _mention("alicedev", "habit-tracker", 48)
    text = "Sorry about the drops! We fixed a proxy bug today; could you try again?"

    async def scenario(source: GitHub):
        before = await source.find_reply(mention, text)
        posted = await source.reply(mention, text, "key-1")
        after = await source.find_reply(mention, text + "\n")
        return before, posted, after

    before, posted, after = project.call_source("github", scenario)
    assert before is None
    (post,) = [r for r in project.web.seen("/github/repos") if r.method == "POST"]
    assert post.path == "/github/repos/alicedev/habit-tracker/issues/48/comments"
    assert post.json() == {"body": text}
    assert post.headers["authorization"] == f"Bearer {TOKEN}"
    assert post.headers["x-github-api-version"] == "2022-11-28"
    assert posted.remote_id == "2400000000"
    assert posted.url == (
        "https://github.com/alicedev/habit-tracker/issues/48#issuecomment-2400000000"
    )
    assert after == posted
    # The token's login is read once, however many lookups follow.
    assert len(project.web.seen("/github/user")) == 1
    # Only our own comments count: the same words from someone else do not.
    theirs = "Same here since Tuesday, on the free tier."
    assert project.call_source("github", lambda s: s.find_reply(mention, theirs)) is None
    earlier = "Thanks for the report, we are looking into it."
    ours = project.call_source("github", lambda s: s.find_reply(mention, earlier))
    assert ours is not None and ours.remote_id == "2391100002"


def test_reply_rejections_and_problems(project):
    mention = _mention("alicedev", "habit-tracker", 48)
    project.write_config(HN_AND_RSS + WITH_TOKEN)
    with pytest.raises(SourceError, match="body is too long"):
        project.call_source("github", lambda s: s.reply(mention, "x" * 70000, "k"))
    project.write_config(HN_AND_RSS + WITH_TOKEN.replace(TOKEN, "ghp_bad"))
    with pytest.raises(SourceError, match="Bad credentials") as caught:
        project.call_source("github", lambda s: s.reply(mention, "hi", "k"))
    assert "ghp_bad" not in str(caught.value)
    project.write_config(HN_AND_RSS + ANONYMOUS)
    problem = project.call_source("github", lambda s: s.reply_problem(mention))
    assert "sources.github.token" in problem
    locked = _mention("pebblebase", "pebble-cli", 331)
    project.write_config(HN_AND_RSS + WITH_TOKEN)
    with pytest.raises(SourceError) as caught:
        project.call_source("github", lambda s: s.reply(locked, "Fixed in v2.1", "k"))
    message = str(caught.value)
    assert message == (
        "github: reply to pebblebase/pebble-cli#331 rejected (HTTP 403): "
        "Unable to create comment because issue is locked."
    )
    assert "\n" not in message
