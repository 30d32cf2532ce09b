"""Alert rules: what a rule selects, and queueing its deliveries when mentions are saved.

A rule (`[[alerts]]` in the config) fires on an event (`ALERT_EVENTS`), selects with filters
(`RULE_FILTERS`, each "any of", all given must hold) and names its channels. `Queue` runs
inside the transaction that saves a page (`Store.save_page`): every new mention a rule matches
becomes one outbox row per channel, so a crash between saving and sending loses nothing.
Spike and digest rules count mentions instead (`trendalerts.py` queues their events; the
filters they can count by are `COUNTED_FILTERS`, the digest schedule is `Every`).
`delivery.py` sends the outbox, `channels.py` knows how each kind of channel is spoken to.

This module is read with the config (feed and export load it): it stays small and imports
nothing heavy; channels and Apprise load only when something is sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from mentionwatch.models import (
    INTENTS,
    SENTIMENTS,
    Filters,
    Mention,
    OutboxItem,
    account_key,
    utcnow,
)

if TYPE_CHECKING:
    from mentionwatch.channels import Channel
    from mentionwatch.config import Config

# What a rule fires on: each new mention it selects; a pile-up (a term's volume far above its
# own baseline, once per episode); or a summary on a schedule (`every`).
ALERT_EVENTS: tuple[str, ...] = ("mention", "spike", "digest")
DEFAULT_MAX_AGE = 24 * 3600.0  # a first poll finds weeks of history: that is not news


# Plain classes rather than dataclasses here: this module loads with every config that has
# alerts, feed's included, and each dataclass costs about a millisecond to create.


class RuleContext:
    """What filter values are checked against when the config is read."""

    __slots__ = ("sources", "terms")

    def __init__(self, terms: Collection[str], sources: Collection[str]) -> None:
        self.terms, self.sources = terms, sources


class RuleFilter:
    """One optional filter of a rule: how its config value is read, and when it holds."""

    __slots__ = ("holds", "read")

    def __init__(
        self,
        read: Callable[[Any, RuleContext], Any],  # raises ValueError with the reason
        holds: Callable[[Any, Mention, datetime], bool],
    ) -> None:
        self.read, self.holds = read, holds


def _strings(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected {what} (a string or a list of strings)")
    return value


def _one_of(choices: Sequence[str], what: str) -> Callable[[Any, RuleContext], frozenset[str]]:
    def read(value: Any, ctx: RuleContext) -> frozenset[str]:
        values = _strings(value, what)
        for v in values:
            if v not in choices:
                raise ValueError(f"unknown value {v!r} (expected any of: {', '.join(choices)})")
        return frozenset(values)

    return read


def _names(kind: str) -> Callable[[Any, RuleContext], frozenset[str]]:
    def read(value: Any, ctx: RuleContext) -> frozenset[str]:
        known = ctx.terms if kind == "term" else ctx.sources
        values = _strings(value, f"{kind} names")
        for v in values:
            if v not in known:
                raise ValueError(f"unknown {kind} {v!r} (known: {', '.join(known) or 'none'})")
        return frozenset(values)

    return read


def _accounts(value: Any, ctx: RuleContext) -> frozenset[str]:
    return frozenset(account_key(v) for v in _strings(value, "account names"))


def _query(value: Any, ctx: RuleContext) -> Any:
    from mentionwatch.query import QueryError, parse

    if not isinstance(value, str):
        raise ValueError("expected a query in the term language, e.g. 'refund OR cancel'")
    try:
        return parse(value)
    except QueryError as exc:
        raise ValueError(f"{exc} in {value!r}") from None


def _number(value: Any, ctx: RuleContext) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _share(value: Any, ctx: RuleContext) -> float:
    number = _number(value, ctx)
    if not 0 <= number <= 1:
        raise ValueError(f"expected a number from 0 to 1 (relevance), got {value!r}")
    return number


def _priority(m: Mention, now: datetime) -> float:
    from mentionwatch.triage import mention_priority

    return mention_priority(m, now)


# Every filter a rule may have: each is "any of" its values, and all given must hold.
# A new filter is one line here (the config reader and the matcher both use this table).
RULE_FILTERS: dict[str, RuleFilter] = {
    "sentiment": RuleFilter(_one_of(SENTIMENTS, "sentiments"), lambda v, m, now: m.sentiment in v),
    "intents": RuleFilter(_one_of(INTENTS, "intents"), lambda v, m, now: bool(v & set(m.intents))),
    "terms": RuleFilter(_names("term"), lambda v, m, now: bool(v & set(m.terms))),
    "sources": RuleFilter(_names("source"), lambda v, m, now: m.source in v),
    "authors": RuleFilter(_accounts, lambda v, m, now: account_key(m.author) in v),
    "query": RuleFilter(_query, lambda q, m, now: q.matches(m.match_text)),
    "min_priority": RuleFilter(_number, lambda n, m, now: _priority(m, now) >= n),
    # Unscored mentions pass, as `feed --relevant` keeps them (relevance.py).
    "min_relevance": RuleFilter(_share, lambda n, m, now: m.relevance is None or m.relevance >= n),
}


# The filters spike and digest rules count by, and the `Filters` field each one sets: counts
# are SQL over the stored mentions, so only filters the store can count by apply there.
COUNTED_FILTERS: dict[str, str] = {
    "terms": "terms",
    "sentiment": "sentiments",
    "sources": "sources",
    "intents": "intents",
    "min_relevance": "min_relevance",
}


class Every:
    """A digest's schedule: `daily HH:MM` or `weekly DAY HH:MM`, in local time."""

    __slots__ = ("hour", "minute", "weekday")
    DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    HELP = 'expected "daily HH:MM" or "weekly DAY HH:MM" (e.g. "daily 09:00", "weekly mon 09:00")'

    def __init__(self, weekday: int | None, hour: int, minute: int) -> None:
        self.weekday, self.hour, self.minute = weekday, hour, minute  # weekday None: daily

    @classmethod
    def parse(cls, value: Any) -> Every:
        """Raises ValueError with the reason."""
        if not isinstance(value, str):
            raise ValueError(f"{cls.HELP}, got {value!r}")
        words = value.lower().split()
        found = re.fullmatch(r"(\d{1,2}):(\d{2})", words[-1]) if words else None
        if not found or len(words) != {"daily": 2, "weekly": 3}.get(words[0]):
            raise ValueError(f"{cls.HELP}, got {value!r}")
        hour, minute = int(found.group(1)), int(found.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"{words[-1]!r} is not a time of day (00:00 to 23:59)")
        weekday = None
        if words[0] == "weekly":
            # "mon", "monday" (or any start of it from three letters on)
            matches = [i for i, day in enumerate(cls.FULL_DAYS) if day.startswith(words[1])]
            if len(words[1]) < 3 or len(matches) != 1:
                days = ", ".join(cls.DAYS)
                raise ValueError(f"unknown day {words[1]!r} (expected one of: {days})")
            weekday = matches[0]
        return cls(weekday, hour, minute)

    def __str__(self) -> str:
        day = "daily" if self.weekday is None else f"weekly {self.DAYS[self.weekday]}"
        return f"{day} {self.hour:02d}:{self.minute:02d}"

    @property
    def days(self) -> int:
        return 1 if self.weekday is None else 7

    def _at(self, date: Any, zone: tzinfo) -> datetime:
        return datetime(date.year, date.month, date.day, self.hour, self.minute, tzinfo=zone)

    def latest(self, now: datetime, zone: tzinfo) -> datetime:
        """The last scheduled moment at or before `now` (local time: a DST change moves
        it in UTC, not on the clock on the wall)."""
        date = now.astimezone(zone).date()
        if self.weekday is not None:
            date -= timedelta(days=(date.weekday() - self.weekday) % 7)
        moment = self._at(date, zone)
        if moment > now:
            moment = self._at(date - timedelta(days=self.days), zone)
        return moment

    def before(self, moment: datetime, zone: tzinfo, periods: int = 1) -> datetime:
        """The scheduled moment `periods` periods before this one (a day or a week)."""
        date = moment.astimezone(zone).date() - timedelta(days=self.days * periods)
        return self._at(date, zone)

    def following(self, moment: datetime, zone: tzinfo) -> datetime:
        """The first scheduled moment after `moment`."""
        date = self.latest(moment, zone).astimezone(zone).date() + timedelta(days=self.days)
        return self._at(date, zone)


