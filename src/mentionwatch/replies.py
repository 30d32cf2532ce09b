"""Answering a mention: reply text, length checks, posting once, and the record of replies.

Posting is safe to retry: a reply that got no answer is recorded as `unknown` with its
idempotency key; the next attempt reuses the key (Mastodon honours it) and first asks the
platform whether the reply already exists, so one reply is never posted twice. The same
holds for private messages (`reply --private`), recorded with kind "private"; a template
may pair a public reply with a private follow-up, sent as two such steps.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mentionwatch.config import Config
from mentionwatch.errors import MentionwatchError
from mentionwatch.http import SourceError, Uncertain, open_client
from mentionwatch.models import Mention, Template, ThreadPost
from mentionwatch.sources import registry
from mentionwatch.sources.base import Posted, Source
from mentionwatch.store import Store
from mentionwatch.text import inert, inert_fields


class ReplyError(MentionwatchError):
    """The reply was not posted; `code` is the exit code (1 refused or failed, 2 bad usage)."""


@dataclass(frozen=True)
class Step:
    """One message of a reply: its text, and whether it goes in public or privately."""

    kind: str  # one of models.REPLY_KINDS
    text: str

    @property
    def private(self) -> bool:
        return self.kind == "private"


def step_kinds(template: str | None, templates: Mapping[str, Template], private: bool) -> list[str]:
    """What a reply sends, in order: "public", "private", or a template's public reply and
    then its private follow-up. `private` sends one private message (a template's private
    text, or its only one)."""
    if template and not private:
        chosen = _template(template, templates)
        return [k for k, text in (("public", chosen.public), ("private", chosen.private)) if text]
    return ["private" if private else "public"]


def reply_steps(
    mention: Mention,
    text: str | None,
    template: str | None,
    templates: Mapping[str, Template],
    interactive: bool,
    private: bool = False,
    draft: Path | None = None,
) -> list[Step]:
    """The texts of step_kinds(): TEXT as given, from the template, or written in $EDITOR on
    a terminal. Made inert like any text: a pasted escape sequence or bidi override is never
    sent."""
    if text is not None and template:
        raise ReplyError("give either TEXT or --template, not both", code=2)
    kinds = step_kinds(template, templates, private)
    if template:
        chosen = _template(template, templates)
        texts = {"public": chosen.public, "private": chosen.private or chosen.public}
        return [Step(k, inert(fill_template(template, texts[k] or "", mention))) for k in kinds]
    if text is not None:
        return [Step(kinds[0], inert(text))]
    if not interactive:
        raise ReplyError(
            "no reply text: give TEXT or --template NAME (or run on a terminal for $EDITOR)", 2
        )
    return [Step(kinds[0], inert(compose_in_editor(mention, draft)))]


def _template(name: str, templates: Mapping[str, Template]) -> Template:
    if name not in templates:
        known = ", ".join(templates) or "none"
        raise ReplyError(f"no template {name!r} in [templates] (defined: {known})", code=2)
    return templates[name]


def fill_template(name: str, text: str, mention: Mention) -> str:
    """A template's text with {author}, {term} and {url} filled from the mention."""
    values = {
        "author": mention.author_name or mention.author or "there",
        "term": mention.terms[0] if mention.terms else "",
        "url": mention.url or "",
    }
    try:
        return text.format_map(values)
    except (KeyError, ValueError, IndexError) as exc:
        raise ReplyError(
            f"template {name!r}: unknown placeholder {exc}; use {{author}}, {{term}} or {{url}}",
            code=2,
        ) from None


@dataclass
class Target:
    """Where one step of a reply goes: a platform's API, or a web page for a person."""

    mention: Mention
    source: Source | None  # None: no reply API here; use `link`
    link: str | None
    private: bool = False

    @property
    def kind(self) -> str:
        return "private" if self.private else "public"

    @property
    def limit(self) -> int | None:
        if self.source is None:
            return None
        return self.source.message_limit if self.private else self.source.reply_limit

    def length(self, text: str) -> int:
        if self.source is None:
            return len(text)
        return self.source.message_length(text) if self.private else self.source.reply_length(text)

    def where(self) -> str:
        """Who gets it, how: for previews and dry runs."""
        if self.source is None:
            return "to paste on the reply page"
        if self.private:
            return self.source.message_where(self.mention)
        return f"to post on {self.mention.source}"

    def check_length(self, text: str) -> None:
        """Bad input, found before anything is sent: exit 2, as for an empty reply (exit 1 is
        for a reply the platform refused or that failed)."""
        if not text.strip():
            raise ReplyError("the reply is empty; nothing posted", code=2)
        if self.limit is not None and self.length(text) > self.limit:
            what = "private message" if self.private else "reply"
            raise ReplyError(
                f"the {what} is {self.length(text)} characters; {self.mention.source} allows "
                f"{self.limit}. Shorten it; nothing was sent",
                code=2,
            )

    async def send(self, text: str, key: str) -> Posted:
        assert self.source is not None
        if self.private:
            return await self.source.send_message(self.mention, text, key)
        return await self.source.reply(self.mention, text, key)

    async def find(self, text: str) -> Posted | None:
        assert self.source is not None
        if self.private:
            return await self.source.find_message(self.mention, text)
        return await self.source.find_reply(self.mention, text)


