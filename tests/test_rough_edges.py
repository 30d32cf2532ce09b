"""Everyday rough edges, tried as a new user would: Ctrl-C, `| head`, read-only databases,
credentials of unused sources, the reply draft, and who may read the files."""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import HN_AND_RSS

from mentionwatch.testing.hostile import hn_hit
from mentionwatch.testing.platforms import reddit

UNSHARE = shutil.which("unshare")
REDDIT_SOURCE = f"""
[sources.reddit]
base_url = "{{web}}/reddit/oauth"
auth_url = "{{web}}/reddit"
client_id = "{reddit.CLIENT_ID}"
client_secret = "${{PB_REDDIT_SECRET}}"
username = "{reddit.USERNAME}"
password = "{reddit.PASSWORD}"
"""


def cli(project) -> list[str]:
    return [sys.executable, "-m", "mentionwatch", "--config", str(project.config),
            "--db", str(project.db)]  # fmt: skip


def many_hits(project, count: int) -> None:
    now = int(time.time())
    project.web.platform("hackernews").extra_hits.extend(
        hn_hit(str(800000 + i), f"pebblebase note {i}", now - 60 - i) for i in range(count)
    )


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_during_poll_says_what_was_saved_and_exits_130(project, stop):
    # SIGTERM is how systemd, timeout(1) and kill stop a poll: the same as Ctrl-C
    many_hits(project, 450)
    project.write_config(HN_AND_RSS)
    project.web.latency = 0.2
    proc = subprocess.Popen([*cli(project), "poll"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while len(project.web.seen("/hackernews/api/v1/search_by_date")) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(stop)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    saved = project.rows("SELECT count(*) FROM mentions WHERE source = 'hackernews'")[0][0]
    assert 0 < saved < 450 + 10  # really interrupted, and the pages before it were kept
    assert f"hackernews: {saved} new of {saved} fetched, 1 job(s) (1 interrupted)" in out
    assert f"interrupted; {saved + 3} new mention(s) saved" in err  # rss finished meanwhile
    assert "Traceback" not in err
    assert project.rows("SELECT error FROM polls WHERE source = 'hackernews'") == [("interrupted",)]
    project.web.latency = 0
    again = project.run("poll")
    assert again.code == 0 and "hackernews: " in again.out
    assert project.rows("SELECT count(*) FROM mentions")[0][0] == 450 + 13


def fill(project, count: int) -> None:
    """Many stored mentions without polling for them."""
    from mentionwatch.models import Mention, utcnow
    from mentionwatch.store import Store

    store = Store(project.db)
    mentions = [Mention("hackernews", str(i), f"pebblebase note {i} " * 5, utcnow(),
                        terms=["pebblebase"]) for i in range(count)]  # fmt: skip
    store.save_page("hackernews", "pebblebase", mentions, None)
    store.close()


@pytest.mark.parametrize(
    "args", [["export"], ["feed", "--format", "jsonl", "--limit", "0"]], ids=["export", "feed"]
)
def test_ctrl_c_during_any_command_says_so_in_one_line_and_exits_130(project, args):
    project.write_config(HN_AND_RSS)
    fill(project, 400)  # more than a pipe holds: the command waits for its reader
    proc = subprocess.Popen([*cli(project), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("{")  # the command is writing
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err == "mentionwatch: interrupted\n"


# The CLI in a process of its own whose start-up (importing the command line: typer, click)
# takes as long as it can on a loaded machine: Ctrl-C lands before main() runs.
SLOW_START = """
import signal, sys
class Slow:
    def find_spec(self, name, path=None, target=None):
        if name == "mentionwatch.cli":
            print("starting", file=sys.stderr, flush=True)
            signal.pause()
sys.meta_path.insert(0, Slow())
sys.argv = ["mentionwatch", *sys.argv[1:]]
from mentionwatch.__main__ import run
run()
"""


def test_ctrl_c_while_starting_up_says_so_in_one_line_and_exits_130(project):
    project.write_config(HN_AND_RSS)
    argv = [sys.executable, "-c", SLOW_START, *cli(project)[3:], "feed"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stderr.readline() == "starting\n"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert (out, err) == ("", "mentionwatch: interrupted\n")


# The CLI in a process of its own, with an export that writes one record and then takes as
# long as a big one does: a signal lands mid-export every time.
LONG_EXPORT = """
import signal, sys
from mentionwatch import render
def long_export(out, rows):
    out.write("{}\\n")
    out.flush()
    print("exporting", file=sys.stderr, flush=True)
    signal.pause()
render.WRITERS["jsonl"] = long_export
sys.argv = ["mentionwatch", *sys.argv[1:]]
from mentionwatch.__main__ import run
run()
"""


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a script's `mentionwatch … &` starts


@pytest.mark.parametrize(
    ("stop", "start"),
    [(signal.SIGINT, None), (signal.SIGTERM, None), (signal.SIGTERM, _ignore_sigint)],
    ids=["ctrl-c", "sigterm", "sigterm-in-the-background"],
)
def test_an_export_stopped_midway_leaves_the_file_that_was_there(project, tmp_path, stop, start):
    project.write_config(HN_AND_RSS)
    fill(project, 3)
    backup = tmp_path / "backup.jsonl"
    assert project.run("export", "-o", str(backup)).code == 0
    before = backup.read_bytes()
    argv = [sys.executable, "-c", LONG_EXPORT, *cli(project)[3:], "export", "-o", str(backup)]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, preexec_fn=start)
    assert proc.stderr is not None and proc.stderr.readline() == "exporting\n"
    parts = [p for p in tmp_path.iterdir() if p.name.startswith(".backup.jsonl.")]
    assert len(parts) == 1 and parts[0].read_text() == "{}\n"  # written beside the file
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err == "mentionwatch: interrupted\n"
    assert backup.read_bytes() == before  # last night's backup, whole
    assert not parts[0].exists()


@pytest.mark.parametrize(
    "args",
    [["feed", "--limit", "0"], ["feed", "--format", "plain", "--limit", "0"],
     ["feed", "--format", "jsonl", "--limit", "0"], ["export", "--format", "csv"],
     ["export"], ["sources"]],
    ids=["rich", "plain", "jsonl", "csv", "export-jsonl", "sources"],
)  # fmt: skip
def test_a_reader_that_goes_away_is_not_an_error(project, args):
    project.write_config(HN_AND_RSS)
    fill(project, 3000)  # far more than a pipe buffer
    proc = subprocess.Popen([*cli(project), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert err == b""


def as_owner(argv: list[str]) -> list[str]:
    """Run as the files' owner without root's power to write anything: root gets a user
    namespace where it is an ordinary user who owns the same files."""
    if os.geteuid() != 0:
        return argv
    if not UNSHARE or subprocess.run([UNSHARE, "--map-user=1000", "true"]).returncode:
        pytest.skip("running as root without user namespaces")
    return [UNSHARE, "--map-user=1000", "--map-group=1000", *argv]


def run_process(project, *args: str):
    from conftest import Result

    proc = subprocess.run(as_owner([*cli(project), *args]), capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.sqlite_only
def test_a_read_only_database_file_can_be_read(project):
    project.write_config(HN_AND_RSS)
    assert project.run_process("poll").returncode == 0
    project.db.chmod(0o444)
    project.dir.chmod(0o555)  # nor can SQLite put a -wal or -shm beside it
    try:
        check_read_only_behaviour(project, lambda *args: run_process(project, *args))
    finally:
        project.dir.chmod(0o755)


def check_read_only_behaviour(project, run) -> None:
    feed = run("feed", "--format", "plain")
    assert feed.code == 0 and "grumpyops" in feed.out, feed.err
    exported = run("export")
    assert exported.code == 0 and len(exported.jsonl()) == 13
    assert run("show", "1", "--offline").code == 0
    assert run("sources").code == 0
    for command in (["poll"], ["handle", "1"]):
        result = run(*command)
        assert result.code == 2, result.err
        assert result.err.strip() == (
            f"mentionwatch: cannot write the database {project.db}: it is read-only (file "
            "permissions or a read-only mount); feed, show, export and sources can still read it"
        )


def _can_mount_read_only(tmp: Path) -> bool:
    if not UNSHARE:
        return False
    (tmp / "probe-src").mkdir()
    (tmp / "probe-dst").mkdir()
    script = (f"mount --bind {tmp}/probe-src {tmp}/probe-dst && "
              f"mount -o remount,ro,bind {tmp}/probe-dst")  # fmt: skip
    probe = subprocess.run([UNSHARE, "-rm", "sh", "-c", script], capture_output=True)
    return probe.returncode == 0


@pytest.mark.sqlite_only
def test_a_database_on_a_read_only_mount_can_be_read(project, tmp_path):
    if not _can_mount_read_only(tmp_path):
        pytest.skip("no user namespaces for a read-only bind mount")
    project.write_config(HN_AND_RSS)
    assert project.run_process("poll").returncode == 0  # exits: no -wal or -shm left
    data = tmp_path / "data"
    data.mkdir()
    project.db.rename(data / "mentions.db")
    mount = tmp_path / "ro"
    mount.mkdir()
    project.db = mount / "mentions.db"

    def run(*args: str):
        command = " ".join(f"'{a}'" for a in [*cli(project), *args])
        script = (f"mount --bind {data} {mount} && mount -o remount,ro,bind {mount} && "
                  f"exec {command}")  # fmt: skip
        proc = subprocess.run([UNSHARE, "-rm", "sh", "-c", script], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        from conftest import Result

        return Result(proc.returncode, proc.stdout, proc.stderr)

    check_read_only_behaviour(project, run)


def test_credentials_are_resolved_only_for_the_sources_a_command_uses(project, monkeypatch):
    monkeypatch.delenv("PB_REDDIT_SECRET", raising=False)
    project.write_config(HN_AND_RSS + REDDIT_SOURCE)
    polled = project.run("poll", "--source", "hackernews", "--source", "rss")
    assert polled.code == 0, polled.err
    for command in (["feed"], ["export"], ["show", "1", "--offline"]):
        result = project.run(*command)
        assert result.code == 0 and result.err == "", (command, result.err)
    sources = project.run("sources")
    assert sources.code == 0 and "missing: ${PB_REDDIT_SECRET} is not set" in sources.out

    everything = project.run("poll")
    assert everything.code == 2
    line = project.config.read_text().splitlines().index('client_secret = "${PB_REDDIT_SECRET}"')
    assert everything.err.strip() == (
        f"mentionwatch: config error: {project.config}:{line + 1}: sources.reddit.client_secret: "
        "environment variable PB_REDDIT_SECRET is not set; export it or edit the value"
    )
    check = project.run("sources", "--check")
    assert check.code == 1 and "FAIL  reddit:" in check.out and "PB_REDDIT_SECRET" in check.out
    assert "ok    hackernews" in check.out

    monkeypatch.setenv("PB_REDDIT_SECRET", reddit.CLIENT_SECRET)
    assert project.run("poll", "--source", "reddit").code == 0
    monkeypatch.delenv("PB_REDDIT_SECRET")
    replying = project.run("reply", "reddit:t3_1gq7k2a", "Thanks!", "--yes")
    assert replying.code == 2 and "PB_REDDIT_SECRET is not set" in replying.err
    shown = project.run("show", "reddit:t3_1gq7k2a")
    assert shown.code == 0 and "thread not shown" in shown.err and "PB_REDDIT_SECRET" in shown.err


def run_on_terminal(argv: list[str], answers: list[str], env: dict) -> tuple[int, str, str]:
    """Run with stdin and stdout on a pseudo-terminal, answering each prompt in turn."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                screen += os.read(master, 65536)
            except OSError:
                break
            if answers and screen.rstrip().endswith(b"[y/N]:"):
                os.write(master, answers.pop(0).encode() + b"\n")
    proc.wait(timeout=30)
    os.close(master)
    assert proc.stderr is not None
    return proc.returncode, screen.decode(errors="replace"), proc.stderr.read().decode()


def test_declining_to_post_keeps_the_editor_draft(project, tmp_path):
    from mentionwatch.testing.platforms import mastodon

    project.write_config(HN_AND_RSS + f'[sources.mastodon]\nbase_url = "{{web}}/mastodon"\n'
                         f'token = "{mastodon.TOKEN}"\n')  # fmt: skip
    assert project.run("poll").code == 0
    key = "mastodon:https://mastodon.social/users/mira/statuses/113504118204661001"
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys\n"
        "path = sys.argv[1]\n"
        "text = open(path).read()\n"
        "open(path, 'w').write('Sorry about that! ' + text)\n"
    )
    env = {**os.environ, "EDITOR": f"{sys.executable} {editor}", "TERM": "dumb"}
    code, screen, err = run_on_terminal([*cli(project), "reply", key], ["n"], env)
    assert code == 1 and "Sorry about that!" in screen
    (line,) = [x for x in err.splitlines() if "draft" in x]
    draft = Path(line.split("your draft is kept in ", 1)[1].split(";")[0])
    assert draft.read_text().startswith("Sorry about that!")
    assert stat.S_IMODE(draft.stat().st_mode) == 0o600
    assert stat.S_IMODE(draft.parent.stat().st_mode) == 0o700
    assert "'mentionwatch reply " in line and "opens it again" in line

    # The next reply starts from the draft; once posted, the draft is gone.
    code, screen, err = run_on_terminal([*cli(project), "reply", key], ["y"], env)
    assert code == 0, err
    assert "Sorry about that! Sorry about that!" in screen
    assert not draft.exists()
    posted = project.web.platform("mastodon").posted
    assert posted and "Sorry about that! Sorry about that!" in posted[-1]["content"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_the_tool_creates_are_private(project, tmp_path):
    project.config = tmp_path / "fresh" / "config.toml"
    project.db = tmp_path / "data" / "mentions.db"
    assert project.run("init").code == 0
    assert (mode(project.config), mode(project.config.parent)) == (0o600, 0o700)
    assert mode(project.db.parent) == 0o700
    assert mode(project.db) == 0o600
    project.write_config(HN_AND_RSS)
    store_open = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from mentionwatch.store import Store; "
        f"s = Store({str(project.db)!r}); s.conn.execute('SELECT 1'); print('ok', flush=True); "
        "time.sleep(30)")], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert store_open.stdout is not None and store_open.stdout.readline() == "ok\n"
        assert project.run("poll").code == 0  # -wal and -shm stay while another holds the db
        for suffix in ("", "-wal", "-shm"):
            assert mode(Path(f"{project.db}{suffix}")) == 0o600, suffix
    finally:
        store_open.kill()
        store_open.wait()


def test_a_readable_config_with_a_literal_secret_warns_once(project, monkeypatch):
    project.write_config(HN_AND_RSS + REDDIT_SOURCE.replace("${PB_REDDIT_SECRET}", "s3cret-value"))
    fill(project, 1)
    project.config.chmod(0o644)
    result = project.run("feed")
    assert result.code == 0
    (warning,) = result.err.splitlines()
    assert warning == (
        f"warning: {project.config} holds a secret (sources.reddit.client_secret) and other "
        f"users can read it: run 'chmod 600 {project.config}', or put the secret in an "
        "environment variable (${VAR})"
    )
    assert "s3cret-value" not in result.err
    project.config.chmod(0o600)
    assert project.run("feed").err == ""

    # Secrets that come from the environment are not in the file: nothing to warn about.
    monkeypatch.setenv("PB_REDDIT_SECRET", "from-the-env")
    project.write_config(HN_AND_RSS + REDDIT_SOURCE.replace(reddit.PASSWORD, "${PB_PW}"))
    monkeypatch.setenv("PB_PW", reddit.PASSWORD)
    project.config.chmod(0o644)
    assert project.run("feed").err == ""


@pytest.mark.sqlite_only
def test_a_locked_database_is_one_line_naming_it_and_changes_nothing(project, monkeypatch):
    project.write_config(HN_AND_RSS)
    assert project.run("poll").code == 0
    real_connect = sqlite3.connect
    holder = real_connect(project.db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a long write
    # SQLite's own wait for the lock (30 s) made short: this is about what is said after it
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: real_connect(*a, **{**k, "timeout": 0}))
    try:
        result = project.run("handle", "1")
    finally:
        holder.rollback()
        holder.close()
    assert result.code == 1
    assert result.err == (
        f"mentionwatch: database error on {project.db}: database is locked; try again\n"
    )
    monkeypatch.undo()
    assert project.mention("1").status == "open"
