"""`mentionwatch reply` end to end: the real CLI, the loopback platforms, the replies table."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import HN_AND_RSS

from mentionwatch.testing.platforms import bluesky, github, mastodon, reddit, stackexchange, x

ALL_SOURCES = f"""
[sources.mastodon]
base_url = "{{web}}/mastodon"
token = "{mastodon.TOKEN}"

[sources.github]
base_url = "{{web}}/github"
token = "{github.TOKEN}"

[sources.reddit]
base_url = "{{web}}/reddit/oauth"
auth_url = "{{web}}/reddit"
client_id = "{reddit.CLIENT_ID}"
client_secret = "{reddit.CLIENT_SECRET}"
username = "{reddit.USERNAME}"
password = "{reddit.PASSWORD}"

[sources.x]
base_url = "{{web}}/x"
bearer_token = "{x.BEARER}"
user_token = "{x.USER_TOKEN}"

[sources.bluesky]
base_url = "{{web}}/bluesky"
handle = "{bluesky.HANDLE}"
app_password = "{bluesky.APP_PASSWORD}"

[sources.stackexchange]
base_url = "{{web}}/stackexchange/2.3"
key = "{stackexchange.KEY}"
"""
CONFIG = HN_AND_RSS + ALL_SOURCES
# A short timeout, so that a post the platform accepts but answers late gets no answer.
SHORT_TIMEOUT = "\n[poll]\nbackoff = 0.01\nretries = 2\ntimeout = 0.5\n"

GRUMPY_BSKY = "at://did:plc:grumpydev0a9s8d7f6g5/app.bsky.feed.post/3lbq5bq7tmk2c"


@dataclass(frozen=True)
class Platform:
    name: str
    key: str  # the mention replied to
    write: str  # the path the reply is posted to
    remote_id: str  # the id the loopback platform gives the first reply (regex)
    url: str  # its web address (regex)


MASTODON = Platform(
    "mastodon",
    "mastodon:https://mastodon.social/users/mira/statuses/113504118204661001",
    "/mastodon/api/v1/statuses",
    r"\d+",
    r"https://mastodon\.social/@pebblebase/\d+",
)
GITHUB = Platform(
    "github",
    "github:https://github.com/alicedev/habit-tracker/issues/48",
    "/github/repos/alicedev/habit-tracker/issues/48/comments",
    "2400000000",
    r"https://github\.com/alicedev/habit-tracker/issues/48#issuecomment-2400000000",
)
REDDIT = Platform(
    "reddit",
    "reddit:t3_1gq7k2a",
    "/reddit/oauth/api/comment",
    "t1_m000001",
    r"https://www\.reddit\.com/r/SideProject/comments/1gq7k2a/_/m000001/",
)
X = Platform(
    "x",
    "x:1859260000000000202",
    "/x/2/tweets",
    r"\d+",
    r"https://x\.com/i/web/status/\d+",
)
BLUESKY = Platform(
    "bluesky",
    f"bluesky:{GRUMPY_BSKY}",
    "/bluesky/xrpc/com.atproto.repo.createRecord",
    re.escape(f"at://{bluesky.DID}/app.bsky.feed.post/3lbr000000001"),
    re.escape(f"https://bsky.app/profile/{bluesky.HANDLE}/post/3lbr000000001"),
)
WRITERS = [MASTODON, GITHUB, REDDIT, X, BLUESKY]


def polled(project, config: str = CONFIG, **kwargs: Any):
    project.write_config(config, **kwargs)
    result = project.run("poll")
    assert result.code == 0, result.err
    return project


def talk(result) -> list[str]:
    """The CLI's stderr lines."""
    return result.err.strip().splitlines()


def writes(project, platform: Platform) -> list:
    return [r for r in project.web.seen(platform.write) if r.method == "POST"]


