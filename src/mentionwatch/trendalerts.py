"""Spike and digest alerts: deciding when a pile-up or a digest is news, and queueing it.

`check_spikes` runs after every poll (`poll`; `watch` after each source's poll): for each
`on = "spike"` rule, each of its terms and each sentiment it names (or all sentiments
together), it compares the recent windows with that series' own baseline
(`trends.assess_spike`) and moves the rule's episode on (`spikes.step`). An episode's start,
and with `follow_up` its end, becomes one outbox row per channel in the transaction that
stores the new episode state: a crash can neither lose nor repeat the alert, and the subject
(term, sentiment, episode start, kind) keeps it to once per rule and channel even when a
cron `poll` and a `watch` look at the same moment.

`check_digests` runs after every poll and on `watch`'s timer: for each `on = "digest"` rule
whose last scheduled moment (`every`, local time) has no digest queued yet, it queues the
digest of the period that ended then. The subject is that moment, so a digest is queued once
however many processes look, and one that a sleeping machine missed goes out late, once. A
digest several periods late covers everything since the one before (at most
`MAX_LATE_PERIODS` periods), rather than arriving as a pile of digests at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from mentionwatch.alerts import AlertRule
from mentionwatch.models import OutboxItem, iso, parse_iso, utcnow

if TYPE_CHECKING:
    from mentionwatch.config import Config
    from mentionwatch.spikes import Assessment, SpikeSettings
    from mentionwatch.store import Store

MAX_LATE_PERIODS = 7  # a digest that late covers the last 7 days (or weeks), not more


def rule_terms(rule: AlertRule, config: Config) -> list[str]:
    """The terms a spike or digest rule is about: those it names, else every term."""
    chosen = rule.filters.get("terms")
    return [t.name for t in config.terms if not chosen or t.name in chosen]


def series(rule: AlertRule) -> list[str | None]:
    """A spike rule's sentiments, each its own series; None: every sentiment together."""
    return sorted(rule.filters.get("sentiment") or ()) or [None]


def _queue(store: Store, rule: AlertRule, event: str, subject: str, body: dict[str, Any]) -> int:
    payload = {"event": event, "alert": rule.name, event: body}
    items = [OutboxItem(rule.name, ch.id, event, subject, payload) for ch in rule.channels]
    return store.enqueue(items)


# Spikes


def check_spikes(
    config: Config, store: Store, now: datetime | None = None, zone: tzinfo | None = None
) -> int:
    """Move every spike rule's episodes on by one look; returns the deliveries queued."""
    rules = [r for r in config.alerts if r.on == "spike"]
    if not rules:
        return 0
    from mentionwatch import spikes, trends

    now = now or utcnow()
    zone = zone or trends.local_zone()
    queued = 0
    for rule in rules:
        settings = spikes.SpikeSettings(**rule.spike)  # type: ignore[arg-type]
        for term in rule_terms(rule, config):
            for sentiment in series(rule):
                found = trends.assess_spike(store, term, sentiment, zone, settings, now,
                                            rule.counted())  # fmt: skip
                if found is not None:
                    queued += _step(store, rule, term, sentiment, found, settings, now, zone)
    return queued


def _step(
    store: Store, rule: AlertRule, term: str, sentiment: str | None, found: Assessment,
    settings: SpikeSettings, now: datetime, zone: tzinfo,
) -> int:  # fmt: skip
    from mentionwatch.spikes import Episode, step

    stored = store.spike_state(rule.name, term, sentiment)
    episode, spike = step(found, Episode.loads(stored), settings, now)
    if spike is None and episode.dumps() == Episode.loads(stored).dumps():
        return 0  # nothing moved: no write, no lock
    with store.transaction():
        # Again inside the transaction: another process may have moved the episode meanwhile.
        stored = store.spike_state(rule.name, term, sentiment)
        episode, spike = step(found, Episode.loads(stored), settings, now)
        store.set_spike_state(rule.name, term, sentiment, episode.dumps())
        if spike is None or (spike.kind == "end" and not rule.follow_up):
            return 0
        from mentionwatch import trends, trendview

        window = trends.spike_window(store, term, sentiment, spike, base=rule.counted())
        body = trendview.spike_dict(term, sentiment, spike, window.examples, window.echoes)
        body["zone"] = trends.zone_name(zone)
        subject = f"{term}|{sentiment or '*'}|{iso(spike.started_at)}|{spike.kind}"
        return _queue(store, rule, "spike", subject, body)


