"""Stack Exchange search, end to end through the CLI: records, cursor, backoff and errors."""

from __future__ import annotations

import json
import time

import pytest
from conftest import HN_AND_RSS

from mentionwatch.http import SourceError
from mentionwatch.models import parse_iso
from mentionwatch.sources.stackexchange import StackExchange, site_domain
from mentionwatch.testing.platforms.stackexchange import KEY
from mentionwatch.testing.server import HTML_BLOCKED

WITH_KEY = f"""
[sources.stackexchange]
base_url = "{{web}}/stackexchange/2.3"
key = "{KEY}"
"""
SEARCH = "/stackexchange/2.3/search/excerpts"


def se_records(project) -> dict[str, dict]:
    return {r["key"]: r for r in project.run("export").jsonl() if r["source"] == "stackexchange"}


def test_poll_stores_questions_and_answers_field_by_field(project):
    project.write_config(HN_AND_RSS + WITH_KEY)
    result = project.run("poll")
    assert result.code == 0, result.err
    records = se_records(project)
    # Dropped: the "pebblebased" near miss and the question older than the first poll's
    # lookback.
    assert set(records) == {
        "stackexchange:stackoverflow:79410233",
        "stackexchange:stackoverflow:79410591",
        "stackexchange:stackoverflow:79412007",
        "stackexchange:stackoverflow:79413901",
    }
    question = records["stackexchange:stackoverflow:79410233"]
    assert question["url"] == "https://stackoverflow.com/q/79410233"
    assert question["reply_url"] == question["url"]
    assert question["author"] == question["author_name"] == "Zoë Müller"
    assert question["title"] == (
        'How do I connect to Pebblebase from SQLAlchemy without "SSL required" errors?'
    )
    assert question["text"].startswith(
        "I am trying to connect to my Pebblebase instance from SQLAlchemy 2.0"
    )
    assert "<" not in question["text"] and "sslmode=require is not set" in question["text"]
    assert question["reach"] == 3
    assert question["created_at"].endswith("Z")
    created = parse_iso(question["created_at"]).timestamp()
    assert created == pytest.approx(time.time() - 18 * 3600, abs=120)
    answer = records["stackexchange:stackoverflow:79410591"]
    assert answer["url"] == "https://stackoverflow.com/a/79410591"
    assert answer["author"] == "dbgrump" and answer["reach"] == 7
    assert "sensible default & saved me" in answer["text"]
    assert records["stackexchange:stackoverflow:79412007"]["reach"] == -1
    # Only the excerpt is there when the body is missing.
    assert records["stackexchange:stackoverflow:79413901"]["text"] == (
        "Does Pebblebase support read replicas"
    )

    requests = project.web.seen(SEARCH)
    assert sorted(r.arg("q") for r in requests) == ['"pebble base"', '"pebblebase"']
    for request in requests:
        assert request.arg("site") == "stackoverflow" and request.arg("key") == KEY
        assert (request.arg("sort"), request.arg("order")) == ("creation", "desc")
        assert request.arg("pagesize") == "100"
    assert KEY not in result.out + result.err


def test_second_poll_sends_fromdate_and_stores_nothing(project):
    project.write_config(HN_AND_RSS + WITH_KEY)
    assert project.run("poll").code == 0
    first = int(project.web.seen(SEARCH)[0].arg("fromdate"))
    assert first == pytest.approx(time.time() - 7 * 86400, abs=60)
    count = project.rows("SELECT count(*) FROM mentions WHERE source = 'stackexchange'")[0][0]
    again = project.run("poll")
    assert again.code == 0, again.err
    assert "stackexchange: 0 new" in again.out
    assert project.rows("SELECT count(*) FROM mentions WHERE source = 'stackexchange'")[0][0] == (
        count
    )
    # The newest item fetched is the 2 h old "pebblebased" near miss (seen, rejected locally),
    # less ten minutes for the search index's lag.
    second = int(project.web.seen(SEARCH)[-1].arg("fromdate"))
    assert second == pytest.approx(time.time() - 2 * 3600 - 600, abs=60)


def test_other_sites_get_their_own_domain():
    assert site_domain("stackoverflow") == "stackoverflow.com"
    assert site_domain("serverfault") == "serverfault.com"
    assert site_domain("superuser") == "superuser.com"
    assert site_domain("askubuntu") == "askubuntu.com"
    assert site_domain("unix") == "unix.stackexchange.com"
    assert site_domain("pt.stackoverflow") == "pt.stackoverflow.com"
    assert site_domain("meta.stackoverflow") == "meta.stackoverflow.com"
    assert site_domain("mathoverflow.net") == "mathoverflow.net"


