"""Sending the outbox: every pending delivery to its channel, each channel in its own thread.

A delivery is marked sent only when its channel accepts it (a webhook answers 2xx, Apprise
reports success, a command exits 0); otherwise it stays pending and is tried again with
backoff, always with the same delivery ID. A failing or hung channel never holds up the
others. People channels (Apprise) get several mentions of one flush grouped, and at most
`max_per_hour` messages; webhooks and commands get one event per mention.

Also here: test sends (`alerts test`) and the overview `alerts` prints.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from mentionwatch.alerts import AlertRule
from mentionwatch.channels import (
    Channel,
    Message,
    Outcome,
    event_body,
    event_message,
    grouped_message,
    inert,
    single_message,
)
from mentionwatch.models import Delivery, utcnow

if TYPE_CHECKING:
    from mentionwatch.config import Config
    from mentionwatch.store import Store

RETRY_FIRST, RETRY_MAX = 5.0, 900.0  # backoff after a failed delivery, seconds
SHUTDOWN_TIMEOUT = 2.0  # per request when flushing on exit
# A channel silent this many timeouts after its last message began is given up on by `poll`
# (its deliveries stay pending): a webhook or command ends within one timeout, but Apprise's
# services time out per read, so one that trickles its answer never ends. A message may take
# a few requests (Matrix logs in, joins, sends).
SILENCE_TIMEOUTS = 3


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
    elsewhere: bool = False  # another process is sending this channel's deliveries now


@dataclass
class DeliveryReport:
    channels: list[ChannelReport] = field(default_factory=list)
    stranded: int = 0  # senders left inside their request (Dispatcher.stranded)

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


# What the channel threads put in the Dispatcher's queue: (rule, channel) and what was sent
# (None: that channel is done), or a word from `post`.
_Answer = tuple[tuple[str, str], _Sent | None] | str


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
        self.results: queue.Queue[_Answer] = queue.Queue()
        self.busy: dict[tuple[str, str], ChannelReport] = {}
        # One process at a time sends a (rule, channel)'s deliveries (several watch workers
        # on PostgreSQL, a cron poll beside a watch on SQLite): it holds that channel's lock
        # (store.exclusive) from reading them to marking them.
        self._locks: dict[tuple[str, str], contextlib.ExitStack] = {}
        self.elsewhere: set[tuple[str, str]] = set()  # channels another process is sending
        self._stopping = threading.Event()  # abandon(): senders stop after what they send
        self._heard: dict[tuple[str, str], float] = {}  # busy channel -> its last answer
        # Senders left inside their request (give_up, abandon): the process must not wait
        # for them when it ends (an Apprise service that trickles its answer holds one).
        self.stranded = 0

    def start(self, respect_backoff: bool = False) -> list[ChannelReport]:
        """Start sending what is pending (with respect_backoff, only what is due) on every
        channel not already busy. Returns the reports of channels held by their hourly cap,
        and of those another process is sending right now."""
        now = utcnow() if respect_backoff else None
        rules = {r.name: r for r in self.config.alerts}
        work, orphans = self._work(self.store.due_deliveries(now), rules)
        if orphans:
            self.store.mark_dropped(orphans, "its rule or channel is no longer in the config")
        if not work:
            return []
        # Locked, what is pending is read again: another process may have sent some of it
        # between the first read and the lock.
        self.elsewhere = {key for key in work if not self._lock(key)}
        held = [ChannelReport(key[0], _label(rules, key), pending=len(work[key]), elsewhere=True)
                for key in self.elsewhere]  # fmt: skip
        again, _ = self._work(self.store.due_deliveries(now), rules)
        for key in set(work) - self.elsewhere - set(again):
            self._release(key)  # sent by another process meanwhile
        for key, deliveries in again.items():
            if key not in self._locks:
                continue
            rule = rules[key[0]]
            channel = rule.channel(key[1])
            assert channel is not None
            report = ChannelReport(rule.name, channel.label, pending=len(deliveries))
            room = _room(self.store, rule, channel)
            if room == 0:  # the hourly cap is used up: they wait, grouped, for the next hour
                report.held = len(deliveries)
                held.append(report)
                self._release(key)
                continue
            self.busy[key] = report
            self._heard[key] = time.monotonic()
            threading.Thread(
                target=_channel_worker,
                args=(
                    key,
                    rule,
                    channel,
                    deliveries,
                    room,
                    self.timeout,
                    self.results,
                    self._stopping,
                ),
                daemon=True,  # a hung channel must never keep the process alive
            ).start()
        return held

    def _work(
        self, due: list[Delivery], rules: dict[str, AlertRule]
    ) -> tuple[dict[tuple[str, str], list[Delivery]], list[int]]:
        """Due deliveries by (rule, channel), without the busy channels; and the ids of those
        whose rule or channel is gone."""
        work: dict[tuple[str, str], list[Delivery]] = {}
        orphans = []
        for d in due:
            rule = rules.get(d.alert)
            if rule is None or rule.channel(d.channel) is None:
                orphans.append(d.id)
            elif (d.alert, d.channel) not in self.busy:
                work.setdefault((d.alert, d.channel), []).append(d)
        return work, orphans

    def _lock(self, key: tuple[str, str]) -> bool:
        """Take the channel's lock (True), or False when another process holds it."""
        from mentionwatch.store import Held

        if key in self._locks:
            return True
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(self.store.exclusive(_lock_name(*key)))
        except Held:
            return False
        self._locks[key] = stack
        return True

    def _release(self, key: tuple[str, str]) -> None:
        stack = self._locks.pop(key, None)
        if stack is not None:
            stack.close()

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
            if key not in self.busy:  # a channel given up on (give_up) answers late: ignored
                continue
            self._heard[key] = time.monotonic()
            if sent is None:
                finished.append(self.busy.pop(key))
                self._release(key)  # after its deliveries were marked: see start
            else:
                _record(self.store, key, sent, self.busy[key])
        return finished, None

    def silent_until(self) -> float | None:
        """The time.monotonic() when the first busy channel has been silent too long."""
        limit = SILENCE_TIMEOUTS * self.timeout
        return min((self._heard[key] + limit for key in self.busy), default=None)

    def give_up(self) -> list[ChannelReport]:
        """The busy channels silent too long, given up on: their deliveries stay pending (one
        that arrives meanwhile may be sent again: at least once) and their lock is released.
        Their senders are left inside their request; what they answer later is ignored."""
        limit = SILENCE_TIMEOUTS * self.timeout
        now = time.monotonic()
        quiet = [key for key in self.busy if now - self._heard[key] >= limit]
        reports = []
        for key in quiet:
            report = self.busy.pop(key)
            report.error = f"no answer within {limit:g}s; sent again next time"
            self._release(key)
            reports.append(report)
        self.stranded += len(quiet)
        return reports

    def post(self, word: str) -> None:
        """Wake `collect` from another thread (watch: "kick" after a save, "stop")."""
        self.results.put(word)

    def abandon(self, wait: float = 0.0) -> list[ChannelReport]:
        """At shutdown: the senders stop after the message they are sending, whose answers
        are recorded for up to `wait` seconds; the channels still busy then are left, their
        deliveries pending. Waiting keeps the process from ending while a sender is still
        inside its request: a daemon thread that wakes up while the interpreter shuts down
        can crash it (SIGSEGV)."""
        self._stopping.set()
        finished: list[ChannelReport] = []
        end = time.monotonic() + wait
        while self.busy and (remaining := end - time.monotonic()) > 0:
            finished += self.collect(remaining, until_idle=True)[0]  # a posted word ends one
        left = list(self.busy.values())
        self.stranded += len(left)
        for report in left:
            report.error = report.error or "no answer before shutdown; sent again next time"
        for key in list(self.busy):
            self._release(key)
        self.busy.clear()
        return finished + left