def target(
    config: Config,
    store: Store,
    mention: Mention,
    client: object = None,
    private: bool = False,
    text: str | None = None,
) -> Target:
    """Where a reply to `mention` goes; ReplyError (exit 2) when it cannot go anywhere: no
    write credentials, or, privately, no private messages on that platform (or none left:
    a message already sent with this `text` is a retry, not another one)."""
    from mentionwatch.poller import build_source

    cls = registry().get(mention.source)
    settings = config.sources.get(mention.source)
    if private:
        return _private_target(config, store, mention, client, text)
    if cls is None or not cls.can_reply or settings is None:
        link = mention.reply_url or mention.url
        return Target(mention, None, link)
    source = build_source(settings, config, store, client)
    if not source.replies_by_api(mention):
        return Target(mention, None, source.reply_link(mention))
    problem = source.reply_problem(mention)
    if problem:
        raise ReplyError(f"{problem}; or reply by hand at {source.reply_link(mention)}", code=2)
    return Target(mention, source, source.reply_link(mention))


def _private_target(
    config: Config, store: Store, mention: Mention, client: object, text: str | None
) -> Target:
    from mentionwatch.poller import build_source

    cls = registry().get(mention.source)
    if cls is None or not cls.can_message:
        reason = cls.no_messages if cls else "is not a known source"
        raise ReplyError(f"cannot send a private message: {mention.source} {reason}", code=2)
    settings = config.sources.get(mention.source)
    if settings is None:
        raise ReplyError(
            f"{mention.source} is not configured, so no private message can be sent: add "
            f"[sources.{mention.source}] to the config",
            code=2,
        )
    source = build_source(settings, config, store, client)
    problem = source.message_problem(mention)
    if problem is None and cls.messages_per_mention is not None:
        sent = [r for r in store.replies(mention.id or 0)
                if r["kind"] == "private" and r["outcome"] == "posted"]  # fmt: skip
        if len(sent) >= cls.messages_per_mention and all(r["text"] != text for r in sent):
            problem = (
                f"{mention.source}: {mention.author or 'this author'} already got the private "
                f"message the platform allows per item ({sent[0]['attempted_at']}); go on in "
                "your inbox once they answer"
            )
    if problem:
        raise ReplyError(problem, code=2)
    return Target(mention, source, source.reply_link(mention), private=True)


def thread(config: Config, store: Store, mention: Mention) -> list[ThreadPost]:
    """What the mention replies to: fetched from its platform once, then kept with it.

    Raises SourceError when the platform cannot be asked (not configured, offline, refused).
    """
    from dataclasses import asdict

    from mentionwatch.poller import build_source

    assert mention.id is not None
    if "thread" in mention.extra:
        return [ThreadPost(**post) for post in mention.extra["thread"]]
    settings = config.sources.get(mention.source)
    if settings is None:
        raise SourceError(f"{mention.source} is not configured, so its thread cannot be read")
    if settings.problem:
        raise SourceError(settings.problem)

    async def run() -> list[ThreadPost]:
        async with open_client(config.poll) as client:
            return await build_source(settings, config, store, client).thread(mention)

    # The boundary: the platform's posts become inert before they are kept or shown.
    posts = [inert_fields(p) for p in asyncio.run(run())]
    if not store.readonly:  # a read-only database just shows it
        store.set_extra(mention.id, "thread", [asdict(p) for p in posts])
    return posts


def already_posted(store: Store, mention: Mention, step: Step) -> dict | None:
    for row in store.replies(mention.id or 0):
        if row["outcome"] == "posted" and row["text"] == step.text and row["kind"] == step.kind:
            return dict(row)
    return None


