"""Seeing the trend: stats (counts over time, top sources and authors, response figures)
and digest (the summary a digest alert sends)."""

import sys
from typing import Annotated

import typer

from mentionwatch.cli.app import (
    AllStatusOpt,
    Choice,
    IntentOpt,
    SearchOpt,
    SentimentOpt,
    SinceOpt,
    SourceOpt,
    TermOpt,
    app,
    build_filters,
    choice_option,
    load_config,
    open_store,
    stdout_console,
)

STATS_FORMATS = ("rich", "plain", "json", "csv")
DIGEST_FORMATS = ("rich", "markdown", "json", "html", "text")


def _periods(ctx: object = None) -> tuple[str, ...]:
    from mentionwatch.trends import PERIODS

    return PERIODS


def _groups(ctx: object = None) -> tuple[str, ...]:
    from mentionwatch.trends import GROUPS

    return GROUPS


def _tables(ctx: object = None) -> tuple[str, ...]:
    from mentionwatch.trends import TABLES

    return tuple(TABLES)


TzOpt = Annotated[
    str | None,
    typer.Option("--tz", metavar="ZONE", help="Time zone, e.g. Europe/Berlin [default: $TZ, "
                 "else the system's]."),
]  # fmt: skip


@app.command()
def stats(
    since: SinceOpt = None,
    source: SourceOpt = None,
    term: TermOpt = None,
    sentiment: SentimentOpt = None,
    status: AllStatusOpt = None,
    search: SearchOpt = None,
    intent: IntentOpt = None,
    by: Annotated[
        str, choice_option("--by", Choice(_periods, "period"), "One row per period.", "PERIOD")
    ] = "day",
    group: Annotated[
        str | None,
        choice_option("--group", Choice(_groups, "group"), "One series per term or source.", "BY"),
    ] = None,
    table: Annotated[
        str,
        choice_option("--table", Choice(_tables, "table"), "What json/csv list.", "TABLE"),
    ] = "periods",
    tz: TzOpt = None,
    fmt: Annotated[
        str,
        choice_option(
            "--format", Choice(STATS_FORMATS, "format"), "Output format.", "FORMAT", short="-f"
        ),
    ] = "rich",
) -> None:
    """Volume and sentiment over time, with a chart; top sources and authors; how fast
    mentions are answered.

    Every status by default. Periods are your time zone's hours, days or weeks; those with
    no mentions are listed with zeros. On a terminal a bar per period is drawn; --format
    json or csv prints one row per period (and group) for scripts and spreadsheets.

    \b
    Examples:
      mentionwatch stats --since 1w
      mentionwatch stats --by hour --since 1d --sentiment negative
      mentionwatch stats --group term --format csv > per-term.csv
      mentionwatch stats --table responses --format json
    """
    from mentionwatch import trends, trendview

    filters = build_filters(since, source, term, sentiment, status, search, intent, "all")
    zone = trends.local_zone(tz)
    result = trends.stats(open_store(load_config(), readonly=True), filters, by, group, zone)
    if fmt in ("json", "csv"):
        write = trendview.write_json if fmt == "json" else trendview.write_csv
        write(sys.stdout, trends.TABLES[table], result.table(table))
        return
    console = stdout_console(fmt)
    trendview.print_stats(console, result, chart=fmt == "rich" and console.is_terminal)


@app.command()
def digest(
    since: Annotated[
        str, typer.Option("--since", metavar="WHEN", help="The period: 1d, 12h, 1w or an ISO date.")
    ] = "1d",
    term: TermOpt = None,
    tz: TzOpt = None,
    fmt: Annotated[
        str,
        choice_option(
            "--format",
            Choice(DIGEST_FORMATS, "format"),
            "markdown for chat, html or text for mail, json as the webhook sends.",
            "FORMAT",
            short="-f",
        ),
    ] = "rich",
) -> None:
    """The summary a digest alert sends, printed.

    Counts and their change against the period before, the open mentions to answer first,
    negative ones nobody answered, the spikes that began, and response times.

    \b
    Examples:
      mentionwatch digest
      mentionwatch digest --since 1w --format markdown
    """
    import json

    from mentionwatch import trends, trendview

    filters = build_filters(since, None, term, None, None, None, None, "all")
    assert filters.since is not None
    cfg = load_config()
    names = list(term or ()) or [t.name for t in cfg.terms]
    store = open_store(cfg, readonly=True)
    result = trendview.digest_dict(
        trends.digest(store, filters.since, names, trends.local_zone(tz), filters)
    )
    if fmt == "json":
        print(json.dumps(result, ensure_ascii=False, indent=1))
    elif fmt == "markdown":
        sys.stdout.write(trendview.digest_markdown(result))
    elif fmt == "html":
        sys.stdout.write(trendview.digest_html(result))
    elif fmt == "text":
        sys.stdout.write(trendview.digest_text(result))
    else:
        trendview.print_digest(stdout_console(), result)
