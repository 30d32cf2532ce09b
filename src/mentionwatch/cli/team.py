"""Working as a team on one database: assign, unassign."""

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


@app.command("migrate-to")
def migrate_to(
    target: Annotated[
        str,
        typer.Argument(metavar="URL|FILE",
                       help="Where to copy the database: postgresql://… or a SQLite file."),
    ],
) -> None:  # fmt: skip
    """Copy the whole database to PostgreSQL (or back to a SQLite file).

    Everything comes along: mentions with their IDs, terms, cursors, statuses and
    history, replies, the outbox, what relevance learned. The copy is checked by counting
    every table on both sides; an interrupted copy can be run again. Then point the
    config at it ([storage] url) on every machine.

    \b
    Examples:
      mentionwatch migrate-to postgresql://me@db.example.com/acme
      mentionwatch migrate-to 'postgresql://me@db/agency?schema=acme'
      mentionwatch --db postgresql://me@db/acme migrate-to ~/mentions-backup.db
    """
    from pathlib import Path

    from mentionwatch import engines, moving
    from mentionwatch.cli.app import EXIT_FAILED
    from mentionwatch.store import Store

    cfg = load_config()
    source = open_store(cfg, readonly=True)
    where: Path | str = target if engines.is_url(target) else Path(target).expanduser()
    if (
        not engines.is_url(where)
        and isinstance(source.location, Path)
        and (Path(where).resolve() == source.location.resolve())
    ):
        fail(f"{target} is the database being copied: give another place")
    if engines.is_url(where) and where == source.location:
        fail(f"{engines.label(target)} is the database being copied: give another place")
    destination = Store(where)
    try:
        moved = moving.copy(source, destination,
                            lambda table, rows: say(f"{table}: {rows} row(s)"))  # fmt: skip
    finally:
        destination.close()
    if moved.differing:
        fail(f"copied to {destination.label}, but the counts differ for "
             f"{', '.join(moved.differing)}: run the same command again", EXIT_FAILED)  # fmt: skip
    total = moved.counts.get("mentions", (0, 0))[0]
    say(f"copied {total} mention(s) and {len(moved.counts)} table(s) to {destination.label}; "
        "every table's count matches. Point [storage] at it to use it")  # fmt: skip
