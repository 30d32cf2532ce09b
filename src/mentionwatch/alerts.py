"""Alert rules, the outbox they fill, and the channels that deliver it.

A rule (`[[alerts]]` in the config) selects new mentions with filters. Every match becomes
one delivery per channel, queued by `Queue` inside the transaction that saves the mention
(`Store.save_page`), and sent after the commit by `deliver`. A delivery is marked sent only
when its channel accepts it (a webhook answers 2xx, Apprise reports success, a command exits
0); otherwise it stays pending and is tried again with backoff, always with the same delivery
ID. A failing channel never holds up the others.

Channels: an http(s) URL is a mentionwatch webhook (signed JSON, one event per mention, the
contract in design.md); `command` runs a program with the same JSON on stdin; every other URL
goes to Apprise (ntfy, Slack, Discord, Telegram, mail…), whose messages are written for
people: hostile text defused, several mentions grouped, at most `max_per_hour` messages.
Apprise and httpx are imported only when something is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import random
import re
import shlex
import subprocess
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from mentionwatch.models import (
    INTENTS,
    SENTIMENTS,
    Delivery,
    Mention,
    OutboxItem,
    account_key,
    parse_duration,
    utcnow,
)
from mentionwatch.text import clean

if TYPE_CHECKING:
    from mentionwatch.config import Config
    from mentionwatch.store import Store

# What a rule fires on. Issue 13 adds "spike" and "digest" here (events through the outbox).
ALERT_EVENTS: tuple[str, ...] = ("mention",)
DEFAULT_MAX_AGE = 24 * 3600.0  # a first poll finds weeks of history: that is not news
GROUP_SHOWN = 5  # mentions listed in one grouped message; the rest are counted
SINGLE_EXCERPT, GROUPED_EXCERPT = 280, 120  # characters of mention text in a message
RETRY_FIRST, RETRY_MAX = 5.0, 900.0  # backoff after a failed delivery, seconds
SHUTDOWN_TIMEOUT = 2.0  # per request when flushing on exit


# Rules


@dataclass(frozen=True)
class RuleContext:
    """What filter values are checked against when the config is read."""

    terms: Collection[str]
    sources: Collection[str]


@dataclass(frozen=True)
class RuleFilter:
    """One optional filter of a rule: how its config value is read, and when it holds."""

    read: Callable[[Any, RuleContext], Any]  # raises ValueError with the reason
    holds: Callable[[Any, Mention, datetime], bool]


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
}


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

    def matches(self, m: Mention, now: datetime | None = None) -> bool:
        now = now or utcnow()
        if (now - m.created_at).total_seconds() > self.max_age:
            return False
        return all(RULE_FILTERS[name].holds(v, m, now) for name, v in self.filters.items())

    @cached_property
    def channels(self) -> tuple[Channel, ...]:
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
    argv = shlex.split(value) if isinstance(value, str) else list(value)
    if not argv:
        raise ValueError("expected a program and its arguments")
    return tuple(argv)


def check_channels(config: Config) -> None:
    """Raise a ConfigError (file:line, key) for any Apprise URL that Apprise cannot use.

    Done by the commands that deliver, not when the config is read, so that feed and export
    never import Apprise."""
    from mentionwatch.config import config_error

    for i, rule in enumerate(config.alerts):
        for j, url in enumerate(rule.to):
            if not is_webhook(url) and _apprise_plugin(url) is None:
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


@dataclass
class Queue:
    """Turns newly saved mentions into outbox items, one per matching rule and channel."""

    rules: Sequence[AlertRule]

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


# Hostile text, defused for people channels


_FORMAT_CHARS = {"Cf", "Zl", "Zp"}  # invisible formatting and line/paragraph separators
_MD_LINK = re.compile(r"!?\[([^\]\n]*)\]\(\s*([^)\s]*)[^)]*\)")
# @ starts a ping on Slack, Discord, Matrix and Telegram; < > make Slack's <!channel>,
# <@U123> and <url|text>, and HTML; [ ] make markdown links. Each becomes a look-alike
# that no service parses (visible characters: never an invisible one).
_DEFUSE = str.maketrans({"@": "\uff20", "<": "\u2039", ">": "\u203a", "[": "\uff3b", "]": "\uff3d"})
_MASS_PING = re.compile(r"@(?=(?:everyone|here|channel|room|all|group)\b)", re.I)


def inert(value: object) -> str:
    """Untrusted text as one line that no chat service, mail client or terminal interprets:
    controls and invisible characters removed, pings, links and markup defused."""
    if value is None:
        return ""
    text = clean(str(value))
    text = "".join(" " if unicodedata.category(c) in _FORMAT_CHARS else c for c in text)
    text = " ".join(text.split())
    # A disguised link shows where it really goes.
    text = _MD_LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})" if m.group(2) else m.group(1),
                        text)  # fmt: skip
    return text.translate(_DEFUSE)


def safe_link(url: object) -> str | None:
    """A mention's own link, if it is a plain http(s) URL, with anything that could break out
    of it (spaces, brackets, pings) percent-encoded; None otherwise."""
    if not isinstance(url, str):
        return None
    url = "".join(c for c in clean(url) if unicodedata.category(c) not in _FORMAT_CHARS)
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    keep = "/%:=&?~#+!$,;'*-._"

    def enc(piece: str) -> str:
        return quote(_MASS_PING.sub("%40", piece), safe=keep + "@")

    return urlunsplit((parts.scheme, parts.netloc, enc(parts.path), enc(parts.query),
                       enc(parts.fragment)))  # fmt: skip


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.") + "…"


def headline(rec: Mapping[str, Any]) -> str:
    """`negative · reddit · acme — ＠author`: what it is, where, about what, by whom."""
    parts = [rec.get("sentiment"), rec.get("source"), ", ".join(rec.get("terms") or ())]
    line = " · ".join(inert(p) for p in parts if p)
    author = inert(rec.get("author"))
    return f"{line} — \uff20{author.lstrip(chr(0xFF20))}" if author else line


def _excerpt(rec: Mapping[str, Any], limit: int) -> str:
    text = inert(rec.get("text"))
    title = inert(rec.get("title"))
    if title and not text:
        text = title
    return f"“{shorten(text, limit)}”" if text else ""


def single_message(alert: str, rec: Mapping[str, Any]) -> tuple[str, str]:
    """Title and body of a message about one mention."""
    lines = []
    title = inert(rec.get("title"))
    if title and rec.get("text"):
        lines.append(shorten(title, 120))
    lines.append(_excerpt(rec, SINGLE_EXCERPT))
    link = safe_link(rec.get("url"))
    if link:
        lines.append(link)
    lines.append(f"Answer: mentionwatch reply {rec.get('id')} · alert: {inert(alert)}")
    return headline(rec), "\n".join(x for x in lines if x)


def grouped_message(alert: str, recs: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """Title and body of one message about several mentions: the first few, then a count."""
    shown = recs[:GROUP_SHOWN]
    lines = []
    for rec in shown:
        link = safe_link(rec.get("url"))
        line = f"• {headline(rec)}: {_excerpt(rec, GROUPED_EXCERPT)}"
        lines.append(line + (f" {link}" if link else "") + f" (reply {rec.get('id')})")
    if len(recs) > len(shown):
        lines.append(f"…and {len(recs) - len(shown)} more: mentionwatch feed --since 1h")
    lines.append(f"Answer: mentionwatch reply ID · alert: {inert(alert)}")
    return f"{inert(alert)}: {len(recs)} new mentions", "\n".join(lines)


# Channels


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str  # "HTTP 200", "timed out after 5s", what Apprise said…


class Channel:
    kind = ""
    per_event = True  # machines get one event per mention; people channels get messages

    def __init__(self, target: str) -> None:
        self.target = target  # may hold secrets: never printed or stored
        self.id = hashlib.sha256(f"{self.kind}:{target}".encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """The channel as shown to people: its secrets masked."""
        return mask_url(self.target)

    def send_event(self, body: dict[str, Any], timeout: float) -> Outcome:
        raise NotImplementedError

    def send_message(self, title: str, body: str, timeout: float) -> Outcome:
        raise NotImplementedError


def event_body(payload: Mapping[str, Any], delivery: str) -> dict[str, Any]:
    """The webhook body: `event`, `alert`, `delivery` first, then what the event carries."""
    return {"event": payload["event"], "alert": payload["alert"], "delivery": delivery,
            **{k: v for k, v in payload.items() if k not in ("event", "alert")}}  # fmt: skip


def sign(secret: str, body: bytes) -> str:
    """The X-Mentionwatch-Signature-256 value: GitHub's webhook convention."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel(Channel):
    kind = "webhook"

    def __init__(self, url: str, secret: str | None) -> None:
        super().__init__(url)
        self.secret = secret

    def send_event(self, body: dict[str, Any], timeout: float) -> Outcome:
        import httpx

        from mentionwatch.http import DEFAULT_USER_AGENT

        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": DEFAULT_USER_AGENT,
            "X-Mentionwatch-Event": body["event"],
            "X-Mentionwatch-Delivery": body["delivery"],
        }
        if self.secret:
            headers["X-Mentionwatch-Signature-256"] = sign(self.secret, raw)
        try:
            # No redirects: a signed body goes only where the config says.
            response = httpx.post(self.target, content=raw, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            return Outcome(False, f"no answer within {timeout:g}s")
        except httpx.HTTPError as exc:
            return Outcome(False, f"cannot connect ({type(exc).__name__})")
        detail = f"HTTP {response.status_code}"
        if response.is_success:
            return Outcome(True, detail)
        excerpt = inert(response.text[:200])
        return Outcome(False, f"{detail}: {shorten(excerpt, 80)}" if excerpt else detail)


class CommandChannel(Channel):
    kind = "command"

    def __init__(self, argv: Sequence[str]) -> None:
        super().__init__(shlex.join(argv))
        self.argv = list(argv)

    @property
    def label(self) -> str:
        more = f" (+{len(self.argv) - 1} arguments)" if len(self.argv) > 1 else ""
        return f"command: {self.argv[0]}{more}"

    def send_event(self, body: dict[str, Any], timeout: float) -> Outcome:
        import os

        env = {
            **os.environ,
            "MENTIONWATCH_EVENT": body["event"],
            "MENTIONWATCH_DELIVERY": body["delivery"],
            "MENTIONWATCH_ALERT": body["alert"],
        }
        try:
            done = subprocess.run(
                self.argv, input=json.dumps(body, ensure_ascii=False).encode(), env=env,
                capture_output=True, timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return Outcome(False, f"did not finish within {timeout:g}s")
        except OSError as exc:
            return Outcome(False, f"cannot run {self.argv[0]}: {exc.strerror or exc}")
        if done.returncode == 0:
            return Outcome(True, "exit 0")
        last = (done.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
        detail = f"exit {done.returncode}"
        return Outcome(False, f"{detail}: {shorten(inert(last), 80)}" if last else detail)


class AppriseChannel(Channel):
    kind = "apprise"
    per_event = False

    @property
    def label(self) -> str:
        plugin = _apprise_plugin(self.target)
        if plugin is None:
            return mask_url(self.target)
        return str(plugin.url(privacy=True)).split("?", 1)[0]

    def send_message(self, title: str, body: str, timeout: float) -> Outcome:
        import apprise

        asset = apprise.AppriseAsset(
            app_id="mentionwatch", app_desc="mentionwatch alerts",
            app_url="https://pypi.org/project/mentionwatch/",
        )  # fmt: skip
        notifier = apprise.Apprise(asset=asset)
        with _apprise_log() as said:
            if not notifier.add(self.target):
                return Outcome(False, "Apprise cannot use this URL")
            try:
                ok = bool(notifier.notify(body=body, title=title,
                                          body_format=apprise.NotifyFormat.TEXT))  # fmt: skip
            except Exception as exc:  # a plugin bug must not stop the other channels
                return Outcome(False, f"Apprise failed: {type(exc).__name__}")
        if ok:
            return Outcome(True, "accepted")
        reason = said[-1] if said else "the service refused the message"
        return Outcome(False, shorten(inert(reason), 160))


def _apprise_plugin(url: str) -> Any:
    import apprise

    with _apprise_log():
        return apprise.Apprise.instantiate(url)


class _ThreadLog(logging.Handler):
    """Collects Apprise's warnings per thread, so parallel channels keep their own reasons
    and nothing Apprise logs reaches the terminal unredacted."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.buffers: dict[int, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        buffer = self.buffers.get(threading.get_ident())
        if buffer is not None:
            buffer.append(record.getMessage())


_APPRISE_LOG = _ThreadLog()


class _apprise_log:
    def __enter__(self) -> list[str]:
        logger = logging.getLogger("apprise")
        if _APPRISE_LOG not in logger.handlers:
            logger.addHandler(_APPRISE_LOG)
            logger.propagate = False
        buffer: list[str] = []
        _APPRISE_LOG.buffers[threading.get_ident()] = buffer
        return buffer

    def __exit__(self, *exc: object) -> None:
        _APPRISE_LOG.buffers.pop(threading.get_ident(), None)


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


# Delivering


@dataclass
class ChannelReport:
    """What one (rule, channel) did in one flush."""

    alert: str
    label: str
    delivered: int = 0  # deliveries confirmed
    messages: int = 0  # messages sent (a grouped one covers several deliveries)
    pending: int = 0  # left for a later try
    error: str | None = None  # why the channel failed (None: it did not)
    held: int = 0  # waiting for the hourly cap


@dataclass
class DeliveryReport:
    channels: list[ChannelReport] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        return sum(c.delivered for c in self.channels)

    @property
    def failures(self) -> list[ChannelReport]:
        return [c for c in self.channels if c.error]


@dataclass
class _Sent:
    """A channel worker's word to the flushing thread (which alone writes the database)."""

    ids: list[int]
    outcome: Outcome
    attempts: int = 0  # the most tries any of these deliveries has had (for the backoff)
    message: bool = True  # False: not attempted, failed with the rest of its channel


def retry_delay(attempts: int) -> float:
    """Backoff after the n-th failed try: 5 s doubling to 15 min, with jitter."""
    return min(RETRY_FIRST * 2 ** max(0, attempts - 1), RETRY_MAX) * random.uniform(0.8, 1.2)


class Dispatcher:
    """Sends pending deliveries, each (rule, channel) in its own thread, and marks each as its
    channel answers. Only the thread that owns the Dispatcher touches the database; a channel
    still busy with an earlier batch is left alone, so a hung channel holds up nobody.

    `poll` uses it through `deliver`; `watch` keeps one in its delivery thread."""

    def __init__(self, config: Config, store: Store, timeout: float | None = None) -> None:
        self.config = config
        self.store = store
        self.timeout = timeout or config.poll.timeout
        self.results: queue.Queue[tuple[tuple[str, str], _Sent | None] | str] = queue.Queue()
        self.busy: dict[tuple[str, str], ChannelReport] = {}

    def start(self, respect_backoff: bool = False) -> list[ChannelReport]:
        """Start sending what is pending (with respect_backoff, only what is due) on every
        channel not already busy. Returns the reports of channels held by their hourly cap."""
        due = self.store.due_deliveries(utcnow() if respect_backoff else None)
        rules = {r.name: r for r in self.config.alerts}
        work: dict[tuple[str, str], list[Delivery]] = {}
        orphans = []
        for d in due:
            rule = rules.get(d.alert)
            if rule is None or rule.channel(d.channel) is None:
                orphans.append(d.id)
            elif (d.alert, d.channel) not in self.busy:
                work.setdefault((d.alert, d.channel), []).append(d)
        if orphans:
            self.store.mark_dropped(orphans, "its rule or channel is no longer in the config")
        held = []
        for key, deliveries in work.items():
            rule = rules[key[0]]
            channel = rule.channel(key[1])
            assert channel is not None
            report = ChannelReport(rule.name, channel.label, pending=len(deliveries))
            room = _room(self.store, rule, channel)
            if room == 0:  # the hourly cap is used up: they wait, grouped, for the next hour
                report.held = len(deliveries)
                held.append(report)
                continue
            self.busy[key] = report
            threading.Thread(
                target=_channel_worker,
                args=(key, rule, channel, deliveries, room, self.timeout, self.results),
                daemon=True,  # a hung channel must never keep the process alive
            ).start()
        return held

    def collect(
        self, wait: float | None, until_idle: bool = False
    ) -> tuple[list[ChannelReport], str | None]:
        """Record answers for up to `wait` seconds (None: no limit), or until no channel is
        busy with `until_idle`.

        Returns the channels that finished, and a word put in the queue by `post` (which
        ends the wait early), if any."""
        finished: list[ChannelReport] = []
        end = None if wait is None else time.monotonic() + wait
        while self.busy or not until_idle:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                item = self.results.get(timeout=left)
            except queue.Empty:
                break
            if isinstance(item, str):
                return finished, item
            key, sent = item
            if sent is None:
                finished.append(self.busy.pop(key))
            else:
                _record(self.store, key, sent, self.busy[key])
        return finished, None

    def post(self, word: str) -> None:
        """Wake `collect` from another thread (watch: "kick" after a save, "stop")."""
        self.results.put(word)

    def abandon(self) -> list[ChannelReport]:
        """The channels still busy (at shutdown): their deliveries stay pending."""
        left = list(self.busy.values())
        for report in left:
            report.error = report.error or "no answer before shutdown; sent again next time"
        self.busy.clear()
        return left


def deliver(
    config: Config, store: Store, *, timeout: float | None = None, deadline: float | None = None
) -> DeliveryReport:
    """Send every pending delivery now and wait for the answers (until `deadline`, a
    time.monotonic() value, at most). Nothing raises for a channel: failures are reported."""
    dispatcher = Dispatcher(config, store, timeout)
    report = DeliveryReport(dispatcher.start())
    wait = None if deadline is None else max(0.0, deadline - time.monotonic())
    report.channels += dispatcher.collect(wait, until_idle=True)[0]
    report.channels += dispatcher.abandon()
    return report


def _room(store: Store, rule: AlertRule, channel: Channel) -> int | None:
    """Messages the hourly cap still allows this channel (None: no cap)."""
    if rule.max_per_hour is None or channel.per_event:
        return None
    sent = store.messages_sent(rule.name, channel.id, utcnow() - timedelta(hours=1))
    return max(0, rule.max_per_hour - sent)


def _record(store: Store, key: tuple[str, str], sent: _Sent, report: ChannelReport) -> None:
    alert, channel_id = key
    if sent.outcome.ok:
        store.mark_delivered(sent.ids, sent.outcome.detail)
        report.delivered += len(sent.ids)
        report.pending -= len(sent.ids)
    elif sent.message or sent.ids:
        retry_at = utcnow() + timedelta(seconds=retry_delay(sent.attempts + 1))
        store.mark_failed(sent.ids, sent.outcome.detail, retry_at)
        report.error = report.error or sent.outcome.detail
    if sent.message:
        report.messages += sent.outcome.ok
        store.log_send(alert, channel_id, report.label, len(sent.ids), sent.outcome.ok,
                       sent.outcome.detail)  # fmt: skip


def _channel_worker(
    key: tuple[str, str],
    rule: AlertRule,
    channel: Channel,
    deliveries: list[Delivery],
    room: int | None,
    timeout: float,
    results: queue.Queue[tuple[tuple[str, str], _Sent | None]],
) -> None:
    try:
        if channel.per_event:
            batches: Iterator[tuple[list[Delivery], Callable[[], Outcome]]] = (
                ([d], lambda d=d: channel.send_event(event_body(d.payload, d.delivery), timeout))
                for d in deliveries
            )
        else:
            batches = _messages(rule, channel, deliveries, room, timeout)
        left = list(deliveries)
        for batch, send in batches:
            outcome = send()
            results.put((key, _Sent([d.id for d in batch], outcome,
                                    max(d.attempts for d in batch))))  # fmt: skip
            left = left[len(batch) :]
            if not outcome.ok:
                # The channel is down: the rest wait for the same retry, untried.
                rest = [d.id for d in left]
                if rest:
                    results.put((key, _Sent(rest, outcome, max(d.attempts for d in batch),
                                            message=False)))  # fmt: skip
                return
    except Exception as exc:  # a bug in one channel must not stop the others
        results.put((key, _Sent([d.id for d in deliveries], Outcome(False, repr(exc)[:160]))))
    finally:
        results.put((key, None))


def _messages(
    rule: AlertRule, channel: Channel, deliveries: list[Delivery], room: int | None,
    timeout: float,
) -> Iterator[tuple[list[Delivery], Callable[[], Outcome]]]:  # fmt: skip
    """The messages a people channel gets: one per mention, or grouped, within the cap."""
    if room == 0:
        return
    recs = [d.payload.get("mention") or {} for d in deliveries]
    if rule.group or (room is not None and len(deliveries) > room):
        singles = 0 if rule.group else (room or 1) - 1
    else:
        singles = len(deliveries)
    for d, rec in zip(deliveries[:singles], recs, strict=False):
        title, body = single_message(rule.name, rec)
        yield [d], lambda t=title, b=body: channel.send_message(t, b, timeout)
    rest, rest_recs = deliveries[singles:], recs[singles:]
    if rest:
        if len(rest) == 1:
            title, body = single_message(rule.name, rest_recs[0])
        else:
            title, body = grouped_message(rule.name, rest_recs)
        yield rest, lambda: channel.send_message(title, body, timeout)


# Test sends


SAMPLE_TEXT = (
    "This is a test alert from mentionwatch. If you can read it here, this channel works: "
    "new mentions that match the rule will arrive like this."
)


def sample_record() -> dict[str, Any]:
    from mentionwatch.models import iso

    now = iso(utcnow())
    return {
        "id": 0, "key": "mentionwatch:test", "source": "mentionwatch", "url": None,
        "author": "mentionwatch", "author_name": "mentionwatch", "title": None,
        "text": SAMPLE_TEXT, "created_at": now, "fetched_at": now, "terms": [],
        "sentiment": "neutral", "polarity": 0.0, "status": "open", "reach": None,
        "reply_url": None, "intents": [], "priority": 0.0,
    }  # fmt: skip


@dataclass(frozen=True)
class ChannelAnswer:
    label: str
    outcome: Outcome


def send_test(config: Config, store: Store, rule: AlertRule) -> list[ChannelAnswer]:
    """Send a sample event through each of the rule's channels (not through the outbox) and
    say what each answered; every answer is logged as a test."""
    rec = sample_record()
    payload = {"event": "mention", "alert": rule.name, "test": True, "mention": rec}
    title, body = single_message(rule.name, rec)
    title = f"mentionwatch test · {inert(rule.name)}"
    results = []
    for channel in rule.channels:
        if channel.per_event:
            outcome = channel.send_event(event_body(payload, str(uuid.uuid4())),
                                         config.poll.timeout)  # fmt: skip
        else:
            outcome = channel.send_message(title, body, config.poll.timeout)
        store.log_send(rule.name, channel.id, channel.label, 1, outcome.ok, outcome.detail,
                       test=True)  # fmt: skip
        results.append(ChannelAnswer(channel.label, outcome))
    return results


# The `alerts` overview


@dataclass
class ChannelStatus:
    label: str
    kind: str
    last_at: str | None = None
    last_ok: bool | None = None
    last_outcome: str | None = None
    last_test: bool = False
    pending: int = 0
    sent: int = 0


@dataclass
class RuleStatus:
    rule: AlertRule
    channels: list[ChannelStatus]

    @property
    def summary(self) -> str:
        """The rule's filters in one line, as written in the config."""
        parts = [f"on {self.rule.on}"]
        for name, value in self.rule.filters.items():
            if isinstance(value, frozenset):
                parts.append(f"{name}: {', '.join(sorted(value))}")
            elif name == "query":
                parts.append(f"query: {' OR '.join(' '.join(a) for a in value.alternatives)}")
            else:
                parts.append(f"{name} {value:g}")
        parts.append(f"max_age {_human(self.rule.max_age)}")
        if self.rule.max_per_hour:
            parts.append(f"at most {self.rule.max_per_hour} messages/hour")
        if self.rule.secret:
            parts.append("webhooks signed")
        return "; ".join(parts)


def overview(config: Config, store: Store) -> list[RuleStatus]:
    last = store.last_sends()
    counts = store.outbox_counts()
    rows = []
    for rule in config.alerts:
        channels = []
        for ch in rule.channels:
            status = ChannelStatus(ch.label, ch.kind)
            row = last.get((rule.name, ch.id))
            if row is not None:
                status.last_at, status.last_ok = row["at"], bool(row["ok"])
                status.last_outcome, status.last_test = row["outcome"], bool(row["test"])
            status.pending = counts.get((rule.name, ch.id, "pending"), 0)
            status.sent = counts.get((rule.name, ch.id, "sent"), 0)
            channels.append(status)
        rows.append(RuleStatus(rule, channels))
    return rows


def _human(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


__all__ = [
    "ALERT_EVENTS",
    "RULE_FILTERS",
    "AlertRule",
    "DeliveryReport",
    "Queue",
    "check_channels",
    "deliver",
    "inert",
    "parse_duration",
    "url_problem",
]
