"""Listening continuously and alerting: watch, alerts, alerts test, alerts log."""

import contextlib
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from mentionwatch.cli.app import (
    EXIT_FAILED,
    App,
    Choice,
    _root_paths,
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

if TYPE_CHECKING:
    from typer import _click as click

    from mentionwatch.config import Config
    from mentionwatch.store import Store

LOG_FORMATS = ("text", "json")


def rule_names(ctx: "click.Context | None" = None) -> list[str]:
    state.config_path, state.db_path = _root_paths(ctx)
    return [rule.name for rule in load_config().alerts]


RULE = Choice(rule_names, "alert rule", "your rules")


def _store(cfg: "Config") -> "Store":
    """The database, or an empty one in memory when nothing was polled yet (and so nothing
    sent either): reading commands leave no database file behind."""
    from mentionwatch.store import Store, database_exists

    if database_exists(cfg.database):
        return open_store(cfg)

    return Store(":memory:")


@app.command()
def watch(
    interval: Annotated[
        str | None,
        typer.Option(
            "--interval",
            metavar="DURATION",
            help="Time between polls of every source, e.g. 30s, 5m (default: [poll] interval,"
            " or a source's own).",
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Poll every source once, deliver, and exit.")
    ] = False,
    log_format: Annotated[
        str,
        choice_option(
            "--log-format",
            Choice(LOG_FORMATS, "log format"),
            "Off a terminal: one line per poll on stderr, as text or JSON.",
            "FORMAT",
        ),
    ] = "text",
    no_alerts: Annotated[bool, typer.Option("--no-alerts", help="Poll without alerting.")] = False,
) -> None:
    """Keep polling, each source on its schedule, alerting after every save.

    Ctrl-C or SIGTERM finishes the save in flight, sends what is queued and exits 0. One
    watch per SQLite file: a second one names the process holding it and exits 2. On a
    PostgreSQL database several watch processes (on several machines) share the jobs.

    \b
    Examples:
      mentionwatch watch
      mentionwatch watch --interval 2m
      mentionwatch watch --once
      mentionwatch watch --log-format json 2>> watch.log
    """
    from mentionwatch import alerts, render
    from mentionwatch.models import parse_duration
    from mentionwatch.watch import Watcher

    try:
        seconds = parse_duration(interval) if interval is not None else None
    except ValueError as exc:
        fail(f"--interval: {exc}")
    cfg = load_config(required=True)
    store = open_store(cfg, create=True)
    if cfg.alerts and not no_alerts:
        alerts.check_channels(cfg)
    # One watch per SQLite file; on a shared database, several share the polling (leases).
    with contextlib.nullcontext() if store.shared else store.exclusive("watch"):
        view = render.WatchView(sys.stderr.isatty() and log_format == "text", log_format, say)
        watcher = Watcher(
            cfg, store, interval=seconds, once=once, alerting=not no_alerts,
            notify=view.note, on_poll=view.polled, on_delivery=view.delivered,
        )  # fmt: skip
        view.started(watcher.status)
        with view.showing(watcher.status):
            watcher.run()
        view.stopped(watcher.status)
    code = EXIT_FAILED if once and watcher.failed else 0
    if watcher.stranded:
        exit_now(code)  # without waiting for a sender hung inside its request
    if code:
        raise typer.Exit(code)


alerts_app = App(invoke_without_command=True, no_args_is_help=False)
app.add_typer(alerts_app, name="alerts")


@alerts_app.callback()
def alerts_overview(ctx: typer.Context) -> None:
    """Alert rules, their channels and each channel's last delivery.

    Channels are shown with their secrets masked. 'alerts test NAME' sends a sample through
    a rule's channels; 'alerts log' shows recent deliveries.

    \b
    Examples:
      mentionwatch alerts
      mentionwatch alerts test complaints
      mentionwatch alerts log --limit 50
    """
    if ctx.invoked_subcommand is not None:
        return
    from mentionwatch import delivery, render

    cfg = load_config()
    render.print_alert_rules(stdout_console(), delivery.overview(cfg, _store(cfg)))


@alerts_app.command("test")
def alerts_test(
    name: Annotated[str, typer.Argument(click_type=RULE, metavar="NAME", help="The rule to test.")],
) -> None:
    """Send a sample through a rule's channels; say what each answered.

    A mention rule sends a sample mention, a spike rule a made-up pile-up, a digest rule
    its last digest (from the database, as it would go out). Nothing goes through the
    outbox: real alerts are not affected.

    \b
    Examples:
      mentionwatch alerts test complaints
      mentionwatch alerts test "morning digest"
    """
    from mentionwatch import alerts, delivery, render

    cfg = load_config(required=True)
    rule = alerts.find_rule(cfg, name)
    alerts.check_channels(cfg)
    answers = delivery.send_test(cfg, open_store(cfg, create=True), rule)  # logs the answers
    render.print_test_results(stdout_console(), answers)
    if any(a.stranded for a in answers):
        exit_now(EXIT_FAILED)  # without waiting for a sender hung inside its request
    if not all(a.outcome.ok for a in answers):
        raise typer.Exit(EXIT_FAILED)


@alerts_app.command("log")
def alerts_log(
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", min=0, help="At most N (0: all).")
    ] = 20,
    alert: Annotated[str | None, choice_option("--alert", RULE, "Only this rule.", "NAME")] = None,
) -> None:
    """Recent deliveries, newest first: rule, channel, answer.

    \b
    Examples:
      mentionwatch alerts log
      mentionwatch alerts log --alert complaints --limit 5
    """
    from mentionwatch import render

    cfg = load_config()
    rows = _store(cfg).alert_log(limit or None, alert)
    render.print_alert_log(stdout_console(), rows, {r.name: r.on for r in cfg.alerts})
