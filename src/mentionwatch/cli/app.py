"""The typer app and what every command shares: global options, config and database
loading, filters, ID resolution, error lines and exit codes."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from mentionwatch import __version__
from mentionwatch.config import Config
from mentionwatch.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    MentionwatchError,
    StoreError,
    UsageError,
)

if TYPE_CHECKING:  # imported lazily at run time so each command loads only what it needs
    from rich.console import Console

    from mentionwatch.models import Filters
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

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "UsageError"]


class _State:
    def __init__(self) -> None:
        self.config_path: Path | None = None
        self.db_path: Path | None = None
        self.debug = False
        self.secrets: list[str] = []


state = _State()


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
    raise UsageError(message, code)


def load_config(required: bool = False) -> Config:
    from mentionwatch import config

    cfg = config.load(state.config_path, state.db_path, required=required)
    if cfg.sources:
        state.secrets = cfg.secrets()
    return cfg


def open_store(cfg: Config) -> Store:
    import sqlite3

    from mentionwatch.store import Store

    try:
        return Store(cfg.db_path)
    except (sqlite3.DatabaseError, OSError) as exc:
        raise StoreError(
            f"cannot open the database {cfg.db_path}: {exc}; pass --db PATH for another one",
            EXIT_USAGE,
        ) from None


def stdout_console(fmt: str = "rich") -> Console:
    from rich.console import Console

    plain = fmt == "plain" or os.environ.get("NO_COLOR")
    console = Console(no_color=bool(plain), highlight=False, emoji=False, markup=False)
    if not console.is_terminal:
        console.width = 160  # a pipe or file has no width; keep tables on whole lines
    return console


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
RelevantOpt = Annotated[
    bool,
    typer.Option("--relevant", help="Only mentions about your product (relevance at least "
                 "0.5; unscored ones too)."),
]  # fmt: skip
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
    relevant: bool = False,
) -> Filters:
    from mentionwatch.models import INTENTS, SENTIMENTS, STATUSES, Filters, parse_since
    from mentionwatch.relevance import THRESHOLD

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
        min_relevance=THRESHOLD if relevant else None,
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


def main() -> None:
    code = EXIT_OK
    try:
        code = app(standalone_mode=False) or EXIT_OK
    except typer.Exit as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        say("mentionwatch: interrupted")
        code = EXIT_INTERRUPTED
    except typer.TyperException as exc:  # usage: unknown option, missing argument…
        # typer vendors click; its ClickException (a TyperException) knows how to show itself.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            say(f"mentionwatch: {exc}")
        code = getattr(exc, "exit_code", EXIT_USAGE)
    except MentionwatchError as exc:
        say(f"mentionwatch: {exc.prefix}{exc}")
        code = exc.code
    except sqlite3.OperationalError as exc:  # e.g. locked by a long write elsewhere
        say(f"mentionwatch: database error: {exc}; try again")
        code = EXIT_FAILED
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
