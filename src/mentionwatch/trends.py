"""Trends: counts over time, response figures, top sources and authors, spikes, digests.

Every number comes from an aggregate query in store.py; this module lays out the periods
(in the user's time zone, so a "day" is the user's day), fills the periods with no mentions
with zeros, and derives changes, shares and percentiles. `spikes.py` holds the detector;
`check_spike` is what the alert side calls once per poll, and `digest` is what a digest says.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mentionwatch.errors import UsageError
from mentionwatch.models import SENTIMENTS, Filters, Mention, parse_iso, utcnow
from mentionwatch.spikes import (
    BIN_SECONDS,
    Assessment,
    Episode,
    Spike,
    SpikeSettings,
    assess,
    check,
    fit,
    step,
)

if TYPE_CHECKING:
    from mentionwatch.store import Store

PERIODS = ("hour", "day", "week")
GROUPS = ("term", "source")
QUANTILES = (0.5, 0.9)


def local_zone(name: str | None = None) -> tzinfo:
    """The user's time zone: `name` (an IANA name such as Europe/Berlin), else $TZ, else the
    system's (/etc/localtime), else the fixed offset the clock has now."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(
                f"--tz: unknown time zone {name!r}; use an IANA name such as Europe/Berlin"
            ) from None
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        target = Path("/etc/localtime").resolve()
        candidates.append(
            str(target).split("zoneinfo/", 1)[1] if "zoneinfo/" in str(target) else ""
        )
    except OSError:
        pass
    for candidate in candidates:
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return datetime.now().astimezone().tzinfo or UTC


def zone_name(zone: tzinfo) -> str:
    """A zone as events carry it: its IANA name, or its fixed offset ("+05:30", "UTC")."""
    key = getattr(zone, "key", None)
    if key:
        return str(key)
    offset = zone.utcoffset(None) or timedelta(0)
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def zone_from_name(name: object) -> tzinfo:
    """The zone `zone_name` wrote (UTC for anything unreadable: a message still reads)."""
    from datetime import timezone
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    text = str(name or "UTC")
    found = re.fullmatch(r"([+-])(\d\d):(\d\d)", text)
    if found:
        minutes = int(found.group(2)) * 60 + int(found.group(3))
        return timezone(timedelta(minutes=-minutes if found.group(1) == "-" else minutes))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def period_start(moment: datetime, by: str, zone: tzinfo) -> datetime:
    """The local start of the hour, day or (ISO, Monday) week holding `moment`."""
    local = moment.astimezone(zone)
    if by == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = datetime(local.year, local.month, local.day, tzinfo=zone)
    if by == "week":
        day = _at_midnight(day.date() - timedelta(days=day.weekday()), zone)
    return day


def _at_midnight(date: Any, zone: tzinfo) -> datetime:
    return datetime(date.year, date.month, date.day, tzinfo=zone)


def next_period(start: datetime, by: str, zone: tzinfo) -> datetime:
    if by == "hour":  # real hours: a DST change makes a 23- or 25-hour day, not odd hours
        return (start.astimezone(UTC) + timedelta(hours=1)).astimezone(zone)
    days = 7 if by == "week" else 1
    return _at_midnight(start.date() + timedelta(days=days), zone)


def periods(start: datetime, end: datetime, by: str, zone: tzinfo) -> list[datetime]:
    """Local period starts covering [start, end]."""
    result = [period_start(start, by, zone)]
    while (following := next_period(result[-1], by, zone)) <= end:
        result.append(following)
    return result


@dataclass(slots=True)
class PeriodRow:
    """One row of `stats --format json|csv` (design.md's stats contract)."""

    # The table's columns, in order: each a field or property of the row.
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "period",
        "group",
        "total",
        "positive",
        "neutral",
        "negative",
        "unscored",
        "negative_share",
        "previous",
        "change",
    )

    period: datetime  # local start
    group: str | None
    positive: int = 0
    neutral: int = 0
    negative: int = 0
    unscored: int = 0  # no sentiment stored
    previous: int | None = None  # the total of the period before (same group)

    @property
    def total(self) -> int:
        return self.positive + self.neutral + self.negative + self.unscored

    @property
    def negative_share(self) -> float | None:
        return round(self.negative / self.total, 4) if self.total else None

    @property
    def change(self) -> float | None:
        """Relative change of the total against the period before (0.5 is +50%)."""
        if not self.previous:
            return None
        return round((self.total - self.previous) / self.previous, 4)

    def as_dict(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in self.COLUMNS} | {"period": self.period.isoformat()}


