"""How the `mentionwatch` process starts and ends: the garbage collector waits out start-up
and is on while the command runs; a CLI run inside another program leaves it alone."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from mentionwatch.testing.demo import demo_config

# Runs the program as its console script does, noting whether the collector is on when the
# command reads its config (the command is running then).
PROBE = """
import gc, sys
sys.argv = {argv!r}
from mentionwatch import config
load, seen = config.load, []
config.load = lambda *args, **kwargs: seen.append(gc.isenabled()) or load(*args, **kwargs)
from mentionwatch.__main__ import run
try:
    run()
except SystemExit as exc:
    print("RAN:", seen, "FROZEN:", gc.get_freeze_count() > 0, "EXIT:", exc.code)
"""


@pytest.mark.sqlite_only
def test_the_process_pauses_the_collector_only_for_start_up(project):
    project.write_config(demo_config(project.web, project.db, ["hackernews"]))
    assert project.run("poll", "--no-alerts").code == 0
    argv = ["mentionwatch", "--config", str(project.config), "--db", str(project.db), "feed"]
    result = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)],
                            capture_output=True, text=True)  # fmt: skip
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("RAN:")]
    # On again while the command runs (a long poll or watch needs it); frozen at the end.
    assert line == "RAN: [True] FROZEN: True EXIT: 0", result.stderr


def test_a_run_inside_another_program_leaves_its_collector_alone(project):
    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    project.write_config(demo_config(project.web, project.db, ["hackernews"]))
    assert project.run("poll", "--no-alerts").code == 0
    assert project.run("feed").code == 0
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


@pytest.mark.sqlite_only
def test_the_process_closes_the_database_before_it_exits(project):
    """SQLite removes its -wal and -shm files when the last writer closes: a database that
    an ended poll or handle wrote is one file again (a read-only copy or mount can read it)."""
    project.write_config(demo_config(project.web, project.db, ["hackernews"]))
    for command in (["poll", "--no-alerts"], ["handle", "1"], ["ignore", "2"]):
        assert project.run_process(*command).returncode == 0, command
        left = [p.name for p in project.db.parent.iterdir() if p.name.startswith(project.db.name)]
        assert left == [project.db.name], command
