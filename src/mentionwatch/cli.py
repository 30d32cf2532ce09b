"""The command line: options, help text and exit codes. Each command calls a service and a
renderer; the work itself lives in the modules below."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from mentionwatch import __version__
from mentionwatch.config import Config, ConfigError

if TYPE_CHECKING:  # imported lazily at run time so each command loads only what it needs
    from rich.console import Console

    from mentionwatch.models import Filters, Mention
    from mentionwatch.store import Store

app = typer.Typer(
    name="mentionwatch",
    help="Listen to what people say about your product, from the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
FEED_FORMATS = ("rich", "plain", "jsonl", "json", "csv", "ids")
EXPORT_FORMATS = ("jsonl", "json", "csv")


class _State:
    def __init__(self) -> None:
        self.config_path: Path | None = None
        self.db_path: Path | None = None
        self.debug = False
        self.secrets: list[str] = []


state = _State()


class UserError(Exception):
    """A problem the user can fix: printed as one line, exit code attached."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def redact(message: str) -> str:
    for secret in state.secrets:
        if len(secret) >= 4:
            message = message.replace(secret, "***")
    return message


def say(message: str) -> None:
    """Talk (progress, warnings, errors) goes to stderr, scrubbed of every secret."""
    sys.stdout.flush()  # keep talk and data in order when both go to one terminal or file
    print(redact(message), file=sys.stderr)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    raise UserError(message, code)


def load_config(required: bool = False) -> Config:
    from mentionwatch import config

    cfg = config.load(state.config_path, state.db_path, required=required)
    if cfg.sources:
        state.secrets = cfg.secrets()
    return cfg


def open_store(cfg: Config) -> Store:
    from mentionwatch.store import Store

    return Store(cfg.db_path)


def stdout_console(fmt: str = "rich") -> Console:
    from rich.console import Console

    plain = fmt == "plain" or os.environ.get("NO_COLOR")
    return Console(no_color=bool(plain), highlight=False, emoji=False, markup=False)


def _version(value: bool) -> None:
    if value:
        print(f"mentionwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    config: Annotated[
        Path | None, typer.Option("--config", help="Config file [env: MENTIONWATCH_CONFIG].")
    ] = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="Database [env: MENTIONWATCH_DB].")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    state.config_path, state.db_path, state.debug = config, db, debug


# Shared filter options for feed and export.
SinceOpt = Annotated[str | None, typer.Option("--since", help="Only newer: 2h, 3d, 1w or ISO.")]
SourceOpt = Annotated[list[str] | None, typer.Option("--source", help="Only this source.")]
TermOpt = Annotated[list[str] | None, typer.Option("--term", help="Only this term.")]
SentimentOpt = Annotated[
    str | None, typer.Option("--sentiment", help="positive, neutral or negative.")
]
SearchOpt = Annotated[str | None, typer.Option("--search", help="Full-text search.")]
IntentOpt = Annotated[
    list[str] | None,
    typer.Option("--intent", help="Only mentions with this intent: question, complaint, request, "
                 "praise."),
]  # fmt: skip


