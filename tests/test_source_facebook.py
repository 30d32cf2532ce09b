"""The facebook source end to end: the founder's Page through the real CLI and the loopback
Graph API (comments, tags, visitor posts, replies, private replies, usage headers)."""

from __future__ import annotations

import time

import pytest

from mentionwatch.testing.platforms.facebook import NEWEST_POST, PAGE_ID, PAGE_TOKEN

CONFIG = f"""
[[terms]]
name = "pebblebase"
query = 'pebblebase OR "pebble base" -"pebble base camp"'

[sources.facebook]
base_url = "{{web}}/facebook/v25.0"
page_id = "{PAGE_ID}"
token = "{PAGE_TOKEN}"
"""
LONG_LOOKBACK = "[poll]\nbackoff = 0.01\nretries = 2\ntimeout = 5\nlookback_days = 14\n"
SHORT_TIMEOUT = "[poll]\nbackoff = 0.01\nretries = 2\ntimeout = 0.5\nlookback_days = 14\n"
MARTA = "facebook:880011223344551_1200000000000101"  # a comment, 4 h old
OLD = "facebook:880011223344440_1200000000000051"  # a comment, 9 days old
VISITOR = "facebook:104738291022334_880011223349999"
TAGGED = "facebook:3399001122_55660011223344"


def polled(project, extra: str = LONG_LOOKBACK):
    project.write_config(CONFIG + extra, poll_settings=False)
    result = project.run("poll")
    assert result.code == 0, result.err
    return result


def record(project, key: str) -> dict:
    return next(r for r in project.run("export", "--format", "jsonl").jsonl() if r["key"] == key)


def graph_posts(project, suffix: str) -> list:
    return [r for r in project.web.seen(f"/facebook/v25.0/{suffix}") if r.method == "POST"]


def test_poll_reads_comments_tags_and_visitor_posts_of_the_page(project):
    result = polled(project)
    assert "facebook: 7 new of 7 fetched, 3 job(s)" in result.out
    keys = {k for (k,) in project.rows("SELECT key FROM mentions")}
    assert keys == {
        MARTA, OLD, VISITOR, TAGGED,
        "facebook:880011223344551_1200000000000103",
        "facebook:880011223344551_1200000000000104",
        "facebook:3399005566_55660011229999",
    }  # fmt: skip
    # The Page's own reply is not a mention.
    assert "facebook:880011223344551_1200000000000102" not in keys
    marta = record(project, MARTA)
    assert marta["author"] == "Marta Kowalski" and marta["reach"] == 4
    assert marta["title"].startswith("Pebblebase 2.4 is out")  # the post it comments on
    assert marta["url"].endswith("comment_id=1200000000000101")
    # A comment on the Page is addressed to it: kept though it names no term.
    question = record(project, "facebook:880011223344551_1200000000000104")
    assert "pebblebase" not in question["text"].lower() and question["terms"] == ["pebblebase"]
    assert question["author"] is None  # Graph left `from` out
    tagged = record(project, "facebook:3399005566_55660011229999")
    assert tagged["author"] is None and "hackathon" in tagged["text"]
    # Every request carried the Page token as a bearer token, never in the URL.
    for request in project.web.seen("/facebook/"):
        assert request.headers["authorization"] == f"Bearer {PAGE_TOKEN}"
        assert PAGE_TOKEN not in str(request.query)


def test_the_next_poll_asks_only_posts_with_new_comments_and_stores_nothing_twice(project):
    polled(project)
    before = len(project.web.seen("/facebook/"))
    again = project.run("poll")
    assert again.code == 0 and "0 new" in again.out
    asked = [r.path for r in project.web.seen("/facebook/")[before:]]
    # The old post's updated_time is before the mark: its comments are not asked again.
    assert not [p for p in asked if "880011223344440/comments" in p]
    assert [p for p in asked if f"{NEWEST_POST}/comments" in p]
    comment = project.web.platform("facebook").add_item(
        "pebblebase export keeps timing out", time.time()
    )
    third = project.run("poll")
    assert third.code == 0 and "facebook: 1 new" in third.out
    assert comment in {k for (k,) in project.rows("SELECT key FROM mentions")}


