"""The instagram source end to end: comments on the account's media, media it is tagged
in, hashtags within Instagram's 30-a-week limit, replies and private replies."""

from __future__ import annotations

import time

from mentionwatch.testing.platforms.instagram import ACCOUNT_ID, PAGE_ID, TOKEN

CONFIG = f"""
[[terms]]
name = "pebblebase"
query = 'pebblebase OR "pebble base" -"pebble base camp"'

[sources.instagram]
base_url = "{{web}}/instagram/v25.0"
user_id = "{ACCOUNT_ID}"
token = "{TOKEN}"
page_id = "{PAGE_ID}"
hashtags = ["pebblebase", "#PebbleBase"]
"""
MIA = "instagram:17858154961981086"  # a comment on our media, 5 h old
RAFA = "instagram:17874875428706419"  # a reply to it
TAGGED = "instagram:17846368219941692"
HASHTAG = "instagram:17983329973290591"
SHORT_TIMEOUT = "\n[poll]\nbackoff = 0.01\nretries = 2\ntimeout = 0.5\n"


def polled(project, config: str = CONFIG, **kwargs):
    project.write_config(config, **kwargs)
    result = project.run("poll")
    assert result.code == 0, result.err
    return result


def record(project, key: str) -> dict:
    return next(r for r in project.run("export", "--format", "jsonl").jsonl() if r["key"] == key)


def test_poll_reads_comments_and_their_replies_tags_and_hashtags(project):
    result = polled(project)
    assert "instagram: 7 new of 7 fetched, 3 job(s)" in result.out
    keys = {k for (k,) in project.rows("SELECT key FROM mentions")}
    assert {MIA, RAFA, TAGGED, HASHTAG, "instagram:17892250648466172"} <= keys
    assert "instagram:17874875428706500" not in keys  # our own reply
    mia = record(project, MIA)
    assert mia["author"] == "mia.codes" and "logs me out" in mia["text"]
    assert mia["terms"] == ["pebblebase"]  # addressed to us, though it names no term
    assert mia["title"].startswith("Branch any database in one click")
    assert mia["url"] == "https://www.instagram.com/p/C9pbBranch24/"
    assert record(project, TAGGED)["author"] == "studio.nord"
    # Hashtag media carry no username: Instagram does not say who posted them.
    assert record(project, HASHTAG)["author"] is None
    # Media without comments are not asked for theirs.
    assert not project.web.seen("/instagram/v25.0/17913531439230186/comments")
    # Tags page by cursor only (no `next` link): nothing is missed on the one page there is.
    assert project.web.seen(f"/instagram/v25.0/{ACCOUNT_ID}/tags")


def test_hashtags_count_against_30_a_week_and_a_31st_is_not_searched(project):
    platform = project.web.platform("instagram")
    platform.searched[:] = [{"name": f"tag{i}", "id": str(i)} for i in range(30)]
    project.write_config(CONFIG)
    result = project.run("poll")
    assert result.code == 1
    (line,) = [x for x in result.err.splitlines() if x.startswith("error: instagram")]
    assert "#pebblebase not searched: the account used its 30 unique hashtags" in line
    assert not project.web.seen("/instagram/v25.0/ig_hashtag_search")
    # The rest of the account was read all the same.
    assert project.rows("SELECT count(*) FROM mentions WHERE source = 'instagram'")[0][0] == 5


def test_a_hashtag_is_looked_up_once_and_shown_in_sources(project):
    polled(project)
    assert len(project.web.seen("/instagram/v25.0/ig_hashtag_search")) == 1
    again = project.run("poll")
    assert again.code == 0
    assert len(project.web.seen("/instagram/v25.0/ig_hashtag_search")) == 1  # cached id
    shown = project.run("sources")
    assert "1 of 30 unique hashtags in the last 7 days" in shown.out
    checked = project.run("sources", "--check")
    assert "ok    instagram: authenticated as @pebblebase; 2 of 30 unique hashtags" in checked.out


