"""Answering a mention: reply."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from mentionwatch.cli.app import (
    EXIT_FAILED,
    Choice,
    _root_paths,
    app,
    choice_option,
    fail,
    load_config,
    open_store,
    resolve,
    say,
    stdout_console,
)

if TYPE_CHECKING:
    from mentionwatch.config import Config
    from mentionwatch.models import Mention
    from mentionwatch.replies import Target
    from mentionwatch.store import Store


def template_names(ctx: object = None) -> list[str]:
    from mentionwatch.cli.app import state

    state.config_path, state.db_path = _root_paths(ctx)  # type: ignore[arg-type]
    return list(load_config().templates)


@app.command()
def reply(
    mention: Annotated[
        str | None, typer.Argument(metavar="ID", help="An ID or key (see feed).")
    ] = None,
    text: Annotated[
        str | None, typer.Argument(metavar="TEXT", help="The reply; none opens $EDITOR.")
    ] = None,
    template: Annotated[
        str | None,
        choice_option(
            "--template",
            Choice(template_names, "template", "your templates"),
            "Start from a [templates] entry: {author}, {term}, {url} filled in.",
            "NAME",
            short="-t",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, post nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Post without asking.")] = False,
    keep_open: Annotated[
        bool, typer.Option("--keep-open", help="Do not mark the mention handled.")
    ] = False,
    list_templates: Annotated[
        bool, typer.Option("--list-templates", help="List the reply templates.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Reply even though a teammate is answering or answered it."),
    ] = False,
) -> None:
    """Reply where the mention is, through its API or its page.

    Shows the mention and the reply with the platform's length check, asks, posts, and
    marks the mention handled. Platforms without a reply API (Hacker News, Stack Exchange,
    feeds) get their reply page opened (or printed), and the reply is recorded.

    \b
    Examples:
      mentionwatch reply 42 "Thanks, glad it helps!"
      mentionwatch reply 42 --template help --dry-run
      mentionwatch reply 42 "Thanks!" --yes --keep-open
      mentionwatch reply --list-templates
    """
    from mentionwatch import render, replies

    cfg = load_config()
    if list_templates:
        render.print_templates(stdout_console(), cfg.templates)
        return
    if mention is None:
        fail("give the ID of the mention to reply to (see 'mentionwatch feed')")
    store = open_store(cfg, readonly=dry_run)
    (mention_id,) = resolve(store, [mention])
    m = store.get(mention_id)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if m.echo_of is not None:
        m = _original_first(store, m, interactive)
    where = replies.target(cfg, store, m)
    # Text written in $EDITOR is kept in a draft file until it is posted.
    draft = replies.draft_path(m) if text is None and not template and interactive else None
    sent = False
    try:
        body = replies.reply_text(m, text, template, dict(cfg.templates), interactive, draft)
        sent = _send(store, cfg, m, body, where, dry_run=dry_run, yes=yes, keep_open=keep_open,
                     interactive=interactive, force=force)  # fmt: skip
    finally:
        if draft is not None and (sent or not replies.read_draft(draft)):
            draft.unlink(missing_ok=True)
        elif draft is not None:
            say(f"your draft is kept in {draft}; 'mentionwatch reply {m.id}' opens it again")


def _send(
    store: Store,
    cfg: Config,
    m: Mention,
    body: str,
    where: Target,
    *,
    dry_run: bool,
    yes: bool,
    keep_open: bool,
    interactive: bool,
    force: bool = False,
) -> bool:
    """Preview, confirm and post (or open the reply page); True once the reply went out."""
    from mentionwatch import render, replies, team

    actor = team.me(cfg)
    other = None if force or dry_run else team.answered_by_other(store, m.id or 0, actor)
    if other is not None:
        where_to = other["url"] or other["remote_id"] or "by hand"
        fail(f"{other['actor']} already replied to {m.id} at {other['attempted_at']} "
             f"({render.safe(where_to)}); nothing posted. See 'mentionwatch show {m.id}'; "
             "pass --force to reply too", EXIT_FAILED)  # fmt: skip

    where.check_length(body)
    console = stdout_console()
    render.print_reply_preview(
        console, m, body, where.length(body), where.limit, where.source is None
    )
    if where.source is None:
        if dry_run:
            print(render.safe(where.link or ""))
            say("dry run: nothing recorded")
            return False
        _reply_by_hand(store, m, body, where.link, interactive, actor)
        return True
    if dry_run:
        say("dry run: nothing posted")
        return False
    if replies.already_posted(store, m, body):
        say(f"already replied to {m.id} with this text; nothing posted")
        return True
    if not yes:
        if not sys.stdin.isatty():
            fail("refusing to post without confirmation when not on a terminal: pass --yes")
        if not typer.confirm(f"Post this reply on {m.source}?", default=False):
            fail("not posted", EXIT_FAILED)
    posted = replies.post(cfg, store, m, body, keep_open, actor=actor, force=force)
    print(f"posted: {render.safe(posted.url or posted.remote_id)}")
    if not keep_open:
        say(f"mention {m.id} marked handled")
    return True


def _reply_by_hand(
    store: Store, m: Mention, body: str, link: str | None, open_browser: bool, actor: str
) -> None:
    """Platforms without a reply API: open (on a terminal) or print the reply page; record it."""
    from mentionwatch import replies
    from mentionwatch.render import safe

    if not link:
        fail(f"{m.source} has no reply API and this mention has no link", EXIT_FAILED)
    link = safe(link)
    if open_browser and link.lower().startswith(("https://", "http://")):
        import webbrowser

        webbrowser.open(link)
        say(f"opened {link} in your browser: paste the reply there")
    print(link)
    replies.record_link(store, m, body, link, actor)
    say(f"{m.source} has no reply API; when you have replied: mentionwatch handle {m.id}")


def _original_first(store: Store, m: Mention, interactive: bool) -> Mention:
    """An echo (retweet, quote, cross-post): offer to answer the original instead."""
    assert m.echo_of is not None
    original = store.get(m.echo_of)
    who = f"{original.author or 'someone'} on {original.source}"
    if interactive and typer.confirm(
        f"{m.id} repeats {original.id} by {who}; reply to the original?", default=True
    ):
        return original
    if not interactive:
        say(f"note: {m.id} repeats {original.id} by {who}: 'mentionwatch reply {original.id}' "
            "answers the original")  # fmt: skip
    return m
