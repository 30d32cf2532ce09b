"""Reading and triaging stored mentions: feed, show, handle, ignore, reopen, export.

Annotations are not strings here (see cli/app.py): ~0.8 ms of feed's start-up.
"""

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mentionwatch.cli.app import (
    AllStatusOpt,
    Choice,
    IntentOpt,
    NoPagerOpt,
    OpenStatusOpt,
    RelevantOpt,
    SearchOpt,
    SentimentOpt,
    SinceOpt,
    SourceOpt,
    TermOpt,
    app,
    build_filters,
    choice_option,
    fail,
    load_config,
    open_store,
    paged_console,
    resolve,
    say,
    state,
)

if TYPE_CHECKING:
    from mentionwatch.config import Config
    from mentionwatch.models import Filters, Mention, ThreadPost
    from mentionwatch.render import FeedSummary
    from mentionwatch.store import Store

SORT_ORDERS = ("newest", "priority", "relevance")
# The note under the feed counts what it left out up to this many per status ("1000+ more"):
# counting every row of a large database would cost more than showing the feed. A full-text
# match costs several times an index entry to count, so --search counts fewer and its feed
# stays as fast at a million mentions as at ten thousand.
COUNT_CAP = 1000
SEARCH_COUNT_CAP = 100


def _feed_formats(ctx: object = None) -> tuple[str, ...]:
    from mentionwatch.render import FEED_FORMATS

    return FEED_FORMATS


def _export_formats(ctx: object = None) -> tuple[str, ...]:
    from mentionwatch.render import EXPORT_FORMATS

    return EXPORT_FORMATS


@app.command()
def feed(
    since: SinceOpt = None,
    source: SourceOpt = None,
    term: TermOpt = None,
    sentiment: SentimentOpt = None,
    status: OpenStatusOpt = None,
    search: SearchOpt = None,
    intent: IntentOpt = None,
    relevant: RelevantOpt = False,
    sort: Annotated[
        str,
        choice_option(
            "--sort",
            Choice(SORT_ORDERS, "order"),
            "newest first; priority: what to answer first; relevance: best --search match.",
            "ORDER",
        ),
    ] = "newest",
    fmt: Annotated[
        str,
        choice_option(
            "--format",
            Choice(_feed_formats, "format"),
            "rich on a terminal; the others for scripts.",
            "FORMAT",
            short="-f",
        ),
    ] = "rich",
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", min=0, help="At most N (0: all).")
    ] = 50,
    mine: Annotated[bool, typer.Option("--mine", help="Only those assigned to you.")] = False,
    unassigned: Annotated[
        bool, typer.Option("--unassigned", help="Only those assigned to nobody.")
    ] = False,
    assignee: Annotated[
        list[str] | None,
        typer.Option(
            "--assignee",
            metavar="NAME",
            help="Only those assigned to NAME; repeat for any of several.",
        ),
    ] = None,
    no_pager: NoPagerOpt = False,
) -> None:
    """Show mentions, newest first, with sentiment and intents.

    Open mentions only, unless --status says otherwise; a repeated filter means "any of".
    Under the feed a line says how many more --limit held back and how many are hidden.

    \b
    Examples:
      mentionwatch feed --since 1d --sentiment negative
      mentionwatch feed --sort priority --limit 10
      mentionwatch feed --source reddit --source hackernews --intent question
      mentionwatch feed --search '"dark mode" OR theme*' --status all
      mentionwatch feed --search 'author:alice -spam'
      mentionwatch feed --relevant --sort priority
      mentionwatch feed --mine --sort priority
      mentionwatch feed --sentiment positive --format ids | mentionwatch handle -
    """
    from mentionwatch import render

    state.pager = state.pager and not no_pager
    filters = build_filters(since, source, term, sentiment, status, search, intent,
                            relevant=relevant)  # fmt: skip
    cfg = load_config()
    filters = _people(cfg, filters, mine, unassigned, assignee)
    store = open_store(cfg, readonly=True)
    cap = limit if limit > 0 else None
    if sort == "relevance" and not filters.search:
        fail("--sort relevance ranks --search results: give --search TEXT")
    mentions = store.mentions(filters, limit=cap, order=sort)
    if fmt in render.WRITERS:
        shown = render.WRITERS[fmt](sys.stdout, mentions)
        if sys.stdout.isatty():  # a person is reading: say what the data leaves out
            note = render.feed_note(_summary(store, filters, cap), shown)
            if note:
                say(note)
        return
    from itertools import islice

    from mentionwatch.echoes import Folded

    # The rich feed shows a retweeted or cross-posted text once, with who repeated it.
    entries = Folded(store, filters, store.mentions(filters, order=sort))
    summary = _summary(store, filters, cap)
    patterns = _term_patterns(cfg)
    links = render.supports_hyperlinks(os.environ, sys.stdout.isatty())
    with paged_console() as console:
        render.print_feed(console, islice(entries, cap), patterns, summary, hyperlinks=links,
                          echoes=entries.echoes)  # fmt: skip