def replies(project, key: str) -> list[tuple]:
    return project.rows(
        "SELECT r.outcome, r.remote_id, r.url, r.error FROM replies r "
        "JOIN mentions m ON m.id = r.mention_id WHERE m.key = ? ORDER BY r.id",
        key,
    )


def status(project, key: str) -> str:
    return project.rows("SELECT status FROM mentions WHERE key = ?", key)[0][0]


def check_request(platform: Platform, request, text: str, web) -> None:
    """The exact request each platform received for `text`."""
    auth = request.headers.get("authorization")
    if platform is MASTODON:
        assert auth == f"Bearer {mastodon.TOKEN}"
        assert re.fullmatch(r"[0-9a-f]{32}", request.headers["idempotency-key"])
        assert request.form() == {
            "status": f"@mira@mastodon.social {text}",
            "in_reply_to_id": "113504118204661001",
            "visibility": "public",
        }
    elif platform is GITHUB:
        assert auth == f"Bearer {github.TOKEN}"
        assert request.json() == {"body": text}
    elif platform is REDDIT:
        assert auth == f"bearer {next(iter(web.platform('reddit').tokens))}"
        assert request.form() == {"api_type": "json", "thing_id": "t3_1gq7k2a", "text": text}
    elif platform is X:
        assert auth == f"Bearer {x.USER_TOKEN}"
        assert request.json() == {
            "text": text,
            "reply": {"in_reply_to_tweet_id": "1859260000000000202"},
        }
    else:
        assert auth == f"Bearer {next(iter(web.platform('bluesky').access))}"
        body = request.json()
        assert (body["repo"], body["collection"]) == (bluesky.DID, "app.bsky.feed.post")
        assert body["record"]["text"] == text
        assert body["record"]["reply"]["parent"] == {
            "uri": GRUMPY_BSKY,
            "cid": "bafyreic5m2d7kq3n5vgy6l2p4rxe7t3jw4hqb6zo5ydu2kfa3nvm7s6eqe",
        }


@pytest.mark.parametrize("platform", WRITERS, ids=lambda p: p.name)
def test_reply_posts_once_records_it_and_marks_the_mention_handled(project, platform):
    polled(project)
    result = project.run("reply", platform.key, "Thanks!", "--yes")
    assert result.code == 0, result.err
    (request,) = writes(project, platform)
    check_request(platform, request, "Thanks!", project.web)
    ((outcome, remote_id, url, error),) = replies(project, platform.key)
    assert outcome == "posted" and error is None
    assert re.fullmatch(platform.remote_id, remote_id), remote_id
    assert re.fullmatch(platform.url, url), url
    assert f"posted: {url}" in result.out.splitlines()
    assert "marked handled" in result.err
    assert status(project, platform.key) == "handled"
    shown = project.run("show", platform.key)
    assert shown.code == 0 and "Thanks!" in shown.out and "posted" in shown.out
    assert url in shown.out.replace("\n", "")

    again = project.run("reply", platform.key, "Thanks!", "--yes")
    assert again.code == 0, again.err
    assert "already replied" in again.err
    assert len(writes(project, platform)) == 1
    assert len(replies(project, platform.key)) == 1


@pytest.mark.parametrize("platform", WRITERS, ids=lambda p: p.name)
def test_keep_open_posts_but_leaves_the_mention_open(project, platform):
    polled(project)
    result = project.run("reply", platform.key, "Thanks!", "--yes", "--keep-open")
    assert result.code == 0, result.err
    assert len(writes(project, platform)) == 1
    assert [r[0] for r in replies(project, platform.key)] == ["posted"]
    assert status(project, platform.key) == "open"
    assert "marked handled" not in result.err


X_LIMITED = {"x-rate-limit-reset": str(int(time.time()) + 3600), "x-rate-limit-remaining": "0"}
X_TOO_MANY = '{"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429}'