def test_a_long_comment_thread_is_paged_to_what_is_stored(project):
    polled(project)
    platform = project.web.platform("facebook")
    start = time.time()
    keys = {platform.add_item(f"comment number {i}", start - i) for i in range(230)}
    result = project.run("poll")
    assert result.code == 0, result.err
    stored = {k for (k,) in project.rows("SELECT key FROM mentions")}
    assert keys <= stored
    pages = [r for r in project.web.seen(f"/facebook/v25.0/{NEWEST_POST}/comments")
             if r.query.get("after")]  # fmt: skip
    assert len(pages) >= 2  # three pages of 100, through the cursor after each


@pytest.mark.parametrize(
    ("switch", "says"),
    [
        (lambda p: setattr(p, "expired", True),
         "Error validating access token: Session has expired"),
        (lambda p: setattr(p, "throttled", True), "(#32) Page request limit reached"),
    ],
    ids=["expired-token", "page-throttled"],
)  # fmt: skip
def test_graph_errors_are_one_line_each(project, switch, says):
    project.write_config(CONFIG + LONG_LOOKBACK, poll_settings=False)
    switch(project.web.platform("facebook"))
    result = project.run("poll")
    assert result.code == 1
    lines = [line for line in result.err.splitlines() if line.startswith("error: facebook")]
    assert lines and all(says in line for line in lines), result.err
    assert PAGE_TOKEN not in result.err + result.out
    if "expired" in says:
        assert "(#190, subcode 463)" in lines[0] and "get a new Page access token" in lines[0]
    else:  # throttled: a rate limit, with when to try again
        assert "try again then" in lines[0]


def test_a_permission_refusal_names_the_permission(project):
    project.write_config(CONFIG + LONG_LOOKBACK, poll_settings=False)
    project.web.fail("/facebook/v25.0/104738291022334/tagged", 403, body=(
        '{"error": {"message": "(#10) Application does not have permission for this action", '
        '"type": "OAuthException", "code": 10, "fbtrace_id": "AbC"}}'))  # fmt: skip
    result = project.run("poll")
    assert result.code == 1
    (line,) = [x for x in result.err.splitlines() if x.startswith("error: facebook")]
    assert "(#10) Application does not have permission" in line
    assert "lacks a permission (pages_read_user_content)" in line
    # The other jobs were saved.
    assert project.rows("SELECT count(*) FROM mentions")[0][0] == 5


def test_usage_headers_near_the_limit_stop_calls_and_show_in_sources(project):
    platform = project.web.platform("facebook")
    platform.usage.percent = 96
    project.write_config(CONFIG + LONG_LOOKBACK, poll_settings=False)
    result = project.run("poll")
    assert result.code == 1
    assert "rate limit of 127.0.0.1" in result.err and "used up" in result.err
    assert "try again then" in result.err
    # One answer said 96 %: nothing more was asked of the Page in that poll.
    assert len(project.web.seen("/facebook/")) <= 3
    shown = project.run("sources")
    assert "96% of Meta's rate limit used" in shown.out
    platform.usage.percent = 12
    calmer = project.run("poll")
    assert calmer.code == 0, calmer.err


def test_sources_check(project):
    polled(project)
    result = project.run("sources", "--check")
    assert result.code == 0, result.err
    assert "ok    facebook: Page Pebblebase readable with this token" in result.out


def test_reply_comments_as_the_page_under_the_thread_it_belongs_to(project):
    polled(project)
    result = project.run("reply", MARTA, "Hi Marta, we restored your branch. Sorry!", "--yes")
    assert result.code == 0, result.err
    (request,) = graph_posts(project, "880011223344551_1200000000000101/comments")
    assert request.form() == {"message": "Hi Marta, we restored your branch. Sorry!"}
    (row,) = project.rows("SELECT outcome, remote_id, url, kind FROM replies")
    assert row[0] == "posted" and row[3] == "public" and row[1].startswith("880011223344551_")
    assert row[2].startswith("https://www.facebook.com/104738291022334_880011223344551?comment_id=")
    again = project.run("reply", MARTA, "Hi Marta, we restored your branch. Sorry!", "--yes")
    assert (
        "already replied" in again.err
        and len(project.web.platform("facebook").comments_posted) == 1
    )