def period_rows(
    store: Store,
    filters: Filters,
    by: str = "day",
    group: str | None = None,
    zone: tzinfo = UTC,
    now: datetime | None = None,
) -> list[PeriodRow]:
    """Counts per period (and group), split by sentiment; periods with none hold zeros.

    The periods run from the period holding `filters.since` (or the first mention) to the
    one holding now (or the last mention, if one is dated later): summed, the totals are
    exactly the number of mentions `export` gives for the same filters (without --group).
    """
    if by not in PERIODS:
        raise UsageError(f"--by must be one of {', '.join(PERIODS)}, not {by!r}")
    if group is not None and group not in GROUPS:
        raise UsageError(f"--group must be one of {', '.join(GROUPS)}, not {group!r}")
    now = now or utcnow()
    span = store.span(filters)
    first = filters.since or (parse_iso(span[0]) if span else now)
    last = max(now, parse_iso(span[1])) if span else now
    starts = periods(first, last, by, zone)
    bounds = [(_stamp(s), _stamp(next_period(s, by, zone))) for s in starts]
    found = store.period_counts(filters, bounds, group) if span else []
    groups: list[str | None] = [None]
    if group is not None:
        totals: dict[str, int] = {}
        for _, name, _, count in found:
            totals[name or ""] = totals.get(name or "", 0) + count
        groups = [g for g in sorted(totals, key=lambda g: (-totals[g], g))]
    # Keyed by the UTC stamp, not the local time: the two 01:00s of a night that turns the
    # clocks back are equal as datetimes of one zone (fold is ignored), yet two periods.
    cells = {(g, _stamp(s)): PeriodRow(s, g) for g in groups for s in starts}
    for start, name, sentiment, count in found:
        row = cells[(name if group else None, start)]
        label = sentiment if sentiment in SENTIMENTS else "unscored"
        setattr(row, label, getattr(row, label) + count)
    rows = []
    for g in groups:
        previous = None
        for s in starts:
            row = cells[(g, _stamp(s))]
            row.previous = previous
            previous = row.total
            rows.append(row)
    return rows


