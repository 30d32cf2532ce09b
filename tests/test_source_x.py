"""X: recent search with a read cap, errors, and replies under the summon rule."""

from __future__ import annotations

import time

import pytest
from conftest import HN_AND_RSS

from mentionwatch.http import SourceError
from mentionwatch.testing.platforms.x import BEARER, USER_TOKEN
from mentionwatch.testing.server import HTML_BLOCKED

SEARCH = "/x/2/tweets/search/recent"


def _config(cap: int = 100, user_token: bool = False) -> str:
    user = f'user_token = "{USER_TOKEN}"\n' if user_token else ""
    return (
        HN_AND_RSS
        + f"""
[sources.x]
base_url = "{{web}}/x"
bearer_token = "{BEARER}"
max_reads_per_poll = {cap}
{user}"""
    )


def _records(project) -> dict[str, dict]:
    return {r["author"]: r for r in project.run("export", "--source", "x").jsonl()}


def _extra_posts(count: int, spacing: float = 30) -> list[dict]:
    """Posts `spacing` seconds apart, the newest a minute old."""
    now = time.time()
    return [
        {
            "id": str(1859500000000000000 + i),
            "text": f"Pebblebase tip #{i}: branches are cheap, use them",
            "created_at": _stamp(now - 60 - (count - 1 - i) * spacing),
            "author_id": "2244994945",
        }
        for i in range(count)
    ]


def _stamp(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(moment))


def _sent_start(request) -> float:
    return time.mktime(time.strptime(request.arg("start_time"), "%Y-%m-%dT%H:%M:%SZ")) - (
        time.mktime(time.gmtime(0))
    )


def test_poll_stores_posts_with_authors_and_full_text(project):
    project.write_config(_config())
    result = project.run("poll")
    assert result.code == 0, result.err
    assert "(read 5 posts)" in result.out
    records = _records(project)
    # X itself drops "Pebble Base Camp"; the garden post only matched through its link.
    assert set(records) == {"adabuilds", "grumpy_ops", "theo_data", "pebblebase"}
    ada = records["adabuilds"]
    assert ada["key"] == "x:1859200000000000101"
    assert ada["url"] == "https://x.com/adabuilds/status/1859200000000000101"
    assert ada["author_name"] == "Ada Builds"
    assert ada["text"].startswith("Shipped my weekend project on @pebblebase")
    assert "Zero config & the free tier" in ada["text"]  # &amp; unescaped
    assert ada["reach"] == 35  # 31 likes + 4 reposts
    assert ada["created_at"].endswith("Z")
    assert ada["reply_url"] == "https://x.com/intent/post?in_reply_to=1859200000000000101"
    # A long post: the full note_tweet text, not the truncated one.
    assert records["theo_data"]["text"].endswith(
        "Any experiences with the CDC feature, good or bad?"
    )
    (request,) = project.web.seen(SEARCH)
    assert request.headers["authorization"] == f"Bearer {BEARER}"
    assert request.query["query"] == [
        '("pebblebase" OR "pebble base") -"pebble base camp" -is:retweet'
    ]
    assert request.query["expansions"] == ["author_id"]


def test_second_poll_reads_back_a_minute_past_the_newest_post(project):
    project.write_config(_config())
    project.run("poll")
    again = project.run("poll")
    assert again.code == 0, again.err
    # Only the newest post (3 h old) is within a minute of itself: read again, stored once.
    assert "x: 0 new of 1 fetched" in again.out and "read 1 posts" in again.out
    first, second = project.web.seen(SEARCH)
    assert "since_id" not in first.query and "since_id" not in second.query
    assert _sent_start(first) == pytest.approx(time.time() - 7 * 86400 + 60, abs=30)
    assert _sent_start(second) == pytest.approx(time.time() - 3 * 3600 - 60, abs=30)


def test_a_post_indexed_late_behind_the_newest_one_is_still_found(project):
    platform = project.web.platform("x")
    platform.extra_posts.extend(_extra_posts(1))
    project.write_config(_config())
    project.run("poll")
    # Searchable only now, though created 30 s before the newest post the last poll saw.
    late = {**_extra_posts(1)[0], "id": "1859499999999999999", "text": "pebblebase, late"}
    late["created_at"] = _stamp(time.time() - 90)
    platform.extra_posts.append(late)
    again = project.run("poll")
    assert again.code == 0, again.err
    assert "x: 1 new" in again.out
    assert "x:1859499999999999999" in {r["key"] for r in _records(project).values()} | {
        k for (k,) in project.rows("SELECT key FROM mentions")
    }