def deliver(
    config: Config, store: Store, *, timeout: float | None = None, deadline: float | None = None
) -> DeliveryReport:
    """Send every pending delivery now and wait for the answers (until `deadline`, a
    time.monotonic() value, at most). Nothing raises for a channel: failures are reported."""
    dispatcher = Dispatcher(config, store, timeout)
    report = DeliveryReport(dispatcher.start())
    while dispatcher.busy:
        end = dispatcher.silent_until()
        if deadline is not None:
            end = min(end or deadline, deadline)
        wait = None if end is None else max(0.0, end - time.monotonic())
        report.channels += dispatcher.collect(wait, until_idle=True)[0]
        if deadline is not None and time.monotonic() >= deadline:
            break
        report.channels += dispatcher.give_up()  # a channel hung inside a request
    report.channels += dispatcher.abandon()
    report.stranded = dispatcher.stranded
    return report


def _lock_name(alert: str, channel: str) -> str:
    """The name of a (rule, channel)'s sending lock (on SQLite a file beside the database,
    so it is made of safe characters whatever the rule is called)."""
    digest = hashlib.sha256(f"{alert}\0{channel}".encode()).hexdigest()[:16]
    return f"deliver-{digest}"


def _label(rules: dict[str, AlertRule], key: tuple[str, str]) -> str:
    channel = rules[key[0]].channel(key[1])
    return channel.label if channel is not None else key[1]


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
        # Not before the receiver said it would take more (a 429's Retry-After): watch waits.
        delay = max(retry_delay(sent.attempts + 1), sent.outcome.retry_after or 0.0)
        retry_at = utcnow() + timedelta(seconds=delay)
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
    results: queue.Queue[_Answer],
    stopping: threading.Event,
) -> None:
    try:
        if channel.per_event:
            batches: Iterator[tuple[list[Delivery], Callable[[], Outcome]]] = (
                ([d], partial(channel.send_event, event_body(d.payload, d.delivery), timeout))
                for d in deliveries
            )
        else:
            batches = _messages(rule, channel, deliveries, room, timeout)
        left = list(deliveries)
        for batch, send in batches:
            if stopping.is_set():  # shutdown: the rest stay pending, untried
                return
            outcome = send()
            results.put((key, _Sent([d.id for d in batch], outcome,
                                    max(d.attempts for d in batch))))  # fmt: skip
            done = {d.id for d in batch}
            left = [d for d in left if d.id not in done]
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
    """The messages a people channel gets: one per mention, or grouped, within the cap; one
    per pile-up or digest (those wait for the next hour beyond the cap)."""
    if room == 0:
        return
    events = [d for d in deliveries if d.event != "mention"]
    for d in events[:room]:
        message = event_message(rule.name, d.payload)
        yield [d], partial(channel.send_message, message.title, message.text, timeout,
                           markdown=message.markdown, html=message.html)  # fmt: skip
    if room is not None:
        room = max(0, room - len(events))
        if room == 0:
            return
    deliveries = [d for d in deliveries if d.event == "mention"]
    if not deliveries:
        return
    recs = [d.payload.get("mention") or {} for d in deliveries]
    if rule.group or (room is not None and len(deliveries) > room):
        singles = 0 if rule.group else (room or 1) - 1
    else:
        singles = len(deliveries)
    for d, rec in zip(deliveries[:singles], recs, strict=False):
        yield [d], partial(channel.send_message, *single_message(rule.name, rec), timeout)
    rest, rest_recs = deliveries[singles:], recs[singles:]
    if rest:
        if len(rest) == 1:
            title, body = single_message(rule.name, rest_recs[0])
        else:
            title, body = grouped_message(rule.name, rest_recs)
        yield rest, partial(channel.send_message, title, body, timeout)


