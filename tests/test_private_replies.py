"""`reply --private`: taking it private on every platform that has direct messages, and
saying plainly where there are none; templates that answer in public, then in private."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from test_reply_command import CONFIG, GRUMPY_BSKY, SHORT_TIMEOUT, polled, replies, talk

from mentionwatch.testing.platforms import bluesky, mastodon, reddit, x


@dataclass(frozen=True)
class Private:
    name: str
    key: str  # the mention whose author gets the message
    write: str  # where the message is sent
    where: str  # what the preview says it is
    remote_id: str  # regex
    url: str  # regex


X_DM = Private(
    "x", "x:1859260000000000202", "/x/2/dm_conversations/with/1500000000000000777/messages",
    "a direct message to @grumpy_ops on X", r"\d+",
    r"https://x\.com/messages/1717000000000000001-1500000000000000777",
)  # fmt: skip
BLUESKY_CHAT = Private(
    "bluesky", f"bluesky:{GRUMPY_BSKY}", "/bluesky/xrpc/chat.bsky.convo.sendMessage",
    "a Bluesky chat message to @grumpydev.bsky.social", r"3lmsg\w+",
    r"https://bsky\.app/messages/3l\w+",
)  # fmt: skip
MASTODON_DIRECT = Private(
    "mastodon", "mastodon:https://mastodon.social/users/mira/statuses/113504118204661001",
    "/mastodon/api/v1/statuses", "a private mention (visibility: direct) to @mira@mastodon.social",
    r"\d+", r"https://mastodon\.social/@pebblebase/\d+",
)  # fmt: skip
REDDIT_MESSAGE = Private(
    "reddit", "reddit:t3_1gq4c1d", "/reddit/oauth/api/compose", "a Reddit message to u/grumpy_sre",
    r"t4_2\d{6}", r"https://www\.reddit\.com/message/messages/2\d{6}",
)  # fmt: skip
MESSENGERS = [X_DM, BLUESKY_CHAT, MASTODON_DIRECT, REDDIT_MESSAGE]

PAIR = """
[templates]
thanks = "Thanks {author}!"
only-dm = { private = "Hi {author}, let's sort this out here." }

