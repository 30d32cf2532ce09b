"""Seeing the trend: stats (counts over time, top sources and authors, response figures)
and digest (the summary a digest alert sends)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mentionwatch.cli.app import (
    IntentOpt,
    SearchOpt,
    SentimentOpt,
    SinceOpt,
    SourceOpt,
    TermOpt,
    app,
    build_filters,
    fail,
    load_config,
    open_store,
    stdout_console,
)

STATS_FORMATS = ("rich", "plain", "json", "csv")
STATS_TABLES = ("periods", "sources", "authors", "responses")
DIGEST_FORMATS = ("rich", "markdown", "json", "html", "text")
TzOpt = Annotated[
    str | None, typer.Option("--tz", help="Time zone for periods, e.g. Europe/Berlin [env: TZ].")
]


@app.command()
def stats(
    since: SinceOpt = None,
    source: SourceOpt = None,
    term: TermOpt = None,
    sentiment: SentimentOpt = None,
    status: Annotated[str, typer.Option(help="open, handled, ignored or all.")] = "all",
    search: SearchOpt = None,
    intent: IntentOpt = None,
    by: Annotated[str, typer.Option("--by", help="Period: hour, day or week.")] = "day",
    group: Annotated[
        str | None, typer.Option("--group", help="One series per term or source.")
    ] = None,
    table: Annotated[
        str,
        typer.Option("--table", help="What json/csv list: periods, sources, authors or responses."),
    ] = "periods",
    tz: TzOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="rich, plain, json or csv.")] = "rich",
) -> None:
    """Volume and sentiment over time, with a chart; top sources and authors; how fast
    mentions are answered."""
    from mentionwatch import trends, trendview

    if fmt not in STATS_FORMATS:
        fail(f"--format must be one of {', '.join(STATS_FORMATS)}, not {fmt!r}")
    if table not in STATS_TABLES:
        fail(f"--table must be one of {', '.join(STATS_TABLES)}, not {table!r}")
    filters = build_filters(since, source, term, sentiment, status, search, intent)
    zone = trends.local_zone(tz)
    result = trends.stats(open_store(load_config()), filters, by, group, zone)
    if fmt in ("json", "csv"):
        rows = {
            "periods": lambda: trendview.stat_rows(result),
            "sources": lambda: result.sources,
            "authors": lambda: result.authors,
            "responses": lambda: [r.as_dict() for r in result.responses],
        }[table]()
        (trendview.write_json if fmt == "json" else trendview.write_csv)(sys.stdout, rows)
        return
    console = stdout_console(fmt)
    trendview.print_stats(console, result, chart=fmt == "rich" and console.is_terminal)


@app.command()
def digest(
    since: Annotated[str, typer.Option("--since", help="The period: 1d, 1w, 12h or ISO.")] = "1d",
    term: TermOpt = None,
    tz: TzOpt = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="rich, markdown, json, html or text.")
    ] = "rich",
) -> None:
    """The summary a digest alert sends: counts and trend, what to answer first, unanswered
    negatives, spikes, response times."""
    import json

    from mentionwatch import trends, trendview

    if fmt not in DIGEST_FORMATS:
        fail(f"--format must be one of {', '.join(DIGEST_FORMATS)}, not {fmt!r}")
    filters = build_filters(since, None, term, None, "all", None)
    assert filters.since is not None
    cfg = load_config()
    names = list(term or ()) or [t.name for t in cfg.terms]
    result = trends.digest(open_store(cfg), filters.since, names, trends.local_zone(tz), filters)
    if fmt == "json":
        print(json.dumps(trendview.digest_dict(result), ensure_ascii=False, indent=1))
    elif fmt == "markdown":
        sys.stdout.write(trendview.digest_markdown(result))
    elif fmt == "html":
        sys.stdout.write(trendview.digest_html(result))
    elif fmt == "text":
        sys.stdout.write(trendview.digest_text(result))
    else:
        trendview.print_digest(stdout_console(), result)