# Digests


def check_digests(
    config: Config, store: Store, now: datetime | None = None, zone: tzinfo | None = None
) -> int:
    """Queue each digest rule's digest if its last scheduled moment has none yet; returns the
    deliveries queued."""
    rules = [r for r in config.alerts if r.on == "digest" and r.every is not None]
    if not rules:
        return 0
    from mentionwatch import trends

    now = now or utcnow()
    zone = zone or trends.local_zone()
    queued = 0
    for rule in rules:
        assert rule.every is not None
        due = rule.every.latest(now, zone)
        if _queued_until(store, rule) >= due:
            continue
        body = digest_event(config, store, rule, _since(rule, due, store, zone), due, zone)
        with store.transaction():
            if _queued_until(store, rule) < due:  # another process may have queued it
                queued += _queue(store, rule, "digest", iso(due) or "", body)
    return queued


def _queued_until(store: Store, rule: AlertRule) -> datetime:
    """The end of the last period this rule's digest was queued for (long ago: never)."""
    last = store.last_subject(rule.name, "digest")
    return parse_iso(last) if last else datetime.min.replace(tzinfo=UTC)


def _since(rule: AlertRule, due: datetime, store: Store, zone: tzinfo) -> datetime:
    """Where the digest ending at `due` starts: one period back, or back to the end of the
    last digest queued when that was longer ago (the machine slept), within a limit."""
    assert rule.every is not None
    since = rule.every.before(due, zone)
    last = store.last_subject(rule.name, "digest")
    if last:  # the first digest of a rule covers one period
        since = min(since, parse_iso(last))
    return max(since, rule.every.before(due, zone, MAX_LATE_PERIODS))


def digest_event(
    config: Config, store: Store, rule: AlertRule, since: datetime, until: datetime,
    zone: tzinfo,
) -> dict[str, Any]:  # fmt: skip
    """The `digest` object of a rule's event for [since, until)."""
    from mentionwatch import trends, trendview

    summary = trends.digest(store, since, rule_terms(rule, config), zone, rule.counted(), until)
    return {**trendview.digest_dict(summary), "every": str(rule.every)}


def next_digest_at(config: Config, now: datetime, zone: tzinfo) -> datetime | None:
    """The next scheduled moment of any digest rule (None: there are none)."""
    moments = [r.every.following(now, zone) for r in config.alerts if r.every is not None]
    return min(moments, default=None)


# Samples for `alerts test`


def sample_event(
    config: Config, store: Store, rule: AlertRule, example: dict[str, Any],
    now: datetime | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A test event for a spike or digest rule: a made-up pile-up with `example` as its one
    example; the digest of the rule's last period, from the database, as it would be sent."""
    from mentionwatch import trends

    now = now or utcnow()
    zone = trends.local_zone()
    if rule.every is not None:
        due = rule.every.latest(now, zone)
        body = digest_event(config, store, rule, rule.every.before(due, zone), due, zone)
    else:
        body = {
            "term": (rule_terms(rule, config) or ["your term"])[0], "sentiment": series(rule)[0],
            "kind": "start", "window_start": iso(now - timedelta(hours=1)),
            "window_end": iso(now), "count": 25, "baseline": 2.0, "p_value": 1e-9,
            "echoes": 0, "examples": [example], "zone": trends.zone_name(zone),
        }  # fmt: skip
    return {"event": rule.on, "alert": rule.name, "test": True, rule.on: body}


def check(config: Config, store: Store, now: datetime | None = None) -> int:
    """Spikes and due digests, after a poll; returns the deliveries queued."""
    if not any(r.on in ("spike", "digest") for r in config.alerts):
        return 0
    from mentionwatch.trends import local_zone

    zone = local_zone()
    return check_spikes(config, store, now, zone) + check_digests(config, store, now, zone)
