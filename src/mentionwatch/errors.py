"""The exit codes and the one exception tree every module raises from.

A `MentionwatchError` is a problem the user should read: one line, no secrets, its exit code
attached. `cli.main` catches it once and prints it; nothing else formats errors.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# What a run stopped by Ctrl-C or SIGTERM says (and exits EXIT_INTERRUPTED), wherever it stopped.
INTERRUPTED = "mentionwatch: interrupted"


class MentionwatchError(Exception):
    """Base of every error meant for the user; `code` is the process exit code."""

    code: int = EXIT_FAILED
    prefix: str = ""  # printed before the message, e.g. "config error: "

    def __init__(self, message: str, code: int | None = None) -> None:
        # The one place an error message is made: platform error bodies and echoed
        # credentials inside it are made inert and scrubbed before anyone prints or stores it.
        from mentionwatch.text import inert

        super().__init__(inert(message))
        if code is not None:
            self.code = code


class UsageError(MentionwatchError):
    """Bad usage: an unknown option value, ID, term or source. Exit 2."""

    code = EXIT_USAGE


class ConfigError(UsageError):
    """The config cannot be used; the message names the file, line and key."""

    prefix = "config error: "


class SourceError(MentionwatchError):
    """A source failed in a way the user should read: one line, no secrets, no traceback."""


class StoreError(MentionwatchError):
    """The database cannot be opened or written (locked, read-only, not a database)."""
