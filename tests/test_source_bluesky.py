"""Bluesky against the loopback web: session kept and refreshed, search with since, errors,
replies, and the grapheme count of the reply limit."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from conftest import HN_AND_RSS

from mentionwatch.http import SourceError
from mentionwatch.models import Mention, utcnow
from mentionwatch.sources.base import Posted
from mentionwatch.sources.bluesky import Bluesky, grapheme_count
from mentionwatch.testing.platforms.bluesky import APP_PASSWORD, DID, HANDLE
from mentionwatch.testing.server import HTML_BLOCKED

CONFIG = (
    HN_AND_RSS
    + f"""
[sources.bluesky]
base_url = "{{web}}/bluesky"
handle = "{HANDLE}"
app_password = "{APP_PASSWORD}"
"""
)
SEARCH = "/bluesky/xrpc/app.bsky.feed.searchPosts"
LOGIN = "/bluesky/xrpc/com.atproto.server.createSession"
REFRESH = "/bluesky/xrpc/com.atproto.server.refreshSession"
MAYA = "at://did:plc:mayachen7q2w3e4r5t6y/app.bsky.feed.post/3lbq7xk2mzs2a"
GRUMPY = "at://did:plc:grumpydev0a9s8d7f6g5/app.bsky.feed.post/3lbq5bq7tmk2c"


def records(project, source="bluesky"):
    return {r["key"]: r for r in project.run("export", "--source", source).jsonl()}


def moment(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def issued_tokens(web) -> list[str]:
    platform = web.platform("bluesky")
    return [*platform.access, *platform.refresh]


def test_poll_stores_posts_field_by_field(project):
    project.write_config(CONFIG)
    result = project.run("poll")
    assert result.code == 0, result.err
    found = records(project)
    assert {k.removeprefix("bluesky:at://did:plc:")[:10] for k in found} == {
        "mayachen7q",
        "grumpydev0",
        "opsowen5t4",
        "newsreader",
    }  # fmt: skip (not the terrarium or the base camp)
    maya = found[f"bluesky:{MAYA}"]
    url = "https://bsky.app/profile/mayachen.bsky.social/post/3lbq7xk2mzs2a"
    assert maya["url"] == maya["reply_url"] == url
    assert (maya["author"], maya["author_name"]) == ("mayachen.bsky.social", "Maya Chen 🌱")
    assert maya["title"] is None
    assert maya["text"].startswith("Just shipped my weekend project on Pebblebase & the branching")
    assert maya["reach"] == 27  # 24 likes + 3 reposts
    assert (
        maya["created_at"].endswith("Z")
        and abs(moment(maya["created_at"]) - (time.time() - 3600)) < 5
    )
    grumpy = found[f"bluesky:{GRUMPY}"]
    assert grumpy["author_name"] is None and grumpy["reach"] == 6
    # Found through its link card only; its handle no longer resolves, so the did names it.
    news = next(r for k, r in found.items() if "newsreader" in k)
    assert news["author"] == "did:plc:newsreader8u7y6t5r4e"
    assert news["url"] == "https://bsky.app/profile/did:plc:newsreader8u7y6t5r4e/post/3lbq2ee5kxs2v"
    assert len(records(project, "hackernews")) == 10


def test_session_is_created_once_and_requests_are_authenticated(project):
    project.write_config(CONFIG)
    project.run("poll")
    (login,) = project.web.seen(LOGIN)
    assert login.json() == {"identifier": HANDLE, "password": APP_PASSWORD}
    access = next(iter(project.web.platform("bluesky").access))
    searches = project.web.seen(SEARCH)
    assert [s.query["q"][0] for s in searches] == [
        '"pebblebase" -"pebble base camp"',
        '"pebble base" -"pebble base camp"',
    ]
    for search in searches:
        assert search.headers["authorization"] == f"Bearer {access}"
        assert (search.query["sort"], search.query["limit"]) == (["latest"], ["100"])
        assert abs(moment(search.query["since"][0]) - (time.time() - 7 * 86400)) < 10
    (saved,) = project.rows("SELECT value FROM source_state WHERE source = 'bluesky'")
    assert json.loads(saved[0])["did"] == DID


def test_second_poll_sends_the_cursor_and_reuses_the_session(project):
    project.write_config(CONFIG)
    project.run("poll")
    count = project.rows("SELECT count(*) FROM mentions WHERE source = 'bluesky'")[0][0]
    again = project.run("poll")
    assert again.code == 0 and "0 new mention(s)" in again.out
    assert project.rows("SELECT count(*) FROM mentions WHERE source = 'bluesky'")[0][0] == count
    # since = the newest post seen (indexed an hour ago) minus ten minutes of overlap.
    since = project.web.seen(SEARCH)[-1].query["since"][0]
    assert since.endswith("Z") and abs(moment(since) - (time.time() - 3600 - 600)) < 5
    assert len(project.web.seen(LOGIN)) == 1


def test_expired_access_token_is_refreshed_not_logged_in_again(project):
    project.write_config(CONFIG)
    project.run("poll")
    platform = project.web.platform("bluesky")
    (old_refresh,) = platform.refresh
    platform.expire_access()
    again = project.run("poll")
    assert again.code == 0, again.err
    (refresh,) = project.web.seen(REFRESH)  # once, although two searches ran
    assert refresh.headers["authorization"] == f"Bearer {old_refresh}"
    assert len(project.web.seen(LOGIN)) == 1
    (saved,) = project.rows("SELECT value FROM source_state WHERE source = 'bluesky'")
    assert json.loads(saved[0])["refreshJwt"] in platform.refresh


def test_revoked_refresh_token_falls_back_to_login(project):
    project.write_config(CONFIG)
    project.run("poll")
    platform = project.web.platform("bluesky")
    platform.expire_access()
    platform.refresh.clear()
    assert project.run("poll").code == 0
    assert len(project.web.seen(LOGIN)) == 2


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"status": 403, "body": HTML_BLOCKED, "content_type": "text/html"},
         "HTTP 403 from http://127.0.0.1"),
        ({"status": 401, "body": '{"error": "AuthMissing", "message": "Authentication Required"}'},
         "AuthMissing: Authentication Required"),
        ({"status": 429, "times": 5, "headers": {"RateLimit-Reset": str(int(time.time()) + 3600)},
          "body": '{"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}'},
         "rate limited by 127.0.0.1"),
        ({"status": 500, "times": 5}, "HTTP 500"),
        ({"status": 200, "truncate": True}, "malformed or truncated"),
    ],
)  # fmt: skip
def test_errors_fail_bluesky_only_and_leak_no_secret(project, fault, expected):
    project.write_config(CONFIG)
    project.web.fail(SEARCH, **fault)
    result = project.run("poll")
    assert result.code == 1
    line = next(x for x in result.err.splitlines() if x.startswith("error: bluesky:"))
    assert expected in line
    if fault["status"] == 403:
        assert "got an HTML page instead of JSON (Blocked)" in line
    assert len(records(project, "hackernews")) == 10
    for secret in (APP_PASSWORD, *issued_tokens(project.web)):
        assert secret not in result.out + result.err


def test_rate_limit_with_a_near_epoch_reset_is_waited_out(project):
    project.write_config(CONFIG)
    project.web.fail(SEARCH, status=429, headers={"RateLimit-Reset": str(int(time.time()))})
    result = project.run("poll")
    assert result.code == 0, result.err
    assert f"bluesky:{MAYA}" in records(project)


def test_wrong_app_password_and_missing_credentials(project):
    project.write_config(CONFIG.replace(APP_PASSWORD, "wrong-pass-word"))
    result = project.run("poll")
    assert result.code == 1
    assert "bluesky: login failed: HTTP 401" in result.err
    assert "AuthenticationRequired: Invalid identifier or password" in result.err
    assert "wrong-pass-word" not in result.err + result.out
    project.write_config(CONFIG.replace(f'app_password = "{APP_PASSWORD}"', ""))
    missing = project.run("poll")
    assert missing.code == 1
    assert "sources.bluesky.handle and sources.bluesky.app_password" in missing.err
    assert len(records(project, "hackernews")) == 10


# Replies and checks, called the way the reply command does.


ROOT = {
    "uri": "at://did:plc:pebblebaseteam4x7k2q/app.bsky.feed.post/3lbpzz2ro7k2x",
    "cid": "bafyroot",
}


def mention(uri=GRUMPY, cid="bafyreic5m2d", root=ROOT):
    extra = {"uri": uri, "cid": cid, "root": root}
    return Mention("bluesky", uri, "text", utcnow(), extra=extra)


def test_reply_creates_a_post_in_the_thread_and_is_found_again(project):
    project.write_config(CONFIG)
    web = project.web
    text = "Sorry about that! DM us your project id and we'll restore it today 🙏"

    async def flow(source):
        posted = await source.reply(mention(), text, "key-1")
        return (
            posted,
            await source.find_reply(mention(), text),
            await source.find_reply(mention(), "x"),
        )

    posted, found, other = project.call_source("bluesky", flow)
    (sent,) = web.seen("/bluesky/xrpc/com.atproto.repo.createRecord")
    assert sent.method == "POST"
    assert sent.headers["authorization"] == f"Bearer {next(iter(web.platform('bluesky').access))}"
    body = sent.json()
    assert (body["repo"], body["collection"]) == (DID, "app.bsky.feed.post")
    record = body["record"]
    assert record["$type"] == "app.bsky.feed.post" and record["text"] == text
    assert record["createdAt"].endswith("Z") and abs(moment(record["createdAt"]) - time.time()) < 5
    assert record["reply"] == {"root": ROOT, "parent": {"uri": GRUMPY, "cid": "bafyreic5m2d"}}
    uri = f"at://{DID}/app.bsky.feed.post/3lbr000000001"
    assert posted == Posted(uri, f"https://bsky.app/profile/{HANDLE}/post/3lbr000000001")
    assert found == posted and other is None


def test_reply_to_a_top_level_post_uses_it_as_root_and_survives_an_expired_token(project):
    project.write_config(CONFIG)
    web = project.web

    async def flow(source):
        await source.check()  # logs in
        web.platform("bluesky").expire_access()
        return await source.reply(mention(MAYA, "bafymaya", None), "Thank you Maya!", "k")

    project.call_source("bluesky", flow)
    (record,) = web.platform("bluesky").records  # refreshed and sent again, posted once
    parent = {"uri": MAYA, "cid": "bafymaya"}
    assert record["value"]["reply"] == {"root": parent, "parent": parent}
    assert len(web.seen(REFRESH)) == 1


def test_reply_rejection_carries_the_platform_reason(project):
    project.write_config(CONFIG)
    web = project.web
    web.platform("bluesky").write_errors.append(
        (
            400,
            {
                "error": "InvalidRequest",
                "message": "Record/text must not be longer than 300 graphemes",
            },
        )
    )
    with pytest.raises(
        SourceError, match="InvalidRequest: Record/text must not be longer than 300"
    ):
        project.call_source("bluesky", lambda source: source.reply(mention(), "x" * 10, "k"))
    with pytest.raises(SourceError, match="no post uri and cid"):
        project.call_source("bluesky", lambda source: source.reply(mention(cid=None), "hi", "k"))
    assert web.platform("bluesky").records == []


def test_check_names_the_account(project):
    project.write_config(CONFIG)
    line = project.call_source("bluesky", lambda source: source.check())
    assert line == f"authenticated as @{HANDLE} ({DID})"


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("hello", 5),
        ("e\u0301te\u0301", 3),  # combining accents
        ("👍🏽👍", 2),  # skin tone modifier
        ("👨‍👩‍👧 family", 8),  # ZWJ sequence
        ("🇫🇷🇩🇪🇯", 3),  # two flags and a lone regional indicator
        ("❤️1️⃣", 2),  # variation selector, keycap
        ("🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f!", 2),  # tag sequence
        ("a\r\nb", 3),
    ],
)
def test_reply_length_counts_graphemes(text, count):
    assert grapheme_count(text) == count
    assert Bluesky.reply_limit == 300


def test_a_short_page_with_a_cursor_is_not_the_end(project):
    # The AppView drops posts of blocked or hidden accounts after the search service paged
    # (searchPosts.ts, noBlocksOrTagged): a page can hold 99 posts and still have a cursor.
    platform = project.web.platform("bluesky")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 7200))
    for i in range(130):
        did = f"did:plc:busyposter{i:014d}"
        platform.extra_posts.append({
            "uri": f"at://{did}/app.bsky.feed.post/3lbz{i:09d}",
            "cid": f"bafyreibusy{i:040d}",
            "author": {"did": did, "handle": f"busy{i}.bsky.social"},
            "record": {"$type": "app.bsky.feed.post", "text": f"pebblebase tip {i}",
                       "createdAt": stamp},
            "indexedAt": stamp,
        })  # fmt: skip
    platform.hidden.add(platform.extra_posts[0]["uri"])
    project.write_config(CONFIG)
    result = project.run("poll")
    assert result.code == 0, result.err
    busy = [k for k in records(project) if "busyposter" in k]
    assert len(busy) == 129
    assert any("cursor" in s.query for s in project.web.seen(SEARCH))


def test_show_fetches_the_parent_and_root_of_a_reply_once(project):
    project.write_config(CONFIG)
    project.run("poll")
    shown = project.run("show", f"bluesky:{GRUMPY}")
    assert shown.code == 0, shown.err
    profile = "https://bsky.app/profile/pebblebase.bsky.social/post"
    assert f"in reply to pebblebase.bsky.social  {profile}/3lbq0aa1pp3k2" in shown.out
    assert "Maintenance is done, all migrations ran cleanly." in shown.out
    assert f"thread started by pebblebase.bsky.social  {profile}/3lbpzz2ro7k2x" in shown.out
    assert "Scheduled maintenance tonight" in shown.out
    (asked,) = project.web.seen("/bluesky/xrpc/app.bsky.feed.getPosts")
    assert asked.query["uris"] == [
        "at://did:plc:pebblebaseteam4x7k2q/app.bsky.feed.post/3lbq0aa1pp3k2",
        "at://did:plc:pebblebaseteam4x7k2q/app.bsky.feed.post/3lbpzz2ro7k2x",
    ]
    assert asked.headers["authorization"].startswith("Bearer ")
    project.run("show", f"bluesky:{GRUMPY}")  # kept with the mention: no second request
    assert len(project.web.seen("/bluesky/xrpc/app.bsky.feed.getPosts")) == 1

    top = project.run("show", f"bluesky:{MAYA}")
    assert top.code == 0 and "in reply to" not in top.out
    assert len(project.web.seen("/bluesky/xrpc/app.bsky.feed.getPosts")) == 1


@pytest.mark.parametrize("declared", ["Tue Dec 01 2026 09:00:00 GMT+0000", None])
def test_a_post_whose_client_wrote_no_valid_created_at_is_kept_at_its_indexed_time(
    project, declared
):
    # PDSes used to accept any createdAt string (bsky-docs, timestamps.md); the AppView
    # serves such records as they are and sorts them by indexedAt.
    platform = project.web.platform("bluesky")
    key = platform.add_item("pebblebase from an old client", time.time() - 600)
    record = platform.extra_posts[-1]["record"]
    if declared is None:
        del record["createdAt"]
    else:
        record["createdAt"] = declared
    project.write_config(CONFIG)
    result = project.run("poll", "--source", "bluesky")
    assert result.code == 0, result.err
    stored = records(project)[key]
    indexed = moment(platform.extra_posts[-1]["indexedAt"])
    assert moment(stored["created_at"]) == pytest.approx(indexed, abs=1)
    assert stored["text"] == "pebblebase from an old client"
