"""Importing archives: import."""

import io
import sys
from pathlib import Path
from typing import IO, Annotated

import typer

from mentionwatch.cli.app import (
    CONFIGURED_TERM,
    EXIT_FAILED,
    Choice,
    app,
    choice_option,
    fail,
    load_config,
    open_store,
    say,
)

IMPORT_FORMATS = ("jsonl", "csv", "twarc")  # importing.FORMATS (kept light for --help)


@app.command(name="import")
def import_file(
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="A .jsonl, .json or .csv file; '-' is stdin.")
    ],
    fmt: Annotated[
        str | None,
        choice_option(
            "--format",
            Choice(IMPORT_FORMATS, "format"),
            "jsonl: mentionwatch's export; csv: the export's columns; twarc: twarc2 "
            "output. Default: from the file.",
            "FORMAT",
            short="-f",
        ),
    ] = None,
    term: Annotated[
        str | None,
        choice_option(
            "--term",
            CONFIGURED_TERM,
            "File every mention under this term (default: the file's terms, else "
            "the configured terms that match).",
            "TERM",
        ),
    ] = None,
) -> None:
    """Import an archive: an export of mentionwatch, a CSV with its columns, twarc2 JSONL.

    Read as a stream and saved in pages, deduplicated by key (importing twice adds nothing),
    tagged like polled mentions when the file has no sentiment; no alerts are sent.

    \b
    Examples:
      mentionwatch import backup.jsonl
      mentionwatch import tweets.jsonl --format twarc --term acme
      mentionwatch export --since 30d | mentionwatch --db other.db import -
    """
    from mentionwatch import importing
    from mentionwatch.render import progress_bar

    cfg = load_config()
    store = open_store(cfg, create=True)
    path = None if file == "-" else Path(file)
    try:
        # Bytes: importing.Lines decodes each line, naming one that is not UTF-8.
        handle = _stdin_bytes() if path is None else path.open("rb")
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    size = path.stat().st_size if path is not None else None
    with handle, progress_bar("importing", enabled=sys.stderr.isatty()) as advance:
        report = importing.run(
            cfg, store, handle, file, fmt, term,
            lambda done: advance(handle.tell() if path is not None else done, size or 0),
        )  # fmt: skip
    for problem in report.problems:
        say(f"error: {problem}")
    if report.bad > len(report.problems):
        say(f"error: {report.bad - len(report.problems)} more line(s) could not be read")
    unmatched = (f"; {report.unmatched} matched no configured term (--term NAME keeps them)"
                 if report.unmatched else "")  # fmt: skip
    say(f"imported {report.new} new mention(s) of {report.read} read{unmatched}")
    if report.bad:
        raise typer.Exit(EXIT_FAILED)


def _stdin_bytes() -> IO[bytes]:
    """Standard input as bytes (a test's stand-in for it may be text)."""
    buffer = getattr(sys.stdin, "buffer", None)
    return buffer if buffer is not None else io.BytesIO(sys.stdin.read().encode())