def _stamp(moment: datetime) -> str:
    """A time in the stored format (ISO 8601 UTC with Z), as SQL compares it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The delay columns of the responses table: seconds from creation to the first reply or to
# handled, at each quantile.
_DELAY_COLUMNS = {
    f"{until}_{'median' if q == 0.5 else f'p{round(q * 100)}'}_seconds": (until, q)
    for until in ("reply", "handled")
    for q in QUANTILES
}


@dataclass(slots=True)
class ResponseRow:
    """How fast and how often mentions from one source (or "all") are answered."""

    # The table's columns, in order: fields and properties of the row, then the delays.
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "source",
        "mentions",
        "answered",
        "handled",
        "ignored",
        "answered_or_handled",
        "answered_or_handled_share",
        *_DELAY_COLUMNS,
    )

    source: str
    mentions: int
    answered: int  # a reply posted, or written on the platform's page by hand
    handled: int  # marked handled now
    ignored: int
    answered_or_handled: int
    delays: dict[str, dict[float, float | None]] = field(default_factory=dict)
    # delays["reply"|"handled"][0.5|0.9]: seconds from the mention's creation

    @property
    def answered_or_handled_share(self) -> float | None:
        """Answered or handled, of the mentions not ignored (ignored ones needed nothing)."""
        wanted = self.mentions - self.ignored
        return round(self.answered_or_handled / wanted, 4) if wanted > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {c: self._value(c) for c in self.COLUMNS}

    def _value(self, column: str) -> Any:
        if column not in _DELAY_COLUMNS:
            return getattr(self, column)
        until, q = _DELAY_COLUMNS[column]
        value = self.delays.get(until, {}).get(q)
        return None if value is None else round(value)


def responses(store: Store, filters: Filters) -> list[ResponseRow]:
    """Per source, then "all": answered/handled shares and time to first reply and handled."""
    rows = [
        ResponseRow(
            r["source"],
            r["mentions"],
            r["answered"],
            r["handled"] or 0,
            r["ignored"] or 0,
            r["dealt"] or 0,
        )
        for r in store.response_counts(filters)
    ]
    if not rows:
        return []
    overall = ResponseRow(
        "all",
        *(
            sum(getattr(r, k) for r in rows)
            for k in ("mentions", "answered", "handled", "ignored", "answered_or_handled")
        ),
    )
    by_source = {r.source: r for r in rows}
    for until in ("reply", "handled"):
        for per_source, targets in ((True, by_source), (False, {"*": overall})):
            found = _quantiles(store.delay_quantiles(filters, until, QUANTILES, per_source))
            for key, row in targets.items():
                row.delays[until] = found.get(key, dict.fromkeys(QUANTILES))
    return [*rows, overall]


def _quantiles(ranked: Iterable[Any]) -> dict[str, dict[float, float | None]]:
    """Interpolate each quantile from the two ranked values the store returned."""
    values: dict[str, dict[int, float]] = {}
    sizes: dict[str, int] = {}
    for row in ranked:
        values.setdefault(row["source"], {})[row["rn"]] = float(row["seconds"])
        sizes[row["source"]] = row["n"]
    result: dict[str, dict[float, float | None]] = {}
    for source, ranks in values.items():
        n = sizes[source]
        result[source] = {}
        for q in QUANTILES:
            position = (n - 1) * q
            low = int(position)
            fraction = position - low
            below, above = ranks[low + 1], ranks.get(low + 2, ranks[low + 1])
            result[source][q] = below + (above - below) * fraction
    return result


@dataclass(slots=True)
class Stats:
    """Everything `stats` shows."""

    since: datetime | None
    by: str
    group: str | None
    zone: tzinfo
    rows: list[PeriodRow]
    sources: list[dict[str, Any]]
    authors: list[dict[str, Any]]
    responses: list[ResponseRow]
    overall: list[PeriodRow]  # the rows without groups (a mention counts once)

    def table(self, name: str) -> list[dict[str, Any]]:
        """The rows of one of TABLES, as `stats --format json|csv` lists them."""
        if name == "periods":
            return [r.as_dict() for r in self.rows]
        if name == "responses":
            return [r.as_dict() for r in self.responses]
        return self.sources if name == "sources" else self.authors

    def totals(self) -> PeriodRow:
        """All periods added up, each mention once."""
        whole = PeriodRow(self.overall[0].period if self.overall else utcnow(), None)
        for r in self.overall:
            for label in ("positive", "neutral", "negative", "unscored"):
                setattr(whole, label, getattr(whole, label) + getattr(r, label))
        return whole


def stats(
    store: Store,
    filters: Filters,
    by: str = "day",
    group: str | None = None,
    zone: tzinfo = UTC,
    limit: int = 10,
    now: datetime | None = None,
) -> Stats:
    now = now or utcnow()
    rows = period_rows(store, filters, by, group, zone, now)
    overall = period_rows(store, filters, by, None, zone, now) if group else rows
    sources = [{c: r[c] for c in TABLES["sources"]} for r in store.top(filters, "source", limit)]
    authors = [{c: r[c] for c in TABLES["authors"]} for r in store.top(filters, "author", limit)]
    return Stats(filters.since, by, group, zone, rows, sources, authors,
                 responses(store, filters), overall)  # fmt: skip


# The tables `stats --format json|csv` lists, and their columns in order: the header of an
# empty table, and the keys of each row (store.top's SQL names the top tables' columns).
TABLES: dict[str, tuple[str, ...]] = {
    "periods": PeriodRow.COLUMNS,
    "sources": ("source", "mentions", "negative", "reach", "top_reach"),
    "authors": ("source", "author", "mentions", "negative", "reach", "top_reach", "author_name"),
    "responses": ResponseRow.COLUMNS,
}


# Spikes


def spike_filters(term: str, sentiment: str | None, base: Filters | None = None) -> Filters:
    """What a spike series counts: every mention of the term (echoes included: a complaint
    repeated fifty times is a pile-up), any status, within `base` (a rule's sources and
    intents); one sentiment, or all that `base` allows."""
    base = base or Filters(statuses=())
    sentiments = (sentiment,) if sentiment else base.sentiments
    return replace(base, terms=(term,), sentiments=sentiments, statuses=(), since=None,
                   until=None, search=None)  # fmt: skip


def assess_spike(
    store: Store,
    term: str,
    sentiment: str | None,
    zone: tzinfo,
    settings: SpikeSettings | None = None,
    now: datetime | None = None,
    base: Filters | None = None,
) -> Assessment | None:
    """How the windows ending now compare with the series' baseline (None: too little
    history to judge). Read-only: the alert side moves the episode on with `spikes.step`."""
    settings = settings or SpikeSettings()
    now = now or utcnow()
    counts, history_start = _spike_counts(store, term, sentiment, now, now, settings, base)
    baseline = fit(counts, now, zone, settings, history_start)
    return None if baseline is None else assess(counts, now, baseline, settings)


def check_spike(
    store: Store,
    rule: str,
    term: str,
    sentiment: str | None,
    zone: tzinfo,
    settings: SpikeSettings | None = None,
    now: datetime | None = None,
    base: Filters | None = None,
) -> tuple[Episode, Spike | None]:
    """One poll's spike decision for one rule, term and sentiment, from the stored counts and
    the rule's stored episode. The caller saves the returned episode with
    `store.set_spike_state(rule, term, sentiment, episode.dumps())` in the transaction that
    queues the alert, so a crash can neither lose nor repeat the alert."""
    settings = settings or SpikeSettings()
    now = now or utcnow()
    episode = Episode.loads(store.spike_state(rule, term, sentiment))
    found = assess_spike(store, term, sentiment, zone, settings, now, base)
    return (episode, None) if found is None else step(found, episode, settings, now)


def _spike_counts(
    store: Store,
    term: str,
    sentiment: str | None,
    first: datetime,
    last: datetime,
    settings: SpikeSettings,
    base: Filters | None = None,
) -> tuple[dict[int, int], datetime | None]:
    """Bin counts covering what `check` reads at every moment from `first` to `last`, and
    when the term's history starts (its first mention of any sentiment)."""
    start = first - timedelta(seconds=BIN_SECONDS * (settings.recent_bins + settings.history_bins))
    filters = spike_filters(term, sentiment, base)
    counts = dict(
        store.bin_counts(filters, _stamp(start), _stamp(last + timedelta(seconds=1)), BIN_SECONDS)
    )
    span = store.span(replace(filters, sentiments=()))
    return counts, parse_iso(span[0]) if span else None


