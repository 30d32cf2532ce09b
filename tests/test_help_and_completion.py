"""Help that teaches (examples, valid values, no placeholders) and shell completion that
knows commands, values, and the user's source and term names."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import HN_AND_RSS

from mentionwatch.cli.reference import help_text

COMMANDS = ["init", "poll", "sources", "demo", "completion", "feed", "show", "handle", "ignore",
            "reopen", "export", "browse", "reply", "sentiment", "rescore", "watch",
            "alerts"]  # fmt: skip


def test_every_command_has_examples_and_no_placeholders():
    top = help_text()
    for command in COMMANDS:
        assert re.search(rf"^  {command} ", top, re.M), command
        text = help_text(command)
        assert "mentionwatch" in text.split("Examples:\n    ")[1].split("\n\n")[0], command
        assert not re.search(r"<(str|int|path|text)>|\{\w+\}", text.split("Examples:")[0]), text
        options = text.split("Options:")[1]
        assert not re.search(r"<\w+>", options), command
    assert "<" not in top.split("Commands:")[0]


def test_the_subjects_table_names_every_command_where_it_is_registered():
    """A run imports only the module SUBJECTS names for its command; the table must say
    where each command really lives (a missing one would still work, slower)."""
    from mentionwatch.cli.app import SUBJECTS, app, command_name

    full = app.commands()
    registered: dict[str, list[str]] = {}
    for info in full.registered_commands:
        module = info.callback.__module__.rsplit(".", 1)[1]
        registered.setdefault(module, []).append(command_name(info))
    for group in full.registered_groups:
        module = group.typer_instance.registered_callback.callback.__module__.rsplit(".", 1)[1]
        registered.setdefault(module, []).append(group.name)
    assert {m: sorted(n) for m, n in registered.items()} == {
        m: sorted(n) for m, n in SUBJECTS.items()
    }
    assert list(registered) == list(SUBJECTS)  # --help's order
    # A run builds just the command it names; anything else builds them all.
    only = app.commands("export")
    assert [command_name(c) for c in only.registered_commands] == ["export"]
    assert not only.registered_groups
    assert [g.name for g in app.commands("alerts").registered_groups] == ["alerts"]


def test_a_run_inside_a_run_builds_the_command_it_is_given(project, monkeypatch):
    """The demo runs poll and feed in its own process: the args it passes, not the process's
    command line (here `demo --serve`), name the command."""
    import contextlib
    import io

    from mentionwatch.cli import app

    monkeypatch.setattr(sys, "argv", ["mentionwatch", "demo", "--serve"])
    project.write_config(HN_AND_RSS)
    base = ["--config", str(project.config), "--db", str(project.db)]
    with contextlib.redirect_stderr(io.StringIO()):
        app([*base, "poll", "--quiet", "--no-alerts"], prog_name="mentionwatch",
            standalone_mode=False)  # fmt: skip
    assert project.run("feed", "-f", "ids").out.split()


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["feed", "-n", "3"], "feed"),
        (["--config", "feed", "--db", "x.db", "--debug", "--no-pager", "export"], "export"),
        (["--config=c.toml", "--db=x.db", "handle", "1"], "handle"),
        (["alerts", "test"], "alerts"),
        (["--help", "feed"], None),
        (["--version"], None),
        (["fed"], None),
        (["--db"], None),
        ([], None),
    ],
)
def test_a_command_line_names_its_command(argv, command):
    from mentionwatch.cli.app import invoked_command

    assert invoked_command(argv) == command


def test_help_keeps_its_order_after_a_run_imported_one_module_first():
    code = (
        "from mentionwatch.cli.app import app, command_name\n"
        "app.commands('feed')\n"
        "print(' '.join(command_name(c) for c in app.commands().registered_commands))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    listed = out.split()
    assert (
        listed.index("init")
        < listed.index("import")
        < listed.index("feed")
        < listed.index("reply")
        < listed.index("auth")
    ), listed


def test_help_lists_valid_values():
    from mentionwatch.sources import registry

    feed = help_text("feed")
    for values in (", ".join(list(registry())[:3]), "open, handled, ignored, all",
                   "positive, neutral, negative", "rich, plain, jsonl, json, csv, ids",
                   "newest, priority", "question, complaint"):  # fmt: skip
        assert values in " ".join(feed.split()), values
    assert "repeat for any of several" in feed
    assert "jsonl, json, csv" in " ".join(help_text("export").split())


def test_help_lists_the_configured_terms(project):
    project.write_config(HN_AND_RSS)
    result = project.run("feed", "--help")
    assert "Your terms: pebblebase." in " ".join(result.out.split())


def test_the_examples_in_help_are_valid_commands(project, monkeypatch):
    """Every example parses against the real CLI (no usage error)."""
    monkeypatch.chdir(project.dir)  # examples such as `export -o mentions.csv` write files
    alert = '\n[[alerts]]\nname = "complaints"\nto = ["{web}/hooks/nowhere"]\n'
    templates = (
        '\n[templates]\nhelp = "Hi {author}"\nsorry-then-dm = {public = "Sorry", private = "Hi"}\n'
    )
    project.write_config(HN_AND_RSS + templates + alert)
    project.run("poll", "--no-alerts")
    # slow, or change setup
    skip = {"demo", "browse", "completion", "init", "poll", "rescore", "watch"}
    for command in sorted(set(COMMANDS) - skip):
        examples = help_text(command).split("Examples:\n")[1].split("\n\n")[0]
        for line in examples.splitlines():
            argv = shlex.split(re.split(r"[|>(]", line)[0])[1:]
            if argv[0] == "reply" and "--dry-run" not in argv:
                argv.append("--dry-run")
            result = project.run(*argv, input="")
            assert result.code != 2 or "unknown mention" in result.err, (line, result.err)


def test_version_still_works(project):
    result = project.run("--version")
    assert result.code == 0 and result.out.startswith("mentionwatch ")
    # click prints it before it reads a command; help asked for first lists the commands
    assert project.run("--version", "feed", "--bogus").out == result.out
    assert "Commands:" in project.run("--help", "--version").out


@pytest.mark.parametrize(
    ("argv", "asks"),
    [
        (["--version"], True),
        (["--config", "c.toml", "--db=x.db", "--debug", "--version", "feed"], True),
        (["--version", "--help"], True),
        (["--help", "--version"], False),
        (["feed", "--version"], False),
        (["--config", "--version"], False),  # the config file's name
        ([], False),
    ],
)
def test_a_command_line_asks_for_the_version(argv, asks):
    from mentionwatch.cli.app import asks_version

    assert asks_version(argv) is asks


def complete(project, shell: str, words: str) -> list[str]:
    env = {**os.environ, "_MENTIONWATCH_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        parts = words.split(" ")
        env |= {"COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)}
    else:
        env |= {"_TYPER_COMPLETE_ARGS": words, "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    code = (
        "import sys; from mentionwatch.cli import app; "
        "app(prog_name='mentionwatch', args=sys.argv[1:])"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    return proc.stdout.split()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_knows_sources_terms_and_values(project, shell):
    project.write_config(HN_AND_RSS)
    base = f"mentionwatch --config {project.config} --db {project.db}"
    assert any("reddit" in c for c in complete(project, shell, f"{base} feed --source re"))
    assert any("pebblebase" in c for c in complete(project, shell, f"{base} feed --term peb"))
    assert any("handled" in c for c in complete(project, shell, f"{base} feed --status ha"))
    assert any("feed" in c for c in complete(project, shell, f"{base} fe"))


def test_completion_scripts_and_install_option(project):
    for shell in ("bash", "zsh", "fish"):
        result = project.run("completion", shell)
        assert result.code == 0 and "_MENTIONWATCH_COMPLETE" in result.out, shell
    assert "unknown shell 'tcsh'" in project.run("completion", "tcsh").err
    assert "--install-completion" in help_text()