def _people(
    cfg: "Config", filters: "Filters", mine: bool, unassigned: bool, names: list[str] | None
) -> "Filters":
    """--mine, --assignee and --unassigned (together: any of them)."""
    if not (mine or unassigned or names):
        return filters
    from mentionwatch import team

    chosen = [team.clean_name(n) for n in names or ()]
    if any(not n for n in chosen):
        fail("--assignee: give a name (see 'mentionwatch show ID' for who is on a mention)")
    if mine:
        chosen.append(team.me(cfg))
    return replace(filters, assignees=tuple(dict.fromkeys(chosen)), unassigned=unassigned)


def _summary(store: "Store", filters: "Filters", limit: int | None) -> "FeedSummary":
    from mentionwatch.models import Filters
    from mentionwatch.render import FeedSummary

    narrowed = replace(filters, statuses=()) != Filters(statuses=())
    cap = note_cap(filters)
    counts = store.count_by_status(filters, cap=cap)
    return FeedSummary(filters.statuses, counts, narrowed, limit, cap)


def note_cap(filters: "Filters") -> int:
    """How far the note under the feed counts each status for these filters."""
    return SEARCH_COUNT_CAP if filters.search else COUNT_CAP


class _TermPatterns(dict):
    """Highlighting patterns by term name, compiled when a shown mention needs them: a
    config may hold thousands of terms, and the feed shows a few mentions."""

    def __init__(self, cfg: "Config") -> None:
        super().__init__()
        self.queries = {t.name: t.query for t in cfg.terms}

    def get(self, name: str, default: object = None) -> object:
        if name not in self and name in self.queries:
            from mentionwatch.query import atom_pattern, parse

            self[name] = [atom_pattern(a) for a in parse(self.queries[name]).atoms()]
        return super().get(name, default)


def _term_patterns(cfg: "Config") -> dict[str, list]:
    return _TermPatterns(cfg)


@app.command()
def show(
    mention: Annotated[str, typer.Argument(metavar="ID", help="An ID or key (see feed).")],
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not ask the platform for the thread.")
    ] = False,
    no_pager: NoPagerOpt = False,
) -> None:
    """Show one mention in full, with its thread, echoes and history.

    What it replies to is fetched from the platform once and kept; then the retweets,
    quotes and cross-posts of the same text, the replies sent and the status history.

    \b
    Examples:
      mentionwatch show 42
      mentionwatch show hackernews:41234567 --offline
    """
    from mentionwatch import render
    from mentionwatch.models import Filters
    from mentionwatch.store import can_write

    state.pager = state.pager and not no_pager
    cfg = load_config()
    # Reading only, except that a fetched thread is kept with the mention when it can be.
    store = open_store(cfg, readonly=not can_write(cfg.database))
    (mention_id,) = resolve(store, [mention])
    m = store.get(mention_id)
    thread, problem = _thread(cfg, store, m, offline)
    group = store.echo_group(m.echo_of or mention_id, Filters(statuses=()))
    with paged_console() as console:
        render.print_detail(console, m, store.status_history(mention_id),
                            store.replies(mention_id), thread, group)  # fmt: skip
    if problem:
        say(f"thread not shown: {problem}")


def _thread(
    cfg: "Config", store: "Store", m: "Mention", offline: bool
) -> tuple[list["ThreadPost"], str | None]:
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
    from mentionwatch import relevance, team

    cfg = load_config()
    store = open_store(cfg)
    ids = resolve(store, refs)
    echoes = [i for i in store.echoes_of(ids) if i not in ids]  # a group is one feed entry
    changed = store.set_status(ids + echoes, status, note, actor=team.me(cfg))
    relevance.learn_now(cfg, store)  # the decision teaches relevance (see relevance.py)
    also = f" (with {len(echoes)} echo(es))" if echoes else ""
    say(f"{changed} of {len(ids) + len(echoes)} mention(s) marked {status}{also}")


IdsArg = Annotated[
    list[str], typer.Argument(metavar="ID...", help="IDs or keys; '-' reads them from stdin.")
]
NoteOpt = Annotated[
    str | None, typer.Option("--note", metavar="TEXT", help="Why, for the status history.")
]