@dataclass(slots=True)
class SpikeWindow:
    """The mentions of a spike's window, as a message shows them."""

    examples: list[Mention]  # the ones to answer first, one per group of echoes
    echoes: int  # how many of the window's mentions repeat another post


def spike_window(
    store: Store,
    term: str,
    sentiment: str | None,
    spike: Spike,
    limit: int = 3,
    base: Filters | None = None,
) -> SpikeWindow:
    """A few mentions of the spike's window (an original rather than three copies of it) and
    how many of them are echoes."""
    from mentionwatch.triage import by_priority

    filters = replace(spike_filters(term, sentiment, base), since=spike.window_start)
    window = [m for m in store.mentions(filters, limit=500) if m.created_at <= spike.window_end]
    echoes = sum(m.echo_of is not None for m in window)
    groups: dict[int, Mention] = {m.id or 0: m for m in window if m.echo_of is None}
    for m in by_priority(window, len(window)):  # an original, else its most pressing echo
        groups.setdefault(m.echo_of or m.id or 0, m)
    return SpikeWindow(by_priority(list(groups.values()), limit), echoes)


def spike_examples(
    store: Store, term: str, sentiment: str | None, spike: Spike, limit: int = 3,
    base: Filters | None = None,
) -> list[Mention]:  # fmt: skip
    """A few mentions of the spike's window, the ones to answer first."""
    return spike_window(store, term, sentiment, spike, limit, base).examples


