"""Setting up and fetching: init, poll, sources, demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mentionwatch.cli.app import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    app,
    fail,
    load_config,
    open_store,
    say,
    state,
    stdout_console,
)


@app.command()
def init(
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.")] = False,
) -> None:
    """Write a commented starter config and create the database."""
    from mentionwatch import config as config_module

    path = config_module.resolve_config_path(state.config_path)
    if path.exists() and not force:
        fail(f"{path} already exists; edit it, or pass --force to overwrite it")
    config_module.write_starter(path)
    cfg = load_config(required=True)
    open_store(cfg).close()
    print(f"Wrote {path}")
    print(f"Database: {cfg.db_path}")
    print("Next: edit the [[terms]] in the config, then run 'mentionwatch poll'.")


@app.command()
def poll(
    source: Annotated[list[str] | None, typer.Option("--source", help="Only this source.")] = None,
    term: Annotated[list[str] | None, typer.Option("--term", help="Only this term.")] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing unless something fails.")
    ] = False,
) -> None:
    """Fetch new mentions from every enabled source and save them."""
    from mentionwatch.poller import Poller, PollInterrupted
    from mentionwatch.render import poll_progress, print_summary

    cfg = load_config(required=True)
    store = open_store(cfg)
    poller = Poller(cfg, store, source or (), term or (), notify=say)
    try:
        with poll_progress(poller, enabled=not quiet and sys.stderr.isatty()):
            report = poller.run()
    except PollInterrupted as stopped:
        print_summary(stopped.report, quiet=quiet, err=say)
        say(f"mentionwatch: interrupted; {stopped.report.new} new mention(s) saved, and the "
            "next poll picks up from there")  # fmt: skip
        raise typer.Exit(EXIT_INTERRUPTED) from None
    print_summary(report, quiet=quiet, err=say)
    if report.failures:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def sources(
    check: Annotated[
        bool, typer.Option("--check", help="Make one cheap call per enabled source.")
    ] = False,
) -> None:
    """List every source: enabled, credentials present, the last poll's result."""
    from mentionwatch import poller, render

    cfg = load_config()
    store = open_store(cfg, readonly=not check)  # a check may renew a session, kept in the db
    render.print_sources(stdout_console(), poller.source_overview(cfg, store))
    if check:
        checks = poller.check_sources(cfg, store)
        stdout_console().print()
        render.print_checks(stdout_console(), checks)
        if not all(c.ok for c in checks):
            raise typer.Exit(EXIT_FAILED)


@app.command()
def demo(
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Keep the demo database at this path.")
    ] = None,
) -> None:
    """Run the real poll and feed against the built-in loopback web, offline."""
    from mentionwatch.testing.demo import run_demo

    run_demo(stdout_console(), keep, say)