@pytest.mark.parametrize(
    ("key", "fault", "reason"),
    [
        ("reddit:t3_1gq4c1d", None, "reddit: reply rejected: THREAD_LOCKED: Comments are locked."),
        ("github:https://github.com/pebblebase/pebble-cli/issues/331", None,
         "github: reply to pebblebase/pebble-cli#331 rejected (HTTP 403): "
         "Unable to create comment because issue is locked."),
        (MASTODON.key,
         ("/mastodon/api/v1/statuses", 422,
          {"body": '{"error": "Validation failed: Text character limit of 500 exceeded"}'}),
         "mastodon: reply refused (HTTP 422): Validation failed: Text character limit of 500 "
         "exceeded"),
        ("x:1859310000000000303", None,
         "x: reply refused (HTTP 403): Reply to this conversation is not allowed"),
        (X.key,
         ("/x/2/tweets", 429, {"headers": X_LIMITED, "body": X_TOO_MANY}),
         "x: reply refused (HTTP 429): Too Many Requests"),
        (MASTODON.key,
         ("/mastodon/api/v1/statuses", 429,
          {"headers": {"X-RateLimit-Reset": "2099-01-01T00:00:00.000Z"},
           "body": '{"error": "Too many requests"}'}),
         "mastodon: rate limited by 127.0.0.1"),
    ],
    ids=["reddit-locked", "github-locked", "mastodon-422", "x-not-summoned", "x-429",
         "mastodon-429"],
)  # fmt: skip
def test_rejected_reply_exits_1_with_the_reason_and_records_the_failure(
    project, key, fault, reason
):
    polled(project)
    if fault:
        prefix, code, kwargs = fault
        project.web.fail(prefix, code, **kwargs)
    result = project.run("reply", key, "Thanks!", "--yes")
    assert result.code == 1
    (line,) = talk(result)
    assert reason in line, line
    assert status(project, key) == "open"
    ((outcome, remote_id, url, error),) = replies(project, key)
    assert (outcome, remote_id, url) == ("failed", None, None)
    assert reason in error
    for secret in (mastodon.TOKEN, github.TOKEN, x.USER_TOKEN, reddit.PASSWORD):
        assert secret not in result.out + result.err


def test_bad_token_is_a_clear_one_line_failure(project):
    polled(project)
    project.write_config(CONFIG.replace(github.TOKEN, "ghp_NotTheRightToken000000000000000000000"))
    result = project.run("reply", GITHUB.key, "Thanks!", "--yes")
    assert result.code == 1
    (line,) = talk(result)
    assert "github" in line and "401" in line and "Bad credentials" in line
    assert "ghp_NotTheRightToken" not in result.err + result.out
    assert status(project, GITHUB.key) == "open"
    assert replies(project, GITHUB.key)[0][0] == "failed"
    assert github.TOKEN not in result.err


@pytest.mark.parametrize("platform", [MASTODON, GITHUB, BLUESKY, REDDIT], ids=lambda p: p.name)
def test_timeout_after_the_post_was_accepted_then_a_retry_posts_exactly_once(project, platform):
    polled(project, HN_AND_RSS + ALL_SOURCES + SHORT_TIMEOUT, poll_settings=False)
    # Every attempt of the first run is accepted but answered too late (Mastodon's own
    # retries, safe with its Idempotency-Key, time out too).
    project.web.fail(platform.write, accept=True, delay=1.5, times=10)
    first = project.run("reply", platform.key, "Thanks!", "--yes")
    assert first.code == 1
    (line,) = talk(first)
    assert "may have accepted it" in line and "run the same command again" in line
    assert status(project, platform.key) == "open"
    assert [r[0] for r in replies(project, platform.key)] == ["unknown"]
    project.web.faults.clear()

    second = project.run("reply", platform.key, "Thanks!", "--yes")
    assert second.code == 0, second.err
    stored = {
        "mastodon": lambda p: p.posted,
        "github": lambda p: [c for c in p.posted if c["body"] == "Thanks!"],
        "bluesky": lambda p: p.records,
        "reddit": lambda p: p.replies,
    }[platform.name](project.web.platform(platform.name))
    assert len(stored) == 1
    outcomes = [r[0] for r in replies(project, platform.key)]
    assert outcomes == ["superseded", "posted"]
    posted = replies(project, platform.key)[-1]
    assert re.fullmatch(platform.remote_id, posted[1]) and re.fullmatch(platform.url, posted[2])
    assert status(project, platform.key) == "handled"
    if platform is MASTODON:
        # Every attempt sent the same Idempotency-Key; the second run found the post.
        keys = {r.headers["idempotency-key"] for r in writes(project, platform)}
        assert len(keys) == 1
    else:
        assert len(writes(project, platform)) == 1  # found by find_reply: not sent again