[templates.sorry-then-dm]
public = "Sorry about that, {author}: sent you a DM."
private = "Hi {author}, could you tell me the email of your account? I'll look into it today."
"""


def sent(project, platform: Private) -> list:
    return [r for r in project.web.seen(platform.write) if r.method == "POST"]


def check_message(platform: Private, request, text: str) -> None:
    """The exact message each platform received."""
    if platform is X_DM:
        assert request.headers["authorization"] == f"Bearer {x.USER_TOKEN}"
        assert request.json() == {"text": text}
    elif platform is BLUESKY_CHAT:
        assert request.headers["atproto-proxy"] == "did:web:api.bsky.chat#bsky_chat"
        assert request.json()["message"] == {"text": text}
    elif platform is MASTODON_DIRECT:
        assert request.form() == {
            "status": f"@mira@mastodon.social {text}",
            "in_reply_to_id": "113504118204661001",
            "visibility": "direct",
        }
    else:
        form = request.form()
        assert (form["to"], form["text"], form["api_type"]) == ("grumpy_sre", text, "json")
        assert form["subject"] == "Re: Pebblebase down again?"


def kinds(project, key: str) -> list[tuple]:
    return project.rows(
        "SELECT r.kind, r.outcome, r.text FROM replies r JOIN mentions m ON m.id = r.mention_id "
        "WHERE m.key = ? ORDER BY r.id",
        key,
    )


@pytest.mark.parametrize("platform", MESSENGERS, ids=lambda p: p.name)
def test_private_message_is_sent_once_recorded_as_private_and_handles_the_mention(
    project, platform
):
    polled(project)
    text = "Could you send me your account email? I'll look into it."
    result = project.run("reply", platform.key, text, "--private", "--yes")
    assert result.code == 0, result.err
    (request,) = sent(project, platform)
    check_message(platform, request, text)
    ((outcome, remote_id, url, error),) = replies(project, platform.key)
    assert outcome == "posted" and error is None
    assert re.fullmatch(platform.remote_id, remote_id), remote_id
    assert re.fullmatch(platform.url, url), url
    assert kinds(project, platform.key) == [("private", "posted", text)]
    assert f"sent: {url}" in result.out.splitlines()
    assert f"Private message, as {platform.where}" in result.out
    assert project.rows("SELECT status FROM mentions WHERE key = ?", platform.key) == [("handled",)]
    shown = project.run("show", platform.key)
    assert "private posted" in shown.out and text[:40] in shown.out

    again = project.run("reply", platform.key, text, "--private", "--yes")
    assert again.code == 0 and "already sent this private message" in again.err
    assert len(sent(project, platform)) == 1


@pytest.mark.parametrize("platform", MESSENGERS, ids=lambda p: p.name)
def test_dry_run_shows_the_private_message_and_where_it_goes_and_sends_nothing(project, platform):
    polled(project)
    before = len(project.web.requests)
    result = project.run("reply", platform.key, "Let's sort it out", "--private", "--dry-run")
    assert result.code == 0, result.err
    assert f"Private message, as {platform.where}" in result.out
    assert "Let's sort it out" in result.out and "dry run: nothing posted" in result.err
    assert len(project.web.requests) == before and replies(project, platform.key) == []


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("hackernews:42818210", "hackernews has no private messages: reply in public"),
        ("github:https://github.com/alicedev/habit-tracker/issues/48",
         "GitHub has no direct messaging at all"),
        ("stackexchange:answer:78800002", "stackexchange has no private messages"),
        ("rss:https://blog.example.com/posts/pebblebase-review", "rss is a feed, with no messages"),
    ],
    ids=["hackernews", "github", "stackexchange", "rss"],
)  # fmt: skip
def test_platforms_without_private_messages_say_so_plainly(project, key, says):
    polled(project)
    known = {k for (k,) in project.rows("SELECT key FROM mentions")}
    key = key if key in known else next(k for k in sorted(known) if k.startswith(key.split(":")[0]))
    before = len(project.web.requests)
    for extra in ([], ["--dry-run"]):
        result = project.run("reply", key, "Hi", "--private", "--yes", *extra)
        assert result.code == 2, result.err
        (line,) = talk(result)
        assert "cannot send a private message" in line and says in line, line
    assert len(project.web.requests) == before and replies(project, key) == []


def test_missing_write_credentials_name_the_key_to_set(project):
    polled(project, CONFIG.replace(f'user_token = "{x.USER_TOKEN}"\n', ""))
    result = project.run("reply", X_DM.key, "Hi", "--private", "--yes")
    assert result.code == 2
    (line,) = talk(result)
    assert "dm.write" in line and "sources.x.user_token" in line


@pytest.mark.parametrize(
    ("platform", "block", "says"),
    [
        (X_DM, lambda web: web.platform("x").dm_closed.add("1500000000000000777"),
         "x: direct message refused (HTTP 403): You cannot send messages to this user. — they "
         "may accept direct messages only from accounts they follow"),
        (BLUESKY_CHAT, lambda web: web.platform("bluesky").chat_refusals.update(
            {"did:plc:grumpydev0a9s8d7f6g5": "NotFollowedBySender"}),
         "bluesky: @grumpydev.bsky.social accepts chat messages only from accounts they follow"),
        (REDDIT_MESSAGE, lambda web: web.platform("reddit").pm_restricted.add("grumpy_sre"),
         "reddit: message refused: RESTRICTED_TO_PM: u/grumpy_sre does not take direct "
         "messages, only chat requests"),
        (MASTODON_DIRECT, lambda web: web.fail("/mastodon/api/v1/statuses", 422, body=(
            '{"error": "Validation failed: Text character limit of 500 exceeded"}')),
         "mastodon: private mention refused (HTTP 422): Validation failed"),
    ],
    ids=["x-closed", "bluesky-not-followed", "reddit-chat-only", "mastodon-422"],
)  # fmt: skip
def test_a_refused_private_message_is_one_line_recorded_as_failed(project, platform, block, says):
    polled(project)
    block(project.web)
    result = project.run("reply", platform.key, "Hi there", "--private", "--yes")
    assert result.code == 1
    (line,) = talk(result)
    assert says in line, line
    assert kinds(project, platform.key) == [("private", "failed", "Hi there")]
    assert project.rows("SELECT status FROM mentions WHERE key = ?", platform.key) == [("open",)]


def test_bluesky_app_password_without_chat_access_is_said_plainly(project):
    project.web.platform("bluesky").chat_allowed = False
    polled(project)
    result = project.run("reply", BLUESKY_CHAT.key, "Hi", "--private", "--yes")
    assert result.code == 1
    (line,) = talk(result)
    assert "this app password does not allow direct messages" in line
    assert "App passwords" in line and "sources.bluesky.app_password" in line
    assert bluesky.APP_PASSWORD not in result.err
    # No refresh loop on a session that is fine, only not allowed to chat.
    assert project.web.platform("bluesky").refreshes == 0


@pytest.mark.parametrize("platform", MESSENGERS, ids=lambda p: p.name)
def test_timeout_after_the_message_was_accepted_then_a_retry_sends_exactly_once(project, platform):
    polled(project, CONFIG + SHORT_TIMEOUT, poll_settings=False)
    project.web.fail(platform.write, accept=True, delay=1.5, times=10)
    first = project.run("reply", platform.key, "Hi there", "--private", "--yes")
    assert first.code == 1
    (line,) = talk(first)
    assert "may have accepted it" in line and "run the same command again" in line
    project.web.faults.clear()
    second = project.run("reply", platform.key, "Hi there", "--private", "--yes")
    assert second.code == 0, second.err
    delivered = {
        "x": lambda web: web.platform("x").messages,
        "bluesky": lambda web: [m for c in web.platform("bluesky").chats.values() for m in c],
        "mastodon": lambda web: web.platform("mastodon").posted,
        "reddit": lambda web: web.platform("reddit").messages,
    }[platform.name](project.web)
    assert len(delivered) == 1
    assert [k[:2] for k in kinds(project, platform.key)] == [
        ("private", "superseded"), ("private", "posted")]  # fmt: skip


def test_template_answers_in_public_then_sends_the_private_follow_up(project):
    polled(project, CONFIG + PAIR)
    result = project.run("reply", X_DM.key, "--template", "sorry-then-dm", "--yes")
    assert result.code == 0, result.err
    public = "Sorry about that, Grumpy Ops 🔥: sent you a DM."
    private = (
        "Hi Grumpy Ops 🔥, could you tell me the email of your account? I'll look into it today."
    )
    writes = [r for r in project.web.seen("/x/2/") if r.method == "POST"]
    assert [r.path for r in writes] == ["/x/2/tweets", X_DM.write]
    assert writes[0].json()["text"] == public and writes[1].json() == {"text": private}
    assert kinds(project, X_DM.key) == [
        ("public", "posted", public),
        ("private", "posted", private),
    ]
    assert "Your reply, to post on x" in result.out and "Private message, as a direct" in result.out
    lines = result.out.splitlines()
    assert lines[-2].startswith("posted: https://x.com/") and lines[-1].startswith("sent: ")
    assert project.rows("SELECT status FROM mentions WHERE key = ?", X_DM.key) == [("handled",)]
    # Nothing twice on a second run.
    again = project.run("reply", X_DM.key, "--template", "sorry-then-dm", "--yes")
    assert (
        again.code == 0 and len([r for r in project.web.seen("/x/2/") if r.method == "POST"]) == 2
    )


def test_a_pair_whose_private_half_failed_finishes_on_retry_without_posting_twice(project):
    polled(project, CONFIG + PAIR)
    project.web.platform("x").dm_closed.add("1500000000000000777")
    first = project.run("reply", X_DM.key, "--template", "sorry-then-dm", "--yes")
    assert first.code == 1 and "direct message refused" in first.err
    assert [k[:2] for k in kinds(project, X_DM.key)] == [
        ("public", "posted"),
        ("private", "failed"),
    ]
    assert project.rows("SELECT status FROM mentions WHERE key = ?", X_DM.key) == [("open",)]
    project.web.platform("x").dm_closed.clear()
    second = project.run("reply", X_DM.key, "--template", "sorry-then-dm", "--yes")
    assert second.code == 0, second.err
    assert "already replied to" in second.err
    assert (
        len(project.web.platform("x").posted) == 1 and len(project.web.platform("x").messages) == 1
    )
    assert project.rows("SELECT status FROM mentions WHERE key = ?", X_DM.key) == [("handled",)]


def test_a_pair_that_cannot_go_private_posts_nothing(project):
    polled(project, CONFIG + PAIR)
    key = "github:https://github.com/alicedev/habit-tracker/issues/48"
    result = project.run("reply", key, "--template", "sorry-then-dm", "--yes")
    assert result.code == 2 and "GitHub has no direct messaging" in result.err
    assert [r for r in project.web.seen("/github/") if r.method == "POST"] == []
    assert replies(project, key) == []


def test_template_choices_private_only_templates_and_the_list(project):
    polled(project, CONFIG + PAIR)
    private_only = project.run("reply", BLUESKY_CHAT.key, "--template", "only-dm", "--dry-run")
    assert private_only.code == 0 and "Private message, as a Bluesky chat" in private_only.out
    assert "Your reply" not in private_only.out
    # --private with a pair sends only its private text.
    chosen = project.run("reply", BLUESKY_CHAT.key, "-t", "sorry-then-dm", "--private",
                         "--dry-run")  # fmt: skip
    assert "could you tell me the email" in chosen.out and "Sorry about that" not in chosen.out
    listed = project.run("reply", "--list-templates")
    assert "sorry-then-dm: Sorry about that, {author}: sent you a DM. · private: Hi {author}" in (
        " ".join(listed.out.split())
    )


def test_bad_template_tables_are_config_errors(project):
    project.write_config(CONFIG + '\n[templates]\nbad = { public = "x", dm = "y" }\n')
    result = project.run("feed")
    assert result.code == 2 and "templates.bad.dm: unknown key" in result.err
    project.write_config(CONFIG + "\n[templates]\nbad = 3\n")
    result = project.run("feed")
    assert result.code == 2 and "templates.bad: expected the reply text or a table" in result.err
    assert mastodon.TOKEN not in result.err and reddit.PASSWORD not in result.err


def test_the_demo_answers_in_public_then_by_direct_message(project):
    result = project.run("demo")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    posted = next(i for i, line in enumerate(lines) if line.startswith("posted: https://x.com/"))
    sent = next(
        i for i, line in enumerate(lines) if line.startswith("sent: https://x.com/messages/")
    )
    assert posted < sent
    assert "--template sorry-then-dm" in result.err