def post(
    config: Config,
    store: Store,
    mention: Mention,
    step: Step,
    keep_open: bool,
    actor: str | None = None,
) -> Posted:
    """Send one step once (a public reply or a private message); record the attempt (and
    who made it); mark the mention handled when it went out. The caller holds the mention's
    claim (team.claim), so no teammate sends at the same time."""
    assert mention.id is not None
    mention_id = mention.id
    text, kind = step.text, step.kind
    unknown = [r for r in store.replies(mention_id) if r["outcome"] == "unknown"
               and (r["text"], r["kind"]) == (text, kind)]  # fmt: skip
    key = unknown[-1]["idempotency_key"] if unknown else uuid.uuid4().hex
    attempt: list[int] = []

    async def run() -> Posted:
        async with open_client(config.poll) as client:
            where = target(config, store, mention, client, private=step.private, text=text)
            assert where.source is not None
            where.check_length(text)
            if unknown:
                found = await where.find(text)
                if found:
                    return found
            attempt.append(store.add_reply(mention_id, text, "unknown", idempotency_key=key,
                                           kind=kind, actor=actor))  # fmt: skip
            return await where.send(text, key)

    try:
        posted = inert_fields(asyncio.run(run()))  # its id and link come from the platform
    except Uncertain as exc:
        raise ReplyError(
            f"{exc}; run the same command again: it checks before posting, so it never posts twice"
        ) from None
    except SourceError as exc:
        for reply_id in attempt:
            store.update_reply(reply_id, "failed", error=str(exc))
        raise ReplyError(str(exc)) from None
    for row in unknown:
        store.update_reply(row["id"], "superseded")
    if attempt:
        store.update_reply(attempt[0], "posted", remote_id=posted.remote_id, url=posted.url)
    else:  # an earlier attempt that got no answer had in fact been posted
        store.add_reply(mention_id, text, "posted", remote_id=posted.remote_id, url=posted.url,
                        idempotency_key=key, kind=kind, actor=actor)  # fmt: skip
    if not keep_open:
        done = "sent privately" if step.private else "replied"
        store.set_status([mention_id], "handled", note=f"{done}: {posted.url or posted.remote_id}",
                         actor=actor)  # fmt: skip
    return posted


def record_link(
    store: Store, mention: Mention, text: str, link: str | None, actor: str | None = None
) -> None:
    assert mention.id is not None
    store.add_reply(mention.id, text, "link", url=link, actor=actor)


def draft_path(mention: Mention) -> Path:
    """Where a reply written in $EDITOR to this mention is kept until it is posted (in the
    user's data folder, owner-only)."""
    import hashlib

    from platformdirs import user_data_path

    name = re.sub(r"[^A-Za-z0-9._-]+", "_", mention.key)[:60]
    digest = hashlib.sha256(mention.key.encode()).hexdigest()[:8]
    return user_data_path("mentionwatch") / "drafts" / f"{name}-{digest}.txt"


def compose_in_editor(mention: Mention, draft: Path | None = None) -> str:
    """Open $VISUAL/$EDITOR on a file quoting the mention in # comments, like git commit.

    With `draft`, the file is kept there (the caller deletes it once the reply is posted)
    and what an earlier session wrote in it is where the new one starts."""
    import os
    import shlex
    import subprocess
    import tempfile

    from mentionwatch.files import private_dir, write_private

    quoted = "\n".join(f"# {line}" for line in inert(mention.text).splitlines())
    header = (
        f"\n\n# Write your reply to {mention.author or 'this mention'} on {mention.source} above.\n"
        "# Lines starting with # are ignored; an empty reply posts nothing.\n#\n"
        f"# {mention.url or ''}\n{quoted}\n"
    )
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    if draft is None:
        with tempfile.NamedTemporaryFile("w+", suffix=".txt", prefix="mentionwatch-reply-",
                                         delete=False, encoding="utf-8") as handle:  # fmt: skip
            handle.write(header)
            path = handle.name
    else:
        private_dir(draft.parent)
        earlier = read_draft(draft)
        write_private(draft, (earlier + header) if earlier else header)
        path = str(draft)
    try:
        if subprocess.run([*shlex.split(editor), path]).returncode != 0:
            raise ReplyError(f"the editor ({editor}) exited with an error; nothing posted", 2)
        return read_draft(Path(path))
    finally:
        if draft is None:
            os.unlink(path)


def read_draft(path: Path) -> str:
    """The reply in an editor file: every line not starting with #; "" when there is none."""
    if not path.exists():
        return ""
    with path.open(encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for line in handle if not line.startswith("#")]
    return "\n".join(lines).strip()
