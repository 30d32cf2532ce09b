"""`mentionwatch watch`: every source on its own schedule, alerts after every save.

One asyncio loop runs a task per enabled source: poll it (the same Poller as `poll`, limited
to that source), then sleep its interval with jitter, or until the rate limit it hit resets;
a slow or limited source delays only itself. After each poll, spike rules look at the volume
(`trendalerts`); a timer queues each digest when it is due. Alerts go out from a delivery
thread with its own database connection, woken after every save, so a slow channel never
delays a poll.

SIGINT/SIGTERM cancel the source tasks at their next await (a save is one synchronous
transaction, so it is never cut in half), flush the outbox with a short deadline, and return.
Nothing accumulates per poll: each source keeps only its latest status.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from mentionwatch import alerts, delivery, team, trendalerts
from mentionwatch.config import Config, SourceSettings
from mentionwatch.models import JobResult, PollReport, utcnow
from mentionwatch.poller import Poller
from mentionwatch.sources import registry
from mentionwatch.store import Store
from mentionwatch.trends import local_zone

JITTER = 0.1  # each wait is the interval ± 10%, so sources drift apart instead of bunching
SHUTDOWN_FLUSH = 2.5  # seconds the last flush may take after a stop signal
# Then, of the second finish() waits beyond it, what the senders get to finish the message
# they are sending (they send no more) before the process ends.
SHUTDOWN_LAST_ANSWERS = 0.5
TREND_LOOK = 60.0  # seconds between looks at the digest schedule, at most
SPIKE_GAP = 60.0  # seconds between looks at spikes after saves, at least
SPIKE_RECHECK = 300.0  # with nothing new, spikes are looked at this often (episodes end)
ERROR_PAUSE = 2.0  # seconds the delivery thread waits after a failure (the database away)


@dataclass
class SourceStatus:
    """The latest poll of one source, and when the next one is due."""

    name: str
    interval: float
    polls: int = 0
    last_at: datetime | None = None
    new: int = 0
    fetched: int = 0
    errors: list[str] = field(default_factory=list)
    next_at: float = 0.0  # time.time() of the next poll
    polling: bool = False


@dataclass
class WatchStatus:
    sources: dict[str, SourceStatus]
    delivered: int = 0
    failing: dict[str, str] = field(default_factory=dict)  # channel label -> last error
    polls: int = 0


def interval_for(settings: SourceSettings, config: Config, override: float | None) -> float:
    """Seconds between polls: --interval, else the source's own `interval`, else [poll]
    interval (but never more often than the source's default: X bills per read)."""
    if override:
        return override
    if settings.interval:
        return settings.interval
    floor = getattr(registry().get(settings.name), "default_interval", None) or 0.0
    return max(config.poll.interval, floor)


class Watcher:
    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        interval: float | None = None,
        once: bool = False,
        alerting: bool = True,
        notify: Callable[[str], None] | None = None,
        on_poll: Callable[[SourceStatus, PollReport], None] = lambda status, report: None,
        on_delivery: Callable[[delivery.ChannelReport], None] = lambda report: None,
    ) -> None:
        self.config = config
        self.store = store
        self.once = once
        self.alerting = alerting and bool(config.alerts)
        self.notify = notify
        self.on_poll = on_poll
        self.on_delivery = on_delivery
        chosen = Poller(config, store).settings()  # raises for nothing to poll
        Poller(config, store).check_applies()
        self.status = WatchStatus(
            {s.name: SourceStatus(s.name, interval_for(s, config, interval)) for s in chosen}
        )
        self.queue = alerts.Queue(config.alerts) if self.alerting else None
        self.failed = False  # a source or channel failed (--once exits 1)
        self._trend_rules = any(r.on in ("spike", "digest") for r in config.alerts)
        self._saved = False  # new mentions since spikes were last looked at
        self._poke = asyncio.Event()  # set by a save: the trend task looks soon
        self._stop: asyncio.Event | None = None
        self._deliveries: _DeliveryThread | None = None
        # On a shared database several watch processes split the jobs (team.Leases).
        self.leases = team.Leases(store) if store.shared else None
        self._noted: dict[str, str] = {}  # what failed -> the line said about it (see _note)

    def run(self) -> None:
        """Poll until stopped (or once, with --once), delivering alerts after every save."""
        if self.alerting:
            self._deliveries = _DeliveryThread(self.config, self._delivered,
                                               partial(self._note, "alerts"))  # fmt: skip
            self._deliveries.start()
        try:
            asyncio.run(self._main())
        finally:
            self._finish()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    @property
    def stranded(self) -> bool:
        """Senders are left inside their requests (or the delivery thread is, past its
        grace): the process must end without waiting for them (see delivery.Dispatcher)."""
        return self._deliveries is not None and self._deliveries.stranded

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Not on Windows, nor outside the main thread: Ctrl-C then raises as usual.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stop.set)
        start = time.time()
        polls = []
        for i, status in enumerate(self.status.sources.values()):
            # The first polls go out at once, a moment apart, not in one burst.
            status.next_at = start + min(0.2 * i, status.interval * JITTER)
            polls.append(asyncio.create_task(self._source(status)))
        tasks = list(polls)
        if self.alerting and not self.once and self._trend_rules:
            tasks.append(asyncio.create_task(self._trend_alerts()))
        if self.leases is not None:
            tasks.append(asyncio.create_task(self._keep_leases()))
        stopper = asyncio.create_task(self._stop.wait())
        if self.once:  # done when every source has polled once (lease renewal never ends)
            everything = asyncio.gather(*polls, return_exceptions=True)
            either: list[asyncio.Future[Any]] = [stopper, everything]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        else:
            await stopper
        for task in [*tasks, stopper]:
            task.cancel()  # a save is synchronous: cancelling only ever interrupts a fetch
        await asyncio.gather(*tasks, stopper, return_exceptions=True)

    async def _source(self, status: SourceStatus) -> None:
        assert self._stop is not None
        while True:
            delay = status.next_at - time.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                    return
                except TimeoutError:
                    pass
            status.polling = True
            take = None
            if self.leases is not None:
                take = partial(self.leases.take, status.name, team.lease_seconds(status.interval))
            poller = Poller(self.config, self.store, only_sources=[status.name],
                            notify=self.notify, queue=self.queue, take=take)  # fmt: skip
            try:
                report = await poller.arun()
            except Exception as exc:  # e.g. the database is locked: try again next time
                report = PollReport([JobResult(status.name, "*", error=f"{status.name}: {exc}")])
            status.polling = False
            if self.leases is not None:
                try:
                    self.leases.done(status.name)
                except Exception as exc:  # the database is away: the lease simply expires
                    self._note("leases", exc)
            self._polled(status, report)
            if report.new:
                self._saved = True
                self._poke.set()
            queued = self._check(trendalerts.check) if self.once else 0
            if self._deliveries and (report.new or queued):
                self._deliveries.kick()
            if self.once:
                return

    async def _trend_alerts(self) -> None:
        """Spikes and digests. Spikes are looked at soon after new mentions are saved, but
        at most once a minute (a look reads two weeks of counts per term, and the shortest
        window is 15 minutes), and every few minutes regardless (an episode ends in quiet);
        each digest at its time. A look at least every minute: a sleeping machine's timers do
        not count the time it slept."""
        assert self._stop is not None
        last = time.monotonic() - SPIKE_GAP  # the first save is looked at at once
        while True:
            gap = time.monotonic() - last
            queued = 0
            if (self._saved and gap >= SPIKE_GAP) or gap >= SPIKE_RECHECK:
                self._saved, last = False, time.monotonic()
                queued += self._check(trendalerts.check_spikes)
            queued += self._check(trendalerts.check_digests)
            if queued and self._deliveries:
                self._deliveries.kick()
            now = utcnow()
            wait = TREND_LOOK
            due = trendalerts.next_digest_at(self.config, now, local_zone())
            if due is not None:
                wait = min(wait, (due - now).total_seconds() + 0.05)
            if self._saved:
                wait = min(wait, last + SPIKE_GAP - time.monotonic())
            self._poke.clear()
            if await self._sleep(max(0.05, wait)):
                return

    async def _keep_leases(self) -> None:
        """Renew the leases of the jobs being polled, so a long poll (a rate-limit wait, a
        big backfill) keeps its jobs; and say this worker is alive."""
        assert self.leases is not None
        shortest = min(s.interval for s in self.status.sources.values())
        beat = max(0.2, team.lease_seconds(shortest) / 3)
        while not await self._sleep(beat):
            try:
                self.leases.renew(team.lease_seconds(shortest))
            except Exception as exc:  # the database is briefly away: the next beat retries
                self._note("leases", exc)
            else:
                self._noted.pop("leases", None)

    def _note(self, what: str, exc: Exception) -> None:
        """Say what failed, once until it changes (a beat several times a second must not
        print a line each while the database is away)."""
        line = f"{what}: {type(exc).__name__}: {exc}"
        if self._noted.get(what) != line and self.notify:
            self.notify(line)
        self._noted[what] = line

    async def _sleep(self, seconds: float) -> bool:
        """Wait that long, or until a save pokes; True when watch is stopping."""
        assert self._stop is not None
        waits = [asyncio.ensure_future(e.wait()) for e in (self._stop, self._poke)]
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        return self._stop.is_set()

    def _check(self, look: Callable[[Config, Store], int]) -> int:
        """Spike and digest alerts queued by `look`; a failure is a note, never the end of
        watch (the next look tries again)."""
        if not self.alerting:
            return 0
        try:
            return look(self.config, self.store)
        except Exception as exc:  # e.g. the database is locked by a long write elsewhere
            self.failed = True
            if self.notify:
                self.notify(f"spike and digest alerts: {type(exc).__name__}: {exc}")
            return 0

    def _polled(self, status: SourceStatus, report: PollReport) -> None:
        status.polls += 1
        self.status.polls += 1
        status.last_at = utcnow()
        status.new, status.fetched = report.new, report.fetched
        status.errors = [r.error for r in report.failures if r.error]
        self.failed = self.failed or bool(status.errors)
        wait = status.interval * random.uniform(1 - JITTER, 1 + JITTER)
        limited = [r.retry_after for r in report.results if r.retry_after]
        if limited:  # the platform said when its limit resets: not a moment before
            wait = max(wait, max(limited) + 1.0)
        status.next_at = time.time() + wait
        self.on_poll(status, report)

    def _delivered(self, report: delivery.ChannelReport) -> None:
        self.status.delivered += report.delivered
        if report.error:
            self.status.failing[report.label] = report.error
            self.failed = True
        elif report.delivered:
            self.status.failing.pop(report.label, None)
        self.on_delivery(report)

    def _finish(self) -> None:
        if self.leases is not None:
            with contextlib.suppress(Exception):  # unreturned leases simply expire
                self.leases.give_back()
        if self._deliveries is None:
            return
        # A second signal during the last flush must not kill it halfway.
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            self._deliveries.finish(None if self.once else SHUTDOWN_FLUSH)
        finally:
            signal.signal(signal.SIGTERM, previous)