def scan_spikes(
    store: Store,
    term: str,
    sentiment: str | None,
    since: datetime,
    until: datetime,
    zone: tzinfo,
    settings: SpikeSettings | None = None,
    every: timedelta = timedelta(minutes=15),
    base: Filters | None = None,
) -> list[Spike]:
    """The episodes that began in [since, until], found as polls every `every` would have
    found them (for digests and `stats`, which need no alert rule to have run)."""
    settings = settings or SpikeSettings()
    counts, history_start = _spike_counts(store, term, sentiment, since, until, settings, base)
    if not any(b * BIN_SECONDS >= since.timestamp() for b in counts):
        return []  # nothing new in the period: nothing can have spiked
    found, episode = [], Episode()
    moment, baseline, fitted = since, None, None
    while moment <= until:
        hour = moment.replace(minute=0, second=0, microsecond=0)
        if hour != fitted:  # the baseline moves by 1/336 an hour: refit hourly
            baseline, fitted = fit(counts, moment, zone, settings, history_start), hour
        if baseline is not None:
            episode, spike = check(counts, moment, episode, zone, settings, baseline=baseline)
            if spike is not None and spike.kind == "start":
                found.append(spike)
        moment += every
    return found


# Digests


@dataclass(slots=True)
class Counts:
    total: int = 0
    positive: int = 0
    neutral: int = 0
    negative: int = 0
    open: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "total": self.total,
            "positive": self.positive,
            "neutral": self.neutral,
            "negative": self.negative,
            "open": self.open,
        }


@dataclass(slots=True)
class SpikeReport:
    term: str
    sentiment: str | None
    spike: Spike
    examples: list[Mention]
    echoes: int = 0  # mentions of the window that repeat another post


@dataclass(slots=True)
class Digest:
    """What a digest says about [since, until) against the period of the same length before."""

    since: datetime
    until: datetime
    zone: tzinfo
    current: Counts
    previous: Counts
    top_open: list[Mention]
    unanswered_negative: list[Mention]
    spikes: list[SpikeReport]
    responses: list[ResponseRow]

    @property
    def change(self) -> float | None:
        if not self.previous.total:
            return None
        return round((self.current.total - self.previous.total) / self.previous.total, 4)


def _counts(store: Store, filters: Filters, since: datetime, until: datetime) -> Counts:
    bounds = [(_stamp(since), _stamp(until))]
    window = replace(filters, since=since, until=None, statuses=())
    result = Counts()
    for _, _, sentiment, count in store.period_counts(window, bounds):
        result.total += count
        if sentiment in SENTIMENTS:
            setattr(result, sentiment, getattr(result, sentiment) + count)
    for _, _, _, count in store.period_counts(replace(window, statuses=("open",)), bounds):
        result.open += count
    return result


def digest(
    store: Store,
    since: datetime,
    terms: Sequence[str] = (),
    zone: tzinfo = UTC,
    filters: Filters | None = None,
    until: datetime | None = None,
    limit: int = 5,
    settings: SpikeSettings | None = None,
) -> Digest:
    """The summary of one period: counts and their change, what to answer first, the unhappy
    mentions nobody answered, the spikes that began, and response times."""
    from mentionwatch.triage import by_priority

    until = until or utcnow()
    base = filters or Filters(statuses=())
    length = until - since
    current = _counts(store, base, since, until)
    previous = _counts(store, base, since - length, since)
    period = replace(base, since=since, until=until)
    window = replace(period, statuses=("open",))
    top_open = by_priority(list(store.mentions(window)), limit)
    unanswered = []
    if "negative" in (base.sentiments or SENTIMENTS):
        unanswered = store.unanswered(replace(window, sentiments=("negative",)), limit)
    reports = []
    # Every sentiment the filters allow together, and the unhappy ones on their own.
    series: list[str | None] = [None]
    if "negative" in (base.sentiments or SENTIMENTS) and base.sentiments != ("negative",):
        series.append("negative")
    for term in terms or _terms_in(store, period):
        for sentiment in series:
            found = scan_spikes(store, term, sentiment, since, until, zone, settings, base=base)
            for spike in found:
                seen = spike_window(store, term, sentiment, spike, base=base)
                reports.append(SpikeReport(term, sentiment, spike, seen.examples, seen.echoes))
    reports.sort(key=lambda r: r.spike.window_start)
    return Digest(
        since,
        until,
        zone,
        current,
        previous,
        top_open,
        unanswered,
        reports,
        responses(store, period),
    )


def _terms_in(store: Store, filters: Filters) -> list[str]:
    return [str(r["term"]) for r in store.top(filters, "term", 50)]