# Test sends


SAMPLE_TEXT = (
    "This is a test alert from mentionwatch. If you can read it here, this channel works: "
    "new mentions that match the rule will arrive like this."
)
SAMPLE_SPIKE_TEXT = (
    "This is a test alert from mentionwatch: a made-up pile-up. If you can read it here, this "
    "channel works: when mentions pile up far above their usual rate, you hear it like this."
)


def sample_record(text: str = SAMPLE_TEXT) -> dict[str, Any]:
    """A made-up mention's JSONL record, made as every record is (render.record), so a
    receiver checking the record's keys sees each of them in a test send too."""
    from mentionwatch.models import Mention
    from mentionwatch.render import record

    now = utcnow()
    sample = Mention(
        source="mentionwatch", native_id="test", text=text, created_at=now,
        author="mentionwatch", author_name="mentionwatch", sentiment="neutral", polarity=0.0,
        id=0, fetched_at=now,
    )  # fmt: skip
    return record(sample)


@dataclass(frozen=True)
class ChannelAnswer:
    label: str
    outcome: Outcome
    stranded: bool = False  # its sender was left inside its request (see _answer_within)


def send_test(config: Config, store: Store, rule: AlertRule) -> list[ChannelAnswer]:
    """Send a sample event through each of the rule's channels (not through the outbox) and
    say what each answered; every answer is logged as a test."""
    rec = sample_record(SAMPLE_TEXT if rule.on == "mention" else SAMPLE_SPIKE_TEXT)
    if rule.on == "mention":
        payload = {"event": "mention", "alert": rule.name, "test": True, "mention": rec}
        message = Message(f"mentionwatch test · {inert(rule.name)}",
                          single_message(rule.name, rec)[1])  # fmt: skip
    else:  # a made-up pile-up, or the rule's last digest
        from mentionwatch.trendalerts import sample_event

        payload = sample_event(config, store, rule, rec)
        message = event_message(rule.name, payload)
        message = replace(message, title=f"mentionwatch test · {message.title}")
    results = []
    timeout = config.poll.timeout
    for channel in rule.channels:
        if channel.per_event:
            send = partial(channel.send_event, event_body(payload, str(uuid.uuid4())), timeout)
        else:
            send = partial(channel.send_message, message.title, message.text, timeout,
                           markdown=message.markdown, html=message.html)  # fmt: skip
        outcome = _answer_within(send, SILENCE_TIMEOUTS * timeout)
        stranded = outcome is None
        if outcome is None:
            outcome = Outcome(False, f"no answer within {SILENCE_TIMEOUTS * timeout:g}s")
        store.log_send(rule.name, channel.id, channel.label, 1, outcome.ok, outcome.detail,
                       test=True)  # fmt: skip
        results.append(ChannelAnswer(channel.label, outcome, stranded))
    return results


def _answer_within(send: Callable[[], Outcome], limit: float) -> Outcome | None:
    """What `send` answered, or None when it said nothing for `limit` seconds: a service
    that trickles its answer (Apprise's time out per read) must not hold the test. Its
    sender is then left inside its request, as Dispatcher.give_up leaves one."""
    answers: queue.Queue[Outcome | BaseException] = queue.Queue()

    def sender() -> None:
        try:
            answers.put(send())
        except BaseException as exc:  # raised again in the caller's thread
            answers.put(exc)

    threading.Thread(target=sender, name="mentionwatch-test-send", daemon=True).start()
    try:
        answer = answers.get(timeout=limit)
    except queue.Empty:
        return None
    if isinstance(answer, BaseException):
        raise answer
    return answer


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
