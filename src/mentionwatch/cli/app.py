"""The typer app and what every command shares: global options, config and database
loading, the filter options and their valid values, ID resolution, help conventions, error
lines and exit codes.

Conventions every command follows (the `alerts`/`watch` commands too):
- An option that takes a name from a known list uses `Choice` (valid values in the error, in
  `--help` and in shell completion; case-insensitive), and a list option means "any of".
- Every command's docstring is a short first line, then what to know, then an `Examples:`
  block marked with `\\b` so it keeps its line breaks.
- Placeholders are words in capitals (ID, WHEN, QUERY), never `<str>`.

Annotations in cli/ are evaluated where they are written, not kept as strings (no `from
__future__ import annotations`): typer reads the root callback's and the invoked command's
signatures at every run, and each string annotation costs it two compiles and four
evaluations. Names imported for type checking only are quoted.
"""

import contextlib
import copy
import gc
import importlib
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer
from typer import _click as click  # typer 0.28 vendors click (pinned <0.29 in pyproject)
from typer._click.exceptions import BadParameter
from typer._click.shell_completion import CompletionItem
from typer._click.types import ParamType
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from mentionwatch import __version__
from mentionwatch.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    INTERRUPTED,
    MentionwatchError,
    StoreError,
    UsageError,
)
from mentionwatch.models import INTENTS, SENTIMENTS, STATUSES

if TYPE_CHECKING:  # imported lazily at run time so each command loads only what it needs
    from rich.console import Console

    from mentionwatch.config import Config
    from mentionwatch.models import Filters
    from mentionwatch.store import Store

PROG = "mentionwatch"
STATUS_CHOICES = (*STATUSES, "all")

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "UsageError"]


class Command(TyperCommand):
    """A command whose help shows arguments as `ID`, not `{mention}`, and lists the valid
    values of every `Choice` option (computed only when help is shown)."""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                piece = param.make_metavar(ctx)
                pieces.append(piece if param.required else f"[{piece}]")
        return pieces

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for param in self.get_params(ctx):
            shown = getattr(param, "_values_shown", False)
            if isinstance(param.type, Choice) and not shown:
                described = param.type.describe(ctx)
                if isinstance(param, TyperOption | TyperArgument):
                    param.help = f"{param.help or ''} {described}".strip()
                param._values_shown = True  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)


def _as_ctrl_c(signum: int, frame: object) -> None:
    """SIGTERM (systemd, timeout(1), kill) stops a command as Ctrl-C does, by being one: what
    the command does on Ctrl-C happens (export -o removes its part file; poll says what it
    saved, asyncio's own SIGINT handler cancelling its jobs), and it exits 130 with a line
    instead of dying silently with the signal."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started with SIGINT ignored (a script's `mentionwatch … &`): raising it would do
        # nothing, so be Ctrl-C here. (While a pager runs, SIGTERM is not ours: pager.py.)
        raise KeyboardInterrupt
    signal.raise_signal(signal.SIGINT)


class Group(TyperGroup):
    """The `mentionwatch` group: every command (and sub-group, like `alerts`) runs inside its
    invoke, so how a run is stopped is decided here, once."""

    def invoke(self, ctx: click.Context) -> Any:
        # Signals are the main thread's: a command run from another thread keeps them as is.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _as_ctrl_c) if main else None
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # typer would turn Ctrl-C into a silent exit 130 before main() could say so; an
            # Abort (click's, for Ctrl-C at a prompt) reaches main(), which says it in one line.
            raise typer.Abort() from None
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)


class App(typer.Typer):
    """A Typer whose commands are `Command`s unless they ask for another class."""

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or Command, **kwargs)


# The modules of cli/ in --help's order, and the commands each one registers when imported.
# A run imports only the module of the command it invokes and typer builds only that
# command: importing every module and building every command was most of feed's start-up.
# (tests/test_help_and_completion.py checks this table against what the modules register.)
SUBJECTS: dict[str, tuple[str, ...]] = {
    "polling": ("init", "poll", "sources", "demo", "completion"),
    "importing": ("import",),
    "mentions": ("feed", "show", "handle", "ignore", "reopen", "export", "browse"),
    "replying": ("reply",),
    "team": ("assign", "unassign", "migrate-to"),
    "scoring": ("sentiment", "rescore"),
    "alerting": ("watch", "alerts"),
    "trends": ("stats", "digest"),
    "auth": ("auth",),
}


class RootApp(App):
    """The `mentionwatch` app: running it builds only the invoked command, unless the
    command line needs them all (--help, completion, an unknown command)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        words = args[0] if args else kwargs.get("args")  # click's main(args=None, ...)
        view = self.bare() if asks_version(words) else self.commands(invoked_command(words))
        return typer.Typer.__call__(view, *args, **kwargs)

    def bare(self) -> typer.Typer:
        """This app with its global options and no command."""
        view = copy.copy(self)
        view.registered_commands, view.registered_groups = [], []
        return view

    def commands(self, name: str | None = None) -> typer.Typer:
        """This app with every command, in --help's order, or with only command `name`."""
        for module, names in SUBJECTS.items():
            if name is None or name in names:
                importlib.import_module(f"{__package__}.{module}")
        view = copy.copy(self)
        order = {f"{__package__}.{module}": i for i, module in enumerate(SUBJECTS)}
        view.registered_commands = sorted(
            (c for c in self.registered_commands if name in (None, command_name(c))),
            key=lambda c: order.get(getattr(c.callback, "__module__", ""), len(order)),
        )
        view.registered_groups = [g for g in self.registered_groups if name in (None, g.name)]
        if name is not None and not (view.registered_commands or view.registered_groups):
            return self.commands()  # SUBJECTS is out of date: let click find it, or not
        return view


