"""feed, export and handle start fast: they never load the network, feed or analyzer stacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mentionwatch.testing.demo import demo_config

HEAVY = (
    "asyncio", "httpx", "feedparser", "textblob", "sqlite_utils", "mentionwatch.sentiment",
    "datasette", "mentionwatch.pager",
    "apprise", "mentionwatch.channels", "mentionwatch.delivery", "mentionwatch.watch",
    "mentionwatch.trendalerts",
    "llm", "openai", "pydantic", "mentionwatch.llm_analyzer",
    "psycopg", "mentionwatch.engines.postgres", "numpy",
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


def loaded_modules(project, *args: str, watched: tuple[str, ...] = HEAVY) -> set[str]:
    argv = ["mentionwatch", "--config", str(project.config), "--db", str(project.db), *args]
    code = f"import sys; sys.argv = {argv!r}\n" + PROBE.format(heavy=watched)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("LOADED:")]
    return {m for m in line.removeprefix("LOADED:").split(",") if m}


@pytest.mark.sqlite_only
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
                ["feed", "--relevant"], ["ignore", "2"], ["feed", "--mine"],
                ["assign", "3", "alice"])  # fmt: skip
    for command in commands:
        assert loaded_modules(project, *command) == set(), command
    assert "mentionwatch.sentiment" in loaded_modules(project, "sentiment", "fine")


@pytest.mark.sqlite_only
def test_a_command_loads_its_own_cli_module_and_rich_only_to_draw(project):
    """A run imports the module of the command it invokes, not every command's; the data
    formats write without rich (rich costs more to import than the rest of the feed)."""
    from mentionwatch.cli.app import SUBJECTS

    project.write_config(demo_config(project.web, project.db))
    project.run("poll", "--no-alerts")
    modules = tuple(f"mentionwatch.cli.{m}" for m in SUBJECTS)
    watched = (*modules, "rich", "mentionwatch.echoes", "mentionwatch.team", "html.parser")
    for command in (["feed", "-f", "jsonl"], ["feed", "-f", "ids"], ["feed", "-f", "plain"],
                    ["feed", "-f", "csv", "--search", "a"], ["export"]):  # fmt: skip
        assert loaded_modules(project, *command, watched=watched) == {
            "mentionwatch.cli.mentions"
        }, command
    assert loaded_modules(project, "handle", "1", watched=watched) == {
        "mentionwatch.cli.mentions", "mentionwatch.team"
    }  # fmt: skip
    assert "rich" in loaded_modules(project, "feed", watched=watched)
    # --version needs no command: click prints it before it reads one
    assert loaded_modules(project, "--version", watched=watched) == set()


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)
def test_a_postgresql_url_loads_its_driver_and_only_then(project):
    project.write_config(demo_config(project.web, project.db, ["hackernews"]))
    assert project.run("poll", "--no-alerts").code == 0
    # psycopg brings asyncio along (its async API); nothing else heavy comes with it.
    assert loaded_modules(project, "feed") == {"psycopg", "mentionwatch.engines.postgres",
                                               "asyncio"}  # fmt: skip


@pytest.mark.sqlite_only
def test_a_feed_loads_only_what_its_options_and_config_use(project):
    """Modules a feed needs only for some options or config sections load only then: the
    source registry (for [sources.*] tables), html's entity table (for secrets to scrub),
    relevance (--relevant, or a shown mention with a score), csv (-f csv), the --search
    language."""
    project.write_config(demo_config(project.web, project.db, ["hackernews"]))
    project.run("poll", "--no-alerts")
    project.write_config('[[terms]]\nname = "pebblebase"\nquery = "pebblebase"\n')
    project.execute("UPDATE mentions SET relevance = NULL")
    watched = ("mentionwatch.sources", "html", "base64", "csv", "mentionwatch.relevance",
               "mentionwatch.search")  # fmt: skip
    for command in (["feed"], ["feed", "-f", "jsonl"], ["feed", "-f", "plain"], ["export"],
                    ["export", "--format", "json"]):  # fmt: skip
        assert loaded_modules(project, *command, watched=watched) == set(), command
    assert loaded_modules(project, "feed", "-f", "csv", watched=watched) == {"csv"}
    assert loaded_modules(project, "feed", "--relevant", watched=watched) == {
        "mentionwatch.relevance"
    }
    assert loaded_modules(project, "feed", "--search", "pebble*", watched=watched) == {
        "mentionwatch.search"
    }
