"""Setting up and fetching: init, poll, sources, demo, completion."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from mentionwatch.cli.app import (
    CONFIGURED_TERM,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    PROG,
    SOURCE,
    Choice,
    app,
    choice_option,
    exit_now,
    fail,
    load_config,
    open_store,
    say,
    state,
    stdout_console,
)

SHELLS = ("bash", "zsh", "fish")


@app.command()
def init(
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.")] = False,
) -> None:
    """Write a commented starter config and create the database.

    \b
    Examples:
      mentionwatch init
      mentionwatch --config ./acme.toml init --force
    """
    from mentionwatch import config as config_module
    from mentionwatch.engines import label

    path = config_module.resolve_config_path(state.config_path)
    if path.exists() and not force:
        fail(f"{path} already exists; edit it, or pass --force to overwrite it")
    config_module.write_starter(path)
    cfg = load_config(required=True)
    open_store(cfg, create=True).close()
    state.store = None
    print(f"Wrote {path}")
    print(f"Database: {label(cfg.database)}")
    print("Next: edit the [[terms]] in the config, then run 'mentionwatch poll'.")


@app.command()
def poll(
    source: Annotated[
        list[str] | None,
        choice_option("--source", SOURCE, "Only this source; repeat for several.", "NAME"),
    ] = None,
    term: Annotated[
        list[str] | None,
        choice_option("--term", CONFIGURED_TERM, "Only this term; repeat for several.", "TERM"),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing unless something fails.")
    ] = False,
    no_alerts: Annotated[
        bool, typer.Option("--no-alerts", help="Save without alerting (nothing queued or sent).")
    ] = False,
) -> None:
    """Fetch new mentions, save them, and send their alerts.

    A failing source or alert channel never stops the others; the exit code is 1 when one
    failed. --no-alerts saves without queueing or sending any alert (a backfill). On a
    PostgreSQL database the jobs running `watch` workers hold are left to them (one line
    says which).

    \b
    Examples:
      mentionwatch poll
      mentionwatch poll --source reddit --source hackernews --term acme
      mentionwatch poll --no-alerts
      */15 * * * * mentionwatch poll --quiet     (a crontab line)
    """
    from mentionwatch import alerts, delivery, team, trendalerts
    from mentionwatch.poller import Poller, PollInterrupted
    from mentionwatch.render import poll_progress, print_deliveries, print_summary

    cfg = load_config(required=True)
    store = open_store(cfg, create=True)
    alerting = bool(cfg.alerts) and not no_alerts
    if alerting:
        alerts.check_channels(cfg)
    queue = alerts.Queue(cfg.alerts) if alerting else None
    shared = team.OneShot(store) if store.shared else None  # leave watch workers their jobs
    poller = Poller(cfg, store, source or (), term or (), notify=say, queue=queue,
                    take=shared.take if shared else None)  # fmt: skip
    # SIGTERM arrives as Ctrl-C (app.Group): the jobs are cancelled, what was saved is said.
    try:
        with poll_progress(poller, enabled=not quiet and sys.stderr.isatty()):
            report = poller.run()
    except PollInterrupted as stopped:
        print_summary(stopped.report, quiet=quiet, err=say)
        say(f"mentionwatch: interrupted; {stopped.report.new} new mention(s) saved (their "
            "alerts wait in the outbox), and the next poll picks up from there")  # fmt: skip
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        if shared is not None:
            shared.give_back()
    skipped = shared.summary() if shared is not None and not quiet else None
    if skipped:
        say(skipped)
    print_summary(report, quiet=quiet, err=say)
    if alerting:
        trendalerts.check(cfg, store)  # pile-ups, and a digest that is due (or overdue)
    sent = delivery.deliver(cfg, store) if alerting else delivery.DeliveryReport()
    print_deliveries(sent, quiet=quiet, err=say)
    if sent.stranded:
        exit_now(EXIT_FAILED)  # without waiting for the senders given up on
    if report.failures or sent.failures:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def sources(
    check: Annotated[
        bool, typer.Option("--check", help="Make one cheap call per enabled source.")
    ] = False,
) -> None:
    """List every source: enabled, credentials, last poll.

    Credentials are shown as set or missing, never their values. On a PostgreSQL database
    shared by several `watch` workers, each job's line says which worker polls it now.

    \b
    Examples:
      mentionwatch sources
      mentionwatch sources --check
    """
    from mentionwatch import poller, render
    from mentionwatch.store import database_exists

    cfg = load_config()
    if database_exists(cfg.database):
        store = open_store(cfg, readonly=not check)  # a check may renew a session
    else:  # nothing polled yet: list the sources without leaving a database behind
        from mentionwatch.store import Store

        store = Store(":memory:")
    render.print_sources(stdout_console(), poller.source_overview(cfg, store))
    if store.shared:
        from mentionwatch.team import job_leases

        render.print_leases(stdout_console(), job_leases(store))
    if check:
        checks = poller.check_sources(cfg, store)
        stdout_console().print()
        render.print_checks(stdout_console(), checks)
        if not all(c.ok for c in checks):
            raise typer.Exit(EXIT_FAILED)


DemoDirOpt = typer.Option(
    "--dir", metavar="DIR",
    help="With --serve: where config.toml and demo.db go (default: the user data dir's demo/).",
)  # fmt: skip
DemoPortOpt = typer.Option(
    "--port", metavar="N", min=0, max=65535,
    help="With --serve: the loopback port (0: any free one).",
)  # fmt: skip


@app.command()
def demo(
    keep: Annotated[
        Path | None,
        typer.Option("--keep", metavar="FILE", help="Keep the demo database in FILE."),
    ] = None,
    serve: Annotated[
        bool,
        typer.Option("--serve", help="Keep the loopback web running, with a config for it."),
    ] = False,
    folder: Annotated[Path | None, DemoDirOpt] = None,
    port: Annotated[int, DemoPortOpt] = 8765,
) -> None:
    """Try everything offline against a built-in loopback web.

    Without --serve: the real poll and feed run once against a loopback web that plays
    every platform. With --serve the web keeps running (Ctrl-C stops it) and a config
    pointing every source at it is written, so every command can be tried; the demo
    mentions get the same IDs on every run.

    \b
    Examples:
      mentionwatch demo
      mentionwatch demo --serve
      export MENTIONWATCH_CONFIG=~/.local/share/mentionwatch/demo/config.toml
      mentionwatch feed; mentionwatch show 1; mentionwatch sources --check
    """
    from mentionwatch.testing import demo as demo_module

    if serve:
        demo_module.serve_demo(folder or demo_module.default_folder(), port, say)
    else:
        demo_module.run_demo(stdout_console(), keep, say)


@app.command()
def completion(
    shell: Annotated[
        str,
        typer.Argument(click_type=Choice(SHELLS, "shell"), metavar="SHELL", help="The shell."),
    ],
) -> None:
    """Print the shell completion script for bash, zsh or fish.

    Completion knows commands, options, their values, and your source and term names.
    ('mentionwatch --install-completion' installs it for the current shell.)

    \b
    Examples:
      eval "$(mentionwatch completion bash)"         (in ~/.bashrc)
      eval "$(mentionwatch completion zsh)"          (in ~/.zshrc)
      mentionwatch completion fish > ~/.config/fish/completions/mentionwatch.fish
    """
    from typer._completion_shared import get_completion_script

    var = f"_{PROG.upper()}_COMPLETE"
    print(get_completion_script(prog_name=PROG, complete_var=var, shell=shell))