def test_without_yes_and_without_a_terminal_nothing_is_posted(project):
    polled(project)
    result = project.run("reply", BLUESKY.key, "Thanks!")
    assert result.code == 2
    assert "pass --yes" in result.err
    assert writes(project, BLUESKY) == []
    assert replies(project, BLUESKY.key) == []


def test_dry_run_shows_mention_reply_and_length_and_posts_nothing(project):
    polled(project)
    before = len(project.web.seen("/bluesky"))
    result = project.run("reply", BLUESKY.key, "Thanks, Ada!", "--dry-run")
    assert result.code == 0, result.err
    assert "grumpydev.bsky.social" in result.out
    assert "Thanks, Ada!" in result.out
    assert "12/300" in result.out
    assert "dry run: nothing posted" in result.err
    assert len(project.web.seen("/bluesky")) == before
    assert replies(project, BLUESKY.key) == []


@pytest.mark.parametrize(
    ("platform", "limit"), [(BLUESKY, 300), (X, 280), (MASTODON, 500)], ids=lambda v: str(v)
)
def test_over_long_reply_is_refused_before_any_request(project, platform, limit):
    polled(project)
    before = len(project.web.requests)
    result = project.run("reply", platform.key, "é" * (limit + 1), "--yes")
    assert result.code == 2  # bad input, as an empty reply is (design.md's exit codes)
    (line,) = talk(result)
    assert f"{limit + 1} characters" in line and f"allows {limit}" in line
    empty = project.run("reply", platform.key, " \n ", "--yes")
    assert empty.code == 2 and talk(empty) == ["mentionwatch: the reply is empty; nothing posted"]
    assert len(project.web.requests) == before
    assert replies(project, platform.key) == []


@pytest.mark.parametrize(
    ("key", "link"),
    [
        ("hackernews:42818210",  # a comment: HN's reply form, back to the comment
         "https://news.ycombinator.com/reply?id=42818210&goto=item%3Fid%3D42817001%2342818210"),
        ("hackernews:42817001", "https://news.ycombinator.com/item?id=42817001"),  # a story
    ],
)  # fmt: skip
def test_hacker_news_reply_page(project, key, link):
    polled(project)
    result = project.run("reply", key, "Thanks!", "--yes")
    assert result.code == 0, result.err
    assert link in result.out.splitlines()
    assert replies(project, key) == [("link", None, link, None)]
    assert status(project, key) == "open"


def test_stack_exchange_and_rss_reply_pages(project):
    polled(project)
    for key, url in project.rows(
        "SELECT key, url FROM mentions WHERE source IN ('stackexchange', 'rss') ORDER BY key"
    ):
        result = project.run("reply", key, "Thanks!", "--yes")
        assert result.code == 0, result.err
        assert url in result.out.splitlines()
        assert replies(project, key) == [("link", None, url, None)]
        if key.startswith("stackexchange:"):
            assert re.fullmatch(r"https://stackoverflow\.com/(q|a)/\d+", url) or re.fullmatch(
                r"https://stackoverflow\.com/questions/\d+/.*", url
            ), url
    assert project.web.seen("/stackexchange/2.3/questions") == []