def command_name(info: Any) -> str:
    """A registered command's name, as typer names it."""
    return str(info.name or typer.main.get_command_name(info.callback.__name__))


def invoked_command(args: Sequence[str] | None) -> str | None:
    """The command a command line surely invokes: the first word after the global options.
    None for anything else (--help, --version, completion, no command, an unknown one)."""
    word = _after_global_options(args)
    if word is None or word.startswith("-"):
        return None
    return word if any(word in names for names in SUBJECTS.values()) else None


def asks_version(args: Sequence[str] | None) -> bool:
    """Whether a command line is `--version` after the global options: an eager option, so
    click prints the version before it looks at anything after it (a command among them),
    and no command needs building. (`--help --version` lists the commands.)"""
    return _after_global_options(args) == "--version"


def _after_global_options(args: Sequence[str] | None) -> str | None:
    """The first word of a command line after --config, --db, --debug and --no-pager; None
    when there is none, or during shell completion (which needs every command)."""
    if f"_{PROG.upper()}_COMPLETE" in os.environ:
        return None
    words = list(sys.argv[1:] if args is None else args)
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("--config", "--db"):
            i += 2
        elif word in ("--debug", "--no-pager") or word.startswith(("--config=", "--db=")):
            i += 1
        else:
            return word
    return None


