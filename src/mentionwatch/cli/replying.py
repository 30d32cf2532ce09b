"""Answering a mention: reply."""

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
    from mentionwatch.replies import Step, Target
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
    private: Annotated[
        bool,
        typer.Option("--private", help="Send a direct/private message instead (where one exists)."),
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

    --private takes it private: an X DM, a Bluesky chat message, a Mastodon direct
    status, a Facebook or Instagram private reply, a Reddit message; platforms without
    one say so. A template with public and private text does both: the public reply,
    then the private message.

    \b
    Examples:
      mentionwatch reply 42 "Thanks, glad it helps!"
      mentionwatch reply 42 --template help --dry-run
      mentionwatch reply 42 "Thanks!" --yes --keep-open
      mentionwatch reply 42 "Could you send me your account email?" --private
      mentionwatch reply 42 --template sorry-then-dm
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
    # Where each step goes is settled before anything is sent (or written in $EDITOR): a
    # template whose private half cannot be delivered here fails before its public half.
    kinds = replies.step_kinds(template, cfg.templates, private)
    editing = text is None and not template
    steps = (
        None if editing else replies.reply_steps(m, text, template, cfg.templates, False, private)
    )
    texts = {step.kind: step.text for step in steps or []}
    targets = {k: replies.target(cfg, store, m, private=k == "private", text=texts.get(k))
               for k in kinds}  # fmt: skip
    # Text written in $EDITOR is kept in a draft file until it is posted.
    draft = replies.draft_path(m) if editing and interactive else None
    sent = False
    try:
        if steps is None:
            steps = replies.reply_steps(m, text, template, cfg.templates, interactive, private,
                                        draft)  # fmt: skip
        plan = [(step, targets[step.kind]) for step in steps]
        sent = _send(store, cfg, m, plan, dry_run=dry_run, yes=yes, keep_open=keep_open,
                     interactive=interactive, force=force)  # fmt: skip
    finally:
        if draft is not None and (sent or not replies.read_draft(draft)):
            draft.unlink(missing_ok=True)
        elif draft is not None:
            say(f"your draft is kept in {draft}; 'mentionwatch reply {m.id}' opens it again")


def _send(
    store: "Store",
    cfg: "Config",
    m: "Mention",
    plan: list[tuple["Step", "Target"]],
    *,
    dry_run: bool,
    yes: bool,
    keep_open: bool,
    interactive: bool,
    force: bool = False,
) -> bool:
    """Preview, confirm and send each step (or open the reply page); True once it all went
    out. A step already sent with the same text is skipped, so a retry finishes the rest.

    On a team, a mention a teammate already answered is not answered again, and while the
    steps go out the mention is claimed, so a teammate replying at the same moment is
    refused (both unless --force)."""
    from mentionwatch import render, replies, team

    actor = team.me(cfg)
    if not (force or dry_run):
        _refuse_if_answered(store, m, actor)

    for step, where in plan:
        where.check_length(step.text)
    console = stdout_console()
    render.print_mention_head(console, m)
    for step, where in plan:
        render.print_reply_text(console, step.text, where.where(), where.length(step.text),
                                where.limit, step.private)  # fmt: skip
    if dry_run:
        for _, where in plan:
            if where.source is None:
                print(render.safe(where.link or ""))
        say("dry run: nothing posted" if any(w.source for _, w in plan) else
            "dry run: nothing recorded")  # fmt: skip
        return False
    todo = []
    for step, where in plan:
        if where.source is not None and replies.already_posted(store, m, step):
            what = "sent this private message to" if step.private else "replied to"
            say(f"already {what} {m.id} with this text; not sent again")
        else:
            todo.append((step, where))
    sending = [step for step, where in todo if where.source is not None]
    if sending and not yes:
        if not sys.stdin.isatty():
            fail("refusing to post without confirmation when not on a terminal: pass --yes")
        if not typer.confirm(_question(m, sending), default=False):
            fail("not posted", EXIT_FAILED)
    held = team.claim(store, m.id or 0, actor, force=force) if sending else None
    try:
        if held is not None and not force:
            # Again, now that the mention is ours: a teammate may have finished a reply
            # between the first look and the claim.
            _refuse_if_answered(store, m, actor)
        for step, where in todo:
            if where.source is None:  # no reply API here: the reply page, by hand
                _reply_by_hand(store, m, step.text, where.link, interactive, actor)
                continue
            # The mention is marked handled once its last step went out.
            posted = replies.post(cfg, store, m, step, keep_open or step is not sending[-1],
                                  actor=actor)  # fmt: skip
            verb = "sent" if step.private else "posted"
            print(f"{verb}: {render.safe(posted.url or posted.remote_id)}")
    finally:
        if held is not None:
            held.release()
    if sending and not keep_open:
        say(f"mention {m.id} marked handled")
    return True


def _refuse_if_answered(store: "Store", m: "Mention", actor: str) -> None:
    """Stop (exit 1, nothing posted) when a teammate already replied to this mention."""
    from mentionwatch import render, team

    other = team.answered_by_other(store, m.id or 0, actor)
    if other is not None:
        where_to = other["url"] or other["remote_id"] or "by hand"
        fail(f"{other['actor']} already replied to {m.id} at {other['attempted_at']} "
             f"({render.safe(where_to)}); nothing posted. See 'mentionwatch show {m.id}'; "
             "pass --force to reply too", EXIT_FAILED)  # fmt: skip


def _question(m: "Mention", steps: list["Step"]) -> str:
    kinds = {s.kind for s in steps}
    if kinds == {"public", "private"}:
        return f"Post this reply and send this private message on {m.source}?"
    if kinds == {"private"}:
        return f"Send this private message on {m.source}?"
    return f"Post this reply on {m.source}?"


def _reply_by_hand(
    store: "Store", m: "Mention", body: str, link: str | None, open_browser: bool, actor: str
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


def _original_first(store: "Store", m: "Mention", interactive: bool) -> "Mention":
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
