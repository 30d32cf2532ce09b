"""Reading and triaging stored mentions: feed, show, handle, ignore, reopen, export."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mentionwatch.cli.app import (
    IntentOpt,
    RelevantOpt,
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
    resolve,
    say,
    stdout_console,
)

if TYPE_CHECKING:
    from mentionwatch.config import Config
    from mentionwatch.models import Mention, ThreadPost
    from mentionwatch.store import Store

FEED_FORMATS = ("rich", "plain", "jsonl", "json", "csv", "ids")
EXPORT_FORMATS = ("jsonl", "json", "csv")


@app.command()
def feed(
    since: SinceOpt = None,
    source: SourceOpt = None,
    term: TermOpt = None,
    sentiment: SentimentOpt = None,
    status: Annotated[str, typer.Option(help="open, handled, ignored or all.")] = "open",
    search: SearchOpt = None,
    intent: IntentOpt = None,
    relevant: RelevantOpt = False,
    sort: Annotated[
        str, typer.Option("--sort", help="newest, or priority (what to answer first).")
    ] = "newest",
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="rich, plain, jsonl, json, csv or ids.")
    ] = "rich",
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many (0: all).")] = 50,
) -> None:
    """Show mentions, newest first, tagged with their sentiment and intents."""
    from mentionwatch import render
    from mentionwatch.query import atom_pattern, parse

    if fmt not in FEED_FORMATS:
        fail(f"--format must be one of {', '.join(FEED_FORMATS)}, not {fmt!r}")
    if sort not in ("newest", "priority"):
        fail(f"--sort must be newest or priority, not {sort!r}")
    filters = build_filters(since, source, term, sentiment, status, search, intent, relevant)
    cfg = load_config()
    store = open_store(cfg)
    if sort == "priority":
        from mentionwatch.triage import by_priority

        mentions = iter(by_priority(store.mentions(filters), limit if limit > 0 else None))
    else:
        mentions = store.mentions(filters, limit=limit if limit > 0 else None)
    if fmt in render.WRITERS:
        render.WRITERS[fmt](sys.stdout, mentions)
        return
    patterns = {t.name: [atom_pattern(a) for a in parse(t.query).atoms()] for t in cfg.terms}
    hidden = None
    if filters.status == "open":
        counts = store.count_by_status(filters)
        hidden = {s: counts.get(s, 0) for s in ("handled", "ignored")}
    render.print_feed(stdout_console(fmt), mentions, patterns, hidden)


@app.command()
def show(
    mention: Annotated[str, typer.Argument(help="ID or key.")],
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not ask the platform for the thread.")
    ] = False,
) -> None:
    """Show one mention in full: what it replies to, the replies sent, its status history."""
    from mentionwatch import render

    cfg = load_config()
    store = open_store(cfg)
    (mention_id,) = resolve(store, [mention])
    m = store.get(mention_id)
    thread, problem = _thread(cfg, store, m, offline)
    console = stdout_console()
    render.print_detail(console, m, store.status_history(mention_id), store.replies(mention_id),
                        thread)  # fmt: skip
    if problem:
        say(f"thread not shown: {problem}")


def _thread(
    cfg: Config, store: Store, m: Mention, offline: bool
) -> tuple[list[ThreadPost], str | None]:
    """The stored or freshly fetched thread; a fetch failure is a note, not an error."""
    from mentionwatch import replies
    from mentionwatch.http import SourceError
    from mentionwatch.models import ThreadPost

    if offline or "thread" in m.extra:
        return [ThreadPost(**post) for post in m.extra.get("thread", [])], None
    try:
        return replies.thread(cfg, store, m), None
    except SourceError as exc:
        return [], str(exc)


def _set_status(refs: list[str], status: str, note: str | None) -> None:
    from mentionwatch import relevance

    cfg = load_config()
    store = open_store(cfg)
    ids = resolve(store, refs)
    changed = store.set_status(ids, status, note)
    relevance.learn_now(cfg, store)  # the decision teaches relevance (see relevance.py)
    say(f"{changed} of {len(ids)} mention(s) marked {status}")


IdsArg = Annotated[list[str], typer.Argument(help="IDs or keys; '-' reads them from stdin.")]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Why, for the status history.")]


@app.command()
def handle(mentions: IdsArg, note: NoteOpt = None) -> None:
    """Mark mentions handled (dealt with)."""
    _set_status(mentions, "handled", note)


@app.command()
def ignore(mentions: IdsArg, note: NoteOpt = None) -> None:
    """Mark mentions ignored (nothing to do)."""
    _set_status(mentions, "ignored", note)


@app.command()
def reopen(mentions: IdsArg, note: NoteOpt = None) -> None:
    """Mark mentions open again."""
    _set_status(mentions, "open", note)


@app.command()
def export(
    since: SinceOpt = None,
    source: SourceOpt = None,
    term: TermOpt = None,
    sentiment: SentimentOpt = None,
    status: Annotated[str, typer.Option(help="open, handled, ignored or all.")] = "all",
    search: SearchOpt = None,
    intent: IntentOpt = None,
    relevant: RelevantOpt = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, json or jsonl.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Stream every matching mention, oldest first, as JSONL, JSON or CSV."""
    from mentionwatch import render

    if fmt not in EXPORT_FORMATS:
        fail(f"--format must be one of {', '.join(EXPORT_FORMATS)}, not {fmt!r}")
    filters = build_filters(since, source, term, sentiment, status, search, intent, relevant)
    store = open_store(load_config())
    mentions = store.mentions(filters, order="oldest")
    if output is None:
        render.WRITERS[fmt](sys.stdout, mentions)
        return
    try:
        with output.open("w", encoding="utf-8", newline="") as out:
            count = render.WRITERS[fmt](out, mentions)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    say(f"wrote {count} mention(s) to {output}")