def build_filters(
    since: str | None,
    source: list[str] | None,
    term: list[str] | None,
    sentiment: str | None,
    status: str,
    search: str | None,
    intents: list[str] | None = None,
) -> Filters:
    from mentionwatch.models import INTENTS, SENTIMENTS, STATUSES, Filters, parse_since

    for intent in intents or ():
        if intent not in INTENTS:
            fail(f"--intent must be one of {', '.join(INTENTS)}, not {intent!r}")
    if sentiment is not None and sentiment not in SENTIMENTS:
        fail(f"--sentiment must be one of {', '.join(SENTIMENTS)}, not {sentiment!r}")
    if status != "all" and status not in STATUSES:
        fail(f"--status must be one of {', '.join(STATUSES)}, all; not {status!r}")
    try:
        since_dt = parse_since(since) if since else None
    except ValueError as exc:
        fail(f"--since: {exc}")
    return Filters(
        since=since_dt,
        sources=tuple(source or ()),
        terms=tuple(term or ()),
        sentiment=sentiment,
        status=None if status == "all" else status,
        search=search,
        intents=tuple(intents or ()),
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
    from mentionwatch.poller import Poller, PollError
    from mentionwatch.render import poll_progress, print_summary

    cfg = load_config(required=True)
    store = open_store(cfg)
    poller = Poller(cfg, store, source or (), term or (), notify=say)
    try:
        with poll_progress(poller, enabled=not quiet and sys.stderr.isatty()):
            report = poller.run()
    except PollError as exc:
        fail(str(exc))
    print_summary(report, quiet=quiet, err=say)
    if report.failures:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def feed(
    since: SinceOpt = None,
    source: SourceOpt = None,
    term: TermOpt = None,
    sentiment: SentimentOpt = None,
    status: Annotated[str, typer.Option(help="open, handled, ignored or all.")] = "open",
    search: SearchOpt = None,
    intent: IntentOpt = None,
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
    filters = build_filters(since, source, term, sentiment, status, search, intent)
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
def show(mention: Annotated[str, typer.Argument(help="ID or key.")]) -> None:
    """Show one mention in full: its thread context, the replies sent, its status history."""
    from mentionwatch import render

    store = open_store(load_config())
    (mention_id,) = resolve(store, [mention])
    render.print_detail(
        stdout_console(),
        store.get(mention_id),
        store.status_history(mention_id),
        store.replies(mention_id),
    )


def resolve(store: Store, refs: list[str]) -> list[int]:
    from mentionwatch.store import UnknownMention

    if refs == ["-"]:
        refs = [line for line in sys.stdin.read().split() if line]
        if not refs:
            fail("no IDs on standard input")
    try:
        return store.resolve(refs)
    except UnknownMention as exc:
        fail(f"unknown mention ID or key: {exc} (see 'mentionwatch feed --status all')")


def _set_status(refs: list[str], status: str, note: str | None) -> None:
    store = open_store(load_config())
    ids = resolve(store, refs)
    changed = store.set_status(ids, status, note)
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
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, json or jsonl.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Stream every matching mention, oldest first, as JSONL, JSON or CSV."""
    from mentionwatch import render

    if fmt not in EXPORT_FORMATS:
        fail(f"--format must be one of {', '.join(EXPORT_FORMATS)}, not {fmt!r}")
    filters = build_filters(since, source, term, sentiment, status, search, intent)
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


@app.command()
def sentiment(
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts; none reads stdin lines.")
    ] = None,
    analyzer: Annotated[str | None, typer.Option("--analyzer", help="Analyzer name.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="plain or jsonl.")] = "plain",
) -> None:
    """Score text with the sentiment analyzer."""
    import json

    from mentionwatch.sentiment import get_analyzer

    if fmt not in ("plain", "jsonl"):
        fail(f"--format must be plain or jsonl, not {fmt!r}")
    try:
        scorer = get_analyzer(analyzer or load_config().analyzer)
    except ValueError as exc:
        fail(str(exc))
    lines = texts if texts else (line.rstrip("\n") for line in sys.stdin)
    from mentionwatch.text import strip_controls

    for text in lines:
        if not text.strip():
            continue
        score = scorer.score(text)
        if fmt == "jsonl":
            row = {"text": text, "sentiment": score.label, "polarity": score.polarity,
                   "intents": list(score.intents)}  # fmt: skip
            print(json.dumps(row, ensure_ascii=False))
        else:
            intents = ",".join(score.intents) or "-"
            print(f"{score.label:<8}\t{score.polarity:+.3f}\t{intents}\t{strip_controls(text)}")


@app.command()
def reply(
    mention: Annotated[str | None, typer.Argument(help="ID or key.")] = None,
    text: Annotated[str | None, typer.Argument(help="The reply; none opens $EDITOR.")] = None,
    template: Annotated[
        str | None, typer.Option("--template", "-t", help="Start from a [templates] entry.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, post nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Post without asking.")] = False,
    keep_open: Annotated[
        bool, typer.Option("--keep-open", help="Do not mark the mention handled.")
    ] = False,
    list_templates: Annotated[
        bool, typer.Option("--list-templates", help="List the reply templates.")
    ] = False,
) -> None:
    """Reply where the mention is: through the platform's API, or by opening its reply page."""
    from mentionwatch import render, replies

    cfg = load_config()
    if list_templates:
        render.print_templates(stdout_console(), cfg.templates)
        return
    if mention is None:
        fail("give the ID of the mention to reply to (see 'mentionwatch feed')")
    store = open_store(cfg)
    (mention_id,) = resolve(store, [mention])
    m = store.get(mention_id)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        where = replies.target(cfg, store, m)
        body = text
        if template:
            body = replies.fill_template(template, dict(cfg.templates), m)
        if text and template:
            fail("give either TEXT or --template, not both")
        if body is None:
            if not interactive:
                fail(
                    "no reply text: give TEXT or --template NAME (or run on a terminal for $EDITOR)"
                )
            body = replies.compose_in_editor(m)
        where.check_length(body)
    except replies.ReplyError as exc:
        fail(str(exc), exc.code)
    console = stdout_console()
    render.print_reply_preview(
        console, m, body, where.length(body), where.limit, where.source is None
    )
    if where.source is None:
        if dry_run:
            print(where.link or "")
            say("dry run: nothing recorded")
            return
        _reply_by_hand(store, m, body, where.link, interactive)
        return
    if dry_run:
        say("dry run: nothing posted")
        return
    if replies.already_posted(store, m, body):
        say(f"already replied to {m.id} with this text; nothing posted")
        return
    if not yes:
        if not sys.stdin.isatty():
            fail("refusing to post without confirmation when not on a terminal: pass --yes")
        if not typer.confirm(f"Post this reply on {m.source}?", default=False):
            fail("not posted", EXIT_FAILED)
    try:
        posted = replies.post(cfg, store, m, body, keep_open)
    except replies.ReplyError as exc:
        fail(str(exc), exc.code)
    print(f"posted: {posted.url or posted.remote_id}")
    if not keep_open:
        say(f"mention {m.id} marked handled")


def _reply_by_hand(
    store: Store, m: Mention, body: str, link: str | None, open_browser: bool
) -> None:
    """Platforms without a reply API: open (on a terminal) or print the reply page; record it."""
    from mentionwatch import replies

    if not link:
        fail(f"{m.source} has no reply API and this mention has no link", EXIT_FAILED)
    if open_browser:
        import webbrowser

        webbrowser.open(link)
        say(f"opened {link} in your browser: paste the reply there")
    print(link)
    replies.record_link(store, m, body, link)
    say(f"{m.source} has no reply API; when you have replied: mentionwatch handle {m.id}")


@app.command()
def sources(
    check: Annotated[
        bool, typer.Option("--check", help="Make one cheap call per enabled source.")
    ] = False,
) -> None:
    """List every source: enabled, credentials present, the last poll's result."""
    from mentionwatch import poller, render

    cfg = load_config()
    store = open_store(cfg)
    render.print_sources(stdout_console(), poller.source_overview(cfg, store))
    if check:
        checks = poller.check_sources(cfg, store)
        stdout_console().print()
        render.print_checks(stdout_console(), checks)
        if not all(c.ok for c in checks):
            raise typer.Exit(EXIT_FAILED)


@app.command()
def rescore(
    analyzer: Annotated[str | None, typer.Option("--analyzer", help="Analyzer name.")] = None,
) -> None:
    """Apply the current sentiment analyzer to every stored mention (after an upgrade)."""
    from mentionwatch.poller import rescore as rescore_all
    from mentionwatch.render import progress_bar

    cfg = load_config()
    store = open_store(cfg)
    try:
        with progress_bar("rescoring", enabled=sys.stderr.isatty()) as advance:
            changed, total = rescore_all(cfg, store, analyzer, advance)
    except ValueError as exc:
        fail(str(exc))
    say(f"rescored {total} mention(s); {changed} changed label")


@app.command()
def demo(
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Keep the demo database at this path.")
    ] = None,
) -> None:
    """Run the real poll and feed against the built-in loopback web, offline."""
    from mentionwatch.testing.demo import run_demo

    run_demo(stdout_console(), keep, say)


def main() -> None:
    code = EXIT_OK
    try:
        code = app(standalone_mode=False) or EXIT_OK
    except typer.Exit as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        say("mentionwatch: interrupted")
        code = EXIT_INTERRUPTED
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument…
        exc.show()
        code = getattr(exc, "exit_code", EXIT_USAGE)
    except ConfigError as exc:
        say(f"mentionwatch: config error: {exc}")
        code = EXIT_USAGE
    except UserError as exc:
        say(f"mentionwatch: {exc}")
        code = exc.code
    except BrokenPipeError:
        # The reader of a pipe went away (`| head`): not an error for a data command.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_OK
    except Exception as exc:
        if state.debug:
            raise
        say(f"mentionwatch: unexpected error: {type(exc).__name__}: {exc} (rerun with --debug)")
        code = EXIT_FAILED
    sys.exit(code)
