"""Reddit against the loopback web: OAuth, search with a fullname cursor, comment streams,
errors, and replies."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from conftest import HN_AND_RSS

from mentionwatch.http import SourceError
from mentionwatch.models import Mention, utcnow
from mentionwatch.sources.base import Posted
from mentionwatch.testing.platforms.reddit import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME
from mentionwatch.testing.server import HTML_BLOCKED

REDDIT = f"""
[sources.reddit]
base_url = "{{web}}/reddit/oauth"
auth_url = "{{web}}/reddit"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
username = "{USERNAME}"
password = "{PASSWORD}"
subreddits = ["SideProject", "r/webdev"]
"""
CONFIG = HN_AND_RSS + REDDIT
SEARCH = "/reddit/oauth/search"
TOO_MUCH = "you are doing that too much. try again in 9 minutes"
USER_AGENT = f"python:mentionwatch:0.1.0 (by /u/{USERNAME})"


def records(project, source="reddit"):
    return {r["key"]: r for r in project.run("export", "--source", source).jsonl()}


def assert_no_secrets(project, *outputs):
    issued = list(project.web.platform("reddit").tokens)
    for text in outputs:
        for secret in (CLIENT_SECRET, PASSWORD, *issued):
            assert secret not in text


def about(iso: str, seconds_ago: float) -> bool:
    moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return abs(time.time() - seconds_ago - moment.timestamp()) < 5


def test_poll_stores_posts_and_subreddit_comments(project):
    project.write_config(CONFIG)
    result = project.run("poll")
    assert result.code == 0, result.err
    found = records(project)
    assert set(found) == {
        "reddit:t3_1gq7k2a",
        "reddit:t3_1gq4c1d",
        "reddit:t3_1gq2b7e",
        "reddit:t3_1gq1x00",
        "reddit:t1_lx3k9qa",
        "reddit:t1_lx3h7b2",
    }  # not the near misses (Pebble Base Camp, pebblebased), the broken post or the subreddit
    post = found["reddit:t3_1gq7k2a"]
    permalink = "/r/SideProject/comments/1gq7k2a/moved_my_side_projects_to_pebblebase_notes/"
    assert post["url"] == post["reply_url"] == "https://www.reddit.com" + permalink
    assert (post["author"], post["author_name"]) == ("quietbuilder", None)
    assert post["title"] == "Moved my 3 side projects to Pebblebase & wrote up some notes"
    # raw_json=1 was sent, so the markdown arrives unescaped.
    assert post["text"] == (
        "Took one evening. **Branching** is the killer feature <3\n\n"
        "The free tier is generous & the CLI is tiny. Would recommend."
    )
    assert post["reach"] == 87 and about(post["created_at"], 2 * 3600)
    assert found["reddit:t3_1gq2b7e"]["author"] is None  # [deleted]
    link_post = found["reddit:t3_1gq1x00"]
    assert link_post["text"] == "" and link_post["reach"] == 142
    comment = found["reddit:t1_lx3h7b2"]  # permalink null: the URL is built
    assert comment["url"] == "https://www.reddit.com/r/webdev/comments/1gpyy77/_/lx3h7b2/"
    assert comment["title"] == "Postgres alternatives for tiny apps"
    assert comment["text"].startswith("Does Pebblebase support row-level security yet?")
    assert len(records(project, "hackernews")) == 10


def test_text_arrives_as_typed_an_entity_written_out_included(project):
    # raw_json=1 asks Reddit for the text as people typed it: "&amp;" written out is text,
    # and decoding it again would turn it into "&".
    reddit = project.web.platform("reddit")
    typed = "pebblebase tip: in HTML write &amp; for &, and &lt;3 is how <3 is escaped"
    post = reddit.add_item(typed, time.time() - 120)
    comment = reddit.add_comment("SideProject", f"re: {typed}", time.time() - 60)
    reddit.extra_comments[-1]["data"].update(link_id=post[7:], parent_id=post[7:])
    project.write_config(CONFIG)
    assert project.run("poll").code == 0
    found = records(project)
    assert found[post]["title"] == typed
    assert found[comment]["text"] == f"re: {typed}"
    shown = project.run("show", comment)  # the post it replies to, read with /api/info
    assert shown.code == 0, shown.err
    assert typed in " ".join(shown.out.split())


def test_requests_carry_oauth_and_a_descriptive_user_agent(project):
    project.write_config(CONFIG)
    project.run("poll")
    (login,) = project.web.seen("/reddit/api/v1/access_token")  # one token for every job
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert login.headers["authorization"] == f"Basic {basic}"
    assert login.form() == {"grant_type": "password", "username": USERNAME, "password": PASSWORD}
    assert login.headers["user-agent"] == USER_AGENT
    (search,) = project.web.seen(SEARCH)
    assert search.query["q"] == ['("pebblebase" OR "pebble base") -"pebble base camp"']
    assert {k: v[0] for k, v in search.query.items() if k != "q"} == {
        "sort": "new", "t": "month", "type": "link", "limit": "100", "raw_json": "1",
    }  # fmt: skip
    token = next(iter(project.web.platform("reddit").tokens))
    for request in project.web.seen("/reddit/oauth"):
        assert request.headers["authorization"] == f"bearer {token}"
        assert request.headers["user-agent"] == USER_AGENT
    assert {r.path for r in project.web.seen("/reddit/oauth/r/")} == {
        "/reddit/oauth/r/SideProject/comments",
        "/reddit/oauth/r/webdev/comments",
    }


def test_second_poll_stops_at_the_cursor_and_finds_only_the_new_post(project):
    project.write_config(CONFIG)
    project.run("poll")
    fresh = _post("1gqnew1", "Pebblebase just added point-in-time restore!", time.time() - 60)
    project.web.platform("reddit").extra_posts.append(fresh)
    again = project.run("poll")
    assert again.code == 0 and "reddit: 1 new" in again.out
    assert records(project)["reddit:t3_1gqnew1"]["reach"] == 3
    last = project.web.seen(SEARCH)[-1]
    assert "after" not in last.query and last.query["t"] == ["day"]
    third = project.run("poll")
    assert "0 new mention(s)" in third.out
    assert len(project.web.seen("/reddit/api/v1/access_token")) == 1  # the token was reused


def test_pages_back_with_after_until_the_window_is_covered(project):
    project.write_config(CONFIG)
    now = time.time()
    many = [_post(f"1gqp{i:03d}", f"Pebblebase tip #{i}", now - 60 * i) for i in range(1, 131)]
    project.web.platform("reddit").extra_posts.extend(many)
    assert project.run("poll").code == 0
    first, second = project.web.seen(SEARCH)
    assert "after" not in first.query and second.query["after"] == ["t3_1gqp100"]
    assert len([k for k in records(project) if k.startswith("reddit:t3_1gqp")]) == 130


def test_expired_token_is_replaced_once(project):
    project.write_config(CONFIG)
    project.run("poll")
    project.web.platform("reddit").expire_tokens()
    again = project.run("poll")
    assert again.code == 0, again.err
    assert len(project.web.seen("/reddit/api/v1/access_token")) == 2


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            {"status": 403, "body": HTML_BLOCKED, "content_type": "text/html"},
            "got an HTML page instead of JSON (Blocked): blocked",
        ),
        ({"status": 403, "body": '{"message": "Forbidden", "error": 403}'}, "Forbidden"),
        ({"status": 401, "times": 2, "body": '{"message": "Unauthorized", "error": 401}'},
         "HTTP 401"),
        ({"status": 429, "times": 5, "headers": {"x-ratelimit-reset": "3000"}},
         "rate limited by 127.0.0.1"),
        ({"status": 500, "times": 5}, "HTTP 500"),
        ({"status": 200, "truncate": True}, "malformed or truncated"),
    ],
)  # fmt: skip
def test_errors_fail_reddit_only_and_leak_no_secret(project, fault, expected):
    project.write_config(CONFIG)
    project.web.fail(SEARCH, **fault)
    result = project.run("poll")
    assert result.code == 1
    line = next(x for x in result.err.splitlines() if x.startswith("error: reddit:"))
    assert expected in line
    assert len(records(project, "hackernews")) == 10
    assert_no_secrets(project, result.out, result.err)


def test_short_rate_limit_reset_is_waited_out(project):
    project.write_config(CONFIG)
    project.web.fail(SEARCH, status=429, headers={"x-ratelimit-reset": "0"})
    result = project.run("poll")
    assert result.code == 0, result.err
    assert len(project.web.seen(SEARCH)) == 2
    assert "reddit:t3_1gq7k2a" in records(project)


def test_exhausted_window_stops_before_the_next_call(project):
    project.write_config(CONFIG.replace('subreddits = ["SideProject", "r/webdev"]', ""))
    platform = project.web.platform("reddit")
    now = time.time()
    platform.extra_posts.extend(_post(f"1gqp{i:03d}", "Pebblebase", now - i) for i in range(1, 131))
    platform.remaining = 1.0  # the first page uses the last request of the window
    result = project.run("poll")
    assert result.code == 1
    assert "reddit: rate limit of 127.0.0.1:" in result.err
    assert "used up; it resets in 6 min, try again then" in result.err
    assert len(project.web.seen(SEARCH)) == 1
    assert len(records(project)) == 100  # the page already read is kept


def test_wrong_password_is_a_clear_login_error(project):
    project.write_config(CONFIG.replace(PASSWORD, "not-the-password"))
    result = project.run("poll")
    assert result.code == 1
    assert "reddit: login failed: invalid_grant" in result.err
    assert "not-the-password" not in result.err + result.out
    assert len(records(project, "hackernews")) == 10


def test_missing_credentials_fail_reddit_only(project):
    project.write_config(HN_AND_RSS + '\n[sources.reddit]\nclient_id = "abc"\n')
    result = project.run("poll")
    assert result.code == 1
    assert "sources.reddit.client_id and sources.reddit.client_secret" in result.err
    assert len(records(project, "hackernews")) == 10
    half = project.write_config(CONFIG.replace(f'password = "{PASSWORD}"', ""))
    assert half and "sources.reddit.password" in project.run("poll").err


# Replies and checks, called the way the reply command does.


def mention(fullname="t3_1gq7k2a", subreddit="SideProject"):
    return Mention(
        "reddit", fullname, "text", utcnow(), extra={"fullname": fullname, "subreddit": subreddit}
    )


def test_reply_posts_the_comment_form_and_is_found_again(project):
    project.write_config(CONFIG)
    web = project.web

    async def flow(source):
        posted = await source.reply(mention(), "Thanks for the write-up!", "key-1")
        found = await source.find_reply(mention(), "Thanks for the write-up!")
        other = await source.find_reply(mention(), "Something else")
        return posted, found, other

    posted, found, other = project.call_source("reddit", flow)
    (sent,) = web.seen("/reddit/oauth/api/comment")
    assert sent.method == "POST"
    assert sent.form() == {
        "api_type": "json",
        "thing_id": "t3_1gq7k2a",
        "text": "Thanks for the write-up!",
    }
    assert sent.headers["authorization"].startswith("bearer ")
    assert sent.headers["user-agent"] == USER_AGENT
    assert posted == Posted(
        "t1_m000001", "https://www.reddit.com/r/SideProject/comments/1gq7k2a/_/m000001/"
    )
    assert found == posted and other is None


@pytest.mark.parametrize(
    ("target", "queued", "reason"),
    [
        ("t3_1gq4c1d", None, "reddit: reply rejected: THREAD_LOCKED: Comments are locked."),
        ("t3_1gq7k2a", ["RATELIMIT", f"{TOO_MUCH}.", "ratelimit"], f"RATELIMIT: {TOO_MUCH}."),
    ],
)  # fmt: skip
def test_reply_rejections_arrive_as_http_200_errors(project, target, queued, reason):
    project.write_config(CONFIG)
    web = project.web
    if queued:
        web.platform("reddit").reply_errors.append(queued)
    with pytest.raises(SourceError, match=reason.replace(".", r"\.")):
        project.call_source("reddit", lambda source: source.reply(mention(target), "hello", "k"))
    assert web.platform("reddit").replies == []


def test_app_only_access_cannot_reply_and_says_why(project):
    project.write_config(
        CONFIG.replace(f'username = "{USERNAME}"', "").replace(f'password = "{PASSWORD}"', "")
    )
    web = project.web

    def problem(source):
        async def go():
            return source.reply_problem(mention()), await source.check()

        return go()

    reason, check = project.call_source("reddit", problem)
    assert "set sources.reddit.username and sources.reddit.password" in reason
    assert check.startswith("app-only token works")
    login = web.seen("/reddit/api/v1/access_token")[0]
    assert login.form() == {"grant_type": "client_credentials"}
    assert login.headers["user-agent"] == "python:mentionwatch:0.1.0 (app-only)"


def test_check_names_the_account(project):
    project.write_config(CONFIG)
    line = project.call_source("reddit", lambda source: source.check())
    assert line == f"authenticated as u/{USERNAME}"


def _post(post_id: str, title: str, created: float) -> dict:
    return {
        "kind": "t3",
        "data": {
            "id": post_id, "name": f"t3_{post_id}", "title": title, "selftext": "",
            "permalink": f"/r/SideProject/comments/{post_id}/x/", "author": "someone",
            "subreddit": "SideProject", "created_utc": float(int(created)), "score": 3,
            "is_self": True,
        },
    }  # fmt: skip


def test_show_reads_what_a_comment_replies_to_once(project):
    project.write_config(CONFIG)
    project.run("poll")
    shown = project.run("show", "reddit:t1_lx3h7b2")  # replies to a comment
    assert shown.code == 0, shown.err
    comment = "/r/webdev/comments/1gpyy77/postgres_alternatives_for_tiny_apps/lx3a000/"
    assert f"in reply to tiny_apps_tess  https://www.reddit.com{comment}" in shown.out
    assert "branching for previews & nightly backups out of the box" in shown.out
    assert "thread started by minimal_mo" in shown.out
    assert "Postgres feels like overkill for a todo app" in shown.out
    (asked,) = project.web.seen("/reddit/oauth/api/info")
    assert asked.query["id"] == ["t1_lx3a000,t3_1gpyy77"]
    assert asked.headers["user-agent"] == USER_AGENT
    project.run("show", "reddit:t1_lx3h7b2")  # kept with the mention: no second request
    assert len(project.web.seen("/reddit/oauth/api/info")) == 1

    on_post = project.run("show", "reddit:t1_lx3k9qa").out  # replies to the post itself
    assert "in reply to weekend_hacker" in on_post
    assert "What database are you using for your side project in 2026?" in on_post
    assert "JSON file & a prayer" in on_post and "thread started by" not in on_post

    top = project.run("show", "reddit:t3_1gq7k2a")
    assert top.code == 0 and "in reply to" not in top.out
    assert len(project.web.seen("/reddit/oauth/api/info")) == 2
