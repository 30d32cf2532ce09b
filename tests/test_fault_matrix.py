"""Platform × fault: every platform broken in every way at once, through the real CLI.

For each fault, every platform's search answer is broken the same way in one poll. Each
broken platform must say so in one line that names it and the problem, keep what it safely
can, leave the other platforms' mentions saved, and lose nothing: once the fault is gone,
the next poll stores every mention the fault hid, none twice. The size faults also run in a
separate process whose peak memory is measured.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import Project, all_platforms

from mentionwatch.testing import platforms
from mentionwatch.testing.server import HTML_BLOCKED, LoopbackWeb

MB = 2**20
# Every platform the loopback web plays: a new one joins the matrix by being there.
PLATFORMS = tuple(sorted(m.name for m in pkgutil.iter_modules(platforms.__path__)))
JSON_PLATFORMS = tuple(p for p in PLATFORMS if p != "rss")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Counter[str]:
    """How many mentions each platform's fixtures give a first poll with no fault."""
    with LoopbackWeb() as web:
        project = Project(tmp_path_factory.mktemp("baseline"), web)
        project.write_config(all_platforms(web))
        assert project.run("poll").code == 0
        return Counter(dict(project.rows("SELECT source, count(*) FROM mentions GROUP BY 1")))


def _stored(project: Project) -> Counter[str]:
    return Counter(dict(project.rows("SELECT source, count(*) FROM mentions GROUP BY 1")))


def _errors(result) -> dict[str, str]:
    lines = [x.removeprefix("error: ") for x in result.err.splitlines() if x.startswith("error: ")]
    found: dict[str, str] = {}
    for line in lines:
        found[line.split(":", 1)[0]] = found.get(line.split(":", 1)[0], "") + line + "\n"
    return found


# fault name -> (platforms it applies to, web.fail() arguments for a platform, what the line
# says, whether the rest of the page is kept)
FAULTS = {
    "null item": (JSON_PLATFORMS, lambda p: {"status": 200, "shape": ("null", p.item_path())},
                  "item 1 is null where an object belongs", True),
    "missing key": (JSON_PLATFORMS, lambda p: {
        "status": 200, "shape": ("drop", p.item_path(p.required_key))}, "has no", True),
    "null list": (JSON_PLATFORMS, lambda p: {"status": 200, "shape": ("null", p.items_path)},
                  "null", False),
    "truncated": (PLATFORMS, lambda p: {"status": 200, "truncate": True}, "", False),
    "cut connection": (PLATFORMS, lambda p: {"status": 200, "cut": True, "times": 10},
                       "was cut off", False),
    "HTML page": (PLATFORMS, lambda p: {"status": 403, "body": HTML_BLOCKED,
                                        "content_type": "text/html"}, "HTML page", False),
    "huge body": (PLATFORMS, lambda p: {"status": 200, "huge": 64 * MB}, "larger than 8 MB",
                  False),
    "gzip bomb": (PLATFORMS, lambda p: {"status": 200, "huge": 256 * MB, "gzip": True},
                  "larger than 8 MB once decompressed", False),
    "redirect loop": (PLATFORMS, lambda p: {"redirect": "loop", "times": 50}, "redirect loop",
                      False),
    "redirect chain": (PLATFORMS, lambda p: {"redirect": "chain", "times": 50},
                       "more than 5 redirects", False),
    # Reddit fetches a new token once on a 401: the gateway must refuse that too.
    "echoing gateway": (PLATFORMS, lambda p: {"status": 401, "echo": True, "times": 5},
                        "HTTP 401", False),
}  # fmt: skip


@pytest.mark.parametrize("name", FAULTS)
def test_every_platform_broken_at_once(project, baseline, name):
    platforms, fault, says, keeps_page = FAULTS[name]
    project.write_config(all_platforms(project.web))
    for platform in platforms:
        target = project.web.platform(platform)
        project.web.fail(target.search_path, **{"times": 1, **fault(target)})
    result = project.run("poll")
    assert result.code == 1, result.err
    errors = _errors(result)
    stored = _stored(project)
    for platform in PLATFORMS:
        if platform not in platforms:
            assert platform not in errors and stored[platform] == baseline[platform]
            continue
        assert platform in errors, f"{name}: no error line for {platform}:\n{result.err}"
        assert says in errors[platform], errors[platform]
        assert "\x1b" not in errors[platform] and "Traceback" not in result.err
        if keeps_page:  # only the broken item is missing (it may also be a near miss)
            # A YouTube item is a comment thread: its top-level comment and its replies.
            lost = {"youtube": 2}.get(platform, 1)
            assert baseline[platform] - lost <= stored[platform] <= baseline[platform], platform
        else:
            assert stored[platform] <= baseline[platform], platform
    if name == "echoing gateway":  # what the gateway repeated back is never shown or kept
        secrets = _credentials(project.web) + _issued_tokens(project.web)
        shown = result.out + result.err
        assert not [x for x in secrets if x in shown or x.encode() in project.db.read_bytes()]
    # The fault is gone: the next poll brings everything it hid, none twice.
    project.web.faults.clear()
    again = project.run("poll")
    assert again.code == 0, again.err
    assert _stored(project) == baseline
    keys = [k for (k,) in project.rows("SELECT key FROM mentions")]
    assert len(keys) == len(set(keys))


# The peak of this process's own memory: /proc's VmHWM where there is one. (ru_maxrss is
# not: Linux carries the forking parent's resident size over exec, so a child of a grown
# pytest process would "peak" at the size of the test run.)
_MEASURED = """
import resource, sys
from mentionwatch import cli
try:
    cli.main()
finally:
    try:
        with open("/proc/self/status") as fh:
            peak = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak_rss_kb={peak}", file=sys.stderr)
"""


