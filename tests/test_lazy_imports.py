"""feed, export and handle start fast: they never load the network, feed or analyzer stacks."""

from __future__ import annotations

import subprocess
import sys

from mentionwatch.testing.demo import demo_config

HEAVY = (
    "asyncio", "httpx", "feedparser", "textblob", "sqlite_utils", "mentionwatch.sentiment",
    "datasette", "mentionwatch.pager",
    "apprise", "mentionwatch.channels", "mentionwatch.delivery", "mentionwatch.watch",
    "mentionwatch.trendalerts",
    "llm", "openai", "pydantic", "mentionwatch.llm_analyzer",
)  # fmt: skip
ALERTS = """
[[alerts]]
name = "everything"
to = ["https://hooks.example.com/mw", "ntfys://ntfy.sh/acme-alerts", "mailto://me:pw@example.com"]

[[alerts]]
name = "pile-ups"
on = "spike"
sentiment = ["negative"]
to = ["ntfys://ntfy.sh/acme-alerts"]

[[alerts]]
name = "morning"
on = "digest"
every = "weekly mon 09:00"
to = ["mailto://me:pw@example.com"]
"""
PROBE = """
import sys
from mentionwatch.cli import main
try:
    main()
except SystemExit:
    pass
print("LOADED:" + ",".join(m for m in {heavy!r} if m in sys.modules), file=sys.__stderr__)
"""


def loaded_modules(project, *args: str) -> set[str]:
    argv = ["mentionwatch", "--config", str(project.config), "--db", str(project.db), *args]
    code = f"import sys; sys.argv = {argv!r}\n" + PROBE.format(heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("LOADED:")]
    return {m for m in line.removeprefix("LOADED:").split(",") if m}


def test_reading_commands_import_nothing_heavy(project):
    # Every source configured, and alert rules (read with the config, sent by nobody here).
    project.write_config(demo_config(project.web, project.db) + ALERTS)
    project.run("poll", "--no-alerts")  # the database exists and is migrated
    filters = [
        "--source",
        "Reddit",
        "--term",
        "pebblebase",
        "--status",
        "all",
        "--search",
        "a OR b",
    ]
    commands = (["feed"], ["feed", "--sort", "priority"], ["export"], ["handle", "1"],
                ["feed", *filters], ["export", "-o", str(project.dir / "x.csv")],
                ["feed", "--relevant"], ["ignore", "2"])  # fmt: skip
    for command in commands:
        assert loaded_modules(project, *command) == set(), command
    assert "mentionwatch.sentiment" in loaded_modules(project, "sentiment", "fine")
