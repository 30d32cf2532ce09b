"""Listening continuously and alerting: watch, alerts, alerts test, alerts log."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mentionwatch.cli.app import (
    EXIT_FAILED,
    app,
    fail,
    load_config,
    open_store,
    say,
    stdout_console,
)

LOG_FORMATS = ("text", "json")


@app.command()
def watch(
    interval: Annotated[
        str | None,
        typer.Option(
            "--interval",
            help="Time between polls of every source, e.g. 30s, 5m "
            "(default: [poll] interval, or a source's own; X 15m).",
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Poll every source once, deliver, exit.")
    ] = False,
    log_format: Annotated[
        str, typer.Option("--log-format", help="text or json: one line per poll on stderr.")
    ] = "text",
    no_alerts: Annotated[bool, typer.Option("--no-alerts", help="Poll without alerting.")] = False,
) -> None:
    """Poll every source on its own schedule until stopped, alerting after every save."""
    from mentionwatch import alerts, render
    from mentionwatch.models import parse_duration
    from mentionwatch.store import exclusive
    from mentionwatch.watch import Watcher

    if log_format not in LOG_FORMATS:
        fail(f"--log-format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    try:
        seconds = parse_duration(interval) if interval is not None else None
    except ValueError as exc:
        fail(f"--interval: {exc}")
    cfg = load_config(required=True)
    store = open_store(cfg)
    if cfg.alerts and not no_alerts:
        alerts.check_channels(cfg)
    with exclusive(cfg.db_path, "watch"):
        view = render.WatchView(sys.stderr.isatty() and log_format == "text", log_format, say)
        watcher = Watcher(
            cfg, store, interval=seconds, once=once, alerting=not no_alerts,
            notify=view.note, on_poll=view.polled, on_delivery=view.delivered,
        )  # fmt: skip
        view.started(watcher.status)
        with view.showing(watcher.status):
            watcher.run()
        view.stopped(watcher.status)
    if once and watcher.failed:
        raise typer.Exit(EXIT_FAILED)


alerts_app = typer.Typer(
    help="Alert rules: their channels and last deliveries; 'test NAME' sends a sample, "
    "'log' shows recent deliveries.",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(alerts_app, name="alerts")


@alerts_app.callback()
def alerts_overview(ctx: typer.Context) -> None:
    """List every alert rule, its channels (secrets masked) and their last deliveries."""
    if ctx.invoked_subcommand is not None:
        return
    from mentionwatch import delivery, render

    cfg = load_config()
    render.print_alert_rules(stdout_console(), delivery.overview(cfg, open_store(cfg)))


@alerts_app.command("test")
def alerts_test(name: Annotated[str, typer.Argument(help="The rule's name.")]) -> None:
    """Send a sample event through the rule's channels and say what each answered."""
    from mentionwatch import alerts, delivery, render

    cfg = load_config(required=True)
    rule = alerts.find_rule(cfg, name)
    alerts.check_channels(cfg)
    answers = delivery.send_test(cfg, open_store(cfg), rule)
    render.print_test_results(stdout_console(), answers)
    if not all(a.outcome.ok for a in answers):
        raise typer.Exit(EXIT_FAILED)


@alerts_app.command("log")
def alerts_log(
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 20,
    alert: Annotated[str | None, typer.Option("--alert", help="Only this rule.")] = None,
) -> None:
    """Show recent deliveries, newest first: when, which rule and channel, the answer."""
    from mentionwatch import render

    cfg = load_config()
    render.print_alert_log(stdout_console(), open_store(cfg).alert_log(limit, alert))