class _DeliveryThread(threading.Thread):
    """Owns a Dispatcher (and a database connection of its own): sends after every kick,
    retries failed deliveries when their backoff ends, and flushes once more at the end."""

    def __init__(
        self,
        config: Config,
        on_report: Callable[[delivery.ChannelReport], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        super().__init__(name="mentionwatch-alerts", daemon=True)
        self.config = config
        self.on_report = on_report
        self.on_error = on_error
        self._ready = threading.Event()
        self._dispatcher: delivery.Dispatcher | None = None
        self._grace: float | None = None
        self._done = threading.Event()

    def kick(self) -> None:
        self._ready.wait()
        if self._dispatcher is not None:
            self._dispatcher.post("kick")

    def finish(self, grace: float | None) -> None:
        """Stop after one last flush; with `grace`, give the channels that long at most."""
        self._grace = grace
        self._ready.wait()
        if self._dispatcher is not None:
            self._dispatcher.post("stop")
        self.join(None if grace is None else grace + 1.0)

    @property
    def stranded(self) -> bool:
        """Still inside a request past its grace, or its Dispatcher left senders there."""
        dispatcher = self._dispatcher
        return self.is_alive() or bool(dispatcher is not None and dispatcher.stranded)

    def run(self) -> None:
        try:
            store = Store(self.config.database)
        finally:
            self._ready.set()  # kick() and finish() never wait for a thread that failed
        try:
            self._dispatcher = dispatcher = delivery.Dispatcher(self.config, store)
            word: str | None = "kick"  # the backlog of earlier runs, at once
            while True:
                try:
                    if word != "stop":
                        self._report(dispatcher.start(respect_backoff=word != "kick"))
                    finished, word = dispatcher.collect(self._wait(store, dispatcher))
                    self._report(finished)
                except Exception as exc:  # e.g. the database is away: never the end of alerts
                    self.on_error(exc)  # (an answer not recorded is sent again: at least once)
                    word = self._pause(dispatcher)
                if word == "stop":
                    break
            try:
                self._flush(dispatcher)
            except Exception as exc:  # what is left stays pending for the next run
                self.on_error(exc)
        finally:
            store.close()

    def _pause(self, dispatcher: delivery.Dispatcher) -> str | None:
        """After a failure, wait a little (a stop ends the wait) before trying again."""
        try:
            return dispatcher.collect(ERROR_PAUSE)[1]
        except Exception:  # recording an answer failed too: try again after the pause
            time.sleep(ERROR_PAUSE)
            return None

    def _flush(self, dispatcher: delivery.Dispatcher) -> None:
        if self._grace is not None:
            dispatcher.timeout = min(dispatcher.timeout, delivery.SHUTDOWN_TIMEOUT)
        end = None if self._grace is None else time.monotonic() + self._grace
        # Again and again: a channel busy when the last save came in has that one to send.
        while True:
            self._report(dispatcher.start(respect_backoff=True))
            if not dispatcher.busy:
                break
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                break
            self._report(dispatcher.collect(left, until_idle=True)[0])
        self._report(dispatcher.abandon(SHUTDOWN_LAST_ANSWERS))

    def _wait(self, store: Store, dispatcher: delivery.Dispatcher) -> float:
        """Until the next retry is due (re-checked at least every 30 s)."""
        due = store.next_delivery_at()
        if due is None:
            return 30.0
        left = (due - utcnow()).total_seconds()
        # A busy channel's deliveries are due but in flight (here or in another process that
        # holds the channel's lock): wait for the answer instead.
        waiting = dispatcher.busy or dispatcher.elsewhere
        return min(30.0, max(left, 0.5 if waiting else 0.05))

    def _report(self, reports: list[delivery.ChannelReport]) -> None:
        for report in reports:
            if not report.elsewhere:  # another process sends that channel: its news, not ours
                self.on_report(report)