def test_a_reply_that_timed_out_is_found_before_posting_again(project):
    polled(project, SHORT_TIMEOUT)
    project.web.fail("/facebook/v25.0/880011223344551_1200000000000101/comments", accept=True,
                     delay=1.5)  # fmt: skip
    first = project.run("reply", MARTA, "On it!", "--yes")
    assert first.code == 1 and "may have accepted it" in first.err
    second = project.run("reply", MARTA, "On it!", "--yes")
    assert second.code == 0, second.err
    assert len(project.web.platform("facebook").comments_posted) == 1
    assert [r[0] for r in project.rows("SELECT outcome FROM replies ORDER BY id")] == [
        "superseded", "posted"]  # fmt: skip


def test_private_reply_once_within_seven_days(project):
    polled(project)
    platform = project.web.platform("facebook")
    result = project.run("reply", MARTA, "Could you send me your account email?", "--private",
                         "--yes")  # fmt: skip
    assert result.code == 0, result.err
    (request,) = graph_posts(project, f"{PAGE_ID}/messages")
    assert request.json() == {
        "recipient": {"comment_id": "880011223344551_1200000000000101"},
        "message": {"text": "Could you send me your account email?"},
    }
    assert "Private message, as a private reply on Messenger to Marta Kowalski" in result.out
    assert project.rows("SELECT kind, outcome FROM replies") == [("private", "posted")]
    # Meta allows one: a second, different message is refused here, before any call.
    second = project.run("reply", MARTA, "Any news?", "--private", "--yes")
    assert second.code == 2 and "already got the private message" in second.err
    assert len(platform.private_replies) == 1
    # A visitor's post gets its private reply through post_id.
    visitor = project.run("reply", VISITOR, "Let me check your invoice", "--private", "--yes")
    assert visitor.code == 0, visitor.err
    assert graph_posts(project, f"{PAGE_ID}/messages")[-1].json()["recipient"] == {
        "post_id": "104738291022334_880011223349999"}  # fmt: skip


@pytest.mark.parametrize(
    ("key", "says"),
    [
        (OLD, "the window for a private reply closed on"),
        (TAGGED, "a post the Page is tagged in cannot get a private reply"),
    ],
    ids=["after-7-days", "tagged-post"],
)
def test_private_reply_where_meta_allows_none_is_refused_before_any_call(project, key, says):
    polled(project)
    before = len(project.web.requests)
    for extra in ([], ["--dry-run"]):
        result = project.run("reply", key, "Hi", "--private", "--yes", *extra)
        assert result.code == 2 and says in result.err, result.err
    assert len(project.web.requests) == before


def test_private_reply_meta_already_counts_is_said_plainly(project):
    polled(project)
    # Answered privately from Meta's own inbox since the poll.
    project.web.platform("facebook").posts[0]["comments"][0]["can_reply_privately"] = False
    result = project.run("reply", MARTA, "Hi", "--private", "--yes")
    assert result.code == 1
    assert "private reply refused (HTTP 400): (#10900) Activity already replied to" in result.err


def test_a_private_reply_that_timed_out_is_not_sent_twice(project):
    polled(project, SHORT_TIMEOUT)
    project.web.fail(f"/facebook/v25.0/{PAGE_ID}/messages", accept=True, delay=1.5)
    first = project.run("reply", MARTA, "Hi", "--private", "--yes")
    assert first.code == 1 and "may have accepted it" in first.err
    second = project.run("reply", MARTA, "Hi", "--private", "--yes")
    assert second.code == 0, second.err
    assert len(project.web.platform("facebook").private_replies) == 1
    assert project.rows("SELECT kind, outcome FROM replies ORDER BY id") == [
        ("private", "superseded"), ("private", "posted")]  # fmt: skip


def _error(code: int, message: str, **extra) -> str:
    import json

    return json.dumps({"error": {"message": message, "type": "OAuthException", "code": code,
                                 "fbtrace_id": "AbCdEf", **extra}})  # fmt: skip