def _measured_poll(project: Project) -> tuple[subprocess.CompletedProcess[str], float]:
    """`mentionwatch poll` in its own process, and its peak resident memory in MB."""
    argv = [sys.executable, "-c", _MEASURED, "--config", str(project.config), "--db",
            str(project.db), "poll"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=os.environ)
    peak = next(line for line in proc.stderr.splitlines() if line.startswith("peak_rss_kb="))
    return proc, int(peak.split("=")[1]) / 1024


@pytest.mark.parametrize("fault", [{"huge": 64 * MB}, {"huge": 256 * MB, "gzip": True}])
def test_memory_stays_bounded_whatever_every_platform_sends(project, fault):
    project.write_config(all_platforms(project.web))
    for platform in PLATFORMS:
        project.web.fail(project.web.platform(platform).search_path, 200, times=100, **fault)
    proc, peak = _measured_poll(project)
    assert proc.returncode == 1, proc.stderr
    for platform in PLATFORMS:
        assert f"error: {platform}: the response from" in proc.stderr, proc.stderr
    assert peak < 150, f"peak memory {peak:.0f} MB"


def test_large_real_pages_are_read_one_at_a_time_within_the_ceiling(project):
    # Pages just under the cap from every platform at once: read and parsed, never all held
    # together.
    padding = "pebblebase " * (700 * 1024 // 11)
    web = project.web
    for i in range(4):  # 2.8 MB pages: each one past the size read concurrently
        web.platform("hackernews").add_item(f"pebblebase {i} {padding}", 1_796_000_000 + i)
        web.platform("github").add_item(f"pebblebase {i}", 1_796_000_000 + i)
        web.platform("github").extra_items[-1]["body"] = padding
    project.write_config(all_platforms(web, hackernews={}, github={}))
    proc, peak = _measured_poll(project)
    assert proc.returncode == 0, proc.stderr
    assert peak < 150, f"peak memory {peak:.0f} MB"


def test_a_gzip_answer_is_read_like_any_other(project, baseline):
    project.write_config(all_platforms(project.web))
    for platform in PLATFORMS:
        project.web.fail(project.web.platform(platform).search_path, 200, times=100, gzip=True)
    result = project.run("poll")
    assert result.code == 0, result.err
    assert _stored(project) == baseline


SECRET_KEYS = ("token", "bearer_token", "user_token", "key", "app_password", "password",
               "client_secret", "api_key", "refresh_token")  # fmt: skip


def _credentials(web: LoopbackWeb) -> list[str]:
    """Every configured credential of every platform."""
    settings = [p.source_settings() for p in web.platforms.values()]
    return [v for s in settings for k, v in s.items() if k in SECRET_KEYS and isinstance(v, str)]


def _issued_tokens(web: LoopbackWeb) -> list[str]:
    """Tokens the platforms handed out at run time (Reddit access tokens, Bluesky JWTs)."""
    bluesky, reddit = web.platform("bluesky"), web.platform("reddit")
    google = [*web.platform("youtube").auth.issued, *web.platform("googleplay").auth.issued]
    return [
        *bluesky.access,
        *bluesky.refresh,
        *reddit.tokens,
        *google,
        *web.platform("appstore").tokens,
    ]


def test_credentials_never_follow_a_redirect_to_another_origin(project):
    web = project.web
    project.write_config(all_platforms(web))
    for platform in PLATFORMS:
        web.fail(web.platform(platform).search_path, 307, redirect="elsewhere")
    # The logins themselves, with the password in their body, redirected too.
    web.fail("/bluesky/xrpc/com.atproto.server.createSession", 307, redirect="elsewhere")
    web.fail("/reddit/api/v1/access_token", 308, redirect="elsewhere")
    result = project.run("poll")
    assert result.code == 1
    errors = _errors(result)
    for platform in ("bluesky", "reddit"):
        assert "redirected a POST with a body to another origin" in errors[platform]
    secrets = _credentials(web)
    assert web.elsewhere, "the redirects were followed"
    for request in web.elsewhere:
        assert "authorization" not in request.headers and "cookie" not in request.headers
        sent = json.dumps(request.query) + request.body.decode("utf-8", "replace")
        assert not any(secret in sent for secret in secrets), request
        assert request.method == "GET" and not request.body


def test_a_same_origin_redirect_keeps_the_login_working(project):
    web = project.web
    project.write_config(all_platforms(web))
    web.fail("/bluesky/xrpc/com.atproto.server.createSession", 308, redirect="loop")
    result = project.run("poll", "--source", "bluesky")
    assert result.code == 0, result.err
    # The same origin: the body is sent again with the method, as 308 asks.
    first, second = web.seen("/bluesky/xrpc/com.atproto.server.createSession")
    assert second.method == "POST" and second.body == first.body and second.query
    web.fail("/bluesky/xrpc/com.atproto.server.refreshSession", 308, redirect="loop", times=50)
    web.platform("bluesky").expire_access()
    result = project.run("poll", "--source", "bluesky")
    assert result.code == 1 and "bluesky: redirect loop" in result.err


def test_redirect_to_a_moved_feed_is_followed(project):
    web = project.web
    project.write_config(all_platforms(web))
    web.fail("/rss/feeds/blog.xml", 301, redirect="elsewhere")
    result = project.run("poll", "--source", "rss")
    assert result.code == 0, result.err
    assert [r.path for r in web.elsewhere] == ["/rss/feeds/blog.xml"]


def test_matrix_config_has_every_platform(project):
    # The matrix is only as wide as the platforms it runs: a new one joins automatically.
    assert set(project.web.platforms) == set(PLATFORMS)
    text = all_platforms(project.web)
    assert all(f"[sources.{p}]" in text for p in PLATFORMS)
    assert Path(project.web.platform("rss").folder, "feeds").is_dir()
