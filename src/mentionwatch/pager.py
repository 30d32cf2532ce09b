"""Long output on a terminal goes through the user's pager, as git and gh do.

The first screenful is held back; only when the output grows past it does the pager start,
so short output prints directly whatever the pager is. Pipes never see a pager (the CLI only
pages when stdout is a terminal).
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Mapping
from typing import IO

# git's defaults: quit when everything fits, pass colours through, leave the screen as is.
_PAGER_ENV = {"LESS": "FRX", "LV": "-c"}


def pager_argv(env: Mapping[str, str]) -> list[str] | None:
    """The pager to run: $MENTIONWATCH_PAGER, then $PAGER, then less; None for no pager
    (set to '' or 'cat', or not installed)."""
    command = env.get("MENTIONWATCH_PAGER", env.get("PAGER", "less"))
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    if not argv or argv == ["cat"] or shutil.which(argv[0]) is None:
        return None
    return argv


class Pager(io.TextIOBase):
    """A text stream that prints directly up to `height` lines, and past that hands
    everything to the pager (started once) and streams the rest into it."""

    def __init__(self, argv: list[str], height: int, out: IO[str]) -> None:
        self.argv = argv
        self.height = max(1, height - 1)  # leave a line for the shell prompt
        self.out = out
        self.held: list[str] = []
        self.lines = 0
        self.process: subprocess.Popen[str] | None = None
        self.reader_gone = False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.process is not None:
            self._send(text)
            return len(text)
        self.held.append(text)
        self.lines += text.count("\n")
        if self.lines > self.height:
            self._start()
        return len(text)

    def flush(self) -> None:
        if self.process is None:
            return
        try:
            if self.process.stdin and not self.reader_gone:
                self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            self.reader_gone = True

    def _start(self) -> None:
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                env={**_PAGER_ENV, **os.environ},
            )
        except OSError:  # the pager cannot start: print directly instead
            self.argv = []
            self.height = 1 << 62
            return
        # Ctrl-C is the pager's to handle (less ignores it); this process waits for it. A
        # SIGTERM (kill) ends this process at once, as it always did, instead of the Ctrl-C
        # it stands for elsewhere (cli.app), which would wait for the pager too.
        self.previous_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.previous_sigterm = signal.signal(signal.SIGTERM, signal.SIG_DFL)
        held, self.held = "".join(self.held), []
        self._send(held)

    def _send(self, text: str) -> None:
        if self.reader_gone or self.process is None or self.process.stdin is None:
            return
        try:
            self.process.stdin.write(text)
        except (BrokenPipeError, OSError):  # the user quit the pager early: not an error
            self.reader_gone = True

    def close(self) -> None:
        if self.process is None:
            self.out.write("".join(self.held))
            self.out.flush()
            self.held = []
        else:
            try:
                if self.process.stdin:
                    self.process.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            self.process.wait()
            signal.signal(signal.SIGINT, self.previous_sigint)
            signal.signal(signal.SIGTERM, self.previous_sigterm)
            self.process = None
        super().close()