def test_backoff_is_waited_out_within_and_across_polls(project):
    project.write_config(HN_AND_RSS + WITH_KEY + 'site = "serverfault"\n')
    platform = project.web.platform("stackexchange")
    # The first search's answer asks for 1 s: the second search (same method) waits.
    platform.backoff_next = 1
    started = time.monotonic()
    assert project.run("poll").code == 0
    assert time.monotonic() - started >= 1
    assert len(project.web.seen(SEARCH)) == 2
    (record,) = se_records(project).values()
    assert record["key"] == "stackexchange:serverfault:1170021"
    assert record["url"] == "https://serverfault.com/q/1170021"
    assert record["author"] == "sysadmin_sam"
    # An hour is too long to wait: the source fails instead of hanging the poll…
    platform.backoff_next = 3600
    result = project.run("poll")
    assert result.code == 1
    assert (
        "error: stackexchange: the API asked for a backoff on /search/excerpts; it resets in "
        "60 min" in result.err
    )
    assert "hackernews: " in result.out
    # …and the next poll (a new process, for cron) still knows, and sends nothing.
    sent = len(project.web.seen(SEARCH))
    assert project.run("poll").code == 1
    assert len(project.web.seen(SEARCH)) == sent


BLOCKED = {"body": HTML_BLOCKED, "content_type": "text/html"}
THROTTLED = (
    '{"error_id": 502, "error_message": "too many requests from this IP, more requests '
    'available in 82311 seconds", "error_name": "throttle_violation"}'
)
FAILURES = [
    (400, {"body": '{"error_id":400,"error_message":"site","error_name":"bad_parameter"}'},
     "bad_parameter (400): site"),
    (403, {"body": '{"error_id":403,"error_message":"denied","error_name":"access_denied"}'},
     "access_denied (403): denied"),
    (403, BLOCKED, "got an HTML page"),
    (429, {"headers": {"retry-after": "7200"}}, "rate limited by 127.0.0.1"),
    (500, {"times": 5}, "HTTP 500 from"),
    (200, {"truncate": True}, "the JSON body is malformed or truncated"),
]  # fmt: skip


def test_each_failure_fails_stackexchange_only_with_a_clear_line(project):
    project.write_config(HN_AND_RSS + WITH_KEY)
    for status, fault, expected in FAILURES:
        project.web.fail(SEARCH, status, **fault)
        result = project.run("poll")
        assert result.code == 1, (status, result.err)
        errors = [x for x in result.err.splitlines() if x.startswith("error: ")]
        assert errors and all(e.startswith("error: stackexchange: ") for e in errors), result.err
        assert expected in errors[0]
        assert KEY not in result.out + result.err
        assert "hackernews: " in result.out
        project.web.faults.clear()
    assert project.rows("SELECT count(*) FROM mentions WHERE source = 'hackernews'")[0][0] == 10
    # A wrong key: the API's reason, never the key.
    project.write_config(HN_AND_RSS + WITH_KEY.replace(KEY, "notTheKey(("))
    result = project.run("poll")
    assert result.code == 1
    assert "bad_parameter (400): key" in result.err
    assert "notTheKey" not in result.out + result.err


def test_malformed_items_are_named_and_the_rest_of_the_page_is_kept(project):
    now = int(time.time())
    project.web.platform("stackexchange").extra_items += [
        {"item_type": "question", "question_id": "1", "creation_date": now, "title": "Pebblebase"},
        {"item_type": "answer", "question_id": 4, "creation_date": now - 30, "title": "Pebblebase",
         "body": "<p>Pebblebase</p>"},
        {"item_type": "question", "question_id": 3, "creation_date": now - 60,
         "title": "Pebblebase &lt;3", "body": None, "owner": None, "score": None},
    ]  # fmt: skip
    project.write_config(HN_AND_RSS + WITH_KEY)
    result = project.run("poll")
    assert result.code == 1
    (line,) = [x for x in result.err.splitlines() if x.startswith("error: ")]
    assert line.startswith('error: stackexchange: item 1 has "question_id": a string where')
    assert 'item 2 has no "answer_id"' in line
    records = se_records(project)
    assert len(records) == 5  # the fixture's four, and the odd but valid question
    odd = records["stackexchange:stackoverflow:3"]
    assert odd["title"] == "Pebblebase <3" and odd["text"] == ""
    assert odd["author"] is None and odd["reach"] is None