app = RootApp(
    name=PROG,
    cls=Group,
    help="Listen to what people say about your product, from the terminal.",
    epilog="Start with 'mentionwatch demo'; 'mentionwatch COMMAND -h' shows examples.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


class _State:
    def __init__(self) -> None:
        self.config_path: Path | None = None
        self.db_path: Path | str | None = None  # --db: a file, or a postgresql:// URL
        self.debug = False
        self.pager = True
        self.config: Config | None = None
        self.store: Store | None = None
        self.warned: set[str] = set()


state = _State()


def say(message: str) -> None:
    """Talk (progress, warnings, errors) goes to stderr, inert and scrubbed of every secret."""
    from mentionwatch.text import inert

    sys.stdout.flush()  # keep talk and data in order when both go to one terminal or file
    print(inert(message), file=sys.stderr)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    raise UsageError(message, code)


def load_config(required: bool = False) -> "Config":
    """The config, read once per run (option validation and the command share it)."""
    from mentionwatch import config

    if state.config is None or (required and state.config.path is None):
        state.config = config.load(state.config_path, state.db_path, required=required)
        for warning in state.config.warnings:
            if warning not in state.warned:
                state.warned.add(warning)
                say(warning)
    return state.config


def open_store(cfg: "Config", create: bool = False, readonly: bool = False) -> "Store":
    """The database; only `init` and `poll` create it, so reading a database that is not
    there says so instead of leaving an empty file (and folders) behind. `readonly` is for
    commands that only read: a read-only file or mount works."""
    from mentionwatch.store import Store, database_exists

    cached = state.store
    if cached is not None and cached.location == cfg.database and (readonly or not cached.readonly):
        return cached
    if not create and not database_exists(cfg.database):
        raise StoreError(
            f"no database at {cfg.db_path} yet: run 'mentionwatch poll' to fetch mentions"
            " (or 'mentionwatch demo --serve' to try one), or pass --db PATH",
            EXIT_USAGE,
        )
    try:
        state.store = Store(cfg.database, readonly=readonly)
    except (sqlite3.DatabaseError, OSError) as exc:
        raise StoreError(
            f"cannot open the database {cfg.db_path}: {exc}; pass --db PATH for another one",
            EXIT_USAGE,
        ) from None
    return state.store


def _console(**options: Any) -> "Console":
    """A rich Console whose reader may go away (`| head`, quitting the pager): rich would
    exit 1 then; main() treats it as success."""
    from rich.console import Console

    class PipedConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return PipedConsole(highlight=False, emoji=False, markup=False, **options)


def stdout_console(fmt: str = "rich") -> "Console":
    plain = fmt == "plain" or os.environ.get("NO_COLOR")
    console = _console(no_color=bool(plain))
    if not console.is_terminal:
        console.width = 160  # a pipe or file has no width; keep tables on whole lines
    return console


@contextmanager
def paged_console() -> Iterator["Console"]:
    """A console for long human output: on a terminal, more than a screenful goes through
    the pager ($MENTIONWATCH_PAGER, $PAGER or less), as git and gh do; never in a pipe."""
    console = stdout_console()
    if not (state.pager and sys.stdout.isatty() and console.is_terminal):
        yield console
        return
    from mentionwatch.pager import Pager, pager_argv

    argv = pager_argv(os.environ)
    if argv is None:
        yield console
        return
    pager = Pager(argv, console.height, sys.stdout)
    paged = _console(file=cast("IO[str]", pager), force_terminal=True, width=console.width,
                     height=console.height, no_color=console.no_color)  # fmt: skip
    try:
        yield paged
    finally:
        pager.close()


# Valid values: one definition each, here or in the module that owns them.


def source_names(ctx: click.Context | None = None) -> list[str]:
    from mentionwatch.sources import registry

    return list(registry())


def _root_paths(ctx: click.Context | None) -> tuple[Path | None, Path | str | None]:
    """--config and --db: from the parsed group options (during shell completion the group
    callback does not run) or from the state the callback set."""
    if ctx is not None:
        params = ctx.find_root().params
        config, db = params.get("config"), params.get("db")
        if config or db:
            return (Path(config) if config else None), (_database_option(db) if db else None)
    return state.config_path, state.db_path


def _database_option(value: str | Path) -> Path | str:
    """--db: a PostgreSQL URL as it is (a Path would fold its //), or a file path."""
    from mentionwatch.engines import is_url

    return str(value) if is_url(str(value)) else Path(value)


def term_names(ctx: click.Context | None = None, stored: bool = True) -> list[str]:
    """The configured terms, and (with `stored`) the terms of stored mentions."""
    state.config_path, state.db_path = _root_paths(ctx)
    cfg = load_config()
    names = [t.name for t in cfg.terms]
    if stored and _exists(cfg):
        names += open_store(cfg, readonly=True).term_names()
    return list(dict.fromkeys(names))


def _exists(cfg: "Config") -> bool:
    from mentionwatch.store import database_exists

    return database_exists(cfg.database)


def configured_term_names(ctx: click.Context | None = None) -> list[str]:
    return term_names(ctx, stored=False)


def closest(value: str, choices: Sequence[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(value.casefold(), [c.casefold() for c in choices], 1, 0.6)
    if not found:
        return None
    return next(c for c in choices if c.casefold() == found[0])


class Choice(ParamType):
    """A name from a list of valid values, matched case-insensitively.

    The error names the valid values (and the closest one), `--help` lists them, and shell
    completion offers them. `values` may be a function of the click context, so lists that
    cost something to build (sources, term names) are built only when an option is used.
    """

    name = "choice"

    def __init__(
        self,
        values: Sequence[str] | Callable[[click.Context | None], Sequence[str]],
        what: str,
        listed_as: str = "one of",
    ) -> None:
        self._values = values
        self.what = what
        self.listed_as = listed_as

    def values(self, ctx: click.Context | None = None) -> list[str]:
        return list(self._values(ctx) if callable(self._values) else self._values)

    def describe(self, ctx: click.Context | None = None) -> str:
        try:
            values = self.values(ctx)
        except MentionwatchError:  # a broken config must not break --help
            values = []
        return f"{self.listed_as.capitalize()}: {', '.join(values)}." if values else ""

    def match(self, value: str, values: Sequence[str]) -> str | None:
        if value in values:
            return value
        folded = [v for v in values if v.casefold() == value.casefold()]
        return folded[0] if folded else None

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        values = self.values(ctx)
        found = self.match(value, values)
        if found is not None:
            return found
        hint = closest(value, values)
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        valid = f" ({self.listed_as}: {', '.join(values)})" if values else f" (no {self.what}s)"
        self.fail(f"unknown {self.what} {value!r}{suggestion}{valid}", param, ctx)

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        try:
            values = self.values(ctx)
        except MentionwatchError:
            return []
        start = incomplete.casefold()
        return [CompletionItem(v) for v in values if v.casefold().startswith(start)]


def choice_option(
    flag: str, choice: Choice, help: str, metavar: str, short: str | None = None, **kw: Any
) -> Any:
    """A typer.Option over a Choice: the one way commands declare named values."""
    flags = (flag, short) if short else (flag,)
    return typer.Option(*flags, click_type=choice, metavar=metavar, help=help, **kw)


def _version(value: bool) -> None:
    if value:
        print(f"mentionwatch {__version__}")
        raise typer.Exit()


NoPagerOpt = Annotated[
    bool, typer.Option("--no-pager", help="Print long output directly, without $PAGER.")
]


@app.callback()
def _main(
    config: Annotated[
        Path | None,
        typer.Option("--config", metavar="PATH", help="Config file [env: MENTIONWATCH_CONFIG]."),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="PATH|URL",
            help="Database: a SQLite file, or postgresql://USER@HOST/DB [env: MENTIONWATCH_DB].",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    no_pager: NoPagerOpt = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    if not gc.isenabled():  # paused for start-up by __main__.run: the command starts now
        gc.freeze()
        gc.enable()
    if state.store is not None:  # a run inside a run (the demo) starts afresh
        state.store.close()
    state.__init__()  # type: ignore[misc]
    state.config_path, state.debug = config, debug
    state.db_path = _database_option(db) if db else None
    state.pager = not no_pager


SOURCE = Choice(source_names, "source")
TERM = Choice(term_names, "term", "your terms")
CONFIGURED_TERM = Choice(configured_term_names, "term", "your terms")

# Shared filter options (feed, export; and any command that selects mentions).
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", metavar="WHEN", help="Only newer: 30m, 2h, 3d, 1w or an ISO date."),
]
SourceOpt = Annotated[
    list[str] | None,
    choice_option("--source", SOURCE, "Only from this source; repeat for any of several.",
                  "NAME"),
]  # fmt: skip
TermOpt = Annotated[
    list[str] | None,
    choice_option("--term", TERM, "Only for this term; repeat for any of several.", "TERM"),
]
RelevantOpt = Annotated[
    bool,
    typer.Option("--relevant", help="Only mentions about your product (relevance at least "
                 "0.5; unscored ones too)."),
]  # fmt: skip
SentimentOpt = Annotated[
    list[str] | None,
    choice_option("--sentiment", Choice(SENTIMENTS, "sentiment"),
                  "Only this sentiment; repeat for any of several.", "LABEL"),
]  # fmt: skip
IntentOpt = Annotated[
    list[str] | None,
    choice_option("--intent", Choice(INTENTS, "intent"),
                  "Only mentions with this intent; repeat for any of several.", "INTENT"),
]  # fmt: skip
SearchOpt = Annotated[
    str | None,
    typer.Option(
        "--search",
        "-s",
        metavar="QUERY",
        help='Full text: words, "a phrase", prefix*, a OR b, a NOT b, -word, '
        "author:NAME, title:WORD.",
    ),
]


def _status_option(default: str) -> Any:
    return choice_option("--status", Choice(STATUS_CHOICES, "status"),
                         f"Only this state (default: {default}); repeat for any of several.",
                         "STATE")  # fmt: skip


OpenStatusOpt = Annotated[list[str] | None, _status_option("open")]
AllStatusOpt = Annotated[list[str] | None, _status_option("all")]


def build_filters(
    since: str | None,
    sources: Sequence[str] | None,
    terms: Sequence[str] | None,
    sentiments: Sequence[str] | None,
    statuses: Sequence[str] | None,
    search: str | None,
    intents: Sequence[str] | None = None,
    default_status: str = "open",
    relevant: bool = False,
) -> "Filters":
    """Filters from validated options; each list means "any of", `all` every status."""
    from mentionwatch.models import Filters, parse_since

    chosen = tuple(dict.fromkeys(statuses or (default_status,)))
    try:
        since_dt = parse_since(since) if since else None
    except ValueError as exc:
        fail(f"--since: {exc}")
    if search is not None:
        from mentionwatch.search import check_search

        check_search(search)
    min_relevance = None
    if relevant:  # relevance.py is loaded for --relevant only
        from mentionwatch.relevance import THRESHOLD

        min_relevance = THRESHOLD
    return Filters(
        since=since_dt,
        sources=tuple(dict.fromkeys(sources or ())),
        terms=tuple(dict.fromkeys(terms or ())),
        sentiments=tuple(dict.fromkeys(sentiments or ())),
        statuses=() if "all" in chosen else chosen,
        search=search,
        intents=tuple(dict.fromkeys(intents or ())),
        min_relevance=min_relevance,
    )


def resolve(store: "Store", refs: list[str]) -> list[int]:
    from mentionwatch.store import UnknownMention

    if refs == ["-"]:
        refs = [line for line in sys.stdin.read().split() if line]
        if not refs:
            fail("no IDs on standard input")
    try:
        return store.resolve(refs)
    except UnknownMention as exc:
        fail(f"unknown mention ID or key: {exc} (see 'mentionwatch feed --status all')")


def _usage_line(exc: click.ClickException) -> str:
    """A usage error as one line: what is wrong, and where the examples are."""
    ctx = getattr(exc, "ctx", None)
    param = exc.param if isinstance(exc, BadParameter) else None
    listed = param is not None and isinstance(param.type, Choice)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None and not listed else ""
    return f"mentionwatch: {exc.format_message()}{where}"


def exit_now(code: int) -> NoReturn:
    """End at once, leaving alert senders inside their requests (delivery.Dispatcher.
    stranded): Python would wait for them at exit (Apprise sends from a concurrent.futures
    pool, whose threads are joined then) for as long as a service trickles its answer.
    Everything is saved and marked by then."""
    if state.store is not None:
        state.store.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    try:
        code = _run()
    finally:
        # Closed here rather than whenever the interpreter frees it (the process freezes what
        # is alive at exit, __main__.run): SQLite then folds its -wal file back and removes it.
        if state.store is not None:
            state.store.close()
    sys.exit(code)


def _run() -> int:
    """The command line's exit code, with every error said as one line on stderr."""
    code = EXIT_OK
    try:
        code = app(prog_name=PROG, standalone_mode=False) or EXIT_OK
    except typer.Exit as exc:
        code = exc.exit_code
    except SystemExit as exc:
        # typer answers a closed pipe (`| head`) by wrapping stdout and exiting 1; the reader
        # going away is not an error for a data command, and scripts with pipefail rely on 0.
        if type(sys.stdout).__name__ != "PacifyFlushWrapper":
            raise
        _drop_stdout()
        code = EXIT_OK if exc.code in (None, 1) else int(exc.code or EXIT_FAILED)
    except (typer.Abort, KeyboardInterrupt):
        say(INTERRUPTED)
        code = EXIT_INTERRUPTED
    except click.ClickException as exc:  # usage: unknown option, bad value, missing argument
        say(_usage_line(exc))
        code = exc.exit_code
    except typer.TyperException as exc:
        say(f"mentionwatch: {exc}")
        code = EXIT_USAGE
    except MentionwatchError as exc:
        say(f"mentionwatch: {exc.prefix}{exc}")
        code = exc.code
    except sqlite3.OperationalError as exc:  # e.g. locked by a long write elsewhere
        path = state.store.label if state.store else state.db_path or Path("the database")
        if "readonly" in str(exc):
            from mentionwatch.store import read_only_message

            say(f"mentionwatch: {read_only_message(path)}")
            code = EXIT_USAGE
        else:
            say(f"mentionwatch: database error on {path}: {exc}; try again")
            code = EXIT_FAILED
    except BrokenPipeError:
        # The reader of a pipe went away (`| head`): not an error for a data command.
        _drop_stdout()
        code = EXIT_OK
    except Exception as exc:
        if state.debug:
            from mentionwatch.scrub import print_traceback

            print_traceback()  # scrubbed of secrets, like every other line
        else:
            say(f"mentionwatch: unexpected error: {type(exc).__name__}: {exc} (rerun with --debug)")
        code = EXIT_FAILED
    return code


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the final flush has nowhere to fail."""
    with contextlib.suppress(OSError, AttributeError, ValueError):  # stdout already gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
