"""YouTube, the app stores, Yelp and the small communities through the real CLI, against
their emulators; and `mentionwatch auth` against a loopback authorization server, with the
test playing the browser."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
from conftest import TERM

from mentionwatch.testing.demo import toml_table

NEW = ("appstore", "devto", "googleplay", "lobsters", "producthunt", "yelp", "youtube")


def configure(project, *names, **overrides):
    tables = [
        toml_table(
            f"sources.{n}", {**project.web.platform(n).source_settings(), **overrides.get(n, {})}
        )
        for n in names
    ]
    project.write_config(TERM + "\n".join(tables))


def stored(project, source):
    terms: dict[str, list[str]] = {}
    for key, term in project.rows(
        "SELECT m.key, t.term FROM mention_terms t JOIN mentions m ON m.id = t.mention_id "
        "WHERE m.source = ? ORDER BY t.term",
        source,
    ):
        terms.setdefault(key, []).append(term)
    return [
        json.loads(e) | {"key": k, "sentiment": s, "intents": json.loads(i),
                         "terms": ",".join(terms[k]) if k in terms else None}
        for k, e, s, i in project.rows(
            "SELECT key, extra, sentiment, intents FROM mentions m WHERE source = ?", source
        )
    ]  # fmt: skip


def test_every_new_source_polls_and_checks(project):
    configure(project, *NEW)
    result = project.run("poll")
    assert result.code == 0, result.err
    counts = dict(project.rows("SELECT source, count(*) FROM mentions GROUP BY 1"))
    assert counts == {
        "appstore": 4,
        "devto": 1,
        "googleplay": 2,
        "lobsters": 2,
        "producthunt": 1,
        "yelp": 2,
        "youtube": 6,
    }
    check = project.run("sources", "--check")
    assert check.code == 0, check.out + check.err
    for name in NEW:
        assert f"ok    {name}: " in check.out
    assert "searches and" in check.out and "units used today" in check.out  # YouTube's quota
    assert "API calls left today" in check.out and "requests left this hour" in check.out
    again = project.run("poll")
    assert again.code == 0 and "0 new mention(s)" in again.out, again.err


def test_owned_reviews_belong_to_the_term_and_stars_outrank_words(project):
    configure(project, "appstore", "googleplay", "yelp")
    assert project.run("poll").code == 0
    reviews = stored(project, "appstore") + stored(project, "googleplay") + stored(project, "yelp")
    assert all(r["terms"] == "pebblebase" for r in reviews)  # none of them names the product
    for review in reviews:
        if review["rating"] <= 2:
            assert review["sentiment"] == "negative" and "complaint" in review["intents"], review
        assert len(review["intents"]) == len(set(review["intents"])), review  # each intent once
        if review["rating"] == 5:
            assert review["sentiment"] == "positive", review
    # The kind one-star ("Love the idea… useless until fixed") ranks before the five-star.
    ranked = project.run(
        "feed", "--source", "appstore", "--sort", "priority", "--format", "jsonl"
    ).jsonl()
    assert ranked[0]["title"] in ("Love the idea", "Widgets broke")


def test_reviews_of_my_own_app_are_always_relevant(project):
    # A term about something else entirely: the reviews' words match none of it, yet a review
    # of the founder's own app is about the product by where it was written.
    about = 'about = "satellite imagery api"\nnot_about = ["widgets", "idea"]\n'
    tables = [toml_table(f"sources.{n}", project.web.platform(n).source_settings())
              for n in ("appstore", "googleplay", "devto")]  # fmt: skip
    project.write_config(TERM + about + "\n".join(tables))
    assert project.run("poll").code == 0
    rows = project.run("export", "--format", "jsonl").jsonl()
    owned = [r for r in rows if r["source"] in ("appstore", "googleplay")]
    assert owned and all(r["relevance"] == 1.0 for r in owned), owned
    relevant = project.run("feed", "--relevant", "--format", "ids").out.split()
    assert {str(r["id"]) for r in owned} <= set(relevant)
    searched = [r for r in rows if r["source"] == "devto"]
    assert searched and all(r["relevance"] < 1.0 for r in searched)  # found by search: scored


def test_youtube_channel_search_reply_and_quota(project):
    web = project.web
    youtube = web.platform("youtube")
    configure(project, "youtube")
    assert project.run("poll").code == 0
    rows = {r["key"]: r for r in stored(project, "youtube")}
    reply = rows["youtube:UgyPebble001AaABAg.A1b2C3d4E5f"]
    assert reply["thread_id"] == "UgyPebble001AaABAg" and reply["comment_kind"] == "reply"
    assert (
        "youtube:ytVidSrch01" in rows and "youtube:UgwSearch01AaABAg" in rows
    )  # video + its comment
    assert "youtube:ytVidSrch02" not in rows  # pebble base camp: excluded by the term
    searches = youtube.searches
    # The next poll within the pacing interval reads the channel but spends no search.
    assert project.run("poll").code == 0 and youtube.searches == searches
    # A reply to a reply goes to its thread (YouTube threads are one level deep), as the user.
    posted = project.run(
        "reply", "youtube:UgyPebble001AaABAg.A1b2C3d4E5f", "Fixed in 4.2.2!", "--yes"
    )
    assert posted.code == 0, posted.err
    assert youtube.posted[-1]["snippet"]["parentId"] == "UgyPebble001AaABAg"
    refused = project.run("reply", "youtube:UgxPebble003AaABAg", "thanks", "--yes")
    assert refused.code == 2 and "canReply is false" in refused.err
    too_long = project.run("reply", "youtube:UgzPebble002AaABAg", "x" * 10_001, "--yes")
    assert too_long.code == 2 and "youtube allows 10000" in too_long.err
    # Quota used up: one clear line, the bucket is remembered, and no call is made until reset.
    youtube.units_left = 0
    spent = project.run("poll")
    assert (
        spent.code == 1 and "youtube: YouTube's daily quota is used up (quotaExceeded)" in spent.err
    )
    calls = len(web.seen("/youtube/youtube/v3/commentThreads"))
    blocked = project.run("poll")
    assert blocked.code == 1 and "quota is used up" in blocked.err
    assert len(web.seen("/youtube/youtube/v3/commentThreads")) == calls
    assert "units used up (quotaExceeded)" in project.run("sources").out


def test_youtube_pages_to_everything_stored(project):
    youtube = project.web.platform("youtube")
    now = time.time()
    keys = {youtube.add_item(f"pebblebase backlog {i}", now - 60 * i - 120) for i in range(230)}
    configure(project, "youtube", youtube={"searches_per_day": 0})
    assert project.run("poll").code == 0
    assert keys <= {k for (k,) in project.rows("SELECT key FROM mentions")}
    assert len(project.web.seen("/youtube/youtube/v3/commentThreads")) == 3  # 100 a page


def test_youtube_errors_are_one_line(project):
    configure(project, "youtube", youtube={"api_key": "AIzaWrongKey", "searches_per_day": 0})
    bad = project.run("poll")
    assert bad.code == 1 and "youtube: reading comment threads: HTTP 400" in bad.err
    assert "API key not valid" in bad.err
    configure(project, "youtube", youtube={"channel_id": "UCnobody", "searches_per_day": 0})
    assert "The channel could not be found" in project.run("poll").err


def google_rate_limit(status: int, reason: str) -> str:
    """Google's answer to a per-minute or per-user rate limit (a 429 also names the limit in
    an ErrorInfo, whose reason is RATE_LIMIT_EXCEEDED): it passes within the minute."""
    message = ("Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of "
               "service 'youtube.googleapis.com' for consumer 'project_number:4815'.")  # fmt: skip
    error = {"code": status, "message": message,
             "errors": [{"message": message, "domain": "global", "reason": reason}],
             "status": "RESOURCE_EXHAUSTED" if status == 429 else "PERMISSION_DENIED"}  # fmt: skip
    if status == 429:
        error["details"] = [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
            "domain": "googleapis.com",
            "metadata": {"service": "youtube.googleapis.com",
                         "quota_limit": "defaultPerMinutePerProject"},
        }]  # fmt: skip
    return json.dumps({"error": error})


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, "rateLimitExceeded"), (403, "rateLimitExceeded"), (403, "userRateLimitExceeded")],
)
def test_youtube_rate_limits_are_retried_unlike_the_days_quota(project, status, reason):
    configure(project, "youtube", youtube={"searches_per_day": 0})
    threads = "/youtube/youtube/v3/commentThreads"
    project.web.fail(threads, status, body=google_rate_limit(status, reason), times=2)
    result = project.run("poll")
    assert result.code == 0, result.err
    assert len(project.web.seen(threads)) >= 3  # the two refused, then the page
    assert "youtube:UgyPebble001AaABAg.A1b2C3d4E5f" in {
        r["key"] for r in stored(project, "youtube")
    }
    assert "used up" not in project.run("sources").out  # the day's quota is not spent


def start_auth(project, source):
    """`auth SOURCE --no-browser` running; its first line of output is the address to open."""
    argv = [sys.executable, "-m", "mentionwatch", "--config", str(project.config), "--db",
            str(project.db), "auth", source, "--no-browser", "--timeout", "30s"]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_auth_flow_with_the_test_as_browser(project):
    web = project.web
    youtube = web.platform("youtube")
    configure(project, "youtube", youtube={"refresh_token": ""})
    proc = start_auth(project, "youtube")
    url = proc.stdout.readline().strip()
    assert url.startswith(web.base_url("youtube") + "/o/oauth2/v2/auth?"), url
    page = httpx.get(url, follow_redirects=True, timeout=10)  # consent, then back to mentionwatch
    assert page.status_code == 200 and "mentionwatch is authorized" in page.text
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    asked = youtube.auth.authorize_requests[-1]
    assert asked["code_challenge_method"] == "S256" and len(asked["state"]) >= 20
    assert asked["access_type"] == "offline" and asked["scope"].endswith("youtube.force-ssl")
    assert "youtube: authorized" in err
    (record,) = project.rows(
        "SELECT value FROM source_state WHERE source = 'youtube' AND key = 'oauth'"
    )
    tokens = json.loads(record[0])
    assert tokens["refresh_token"] in youtube.auth.refresh
    for token in youtube.auth.issued:
        assert token not in out + err
    # The stored token replies; an expired one is renewed before the call.
    assert project.run("poll").code == 0
    youtube.auth.expire_access()
    before = len(youtube.auth.issued)
    assert (
        project.run("reply", "youtube:UgzPebble002AaABAg", "So sorry! Email us?", "--yes").code == 0
    )
    assert len(youtube.auth.issued) == before + 1  # a new access token first
    assert "authorized (access token valid" in project.run("sources").out
    forgot = project.run("auth", "youtube", "--forget")
    assert forgot.code == 0 and "stored tokens deleted" in forgot.err
    assert (
        "run 'mentionwatch auth youtube'"
        in project.run("reply", "youtube:UgzPebble002AaABAg", "x", "--yes").err
    )


def test_auth_refused_in_the_browser_changes_nothing(project):
    youtube = project.web.platform("youtube")
    youtube.auth.deny = True
    configure(project, "youtube", youtube={"refresh_token": ""})
    proc = start_auth(project, "youtube")
    httpx.get(proc.stdout.readline().strip(), follow_redirects=True, timeout=10)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "authorization refused: access_denied; nothing changed" in err
    # A revoked refresh token: one line naming the fix.
    configure(project, "youtube", youtube={"refresh_token": "1//revoked", "api_key": ""})
    revoked = project.run("poll", "--source", "youtube")
    assert (
        revoked.code == 1 and "invalid_grant): run 'mentionwatch auth youtube' again" in revoked.err
    )


def test_googleplay_reviews_reply_and_errors(project):
    play = project.web.platform("googleplay")
    now = time.time()
    added = {play.add_item(f"review {i}", now - 600 - i) for i in range(130)}
    configure(project, "googleplay")
    assert project.run("poll").code == 0
    assert added <= {k for (k,) in project.rows("SELECT key FROM mentions")}
    (one_star,) = [r for r in stored(project, "googleplay") if r.get("rating") == 1]
    posted = project.run("reply", one_star["key"], "Sorry! 4.2.2 fixes shared notebooks.", "--yes")
    assert posted.code == 0, posted.err
    assert play.replies["gp:AOqpTOFpebble0001"].startswith("Sorry!")
    long = project.run("reply", one_star["key"], "x" * 351, "--yes", "--keep-open")
    assert long.code == 2 and "googleplay allows 350" in long.err
    configure(project, "googleplay", googleplay={"packages": ["com.unknown.app"]})
    missing = project.run("poll")
    assert missing.code == 1 and "Package not found: com.unknown.app" in missing.err
    assert "review reads in the last hour" in project.run("sources").out


def test_appstore_feed_and_connect(project):
    store = project.web.platform("appstore")
    configure(project, "appstore")
    assert project.run("poll").code == 0
    rows = {r["key"]: r for r in stored(project, "appstore")}
    feed = rows["appstore:11460000001"]
    assert feed["via"] == "rss" and feed["rating"] == 1 and feed["version"] == "4.2.1"
    refused = project.run("reply", "appstore:11460000001", "Sorry!", "--yes")
    assert refused.code == 2 and "public feed, which takes no replies" in refused.err
    key = "appstore:00000041-9d1d-1c01-0000-00000000a001"
    posted = project.run("reply", key, "Fixed in 4.2.2, sorry!", "--yes")
    assert posted.code == 0, posted.err
    assert (
        store.responses["00000041-9d1d-1c01-0000-00000000a001"]["attributes"]["state"]
        == "PENDING_PUBLISH"
    )
    for token in store.tokens:  # the JWTs sent are never shown or kept
        assert token not in posted.out + posted.err and token.encode() not in project.contents()
    store.rate_left = 0
    asked = len(project.web.seen("/appstore/v1/"))
    limited = project.run("poll")
    assert (
        limited.code == 1
        and "appstore: App Store Connect's hourly request limit is used up" in limited.err
    )
    # RATE_LIMIT_EXCEEDED: the rolling hour is spent, so it is asked once, not retried
    assert len(project.web.seen("/appstore/v1/")) == asked + 1
    configure(project, "appstore", appstore={"key_id": "WRONGKEY00"})
    store.rate_left = 3500
    bad = project.run("poll")
    assert (
        bad.code == 1
        and "HTTP 401" in bad.err
        and "key id, issuer or lifetime is not accepted" in bad.err
    )


def test_yelp_reviews_owner_page_and_limits(project):
    yelp = project.web.platform("yelp")
    configure(project, "yelp")
    assert project.run("poll").code == 0
    (key,) = [r["key"] for r in stored(project, "yelp") if r["rating"] == 1]
    dry = project.run("reply", key, "Sorry about the wait", "--dry-run")
    assert dry.code == 0 and "https://biz.yelp.com/" in dry.out
    yelp.daily_left = 0
    spent = project.run("poll")
    assert spent.code == 1 and "ACCESS_LIMIT_REACHED" in spent.err and "resets in" in spent.err
    configure(project, "yelp", yelp={"api_key": "nope"})
    bad = project.run("poll")
    assert bad.code == 1 and "TOKEN_INVALID: Invalid access token" in bad.err


def test_communities_page_throttle_and_redaction(project):
    web = project.web
    lobsters = web.platform("lobsters")
    now = time.time()
    keys = {lobsters.add_item(f"pebblebase story {i}", now - 300 - 60 * i) for i in range(60)}
    configure(project, "lobsters", "devto", "producthunt")
    assert project.run("poll").code == 0
    assert keys <= {k for (k,) in project.rows("SELECT key FROM mentions")}
    assert all(
        r.headers.get("accept") == "application/vnd.forem.api-v1+json" for r in web.seen("/devto")
    )
    (post,) = stored(project, "producthunt")
    assert post["author_redacted"] is True
    assert project.rows("SELECT author FROM mentions WHERE source = 'producthunt'") == [(None,)]
    lobsters.per_minute = 0
    # Any reset (the next minute's start, up to a minute away) is longer than this max_wait:
    # refused at once, not waited (max_wait = 1 waited, in a minute's last second).
    project.config.write_text(project.config.read_text() + "max_wait = 0\n")  # in [poll]
    throttled = project.run("poll", "--source", "lobsters")
    assert throttled.code == 1 and "Throttled" in throttled.err
    configure(
        project, "devto", "producthunt", devto={"api_key": "bad"}, producthunt={"token": "bad"}
    )
    bad = project.run("poll")
    assert bad.code == 1 and "devto: HTTP 401" in bad.err and "unauthorized" in bad.err
    assert "invalid_oauth_token" in bad.err


@pytest.mark.parametrize("name", ["lobsters", "devto", "yelp"])
def test_sources_without_a_reply_api_open_the_page(project, name):
    configure(project, name)
    assert project.run("poll").code == 0
    (key,) = project.rows("SELECT key FROM mentions WHERE source = ? LIMIT 1", name)[0]
    dry = project.run("reply", key, "hello", "--dry-run")
    assert (
        dry.code == 0
        and "nothing recorded" in dry.err
        and dry.out.strip().splitlines()[-1].startswith("https://")
    )