def test_new_comments_are_found_on_the_next_poll(project):
    polled(project)
    key = project.web.platform("instagram").add_item("cannot log in since the update", time.time())
    again = project.run("poll")
    assert again.code == 0 and "instagram: 1 new" in again.out
    assert key in {k for (k,) in project.rows("SELECT key FROM mentions")}


def test_expired_token_is_one_line_naming_the_fix(project):
    project.web.platform("instagram").expired = True
    project.write_config(CONFIG)
    result = project.run("poll")
    assert result.code == 1
    lines = [x for x in result.err.splitlines() if x.startswith("error: instagram")]
    assert lines and all("Session has expired" in x and "set sources.instagram.token" in x
                         for x in lines)  # fmt: skip
    assert TOKEN not in result.err


def test_reply_to_a_comment_and_to_a_reply(project):
    polled(project)
    result = project.run("reply", MIA, "@mia.codes the fix is live, sorry!", "--yes")
    assert result.code == 0, result.err
    (request,) = [r for r in project.web.seen("/instagram/") if r.method == "POST"]
    assert request.path == "/instagram/v25.0/17858154961981086/replies"
    assert request.form() == {"message": "@mia.codes the fix is live, sorry!"}
    # Instagram nests one level: a reply to a reply goes under its comment.
    nested = project.run("reply", RAFA, "@rafa_builds fixed too", "--yes")
    assert nested.code == 0, nested.err
    assert [r.path for r in project.web.seen("/instagram/") if r.method == "POST"][-1] == (
        "/instagram/v25.0/17858154961981086/replies")  # fmt: skip


def test_tagged_and_hashtag_media_open_their_page(project):
    polled(project)
    for key, url in [(TAGGED, "https://www.instagram.com/p/C9tagHack01/"),
                     (HASHTAG, "https://www.instagram.com/p/C9hashSql12/")]:  # fmt: skip
        result = project.run("reply", key, "Thanks!", "--yes")
        assert result.code == 0, result.err
        assert url in result.out.splitlines()
    assert not [r for r in project.web.seen("/instagram/") if r.method == "POST"]


def test_private_reply_goes_through_the_linked_page_once(project):
    polled(project)
    result = project.run("reply", MIA, "Could you DM me your account email?", "--private", "--yes")
    assert result.code == 0, result.err
    (request,) = [r for r in project.web.seen(f"/instagram/v25.0/{PAGE_ID}/messages")]
    assert request.json() == {
        "recipient": {"comment_id": "17858154961981086"},
        "message": {"text": "Could you DM me your account email?"},
    }
    assert "an Instagram private reply to @mia.codes" in result.out
    second = project.run("reply", MIA, "Hello again", "--private", "--yes")
    assert second.code == 2 and "already got the private message" in second.err


def test_private_reply_needs_the_page_and_is_refused_for_tags(project):
    polled(project, CONFIG.replace(f'page_id = "{PAGE_ID}"\n', ""))
    result = project.run("reply", MIA, "Hi", "--private", "--yes")
    assert result.code == 2 and "set sources.instagram.page_id" in result.err
    tagged = project.run("reply", TAGGED, "Hi", "--private", "--dry-run")
    assert tagged.code == 2 and "only comments on your own media" in tagged.err


def test_a_reply_that_timed_out_is_found_before_posting_again(project):
    polled(project, CONFIG + SHORT_TIMEOUT, poll_settings=False)
    project.web.fail(f"/instagram/v25.0/{MIA.split(':')[1]}/replies", accept=True, delay=1.5)
    first = project.run("reply", MIA, "On it", "--yes")
    assert first.code == 1 and "may have accepted it" in first.err
    second = project.run("reply", MIA, "On it", "--yes")
    assert second.code == 0, second.err
    assert len(project.web.platform("instagram").replies_posted) == 1