def test_check_and_no_reply_api(project):
    project.write_config(WITH_KEY + 'site = "stackoverflow"\n')
    assert project.call_source("stackexchange", lambda s: s.check()) == (
        "site stackoverflow answers (with an app key): 9999 of 10000 requests left today"
    )
    project.write_config(WITH_KEY.replace(KEY, "wrong(("))
    with pytest.raises(SourceError, match="bad_parameter") as caught:
        project.call_source("stackexchange", lambda s: s.check())
    assert "wrong((" not in str(caught.value)
    assert StackExchange.can_reply is False


def test_throttle_violation_is_not_retried(project):
    """Repeating requests during an IP ban only extends it: one request, then a clear error."""
    project.write_config(HN_AND_RSS + WITH_KEY)
    project.web.fail(SEARCH, 502, body=THROTTLED, times=5)
    result = project.run("poll", "--source", "stackexchange")
    assert result.code == 1
    assert "throttle_violation (502)" in result.err
    assert len(project.web.seen(SEARCH)) == 1


def test_highlight_markup_in_titles_is_stripped(project):
    excerpt = {
        "item_type": "question", "question_id": 79499999, "creation_date": int(time.time()) - 60,
        "title": 'Is <span class="highlight">Pebblebase</span> &quot;serverless&quot;?',
        "excerpt": "Does <span class=\"highlight\">pebblebase</span> scale to zero?",
        "owner": {"display_name": "Ana"}, "score": 1,
    }  # fmt: skip
    body = json.dumps({"items": [excerpt], "has_more": False})
    project.write_config(HN_AND_RSS + WITH_KEY)
    project.web.fail(SEARCH, 200, body=body)
    assert project.run("poll", "--source", "stackexchange").code == 0
    record = se_records(project)["stackexchange:stackoverflow:79499999"]
    assert record["title"] == 'Is Pebblebase "serverless"?'
    assert record["text"] == "Does pebblebase scale to zero?"


def test_show_reads_an_answers_question_once(project):
    project.write_config(HN_AND_RSS + WITH_KEY)
    project.run("poll")
    shown = project.run("show", "stackexchange:stackoverflow:79410591")
    assert shown.code == 0, shown.err
    assert "in reply to Zoë Müller  https://stackoverflow.com/q/79410233" in shown.out
    assert 'from SQLAlchemy without "SSL required" errors?' in shown.out
    assert "What connection string does Pebblebase expect?" in shown.out
    (asked,) = project.web.seen("/stackexchange/2.3/questions/")
    assert asked.path == "/stackexchange/2.3/questions/79410233"
    assert (asked.arg("site"), asked.arg("filter"), asked.arg("key")) == (
        "stackoverflow", "withbody", KEY,
    )  # fmt: skip
    project.run("show", "stackexchange:stackoverflow:79410591")  # kept: no second request
    assert len(project.web.seen("/stackexchange/2.3/questions/")) == 1

    question = project.run("show", "stackexchange:stackoverflow:79410233")
    assert question.code == 0 and "in reply to" not in question.out
    assert len(project.web.seen("/stackexchange/2.3/questions/")) == 1


@pytest.mark.parametrize("status", [400, 502])
def test_a_spent_daily_quota_is_waited_out_across_polls_without_a_request(project, status):
    # "more requests available in N seconds": any request before then extends the refusal.
    # (Stack Exchange answers every error with HTTP 400; some report 502 for this one.)
    keyless = WITH_KEY.replace(f'key = "{KEY}"\n', "")
    project.write_config(HN_AND_RSS + keyless)
    project.web.fail(SEARCH, status, body=THROTTLED, times=5)
    result = project.run("poll")
    assert result.code == 1
    (line,) = [x for x in result.err.splitlines() if x.startswith("error: ")]
    assert line.startswith("error: stackexchange: throttle_violation (502): too many requests")
    assert line.endswith("more requests available in 82311 seconds; it resets in 22 h 51 min, "
                         "try again then")  # fmt: skip
    assert "hackernews: " in result.out
    assert len(project.web.seen(SEARCH)) == 1
    # The next poll (a new process, for cron) knows, and sends nothing.
    again = project.run("poll", "--source", "stackexchange")
    assert again.code == 1
    assert "until the day's quota renews; it resets in 22 h 51 min" in again.err
    assert len(project.web.seen(SEARCH)) == 1
    # An app key has its own quota: adding one is the fix, and it is not held back.
    project.web.faults.clear()
    project.write_config(HN_AND_RSS + WITH_KEY)
    assert project.run("poll", "--source", "stackexchange").code == 0
