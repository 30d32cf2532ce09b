"""Plain data shared by every layer: no I/O here."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

STATUSES = ("open", "handled", "ignored")
SENTIMENTS = ("positive", "neutral", "negative")
INTENTS = ("question", "complaint", "praise", "request")
# How a reply reaches its author: in public where the mention is, or as a direct/private
# message (`reply --private`). Stored in replies.kind.
REPLY_KINDS = ("public", "private")
# Analyzers `[sentiment] analyzer` may name (sentiment.py builds them; "llm" is configured in
# [sentiment.llm] and built by tagging.py).
ANALYZER_NAMES = ("mentionwatch", "textblob", "vader", "llm")


@dataclass(frozen=True, slots=True)
class Term:
    """A search term from the config: a label and a query in the term language."""

    name: str
    query: str
    sources: tuple[str, ...] | None = None  # None: every enabled source
    about: str | None = None  # what the product is, in words (relevance, LLM prompt)
    not_about: tuple[str, ...] = ()  # words that mean another thing of the same name

    def applies_to(self, source: str) -> bool:
        return self.sources is None or source in self.sources


def column(default: Any = None, *, kind: str = "value", record: bool = True,
           factory: Callable[[], Any] | None = None, required: bool = False) -> Any:  # fmt: skip
    """A Mention field stored as a `mentions` column of the same name (store.py reads and
    writes every such field; a new one needs only its migration). `kind` says how it is
    stored: "value" as it is, "time" as ISO 8601 UTC text, "json" as JSON text. `record`:
    also a key of the JSONL record (render.record), after the keys design.md lists."""
    meta = {"column": kind, "record": record}
    if required:
        return field(metadata=meta)
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def derived(default: Any = None, *, record: bool = False,
            factory: Callable[[], Any] | None = None) -> Any:  # fmt: skip
    """A Mention field that is not a `mentions` column (kept elsewhere, or not kept)."""
    meta = {"record": record}
    if factory is not None:
        return field(default_factory=factory, metadata=meta, repr=record)
    return field(default=default, metadata=meta, repr=record)


@dataclass(slots=True)
class Mention:
    """One post, comment, issue or feed entry that mentions a term.

    Every field is declared with `column()` (a column of `mentions`, also read back and, with
    record=True, exported) or `derived()` (kept elsewhere or not at all): the store, the
    JSONL/CSV record and the import read these declarations, so a new column is one
    migration plus one line here.

    `extra` keeps platform details needed later (reply refs, parent ids) and is stored as JSON.
    A comment (`extra["kind"] == "comment"`) may carry its thread's title as `title`: context,
    not words of its author, so it is neither matched nor scored.
    """

    source: str = column(required=True)
    native_id: str = column(record=False, required=True)
    text: str = column(required=True)
    created_at: datetime = column(kind="time", required=True)
    url: str | None = column()
    author: str | None = column()
    author_name: str | None = column()
    title: str | None = column()
    reach: int | None = column()
    reply_url: str | None = column()
    extra: dict[str, Any] = column(kind="json", record=False, factory=dict)
    terms: list[str] = derived(record=True, factory=list)  # the mention_terms table
    sentiment: str | None = column()
    polarity: float | None = column()
    intents: tuple[str, ...] = column((), kind="json")
    relevance: float | None = column()  # 0..1: about the term's product (relevance.py)
    # the LLM analyzer's own judgement, when it gave one
    llm_relevance: float | None = column(record=False)
    # What the local matcher reads; None means title, text and url.
    searchable: str | None = derived()
    # Set once stored:
    id: int | None = derived(record=True)  # the rowid
    status: str = column("open")
    fetched_at: datetime | None = column(kind="time")
    echo_of: int | None = column()  # the id of the original this post repeats (echoes.py)
    assignee: str | None = column()  # who on the team answers it (team.py); None: nobody

    @property
    def key(self) -> str:
        return f"{self.source}:{self.native_id}"

    @property
    def match_text(self) -> str:
        """What the local matcher reads: `searchable` when a source set it, else the title,
        text and url."""
        if self.searchable is not None:
            return self.searchable
        return "\n".join(x for x in (self.title, self.text, self.url) if x)

    @property
    def addressed(self) -> bool:
        """Found where customers address the founder (their Page, app, channel: Job.owned)."""
        return self.extra.get("addressed") is True

    @property
    def in_thread(self) -> bool:
        """True when `title` is the thread's, not this mention's own."""
        return self.extra.get("kind") == "comment"


# (name, kind) of every Mention field stored as a `mentions` column, in declaration order.
MENTION_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (f.name, f.metadata["column"]) for f in fields(Mention) if "column" in f.metadata
)
# The JSONL record's keys (design.md): this order is the contract (CSV columns follow it);
# fields declared with record=True later are appended. `key` and `priority` are computed.
RECORD_KEYS: tuple[str, ...] = (
    "id", "key", "source", "url", "author", "author_name", "title", "text", "created_at",
    "fetched_at", "terms", "sentiment", "polarity", "status", "reach", "reply_url",
    "intents", "priority", "echo_of",
)  # fmt: skip
RECORD_KEYS += tuple(
    f.name for f in fields(Mention) if f.metadata.get("record") and f.name not in RECORD_KEYS
)


@dataclass(frozen=True, slots=True)
class ThreadPost:
    """A post around a mention, as its platform gives it: what the mention replies to."""

    relation: str  # "parent": the post replied to; "root": where the thread started
    text: str
    author: str | None = None
    url: str | None = None
    created_at: str | None = None  # ISO 8601 UTC


@dataclass(frozen=True, slots=True)
class Template:
    """A [templates] entry: a public reply, a private follow-up, or both (answer in public,
    then take it private). {author}, {term} and {url} are filled from the mention."""

    public: str | None = None
    private: str | None = None


@dataclass(frozen=True, slots=True)
class Option:
    """One key a source accepts in its config section."""

    type: type | tuple[type, ...]
    default: object = None
    secret: bool = False  # never printed, redacted from every message
    help: str = ""


@dataclass(frozen=True, slots=True)
class Job:
    """One unit of polling: a term on a searching source, or a feed/timeline on a streaming one."""

    source: str
    scope: str  # the cursor's name: a term name, a feed URL, "tag:acme@instance"…
    term: Term | None = None
    # The founder's own channel, app or business (YouTube channel comments, app reviews, a
    # Yelp page): every item is about the product, so one that names no term still belongs to
    # every term that applies to the source ("crashes on login", one star).
    owned: bool = False


@dataclass(frozen=True, slots=True)
class Filters:
    """What feed and export select. Each tuple means "any of"; an empty one (or None) means
    no restriction."""

    since: datetime | None = None
    sources: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    sentiments: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ("open",)  # (): every status
    search: str | None = None  # the --search language (search.py)
    intents: tuple[str, ...] = ()
    until: datetime | None = None  # created before this (a digest's period ends here)
    min_relevance: float | None = None  # relevance at least this (unscored ones pass)
    assignees: tuple[str, ...] = ()  # assigned to any of these people
    unassigned: bool = False  # assigned to nobody (or, with assignees, to one of them)


@dataclass(slots=True)
class Page:
    """What one fetch step of a source returns.

    `cursor` is the value to store once these mentions are saved; None means "do not move the
    cursor yet" (a later page of the same run will carry it), so a crash repeats work but never
    skips mentions.
    """

    mentions: list[Mention]
    cursor: str | None = None
    note: str | None = None  # one line for the poll summary
    reads: int | None = None  # posts read that the platform bills for (X), summed per source
    # What was wrong with the page (`item 3 has no "html_url"`): its good mentions are saved,
    # and the job still reports these as its error.
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class JobResult:
    """What one job of a poll did: fetched, saved as new, and why it stopped if it failed."""

    source: str
    scope: str
    fetched: int = 0
    new: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    reads: int | None = None
    retry_after: float | None = None  # seconds the platform asked us to wait (rate limited)
    interrupted: bool = False  # stopped by Ctrl-C; what it saved by then is counted


@dataclass(slots=True)
class PollReport:
    """What a poll did: the result of each of its jobs."""

    results: list[JobResult] = field(default_factory=list)

    @property
    def new(self) -> int:
        return sum(r.new for r in self.results)

    @property
    def fetched(self) -> int:
        return sum(r.fetched for r in self.results)

    @property
    def failures(self) -> list[JobResult]:
        return [r for r in self.results if r.error]


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC with a trailing Z, the format every stored and exported time uses."""
    if dt is None:
        return None
    if dt.tzinfo is not UTC:
        dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    # isoformat's fields, whole seconds, years before 1000 zero-padded (Go's zero time,
    # 0001-01-01, is a placeholder some APIs send; strftime leaves it unpadded, unparseable).
    # Formatted here: isoformat(timespec=...) of an aware time costs 2-3x this (it works out
    # and prints the offset), and every saved row and exported record makes one or two.
    fields = (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % fields  # noqa: UP031 (f-strings: ~2x the cost)


def parse_iso(value: str) -> datetime:
    """Parse ISO 8601 (with Z, offset, or fractional seconds) into an aware UTC datetime."""
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), UTC)


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# A pattern, compiled (and cached) by `re` on first use: compiling it costs ~0.3 ms, and
# most commands never read a duration.
_DURATION = r"(?i)(\d+(?:\.\d+)?)\s*([smhdw])"


