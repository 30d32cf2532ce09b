"""Working as a team on one database: assign, unassign."""

from __future__ import annotations

from typing import Annotated

import typer

from mentionwatch.cli.app import app, fail, load_config, open_store, resolve, say


def _assign(refs: list[str], name: str | None) -> None:
    from mentionwatch import team

    cfg = load_config()
    store = open_store(cfg)
    ids = resolve(store, refs)
    changed = store.assign(ids, name, actor=team.me(cfg))
    to = f"assigned to {name}" if name else "unassigned"
    say(f"{changed} of {len(ids)} mention(s) {to}")


@app.command()
def assign(
    args: Annotated[
        list[str],
        typer.Argument(metavar="ID... NAME",
                       help="IDs or keys ('-': from stdin), then who answers them."),
    ],
) -> None:  # fmt: skip
    """Assign mentions to a teammate: the one who answers them.

    NAME is how they act (MENTIONWATCH_USER or [me] name); 'me' is you. Their
    'feed --mine' lists them; 'show' tells who assigned what.

    \b
    Examples:
      mentionwatch assign 42 43 alice
      mentionwatch assign 42 me
      mentionwatch feed --unassigned --sentiment negative --format ids | mentionwatch assign - bob
    """
    from mentionwatch import team

    if len(args) < 2:
        fail("give the mention IDs, then the name to assign them to: assign 42 43 alice")
    *refs, name = args
    name = team.clean_name(name)
    if not name:
        fail("the name to assign to is empty: give a teammate's name")
    if name == "me":
        name = team.me(load_config())
    _assign(refs, name)


@app.command()
def unassign(
    mentions: Annotated[
        list[str], typer.Argument(metavar="ID...", help="IDs or keys; '-' reads them from stdin.")
    ],
) -> None:
    """Assign mentions to nobody again.

    \b
    Examples:
      mentionwatch unassign 42
      mentionwatch feed --mine --format ids | mentionwatch unassign -
    """
    _assign(mentions, None)