def test_not_polled_for_a_week_reads_what_recent_search_still_has(project):
    project.write_config(_config() + "\n[poll]\nlookback_days = 10\n", poll_settings=False)
    result = project.run("poll")
    assert result.code == 0, result.err
    assert "posts before" in result.out and "beyond recent search's 7 days" in result.out
    (request,) = project.web.seen(SEARCH)
    assert _sent_start(request) == pytest.approx(time.time() - 7 * 86400 + 60, abs=30)


def test_read_cap_never_overshoots_and_never_skips(project):
    platform = project.web.platform("x")
    platform.extra_posts.extend(_extra_posts(15))  # 20 matching posts in all
    project.write_config(_config(cap=10))
    first = project.run("poll")
    assert "(read 10 posts; max_reads_per_poll reached" in first.out
    assert platform.reads == 10

    second = project.run("poll")
    assert platform.reads == 20
    gap = project.web.seen(SEARCH)[-1]
    assert gap.query["until_id"] == ["1859500000000000005"]  # the oldest post read
    assert gap.query["max_results"] == ["10"]
    assert "read 10 posts" in second.out

    for _ in range(3):
        result = project.run("poll")
        assert "max_reads_per_poll reached" not in result.out
        assert platform.reads - 20 <= 10 * 3
    keys = [k for (k,) in project.rows("SELECT key FROM mentions WHERE source = 'x'")]
    assert len(keys) == len(set(keys)) == 19  # every match stored once (the camp post is not)
    # Later polls only re-read the minute before the newest post: two posts, 30 s apart.
    assert project.web.seen(SEARCH)[-1].query["start_time"] == [
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_created(platform, 14) - 60))
    ]


def _created(platform, i: int) -> float:
    post = next(p for p in platform.extra_posts if p["id"] == str(1859500000000000000 + i))
    return time.mktime(time.strptime(post["created_at"], "%Y-%m-%dT%H:%M:%S.000Z")) - (
        time.mktime(time.gmtime(0))
    )


def test_cap_is_shared_by_every_term(project):
    project.web.platform("x").extra_posts.extend(_extra_posts(15))
    project.write_config(_config(cap=20) + '\n[[terms]]\nname = "tips"\nquery = "tip"\n')
    result = project.run("poll", "--source", "x")
    assert result.code == 0, result.err
    # Terms are read in config order: the first one spends the cap, the second waits.
    assert project.web.platform("x").reads == 20
    assert "read 20 posts" in result.out
    assert "max_reads_per_poll reached" in result.out


@pytest.mark.parametrize(
    ("status", "kwargs", "expected"),
    [
        (
            401,
            {"body": '{"title":"Unauthorized","type":"about:blank","status":401,'
             '"detail":"Unauthorized"}'},
            "HTTP 401",
        ),
        (
            403,
            {"body": '{"title":"Client Forbidden","detail":"When authenticating requests to the '
             'Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer '
             'App that is attached to a Project.","reason":"client-not-enrolled",'
             '"type":"https://api.twitter.com/2/problems/client-forbidden"}'},
            "must use keys and tokens from a Twitter developer App",
        ),
        (403, {"body": HTML_BLOCKED, "content_type": "text/html"}, "HTML page"),
        (500, {"times": 5}, "HTTP 500"),
        (200, {"truncate": True}, "malformed or truncated"),
        (
            429,
            {"headers": {"x-rate-limit-reset": str(int(time.time()) + 3600)},
             "body": '{"title":"Too Many Requests","detail":"Too Many Requests",'
             '"type":"about:blank","status":429}'},
            "rate limited by 127.0.0.1",
        ),
    ],
)  # fmt: skip
def test_errors_fail_x_only(project, status, kwargs, expected):
    project.write_config(_config())
    project.web.fail(SEARCH, status, **kwargs)
    result = project.run("poll")
    assert result.code == 1
    assert "error: x:" in result.err and expected in result.err
    assert BEARER not in result.err + result.out
    assert "hackernews: 10 new" in result.out
    assert project.rows("SELECT count(*) FROM mentions WHERE source = 'x'") == [(0,)]


def test_short_rate_limit_waits_for_epoch_reset(project):
    project.write_config(_config())
    project.web.fail(SEARCH, 429, headers={"x-rate-limit-reset": str(int(time.time()))})
    result = project.run("poll", "--source", "x")
    assert result.code == 0, result.err
    assert len(project.web.seen(SEARCH)) == 2
    assert "adabuilds" in _records(project)


