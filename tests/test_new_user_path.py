"""The new-user path: `demo --serve`, then every command of the README, as written, at a
terminal, against the loopback web; the demo's IDs are the same on every run."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_pty

README = Path(__file__).parents[1] / "README.md"
# Run elsewhere: the demo itself (this test starts it), Datasette (tests/test_browse.py),
# and setting up your own product (init: run below in a fresh home; $EDITOR: an editor);
# `watch` runs until stopped (tests/test_watch.py), so only `watch --once` runs here;
# moving to a PostgreSQL server needs one (tests/test_migrate_to.py).
NOT_HERE = ("mentionwatch demo", "mentionwatch browse", "mentionwatch init", "$EDITOR", "pip ",
            "mentionwatch migrate-to postgresql")  # fmt: skip
UNTIL_STOPPED = re.compile(r"^mentionwatch watch(?!.*--once)")


def readme_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            uses_it = line.startswith("mentionwatch ") or "| mentionwatch " in line
            if uses_it and not line.startswith(NOT_HERE) and not UNTIL_STOPPED.match(line):
                commands.append(line)
    return commands


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    def __init__(self, folder: Path, port: int, env: dict) -> None:
        argv = [sys.executable, "-m", "mentionwatch", "demo", "--serve", "--dir", str(folder),
                "--port", str(port)]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)  # fmt: skip
        self.talk: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            self.talk.append(line)
            if "serving until Ctrl-C" in line or not line:
                break
        assert "serving until Ctrl-C" in "".join(self.talk), "".join(self.talk)
        export = self.proc.stdout.readline().strip()
        assert export.startswith("export MENTIONWATCH_CONFIG=")
        self.config = export.split("=", 1)[1]

    def stop(self) -> str:
        self.proc.send_signal(2)  # Ctrl-C
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0 and "demo: stopped" in err
        return err


@pytest.fixture
def home(tmp_path: Path) -> dict:
    env = {**os.environ, "HOME": str(tmp_path / "home"),
           "XDG_CONFIG_HOME": str(tmp_path / "home/.config"),
           "XDG_DATA_HOME": str(tmp_path / "home/.local/share")}  # fmt: skip
    env.pop("MENTIONWATCH_CONFIG", None)
    env.pop("MENTIONWATCH_DB", None)
    return env


def ids_and_keys(env: dict) -> dict[int, str]:
    proc = subprocess.run([sys.executable, "-m", "mentionwatch", "export"],
                          capture_output=True, text=True, env=env, check=True)  # fmt: skip
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    return {r["id"]: r["key"] for r in records}


def test_every_readme_command_works_against_demo_serve(home, tmp_path):
    commands = readme_commands()
    assert len(commands) >= 25 and any("| mentionwatch handle -" in c for c in commands)
    folder, port = tmp_path / "demo", free_port()
    served = Served(folder, port, home)
    try:
        env = {**home, "MENTIONWATCH_CONFIG": served.config, "PAGER": "cat"}
        first_ids = ids_and_keys(env)
        editor = tmp_path / "editor.sh"
        editor.write_text("#!/bin/sh\nprintf 'Thanks for asking: not yet, soon.\\n' > \"$1\"\n")
        editor.chmod(0o755)
        env["EDITOR"] = str(editor)
        work = tmp_path / "work"
        work.mkdir()
        for command in commands:
            if "jq " in command and shutil.which("jq") is None:
                continue
            code, out = run_pty(["bash", "-c", command], env=env, input="y\n", cwd=work)
            assert code == 0, f"{command}\n{out}"
            assert "Traceback" not in out and "unexpected error" not in out, command
        assert (work / "mentions.csv").read_text().startswith("id,key,")
    finally:
        served.stop()
    # Stable IDs: a second run numbers the same mentions the same way.
    served = Served(folder, port, home)
    try:
        assert ids_and_keys({**home, "MENTIONWATCH_CONFIG": served.config}) == first_ids
    finally:
        served.stop()
    # The README's setup of your own product, in a fresh home:
    fresh = subprocess.run([sys.executable, "-m", "mentionwatch", "init"], capture_output=True,
                           text=True, env=home)  # fmt: skip
    assert fresh.returncode == 0 and "Wrote" in fresh.stdout


def test_a_busy_port_is_one_line(home, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "mentionwatch", "demo", "--serve", "--dir",
                               str(tmp_path / "d"), "--port", str(port)], capture_output=True,
                              text=True, env=home, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "--port N" in proc.stderr
    assert proc.stderr.count("\n") == 1
