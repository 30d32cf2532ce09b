"""Mastodon: hashtag timelines on two instances, token search, errors and replies."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import HN_AND_RSS

from mentionwatch.http import SourceError
from mentionwatch.testing.platforms.mastodon import TOKEN
from mentionwatch.testing.server import HTML_BLOCKED

MASTODON = f"""
[sources.mastodon]
base_url = "{{web}}/mastodon"
token = "{TOKEN}"
instances = ["{{web}}/mastodon/instances/fosstodon.org"]
"""
HOME_TAG = "/mastodon/api/v1/timelines/tag/pebblebase"
OTHER_TAG = "/mastodon/instances/fosstodon.org/api/v1/timelines/tag/pebblebase"


def _records(project) -> dict[str, dict]:
    return {r["author"]: r for r in project.run("export", "--source", "mastodon").jsonl()}


def test_poll_stores_verified_posts_from_every_instance(project):
    project.write_config(HN_AND_RSS + MASTODON)
    result = project.run("poll")
    assert result.code == 0, result.err
    records = _records(project)
    # The near-misses: "Pebble Base Camp" is excluded, "pebblebased" is another word.
    assert set(records) == {
        "mira@mastodon.social", "devon@fosstodon.org", "sam@hachyderm.io",
        "lena@social.coop", "kai@fosstodon.org", "quietcoder@mastodon.social",
    }  # fmt: skip
    mira = records["mira@mastodon.social"]
    assert mira["key"] == "mastodon:https://mastodon.social/users/mira/statuses/113504118204661001"
    assert mira["url"] == "https://mastodon.social/@mira/113504118204661001"
    assert mira["author_name"] == "Mira Okafor 🌻"
    assert mira["text"] == (
        "Moved my side project to #Pebblebase this weekend. Branching is lovely & the free "
        "tier is plenty. 10/10 would migrate again."
    )
    assert mira["reach"] == 15  # 12 favourites + 3 boosts
    assert mira["created_at"].endswith("Z")
    age = datetime.now(UTC) - datetime.fromisoformat(mira["created_at"].replace("Z", "+00:00"))
    assert timedelta(hours=13) < age < timedelta(hours=15)
    assert mira["reply_url"] == (
        f"{project.web.url}/mastodon/authorize_interaction?uri=https%3A%2F%2Fmastodon.social"
        "%2Fusers%2Fmira%2Fstatuses%2F113504118204661001"
    )
    # A post from another server, boosted here: the timeline holds the post itself (never
    # the boost), with its author and content warning.
    lena = records["lena@social.coop"]
    assert lena["title"] == "long-ish thread about databases"
    assert lena["text"].endswith("Docs: https://pebblebase.io/docs/cli")
    assert lena["reach"] == 61
    # Found by full-text search only (no hashtag); display name empty -> null.
    assert records["quietcoder@mastodon.social"]["author_name"] is None
    # Devon's post is on both instances under two local ids: stored once.
    assert project.rows("SELECT count(*) FROM mentions WHERE author = 'devon@fosstodon.org'") == [
        (1,)
    ]


def test_second_poll_reads_the_newest_page_again_and_stores_nothing(project):
    project.write_config(HN_AND_RSS + MASTODON)
    project.run("poll")
    again = project.run("poll")
    assert again.code == 0, again.err
    assert "mastodon: 0 new" in again.out
    home, other = project.web.seen(HOME_TAG), project.web.seen(OTHER_TAG)
    # Federated posts arrive late, with ids from their own creation time: every poll reads
    # back from the newest post to a quarter of an hour before the newest one it saw. The
    # first poll follows the first page's next link (every post is inside its 7 days) to an
    # empty page; the second stops at its first page, which reaches back past that.
    assert len(home) == len(other) == 3
    for request in (home[0], home[2], other[0], other[2]):
        assert not {"min_id", "since_id", "max_id"} & set(request.query)
    assert home[1].arg("max_id") and other[1].arg("max_id")
    searches = project.web.seen("/mastodon/api/v2/search")
    assert searches[0].headers["authorization"] == f"Bearer {TOKEN}"
    # The token is never sent to another instance.
    assert all("authorization" not in r.headers for r in other)


def test_without_token_only_hashtag_timelines(project):
    project.write_config(HN_AND_RSS + MASTODON.replace(f'token = "{TOKEN}"', ""))
    result = project.run("poll")
    assert result.code == 0, result.err
    assert "quietcoder@mastodon.social" not in _records(project)
    assert "kai@fosstodon.org" in _records(project)
    assert project.web.seen("/mastodon/api/v2/search") == []


@pytest.mark.parametrize(
    ("status", "kwargs", "expected"),
    [
        (401, {"body": '{"error": "The access token is invalid"}'}, "The access token is invalid"),
        (403, {"body": HTML_BLOCKED, "content_type": "text/html"}, "HTML page"),
        (500, {"times": 5}, "HTTP 500"),
        (200, {"truncate": True}, "malformed or truncated"),
        (
            429,
            {"headers": {"X-RateLimit-Reset": "2099-01-01T00:00:00.000Z"}},
            "rate limited by 127.0.0.1",
        ),
    ],
)
def test_errors_fail_mastodon_only(project, status, kwargs, expected):
    project.write_config(HN_AND_RSS + MASTODON)
    project.web.fail("/mastodon/api/v2/search", status, **kwargs)
    result = project.run("poll")
    assert result.code == 1
    assert "error: mastodon:" in result.err and expected in result.err
    assert TOKEN not in result.err + result.out
    assert "hackernews: 10 new" in result.out
    # The hashtag jobs are separate and still saved their posts.
    assert "mira@mastodon.social" in _records(project)


def test_short_rate_limit_waits_for_iso_reset(project):
    project.write_config(HN_AND_RSS + MASTODON)
    soon = (datetime.now(UTC) + timedelta(seconds=0.2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    project.web.fail(
        HOME_TAG, 429, headers={"X-RateLimit-Reset": soon}, body='{"error": "Too many requests"}'
    )
    result = project.run("poll")
    assert result.code == 0, result.err
    # The refused request and its retry (then the empty page the next link points at).
    assert len([r for r in project.web.seen(HOME_TAG) if "max_id" not in r.query]) == 2
    assert "mira@mastodon.social" in _records(project)


def test_restricted_hashtag_feed_names_the_fix(project):
    project.write_config(HN_AND_RSS + MASTODON)
    project.web.platform("mastodon").hashtags_need_login = True
    result = project.run("poll", "--source", "mastodon")
    assert result.code == 1
    assert "fosstodon.org/api/v1/timelines/tag/pebblebase requires a login" in result.err
    assert "The access token is invalid" in result.err


def test_malformed_statuses_are_named_and_the_rest_is_kept(project):
    project.write_config(HN_AND_RSS + MASTODON)
    project.web.platform("mastodon").extra_statuses.extend(
        [
            {"id": "113509000000000001", "tags": [{"name": "pebblebase"}], "account": None},
            {"id": "113509000000000002", "tags": [{"name": "pebblebase"}], "uri": "x",
             "created_at": "yesterday", "account": {"acct": "z"}},
        ]
    )  # fmt: skip
    result = project.run("poll", "--source", "mastodon")
    assert result.code == 1
    (line,) = [x for x in result.err.splitlines() if x.startswith("error: ")]
    assert line.startswith("error: mastodon: ")
    assert 'has "created_at": "yesterday", not a time' in line
    assert 'item 2 has no "uri"' in line  # the one whose account is null has no uri either
    assert len(_records(project)) == 6


def test_a_short_timeline_page_with_a_next_link_is_paged_on(project):
    """A page can be cut to `limit` before statuses are left out of it (ones the server cannot
    load, or filters after paging): a page of fewer than 40 with a Link rel="next" has more
    behind it. (No token: the search would find the posts too.)"""
    project.write_config(HN_AND_RSS + MASTODON.replace(f'token = "{TOKEN}"', ""))
    platform = project.web.platform("mastodon")
    start = time.time() - 3600
    keys = [platform.add_item(f"pebblebase backlog {i}", start + i * 60) for i in range(45)]
    hidden = {s["id"] for s in platform.extra_statuses[-3:]}  # three of the newest page
    platform.hidden |= hidden
    result = project.run("poll", "--source", "mastodon")
    assert result.code == 0, result.err
    stored = {k for (k,) in project.rows("SELECT key FROM mentions")}
    shown = [k for k, s in zip(keys, platform.extra_statuses, strict=True) if s["id"] not in hidden]
    assert len(shown) == 42 and not set(shown) - stored
    pages = project.web.seen(HOME_TAG)
    assert len(pages) >= 2 and pages[1].arg("max_id") == platform.extra_statuses[5]["id"]


# Replies: the source called directly, as the reply command does.


MIRA = "mastodon:https://mastodon.social/users/mira/statuses/113504118204661001"
KAI = "mastodon:https://fosstodon.org/users/kai/statuses/112900000000000789"
BOOSTED = "mastodon:https://social.coop/users/lena/statuses/112345678901234567"


def test_reply_to_home_post_sends_idempotency_key_and_mention(project):
    project.write_config(HN_AND_RSS + MASTODON)
    project.run("poll", "--source", "mastodon")
    mira = project.mention(MIRA)
    text = "Thanks Mira! Branching was the feature we agonised over most."

    async def act(source):
        assert await source.find_reply(mira, text) is None
        posted = await source.reply(mira, text, "reply-7f3a")
        return posted, await source.find_reply(mira, text)

    posted, found = project.call_source("mastodon", act)
    (request,) = [r for r in project.web.seen("/mastodon/api/v1/statuses") if r.method == "POST"]
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["idempotency-key"] == "reply-7f3a"
    assert request.form() == {
        "status": f"@mira@mastodon.social {text}",
        "in_reply_to_id": "113504118204661001",
        "visibility": "public",
    }
    assert posted.url == f"https://mastodon.social/@pebblebase/{posted.remote_id}"
    assert found == posted


def test_reply_to_post_from_another_instance_resolves_local_id(project):
    project.write_config(HN_AND_RSS + MASTODON)
    project.run("poll", "--source", "mastodon")
    kai = project.mention(KAI)
    assert kai.extra["instance"].endswith("/mastodon/instances/fosstodon.org")

    posted = project.call_source("mastodon", lambda s: s.reply(kai, "Good luck!", "k1"))
    (lookup,) = project.web.seen("/mastodon/api/v2/search")[-1:]
    assert lookup.query["q"] == ["https://fosstodon.org/users/kai/statuses/112900000000000789"]
    assert lookup.query["resolve"] == ["true"]
    resolved = project.web.platform("mastodon").resolved
    local_id = resolved["https://fosstodon.org/users/kai/statuses/112900000000000789"]["id"]
    (sent,) = project.web.platform("mastodon").posted
    assert sent["in_reply_to_id"] == local_id != "112900000000000789"
    assert posted.remote_id == sent["id"]


def test_reply_to_a_remote_post_known_here_uses_its_local_id(project):
    project.write_config(HN_AND_RSS + MASTODON)
    project.run("poll", "--source", "mastodon")
    lena = project.mention(BOOSTED)
    assert lena.extra["boosted_by"] is None  # hashtag timelines hold posts, never boosts

    posted = project.call_source("mastodon", lambda s: s.reply(lena, "Thanks!", "k5"))
    (sent,) = project.web.platform("mastodon").posted
    assert sent["in_reply_to_id"] == "113505370000000099"  # the post's id on this instance
    assert posted.remote_id == sent["id"]
    # Read on the home instance: no lookup (resolve=true) was needed.
    assert all(r.arg("resolve") != "true" for r in project.web.seen("/mastodon/api/v2/search"))


def test_reply_limits_and_rejections(project):
    project.write_config(HN_AND_RSS + MASTODON)
    project.run("poll", "--source", "mastodon")
    mira = project.mention(MIRA)
    platform = project.web.platform("mastodon")
    platform.max_characters = 40

    async def too_long(source):
        with pytest.raises(SourceError, match="allows 40"):
            await source.reply(mira, "x" * 35, "k2")  # 41 with "@mira "
        assert source.reply_limit == 40  # learned from /api/v2/instance

    project.call_source("mastodon", too_long)
    platform.max_characters = 500
    mira.extra["id"] = "404404"  # deleted meanwhile
    with pytest.raises(SourceError, match="reply refused \\(HTTP 404\\): Record not found"):
        project.call_source("mastodon", lambda s: s.reply(mira, "hi", "k3"))
    project.write_config(HN_AND_RSS + MASTODON.replace(TOKEN, "nope"))
    with pytest.raises(SourceError, match="The access token is invalid"):
        project.call_source("mastodon", lambda s: s.reply(mira, "hi", "k4"))
    assert platform.posted == []


def test_reply_needs_token_and_counts_like_mastodon(project):
    project.write_config(HN_AND_RSS + MASTODON.replace(f'token = "{TOKEN}"', ""))

    async def check(source):
        assert "sources.mastodon.token" in source.reply_problem(None)
        with pytest.raises(SourceError, match=r"sources\.mastodon\.token"):
            await source.reply(None, "hi", "k")
        # Links count 23, a remote mention only its username.
        return source.reply_length("@ann@example.social see https://pebblebase.io/docs/a/very/long")

    assert project.call_source("mastodon", check) == len("@ann see ") + 23


def test_check_names_the_account(project):
    project.write_config(HN_AND_RSS + MASTODON)
    line = project.call_source("mastodon", lambda s: s.check())
    assert line.startswith("authenticated as @pebblebase@127.0.0.1")
    assert "500 characters" in line


def test_show_reads_ancestors_on_the_instance_the_post_came_from(project):
    project.write_config(HN_AND_RSS + MASTODON)
    project.run("poll")
    shown = project.run("show", KAI)
    assert shown.code == 0, shown.err
    assert "in reply to ada@fosstodon.org  https://fosstodon.org/@ada/112900000000000700" in (
        shown.out
    )
    assert "@ren SQLite on a laptop & a USB stick, honestly." in shown.out
    assert "thread started by ren@fosstodon.org  https://fosstodon.org/@ren/112900000000000600" in (
        shown.out
    )
    context = "/mastodon/instances/fosstodon.org/api/v1/statuses/112900000000000789/context"
    (asked,) = project.web.seen(context)
    assert "authorization" not in asked.headers  # the token belongs to the home instance
    project.run("show", KAI)  # kept with the mention: no second request
    assert len(project.web.seen(context)) == 1

    top = project.run("show", MIRA)
    assert top.code == 0 and "in reply to" not in top.out
    assert not project.web.seen("/mastodon/api/v1/statuses/")