def test_failure_on_a_later_page_keeps_what_was_read(project):
    platform = project.web.platform("x")
    platform.extra_posts.extend(_extra_posts(115, spacing=5))  # 120 matching: two pages
    platform.fail_paging = True
    project.write_config(_config(cap=500))
    failed = project.run("poll", "--source", "x")
    assert failed.code == 1
    assert "error: x: HTTP 503" in failed.err and "Service Unavailable" in failed.err
    # The first page was paid for: it is saved, and the cursor remembers the gap.
    assert platform.reads == 100
    assert project.rows("SELECT count(*) FROM mentions WHERE source = 'x'") == [(100,)]
    platform.fail_paging = False
    project.run("poll", "--source", "x")
    # The gap (20 posts), then the minute before the newest post again (12 posts 5 s apart).
    assert platform.reads == 100 + 20 + 12
    assert project.rows("SELECT count(*) FROM mentions WHERE source = 'x'") == [(119,)]


def test_missing_bearer_token_fails_x_only(project):
    project.write_config(HN_AND_RSS + '\n[sources.x]\nbase_url = "{web}/x"\n')
    result = project.run("poll")
    assert result.code == 1
    assert "x: missing credentials: set sources.x.bearer_token" in result.err
    assert "hackernews: 10 new" in result.out
    assert project.web.seen("/x") == []


# Replies: the source called directly, as the reply command does.


GRUMPY, THEO = "x:1859260000000000202", "x:1859310000000000303"


def test_reply_posts_with_user_token_and_is_found_again(project):
    project.write_config(_config(user_token=True))
    project.run("poll")
    grumpy = project.mention(GRUMPY)
    text = "So sorry about this. Can you DM us your project id? We're on it."

    async def act(source):
        assert await source.find_reply(grumpy, text) is None
        posted = await source.reply(grumpy, text, "ignored-by-x")
        return posted, await source.find_reply(grumpy, text)

    posted, found = project.call_source("x", act)
    (request,) = [r for r in project.web.seen("/x/2/tweets") if r.method == "POST"]
    assert request.path == "/x/2/tweets"
    assert request.headers["authorization"] == f"Bearer {USER_TOKEN}"
    assert request.json() == {
        "text": text,
        "reply": {"in_reply_to_tweet_id": "1859260000000000202"},
    }
    assert posted.url == f"https://x.com/i/web/status/{posted.remote_id}"
    assert found is not None and found.remote_id == posted.remote_id
    assert found.url == f"https://x.com/pebblebase/status/{posted.remote_id}"


def test_reply_to_post_that_did_not_summon_us_explains_why(project):
    project.write_config(_config(user_token=True))
    project.run("poll")
    theo = project.mention(THEO)
    with pytest.raises(SourceError) as caught:
        project.call_source("x", lambda s: s.reply(theo, "We do!", "k"))
    message = str(caught.value)
    assert message.startswith("x: reply refused (HTTP 403): Reply to this conversation is not")
    assert "only to posts whose author mentioned or quoted your account" in message
    assert "https://x.com/intent/post?in_reply_to=1859310000000000303" in message
    assert USER_TOKEN not in message
    assert project.web.platform("x").posted == []


def test_reply_needs_user_token_and_counts_like_x(project):
    project.write_config(_config())

    async def check(source):
        assert "sources.x.user_token" in source.reply_problem(None)
        with pytest.raises(SourceError, match=r"sources\.x\.user_token"):
            await source.reply(None, "hi", "k")
        return source.reply_length("日本 ok https://pebblebase.io/a/very/long/path 👍")

    assert project.call_source("x", check) == 4 + 4 + 23 + 1 + 2


def test_check_reports_usage_and_reply_account(project):
    project.write_config(_config(user_token=True))
    line = project.call_source("x", lambda s: s.check())
    assert line == "bearer token works: 2413 of 3000000 posts read this billing cycle; " \
        "replies as @pebblebase"  # fmt: skip


def test_show_looks_up_the_post_a_reply_answers_once(project):
    project.write_config(_config())
    project.run("poll")
    assert project.mention(THEO).extra["in_reply_to_id"] == "1859300000000000050"
    reads = project.web.platform("x").reads
    shown = project.run("show", THEO)
    assert shown.code == 0, shown.err
    assert "in reply to dbweekly  https://x.com/dbweekly/status/1859300000000000050" in shown.out
    assert "which hosted databases actually do logical replication / CDC well?" in shown.out
    assert "Burned twice this year & looking" in shown.out  # entities decoded
    (asked,) = project.web.seen("/x/2/tweets/1859300000000000050")
    assert asked.headers["authorization"] == f"Bearer {BEARER}"
    assert asked.query["expansions"] == ["author_id"]
    assert project.web.platform("x").reads == reads + 1  # one billed read
    project.run("show", THEO)  # kept with the mention: no second request
    assert len(project.web.seen("/x/2/tweets/1859300000000000050")) == 1

    top = project.run("show", GRUMPY)
    assert top.code == 0 and "in reply to" not in top.out
    assert [r.path for r in project.web.seen("/x/2/tweets/1")] == [asked.path]
