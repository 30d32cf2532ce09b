"""`mentionwatch auth threads` end to end: Meta's login with the test as the browser, the
long-lived swap, renewal once the token is a day old, refused consent, a revoked or expired
grant, and no token ever printed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import httpx
from test_source_threads import CONFIG as THREADS_CONFIG

from mentionwatch.testing.meta import LONG_LIVED
from mentionwatch.testing.platforms.threads import CLIENT_ID, CLIENT_SECRET, REDIRECT, TOKEN

# The threads tests' config (with a configured token: a stored authorization wins over it)
# and the OAuth keys.
CONFIG = (
    THREADS_CONFIG
    + f"""client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
redirect_uri = "REDIRECT"
authorize_url = "{{web}}/threads/oauth/authorize"
token_url = "{{web}}/threads/oauth/access_token"
"""
)


def configure(project, redirect: str = REDIRECT) -> None:
    project.write_config(CONFIG.replace("REDIRECT", redirect))


def start_auth(project) -> tuple[subprocess.Popen, str]:
    argv = [sys.executable, "-m", "mentionwatch", "--config", str(project.config),
            "--db", str(project.db), "auth", "threads", "--no-browser",
            "--timeout", "30s"]  # fmt: skip
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    return proc, proc.stdout.readline().strip()


def record(project) -> dict:
    (row,) = project.rows(
        "SELECT value FROM source_state WHERE source = 'threads' AND key = 'oauth'"
    )
    return json.loads(row[0])


def shift_record(project, seconds: float, **changes) -> None:
    """Our stored token becomes `seconds` older, as the platform's does with auth.age()."""
    saved = record(project)
    saved.update(obtained_at=saved["obtained_at"] - seconds,
                 expires_at=saved["expires_at"] - seconds, **changes)  # fmt: skip
    value = json.dumps(saved).replace("'", "''")  # an SQL literal: execute takes no parameters
    project.execute(
        f"UPDATE source_state SET value = '{value}' WHERE source = 'threads' AND key = 'oauth'"
    )


