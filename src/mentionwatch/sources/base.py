"""The interface every source implements.

A *searching* source asks the platform once per term; a *streaming* one reads a feed or
timeline once per poll and lets the local matcher find every term in it. Both turn platform
items into `Mention`s and say which cursor to store once a page is saved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, Protocol

from mentionwatch.http import SourceError
from mentionwatch.models import Job, Mention, Option, Page, Term, ThreadPost, utcnow
from mentionwatch.sources import common


@dataclass(frozen=True, slots=True)
class Posted:
    """A reply the platform accepted."""

    remote_id: str
    url: str | None = None


if TYPE_CHECKING:
    from mentionwatch.config import PollSettings, SourceSettings
    from mentionwatch.http import Http
    from mentionwatch.oauth import Spec


class State(Protocol):
    """Small persistent key/value space of one source (tokens, sessions), kept in the database."""

    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str | None) -> None: ...


class Source:
    name: ClassVar[str]
    default_base_url: ClassVar[str | None] = None
    options: ClassVar[dict[str, Option]] = {}
    # Keys that must be set before the source can poll, as alternatives: any one group of
    # keys, all set, is enough (e.g. a username and password, or a client id and secret).
    required: ClassVar[tuple[tuple[str, ...], ...]] = ()
    # Replies: the longest text the platform accepts (None: no reply API, or no known limit).
    reply_limit: int | None = None
    can_reply: ClassVar[bool] = False
    # Complete capture (sources/common.py): how far before the newest item seen each poll
    # reads again, for items the platform indexes late; and how many pages with new items
    # one search reads per poll before the rest waits, as a gap, for the next poll.
    overlap: ClassVar[float] = 600.0
    max_pages: ClassVar[int] = 10
    # The shortest interval `watch` uses unless the config sets this source's own `interval`.
    default_interval: ClassVar[float | None] = None
    # Private messages (`reply --private`: take it private) where the platform has them.
    can_message: ClassVar[bool] = False
    message_limit: int | None = None
    # How many private messages one mention may get (Meta's private reply: one); None: any.
    messages_per_mention: ClassVar[int | None] = None
    # Said plainly by `reply --private` where there are none, with what to do instead.
    no_messages: ClassVar[str] = (
        "has no private messages in its API: reply in public, or reach them another way"
    )
    # How `mentionwatch auth NAME` obtains a user token (oauth.py), for sources that act as a
    # user; None: the source needs no authorization flow.
    oauth: ClassVar[Spec | None] = None

    def __init__(
        self, settings: SourceSettings, http: Http, state: State, poll: PollSettings
    ) -> None:
        self.settings = settings
        self.http = http
        self.state = state
        self.poll_settings = poll
        self.base_url = settings.base_url or self.default_base_url or ""

    def missing_credentials(self) -> str | None:
        """A message naming the keys to set, or None when the source can poll."""
        if not self.required or any(
            all(self.settings.get(k) for k in group) for group in self.required
        ):
            return None
        wanted = " or ".join(
            " and ".join(f"sources.{self.name}.{k}" for k in group) for group in self.required
        )
        return f"{self.name}: missing credentials: set {wanted} in the config"

    def jobs(self, terms: Sequence[Term]) -> list[Job]:
        """One job per term by default (searching sources)."""
        return [Job(self.name, t.name, t) for t in terms if t.applies_to(self.name)]

    def owned_jobs(self, terms: Sequence[Term], scopes: Sequence[str]) -> list[Job]:
        """Jobs that read the founder's own page or account (Job.owned), when a term applies
        here at all: without one, what they find could be filed under none."""
        if not any(t.applies_to(self.name) for t in terms):
            return []
        return [Job(self.name, scope, owned=True) for scope in scopes]

    def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        raise NotImplementedError

    def first_since(self) -> datetime:
        """Where a term's first poll starts."""
        return utcnow() - timedelta(days=self.poll_settings.lookback_days)

    def walk(
        self, searches: Sequence[common.Search], cursor: str | None, overlap: float | None = None
    ) -> AsyncIterator[Page]:
        """The pages of a job's searches, each walked back to what the cursor covers."""
        return common.capture(
            searches, cursor, first_since=self.first_since().timestamp(),
            overlap=self.overlap if overlap is None else overlap, max_pages=self.max_pages,
            legacy=self.legacy_mark,
        )  # fmt: skip

    def legacy_mark(self, cursor: str) -> float | None:
        """The time a cursor of an earlier release stood at (a bare time, or JSON)."""
        return common.legacy_mark(cursor)

    def credentials(self) -> str | None:
        """What `sources` says about this source's credentials, when the generic line (set,
        missing, optional) would mislead; never a value."""
        return None

    def usage(self) -> str | None:
        """What the platform's quota or budget has left, from what the last polls recorded
        (no request): one line for `sources`, or None when the source keeps no count."""
        return None

    async def check(self) -> str:
        """One cheap (authenticated, where the source has auth) call; a line saying what works.

        Raises SourceError with the reason when it does not.
        """
        raise NotImplementedError

    async def thread(self, mention: Mention) -> list[ThreadPost]:
        """The posts this mention replies to (its parent, and the thread's root when that is
        another post), fetched from the platform; [] when it starts a thread."""
        return []

    def reply_link(self, mention: Mention) -> str | None:
        """The web page where a person replies by hand."""
        return mention.reply_url or mention.url

    def reply_length(self, text: str) -> int:
        """Length as the platform counts it against reply_limit."""
        return len(text)

    def reply_problem(self, mention: Mention) -> str | None:
        """Why a reply to this mention cannot be posted (missing write credentials…), or None."""
        return None

    def replies_by_api(self, mention: Mention) -> bool:
        """Whether this mention can be answered through the API; False sends the user to its
        page (a platform may allow replies to some items and not others)."""
        return self.can_reply

    async def reply(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        """Post `text` as a reply to `mention`; raise SourceError with the platform's reason.

        `idempotency_key` is stable across retries of the same reply: sources send it where
        the platform supports one (Mastodon's Idempotency-Key).
        """
        problem = self.reply_problem(mention)
        if problem:
            raise SourceError(problem)
        return await self.post_reply(mention, text, idempotency_key)

    async def post_reply(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        """The platform's write call, once reply_problem() found nothing in the way."""
        raise NotImplementedError

    async def find_reply(self, mention: Mention, text: str) -> Posted | None:
        """After a timeout, look on the platform for a reply of ours with this text, so a retry
        never posts twice. None: not found (safe to post)."""
        return None

    # Private messages

    def message_length(self, text: str) -> int:
        """Length as the platform counts it against message_limit."""
        return len(text)

    def message_where(self, mention: Mention) -> str:
        """Who gets a private message about this mention, and how, in a few words."""
        return f"a private message to {mention.author or 'its author'} on {self.name}"

    def message_problem(self, mention: Mention) -> str | None:
        """Why this mention's author cannot be messaged privately (credentials, a closed
        window…), or None."""
        return None

    async def send_message(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        """Send `text` privately to the mention's author; SourceError with the reason."""
        problem = self.message_problem(mention)
        if problem:
            raise SourceError(problem)
        return await self.post_message(mention, text, idempotency_key)

    async def post_message(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        """The platform's message call, once message_problem() found nothing in the way."""
        raise NotImplementedError

    async def find_message(self, mention: Mention, text: str) -> Posted | None:
        """After a timeout, look for a private message of ours with this text (find_reply's
        twin). None: not found (safe to send)."""
        return None
