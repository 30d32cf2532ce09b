"""The README's command reference, rendered from every command's --help.

README.md holds it between cog markers; `cog -r README.md` regenerates it and
`cog --check README.md` (run by tests/test_docs.py) fails when the two differ.
"""

from pathlib import Path

import typer

from mentionwatch.cli.app import PROG, app, state
from mentionwatch.config import Config

WIDTH = 88


def help_text(*command: str) -> str:
    """`mentionwatch [COMMAND] --help` as a fixed-width terminal would show it, with no
    config (so the user's own term names never reach the docs)."""
    from typer import _click as click

    state.__init__()  # type: ignore[misc]
    state.config = Config(path=None, db_path=Path("/nonexistent/mentions.db"))
    group = typer.main.get_command(app.commands())
    root = click.Context(group, info_name=PROG, terminal_width=WIDTH, max_content_width=WIDTH,
                         help_option_names=["-h", "--help"])  # fmt: skip
    if not command:
        return group.get_help(root)
    sub = group.get_command(root, command[0])  # type: ignore[attr-defined]
    ctx = click.Context(sub, info_name=command[0], parent=root, terminal_width=WIDTH,
                        max_content_width=WIDTH)  # fmt: skip
    return str(sub.get_help(ctx))


def reference() -> str:
    """Markdown: `mentionwatch --help`, then each command's help, in --help's order."""
    group = typer.main.get_command(app.commands())
    names = list(group.commands)  # type: ignore[attr-defined]
    parts = ["```\n$ mentionwatch --help\n" + help_text() + "\n```\n"]
    for name in names:
        parts.append(f"### {PROG} {name}\n\n```\n$ {PROG} {name} --help\n"
                     f"{help_text(name)}\n```\n")  # fmt: skip
    return "\n".join(parts)