def parse_duration(value: str | float) -> float:
    """Seconds in `90s`, `5m`, `1h30m`, `2d`, `1w` or a plain number of seconds; ValueError
    naming the accepted forms otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().replace(" ", "")
        if not text or re.sub(_DURATION, "", text):
            raise ValueError(f"cannot read {value!r} as a duration: use 30s, 5m, 2h, 1d or 1w")
        seconds = sum(float(n) * _DURATION_UNITS[u.lower()] for n, u in re.findall(_DURATION, text))
    if seconds <= 0:
        raise ValueError(f"{value!r} is not a positive duration")
    return seconds


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """`2h`, `30m`, `3d`, `1w` ago, or an ISO date/datetime (UTC when no offset is given)."""
    from datetime import timedelta

    value = value.strip()
    unit = _DURATION_UNITS.get(value[-1:].lower())
    if unit and value[:-1].isdigit():
        return (now or utcnow()) - timedelta(seconds=int(value[:-1]) * unit)
    try:
        return parse_iso(value)
    except ValueError:
        raise ValueError(
            f"cannot read {value!r} as a time: use 30m, 2h, 3d, 1w or an ISO date"
        ) from None


def account_key(name: str | None) -> str:
    """An account name as config lists write it: any case, with or without @ or u/."""
    return (name or "").strip().lower().removeprefix("@").removeprefix("u/")


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One event to deliver to one channel, queued in the transaction that saves its cause.

    `subject` says what the event is about (a mention's key): an alert goes to a channel at
    most once per subject.
    """

    alert: str
    channel: str  # a stable fingerprint of the channel, never its URL (URLs hold secrets)
    event: str  # "mention" (later "spike", "digest")
    subject: str
    payload: dict[str, Any]  # the event body without its delivery ID
    mention_id: int | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A queued delivery as read back from the outbox."""

    id: int
    delivery: str  # the ID every attempt carries (X-Mentionwatch-Delivery)
    alert: str
    channel: str
    event: str
    subject: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