@pytest.mark.parametrize(
    ("code", "message", "says"),
    [
        (4, "(#4) Application request limit reached", "try again then"),
        (17, "(#17) User request limit reached", "try again then"),
        (613, "(#613) Calls to this api have exceeded the rate limit.", "try again then"),
        (80001, "There have been too many calls to this Page account. Wait a bit and try again.",
         "try again then"),
        (368, "(#368) The action attempted has been deemed abusive or is otherwise disallowed",
         "Meta blocks this action for a while"),
        (200, "(#200) Requires pages_read_engagement permission to manage the object",
         "lacks a permission"),
        (100, "(#100) Tried accessing nonexisting field (permalink_url) on node type (Page)",
         "(#100) Tried accessing nonexisting field"),
    ],
    ids=lambda v: str(v) if isinstance(v, int) else None,
)  # fmt: skip
def test_every_graph_error_code_is_one_line_saying_what_to_do(project, code, message, says):
    project.write_config(CONFIG + LONG_LOOKBACK, poll_settings=False)
    body = _error(code, message, is_transient=code in (4, 17, 613, 80001))
    project.web.fail(f"/facebook/v25.0/{PAGE_ID}/posts", 400, times=5, body=body)
    result = project.run("poll")
    assert result.code == 1
    (line,) = [x for x in result.err.splitlines() if x.startswith("error: facebook")]
    assert says in line, line
    assert "Traceback" not in result.err and PAGE_TOKEN not in result.err
    if code == 80001:  # codes that are not in the message are shown in front of it
        assert "(#80001) There have been too many calls" in line
    # The other jobs (tagged, visitor posts) were saved all the same.
    assert project.rows("SELECT count(*) FROM mentions")[0][0] == 3


def test_a_duplicate_comment_refusal_is_the_reply_line(project):
    polled(project)
    project.web.fail("/facebook/v25.0/880011223344551_1200000000000101/comments", 400,
                     body=_error(506, "(#506) Duplicate status message"))  # fmt: skip
    result = project.run("reply", MARTA, "Thanks", "--yes")
    assert result.code == 1
    assert "facebook: reply refused (HTTP 400): (#506) Duplicate status message" in result.err
    assert project.rows("SELECT outcome FROM replies") == [("failed",)]


def test_estimated_time_to_regain_access_is_waited_for_and_bad_headers_are_ignored(project):
    platform = project.web.platform("facebook")
    platform.usage.regain_minutes = 30
    project.write_config(CONFIG + LONG_LOOKBACK, poll_settings=False)
    result = project.run("poll")
    assert result.code == 1 and "it resets in 30 min" in result.err
    platform.usage.regain_minutes = 0
    platform.usage.headers = lambda: {"X-App-Usage": "{not json",
                                      "X-Business-Use-Case-Usage": '[1, {"a": "b"}]'}  # fmt: skip
    calm = project.run("poll")
    assert calm.code == 0, calm.err


def test_private_reply_dry_run_says_where_it_goes(project):
    polled(project)
    before = len(project.web.requests)
    result = project.run("reply", MARTA, "Hi Marta", "--private", "--dry-run")
    assert result.code == 0, result.err
    assert ("Private message, as a private reply on Messenger to Marta Kowalski (one per "
            "comment)") in " ".join(result.out.split())  # fmt: skip
    assert len(project.web.requests) == before


def test_a_public_then_private_template_runs_once_and_a_retry_sends_nothing(project):
    pair = ('\n[templates.sorry-then-dm]\npublic = "Sorry {author}, sent you a message."\n'
            'private = "Hi {author}, which branch was it?"\n')  # fmt: skip
    polled(project, LONG_LOOKBACK + pair)
    platform = project.web.platform("facebook")
    first = project.run("reply", MARTA, "--template", "sorry-then-dm", "--yes")
    assert first.code == 0, first.err
    assert len(platform.comments_posted) == 1 and len(platform.private_replies) == 1
    # Meta allows one private reply: the same one again is a retry, not a second message.
    again = project.run("reply", MARTA, "--template", "sorry-then-dm", "--yes")
    assert again.code == 0, again.err
    assert "already replied" in again.err and "already sent this private message" in again.err
    assert len(platform.comments_posted) == 1 and len(platform.private_replies) == 1


def test_a_hostile_id_never_becomes_part_of_a_url(project):
    platform = project.web.platform("facebook")
    platform.posts[0]["comments"][0]["id"] = f"../../{PAGE_ID}/messages"
    project.write_config(CONFIG + LONG_LOOKBACK, poll_settings=False)
    result = project.run("poll")
    assert result.code == 1
    assert 'has "id": "../../104738291022334/messages", not a Graph id' in result.err
    assert not project.web.seen(f"/facebook/v25.0/{PAGE_ID}/messages")
    # Paging never follows the `next` link the answer carries (it names graph.facebook.com:
    # following it would have left the loopback web): only our own URL and the cursor.
    assert all(r.path.startswith("/facebook/v25.0/") for r in project.web.seen("/facebook/"))