@app.command()
def handle(mentions: IdsArg, note: NoteOpt = None) -> None:
    """Mark mentions handled: dealt with, hidden from the feed.

    \b
    Examples:
      mentionwatch handle 42 --note "answered on HN"
      mentionwatch handle 42 43 44
      mentionwatch feed --sentiment positive --format ids | mentionwatch handle -
    """
    _set_status(mentions, "handled", note)


@app.command()
def ignore(mentions: IdsArg, note: NoteOpt = None) -> None:
    """Mark mentions ignored: nothing to do, hidden from the feed.

    \b
    Examples:
      mentionwatch ignore 43 44
      mentionwatch feed --search spam --format ids | mentionwatch ignore - --note spam
    """
    _set_status(mentions, "ignored", note)


@app.command()
def reopen(mentions: IdsArg, note: NoteOpt = None) -> None:
    """Mark mentions open again, back in the feed.

    \b
    Examples:
      mentionwatch reopen 42
      mentionwatch reopen 42 --note "they wrote back"
    """
    _set_status(mentions, "open", note)


@app.command()
def export(
    since: SinceOpt = None,
    source: SourceOpt = None,
    term: TermOpt = None,
    sentiment: SentimentOpt = None,
    status: AllStatusOpt = None,
    search: SearchOpt = None,
    intent: IntentOpt = None,
    relevant: RelevantOpt = False,
    fmt: Annotated[
        str | None,
        choice_option(
            "--format",
            Choice(_export_formats, "format"),
            "Default: from the -o file's name, else jsonl.",
            "FORMAT",
            short="-f",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to FILE (.csv, .json, .jsonl) instead of stdout.",
        ),
    ] = None,
) -> None:
    """Write matching mentions as JSONL, JSON or CSV, oldest first.

    Every status by default. With -o the file's extension picks the format (.csv, .json,
    .jsonl or .ndjson) unless --format says otherwise.

    \b
    Examples:
      mentionwatch export -o mentions.csv
      mentionwatch export --since 1d --sentiment negative | jq -r .author
      mentionwatch export --format json --status open > open.json
    """
    from mentionwatch import render

    fmt = fmt or _format_for(output)
    filters = build_filters(since, source, term, sentiment, status, search, intent, "all",
                            relevant)  # fmt: skip
    store = open_store(load_config(), readonly=True)
    # rows of what a record reads: no Mention built per row
    mentions = store.rows(filters, order="oldest", columns=render.ROW_COLUMNS)
    if output is None:
        count = render.WRITERS[fmt](sys.stdout, mentions)
        if not count and sys.stdout.isatty():
            say(render.feed_note(_summary(store, filters, None), 0) or "no mentions match")
        return
    from mentionwatch.files import whole_or_nothing

    try:
        with whole_or_nothing(output) as out:
            count = render.WRITERS[fmt](out, mentions)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    say(f"wrote {count} mention(s) to {output} as {fmt.upper()}")


def _format_for(output: Path | None) -> str:
    from mentionwatch.render import EXPORT_FORMATS, FORMAT_BY_SUFFIX

    if output is None:
        return "jsonl"
    found = FORMAT_BY_SUFFIX.get(output.suffix.lower())
    if found is None:
        suffixes = ", ".join(FORMAT_BY_SUFFIX)
        fail(f"cannot tell the format of {output.name!r} from its name ({suffixes}): "
             f"pass --format {'|'.join(EXPORT_FORMATS)}")  # fmt: skip
    return found


@app.command()
def browse(
    port: Annotated[
        int, typer.Option("--port", metavar="N", min=0, max=65535, help="Loopback port.")
    ] = 8001,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open it in your web browser.")
    ] = True,
) -> None:
    """Open the database in Datasette, ready to explore.

    Full-text search (FTS5 syntax), facets on source, sentiment and status, and canned
    queries: unanswered negatives, volume per day, top authors. Needs the optional extra:
    pip install 'mentionwatch[datasette]'. Ctrl-C stops it.

    \b
    Examples:
      mentionwatch browse
      mentionwatch browse --port 8002 --no-open
    """
    from mentionwatch import browse as browse_module

    cfg = load_config()
    if cfg.db_url:
        fail("browse opens a SQLite file in Datasette; for a PostgreSQL database use its own "
             "tools, or copy it into a file first: mentionwatch migrate-to FILE.db")  # fmt: skip
    open_store(cfg).close()  # exists and is migrated (full-text index included)
    state.store = None
    code = browse_module.serve(cfg.db_path, port, open_browser)
    if code:
        raise typer.Exit(code)