def test_pasted_redirect_long_lived_swap_renewal_and_revocation(project):
    web = project.web
    auth = web.platform("threads").auth
    configure(project)
    proc, url = start_auth(project)
    asked = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(web.base_url("threads") + "/oauth/authorize?")
    assert asked["redirect_uri"] == REDIRECT and asked["response_type"] == "code"
    assert asked["scope"].split(",")[:3] == ["threads_basic", "threads_keyword_search",
                                             "threads_manage_replies"]  # fmt: skip
    assert "code_challenge" not in asked and len(asked["state"]) >= 20
    # The browser lands on the registered https address (no server there): the user pastes it.
    consent = httpx.get(url, timeout=10)
    landed = consent.headers["location"]
    assert landed.startswith(REDIRECT + "?") and landed.endswith("#_")
    out, err = proc.communicate(landed + "\n", timeout=30)
    assert proc.returncode == 0, err
    assert "threads: authorized (scopes: threads_basic,threads_keyword_search" in err
    assert "(valid 60 days)" in err
    (swapped,) = web.seen("/threads/access_token")
    assert swapped.query["grant_type"] == ["th_exchange_token"]
    saved = record(project)
    assert saved["access_token"] in auth.long and saved["refresh_token"] is None
    assert abs(saved["expires_at"] - (time.time() + LONG_LIVED)) < 60
    said = [out, err]

    # Polls with the long-lived token; not renewed before it is a day old.
    polled = project.run("poll")
    assert polled.code == 0, polled.err
    searched = web.seen("/threads/v1.0/keyword_search")[-1]
    assert searched.headers["authorization"] == f"Bearer {saved['access_token']}" != TOKEN
    assert not web.seen("/threads/refresh_access_token")
    listed = project.run("sources")
    assert "authorized (access token valid for 60 days, renewed automatically)" in listed.out
    said += [polled.out, polled.err, listed.out, listed.err]

    # A day and a bit later the next call renews it first (Meta: unexpired, 24 h old).
    auth.age(25 * 3600)
    shift_record(project, 25 * 3600)
    again = project.run("poll")
    assert again.code == 0, again.err
    (renewal,) = web.seen("/threads/refresh_access_token")
    assert renewal.query["grant_type"] == ["th_refresh_token"]
    renewed = record(project)
    assert renewed["access_token"] != saved["access_token"] and renewed["access_token"] in auth.long
    assert abs(renewed["expires_at"] - (time.time() + LONG_LIVED)) < 60  # 60 days from now
    searched = web.seen("/threads/v1.0/keyword_search")[-1]
    assert searched.headers["authorization"] == f"Bearer {renewed['access_token']}"
    said += [again.out, again.err]

    # The user removes the app in Threads: one line naming the fix.
    auth.revoked = True
    auth.age(25 * 3600)
    shift_record(project, 25 * 3600)
    revoked = project.run("poll")
    (line,) = [x for x in revoked.err.splitlines() if x.startswith("error: threads")]
    assert revoked.code == 1 and "run 'mentionwatch auth threads'" in line, revoked.err
    listed = project.run("sources")
    assert "the last renewal failed" in listed.out and "mentionwatch auth threads" in listed.out
    said += [revoked.out, revoked.err, listed.out, listed.err]

    # Unused for 60 days: expired tokens cannot be renewed. A configured token is used then;
    # without one, no call is made.
    shift_record(project, 61 * 86400)
    fallback = project.run("poll")
    assert fallback.code == 0, fallback.err
    searched = web.seen("/threads/v1.0/keyword_search")[-1]
    assert searched.headers["authorization"] == f"Bearer {TOKEN}"
    listed = project.run("sources")
    assert "the authorization expired on" in listed.out and "token is used meanwhile" in listed.out
    said += [fallback.out, fallback.err, listed.out, listed.err]
    project.write_config(CONFIG.replace(f'token = "{TOKEN}"\n', "").replace("REDIRECT", REDIRECT))
    calls = len(web.seen("/threads"))
    expired = project.run("poll")
    assert expired.code == 1 and "the authorization expired on" in expired.err
    assert "run 'mentionwatch auth threads' again" in expired.err
    assert len(web.seen("/threads")) == calls
    said += [expired.out, expired.err, project.run("sources").out]
    for token in auth.issued:
        assert all(token not in text for text in said)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_loopback_refusals_and_what_cannot_be_the_answer(project):
    auth = project.web.platform("threads").auth
    # A configured http loopback redirect: the browser comes back to mentionwatch itself.
    loopback = f"http://127.0.0.1:{free_port()}/threads/callback"
    auth.registered += (loopback,)
    auth.deny = True
    configure(project, loopback)
    proc, url = start_auth(project)
    page = httpx.get(url, follow_redirects=True, timeout=10)
    assert page.status_code == 200 and "did not complete" in page.text
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "authorization refused: access_denied: Permissions error; nothing changed" in err
    assert not project.rows("SELECT * FROM source_state WHERE key = 'oauth'")

    # A pasted address from another attempt (its state differs) is not taken.
    auth.deny = False
    configure(project)
    proc, url = start_auth(project)
    stale = httpx.get(url, timeout=10).headers["location"].replace("state=", "state=old")
    _, err = proc.communicate(stale + "\n", timeout=30)
    assert proc.returncode == 2 and "its state differs" in err

    # A pasted code Meta does not know: Meta's own line, nothing stored.
    bogus = project.run("auth", "threads", "--no-browser", input="AQBnotacode#_\n")
    assert bogus.code == 1 and "Error validating verification code" in bogus.err
    assert not project.rows("SELECT * FROM source_state WHERE key = 'oauth'")

    # Meta redirects only to registered addresses: without one, say which key to set.
    project.write_config(CONFIG.replace('redirect_uri = "REDIRECT"\n', ""))
    unset = project.run("auth", "threads")
    assert unset.code == 2 and "set sources.threads.redirect_uri" in unset.err
    assert "Redirect Callback URLs" in unset.err