@dataclass(frozen=True)
class AlertRule:
    name: str
    to: tuple[str, ...] = ()  # channel URLs
    command: tuple[str, ...] = ()  # a program (argv) that gets each event on stdin
    on: str = "mention"
    filters: Mapping[str, Any] = field(default_factory=dict)  # RULE_FILTERS name -> value
    secret: str | None = None  # signs webhook bodies
    max_age: float = DEFAULT_MAX_AGE  # seconds: older mentions are not pushed
    max_per_hour: int | None = None  # messages to each people channel
    group: bool = True  # several mentions of one poll in one message (people channels)
    problem: str | None = None  # an unset ${VAR}: only commands that deliver fail on it
    every: Every | None = None  # on = "digest": when
    spike: Mapping[str, float] = field(default_factory=dict)  # on = "spike": SpikeSettings
    follow_up: bool = False  # on = "spike": also say when an episode is over

    def counted(self) -> Filters:
        """What a spike or digest rule counts: its filters as the store reads them."""
        values: dict[str, Any] = {
            COUNTED_FILTERS[name]: tuple(sorted(value)) if isinstance(value, frozenset) else value
            for name, value in self.filters.items()
            if name in COUNTED_FILTERS
        }
        return Filters(statuses=(), **values)

    def matches(self, m: Mention, now: datetime | None = None) -> bool:
        now = now or utcnow()
        if (now - m.created_at).total_seconds() > self.max_age:
            return False
        return all(RULE_FILTERS[name].holds(v, m, now) for name, v in self.filters.items())

    @cached_property
    def channels(self) -> tuple[Channel, ...]:
        from mentionwatch.channels import AppriseChannel, CommandChannel, WebhookChannel

        found: list[Channel] = [
            WebhookChannel(url, self.secret) if is_webhook(url) else AppriseChannel(url)
            for url in self.to
        ]
        if self.command:
            found.append(CommandChannel(self.command))
        return tuple(found)

    def channel(self, channel_id: str) -> Channel | None:
        return next((c for c in self.channels if c.id == channel_id), None)


def is_webhook(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://\S", re.I)
# Chat services' own webhook URLs: mentionwatch's JSON is not their format.
_CHAT_HOOKS = {
    "hooks.slack.com": "slack://TOKEN_A/TOKEN_B/TOKEN_C",
    "discord.com": "discord://WEBHOOK_ID/WEBHOOK_TOKEN",
    "discordapp.com": "discord://WEBHOOK_ID/WEBHOOK_TOKEN",
}


def url_problem(url: str) -> str | None:
    """Why a `to` entry cannot be a channel, from its text alone (no Apprise import)."""
    if not _SCHEME.match(url):
        return (
            f"{mask_url(url)!r} is not a channel URL: use https://… for a webhook, or an "
            "Apprise URL such as ntfys://ntfy.sh/TOPIC, mailto://… or slack://…"
        )
    if is_webhook(url):
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError as exc:
            return f"{mask_url(url)!r} is not a valid URL: {exc}"
        if not parts.hostname:
            return f"{mask_url(url)!r} has no host"
        hint = _CHAT_HOOKS.get(parts.hostname.lower())
        if hint and (parts.hostname != "discord.com" or "/webhooks/" in parts.path):
            return (
                f"https://{parts.hostname}/… gets mentionwatch's signed JSON, which that "
                f"service does not read; write it as {hint} so Apprise formats the message"
            )
    return None


def command_argv(value: str | list[str]) -> tuple[str, ...]:
    """A command from the config: a list of arguments, or one string split like a shell."""
    import shlex

    argv = shlex.split(value) if isinstance(value, str) else list(value)
    if not argv:
        raise ValueError("expected a program and its arguments")
    return tuple(argv)


def check_channels(config: Config) -> None:
    """Raise a ConfigError (file:line, key) for a rule with an unset ${VAR} or an Apprise URL
    that Apprise cannot use.

    Done by the commands that deliver, not when the config is read, so that feed and export
    never import Apprise."""
    from mentionwatch.channels import apprise_plugin
    from mentionwatch.config import config_error
    from mentionwatch.errors import ConfigError

    for i, rule in enumerate(config.alerts):
        if rule.problem:
            raise ConfigError(rule.problem)
        for j, url in enumerate(rule.to):
            if not is_webhook(url) and apprise_plugin(url) is None:
                raise config_error(
                    config,
                    f"alerts[{i}].to",
                    f"Apprise does not know the URL {mask_url(url)!r} (entry {j + 1}); see "
                    "https://github.com/caronc/apprise/wiki for the URL of each service",
                )


def find_rule(config: Config, name: str) -> AlertRule:
    from mentionwatch.errors import UsageError

    for rule in config.alerts:
        if rule.name == name:
            return rule
    known = ", ".join(r.name for r in config.alerts) or "none; add [[alerts]] to the config"
    raise UsageError(f"unknown alert rule {name!r} (configured: {known})")


# Queueing: called by Store.save_page inside its transaction


class Queue:
    """Turns newly saved mentions into outbox items, one per matching rule and channel."""

    def __init__(self, rules: Sequence[AlertRule]) -> None:
        self.rules = rules

    def __call__(self, mentions: Iterable[Mention]) -> list[OutboxItem]:
        from mentionwatch.render import record

        now = utcnow()
        items: list[OutboxItem] = []
        for m in mentions:
            rec: dict[str, Any] | None = None
            for rule in self.rules:
                if rule.on != "mention" or not rule.matches(m, now):
                    continue
                rec = rec or record(m)
                payload = {"event": "mention", "alert": rule.name, "mention": rec}
                items += [
                    OutboxItem(rule.name, ch.id, "mention", m.key, payload, m.id)
                    for ch in rule.channels
                ]
        return items


_TOKENISH = re.compile(r"(?=.*\d)[\w-]{8,}|[\w-]{20,}")


def mask_url(url: str) -> str:
    """A URL fit to show: password, query values and token-like path parts replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if not parts.scheme or not parts.netloc:
        return "***"
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    if parts.username:
        host = f"{parts.username}:***@{host}" if parts.password else f"{parts.username}@{host}"
    path = "/".join("***" if _TOKENISH.fullmatch(seg) else seg for seg in parts.path.split("/"))
    query = "&".join(f"{kv.split('=', 1)[0]}=***" for kv in parts.query.split("&") if kv)
    return urlunsplit((parts.scheme, host, path, query, ""))


def url_secrets(url: str) -> list[str]:
    """The parts of a channel URL that must never appear in a message."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = [parts.password or ""]
    found += [seg for seg in parts.path.split("/") if _TOKENISH.fullmatch(seg)]
    found += [kv.split("=", 1)[1] for kv in parts.query.split("&") if "=" in kv]
    if not is_webhook(url) and parts.username:
        found.append(parts.username)  # Apprise URLs often keep a token in the user part
    return [s for s in found if len(s) >= 4]
