"""Pile-up (spike) detection: is a term's recent volume far above its own baseline?

Pure functions over counts in five-minute bins; no I/O. The alert side calls `check` once per
poll and each term (and sentiment), and stores the returned `Episode` so that an episode
alerts once, however many polls it lasts.

The method (chosen from the literature; `benchmarks/spike_eval.py` measures it):
- Baseline: the term's rate over the previous 14 days (the last day left out, so a storm in
  progress does not raise its own bar), with storm hours (beyond ~3 standard deviations)
  left out (a past storm does not either). A time-of-day profile (smoothed over neighbouring
  hours) and a weekday profile scale it, each only when the history shows one (a dispersion
  test at p < 0.001, Wilson-Hilferty) and shrunk towards 1 by pseudo-counts, so a quiet
  term's noise is not mistaken for a daily rhythm.
- Test: for windows of 15, 30, 60 minutes, 3 hours and a day ending now, the probability of
  at least the observed count under the baseline. Counts are Poisson when the history is,
  negative binomial (the Gamma-Poisson mixture, dispersion by the method of moments) when
  the history is burstier than Poisson; the rate estimate's own uncertainty (relative
  variance ~ 1/count behind it) is added to the dispersion. This is the scan statistic of
  syndromic surveillance (Kulldorff's temporal scan, the CDC's EARS and Farrington tail
  tests) rather than Huginn's mean + 3σ, which assumes normal counts and so fires
  constantly on a quiet term (mean 0.08 an hour, σ 0.29: two posts are "3σ").
- A window is a spike when its tail probability is below `p_value` (given for an hour;
  shorter windows need proportionally less, because a day holds 96 quarter-hours but 24
  hours and each length should raise false alarms equally rarely), it holds at least
  `min_count` mentions and at least `min_ratio` times the expected count: a quiet brand with
  2 a day is not in a storm at 5, and a busy brand's significant-but-small wobble is no storm.
- Episodes: the first spike window starts one; it lasts while any window stays elevated (a
  relaxed test) and ends after `quiet_minutes` without, with an optional "end" event.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

BIN_SECONDS = 300
MAX_DISPERSION = 1.0  # variance mu + mu**2: as bursty as a baseline is allowed to look


@dataclass(frozen=True, slots=True)
class SpikeSettings:
    min_count: int = 7  # a spike window holds at least this many mentions
    min_ratio: float = 3.0  # and at least this many times the expected count
    p_value: float = 2e-4  # and is this unlikely under the baseline (for a one-hour window)
    scaled: bool = True
    windows: tuple[int, ...] = (15, 30, 60, 180, 1440)  # minutes, ending now
    history_days: int = 14
    min_history_hours: int = 24  # less history than this: no judgement yet
    quiet_minutes: int = 60  # an episode ends after this long with no elevated window

    @property
    def history_bins(self) -> int:
        return self.history_days * 86400 // BIN_SECONDS

    @property
    def recent_bins(self) -> int:
        return max(self.windows) * 60 // BIN_SECONDS + 1


@dataclass(frozen=True, slots=True)
class Baseline:
    """Expected mentions per bin, by local hour of day and weekday, with dispersion."""

    per_bin: float
    by_hour: tuple[float, ...]  # 24 multipliers (all 1.0 when no daily rhythm shows)
    by_weekday: tuple[float, ...]  # 7 multipliers, Monday first
    dispersion: float  # negative-binomial phi: variance = mu + phi * mu**2 (0: Poisson)
    zone: tzinfo
    hours: float  # how much history it was fitted on

    def expected(self, start: datetime, end: datetime) -> float:
        """Expected count in [start, end)."""
        total, moment = 0.0, start
        while moment < end:
            local = moment.astimezone(self.zone)
            step = min(
                end, (moment + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
            )
            seconds = (step - moment).total_seconds()
            scale = self.by_hour[local.hour] * self.by_weekday[local.weekday()]
            total += self.per_bin * scale * seconds / BIN_SECONDS
            moment = step
        return total


@dataclass(slots=True)
class Assessment:
    """The most telling window ending now."""

    window_start: datetime
    window_end: datetime
    count: int
    expected: float
    p_value: float
    spike: bool  # passes every spike test
    elevated: bool  # passes the relaxed test that keeps an episode going

    @property
    def ratio(self) -> float:
        return self.count / self.expected if self.expected > 0 else math.inf


@dataclass(slots=True)
class Episode:
    """Where one rule stands for one term and sentiment; stored between polls as JSON."""

    active: bool = False
    started_at: str | None = None  # ISO UTC: the start of the window that opened it
    last_elevated: str | None = None
    peak: int = 0
    peak_expected: float = 0.0
    history: list[str] = field(default_factory=list)  # starts of recent episodes

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str | None) -> Episode:
        """A stored state; an unreadable one (hand-edited, older format) starts afresh."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (ValueError, TypeError):
            return cls()


@dataclass(frozen=True, slots=True)
class Spike:
    """What an alert says: an episode began ("start") or is over ("end")."""

    kind: str
    window_start: datetime
    window_end: datetime
    count: int
    baseline: float  # the expected count in the same window
    p_value: float
    started_at: datetime  # the episode's start

    @property
    def ratio(self) -> float:
        return self.count / self.baseline if self.baseline > 0 else math.inf


def fit(
    counts: Mapping[int, int],
    now: datetime,
    zone: tzinfo,
    settings: SpikeSettings,
    history_start: datetime | None = None,
) -> Baseline | None:
    """The baseline from the bins before the recent ones; None when history is too short.

    `counts` maps bin numbers (Unix time // BIN_SECONDS) to counts; absent bins are zero.
    `history_start` is when the term's mentions begin to be known (its first poll's reach).
    """
    end_bin = _bin(now) - settings.recent_bins  # exclusive
    start_bin = end_bin - settings.history_bins
    if history_start is not None:
        start_bin = max(start_bin, _bin(history_start))
    # Whole hours, so each one has one local hour of day and weekday.
    per_hour = 3600 // BIN_SECONDS
    start_bin += (-start_bin) % per_hour
    hours = (end_bin - start_bin) // per_hour
    if hours < settings.min_history_hours:
        return None
    hourly = [0] * hours
    for b, c in counts.items():
        h = (b - start_bin) // per_hour
        if 0 <= h < hours:
            hourly[h] += c
    first = datetime.fromtimestamp(start_bin * BIN_SECONDS, UTC).astimezone(zone)
    labels = [first + timedelta(hours=h) for h in range(hours)]
    # Hours far beyond the rest were storms, not the baseline: leave them out. "Far" is
    # judged under the distribution fitted so far, so a bursty term keeps its busy hours.
    keep = [True] * hours
    flat: tuple[tuple[float, ...], tuple[float, ...]] = (1.0,) * 24, (1.0,) * 7
    by_hour, by_weekday = flat
    dispersion = 0.0
    for _ in range(3):
        kept = [c for c, k in zip(hourly, keep, strict=True) if k]
        mean = sum(kept) / len(kept)
        expected = [mean * by_hour[t.hour] * by_weekday[t.weekday()] for t in labels]
        limits: dict[float, int] = {}  # few distinct expectations: one cut-off each
        for e in expected:
            if e not in limits:
                limits[e] = _storm_count(e, dispersion)
        keep = [c < limits[e] for c, e in zip(hourly, expected, strict=True)]
        kept_counts = [float(c) for c, k in zip(hourly, keep, strict=True) if k]
        kept_labels = [t for t, k in zip(labels, keep, strict=True) if k]
        mean = sum(kept_counts) / len(kept_counts)
        by_hour = _profile(kept_counts, [t.hour for t in kept_labels], 24, smooth=True)
        by_weekday = (
            _profile(kept_counts, [t.weekday() for t in kept_labels], 7)
            if hours >= 7 * 24
            else flat[1]
        )
        expected = [mean * by_hour[t.hour] * by_weekday[t.weekday()] for t in kept_labels]
        # Below an hourly mean of 0.5 a few stray pairs look "bursty"; min_count rules there.
        dispersion = _dispersion(kept_counts, expected) if mean >= 0.5 else 0.0
        # The rates are estimates: their own uncertainty (relative variance ~ 1/count behind
        # each) widens the count's distribution like extra dispersion does.
        total = sum(kept_counts) + 1
        labels_used = 1 + 24 * (by_hour != flat[0]) + 7 * (by_weekday != flat[1])
        dispersion = min(MAX_DISPERSION, dispersion + labels_used / total)
    return Baseline(mean / per_hour, by_hour, by_weekday, dispersion, zone, float(hours))


def _storm_count(mean: float, dispersion: float) -> int:
    """The smallest hourly count treated as a storm for this mean: about 3.1 standard
    deviations above it (p ~ 0.001), plus 2 so that a quiet hour with two posts is not one.
    (The exact tail would do no better here and costs a hundred times more per fit.)"""
    spread = math.sqrt(mean + dispersion * mean * mean)
    return max(2, math.ceil(mean + 3.1 * spread + 2))


def _pmf(count: int, mean: float, dispersion: float) -> float:
    if mean <= 0:
        return 1.0 if count == 0 else 0.0
    if dispersion <= 1e-9:
        return math.exp(count * math.log(mean) - mean - math.lgamma(count + 1))
    r = 1.0 / dispersion
    p = r / (r + mean)
    return math.exp(
        math.lgamma(count + r)
        - math.lgamma(r)
        - math.lgamma(count + 1)
        + r * math.log(p)
        + count * math.log1p(-p)
    )


def _dispersion(counts: Sequence[float], expected: Sequence[float]) -> float:
    """Negative-binomial phi by the method of moments, or 0 (Poisson) unless the counts are
    clearly burstier than Poisson (dispersion index test at p < 0.001)."""
    pairs = [(c, e) for c, e in zip(counts, expected, strict=True) if e > 0]
    index = sum((c - e) ** 2 / e for c, e in pairs)
    if len(pairs) < 2 or _chi2_z(index, len(pairs) - 1) < 3.1:
        return 0.0
    excess = sum((c - e) ** 2 - e for c, e in pairs)
    return min(MAX_DISPERSION, max(0.0, excess / sum(e * e for _, e in pairs)))


def _profile(
    counts: Sequence[float], labels: Sequence[int], size: int, smooth: bool = False
) -> tuple[float, ...]:
    """Multipliers per label, or all 1.0 unless the counts clearly differ between labels."""
    observed, slots = [0.0] * size, [0] * size
    for count, label in zip(counts, labels, strict=True):
        observed[label] += count
        slots[label] += 1
    total, hours = sum(observed), sum(slots)
    if total < 50 or min(slots) == 0:
        return (1.0,) * size
    expected = [total * s / hours for s in slots]
    chi2 = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    if _chi2_z(chi2, size - 1) < 3.1:  # p > 0.001: no rhythm worth trusting
        return (1.0,) * size
    prior = 10.0  # pseudo-mentions per label: pulls thin evidence towards 1
    raw = [(o + prior) / (e + prior) for o, e in zip(observed, expected, strict=True)]
    if smooth:  # hours of the day: people's rhythm is smooth, the noise is not
        raw = [(raw[i - 1] + 2 * raw[i] + raw[(i + 1) % size]) / 4 for i in range(size)]
    norm = sum(r * s for r, s in zip(raw, slots, strict=True)) / hours
    return tuple(r / norm for r in raw)


def _chi2_z(chi2: float, df: int) -> float:
    """Wilson-Hilferty: a chi-square value as a standard normal deviate."""
    if chi2 <= 0:
        return -math.inf
    return ((chi2 / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))


def assess(
    counts: Mapping[int, int], now: datetime, baseline: Baseline, settings: SpikeSettings
) -> Assessment:
    """Test every window ending now; return the most significant one."""
    now_bin = _bin(now)
    relaxed_p = math.sqrt(settings.p_value)
    best: Assessment | None = None
    elevated = False
    count, counted = 0, 0  # windows share their newest bins: one pass backwards
    for minutes in sorted(settings.windows):
        # The whole last `minutes` plus the bin in progress: a poll at the end of a burst's
        # hour still sees its first mentions.
        bins = minutes * 60 // BIN_SECONDS + 1
        while counted < bins:
            count += counts.get(now_bin - counted, 0)
            counted += 1
        start = datetime.fromtimestamp((now_bin - bins + 1) * BIN_SECONDS, UTC)
        expected = baseline.expected(start, now)
        p = tail(count, expected, baseline.dispersion)
        # A day holds 96 quarter-hours but 24 hours: windows shorter than an hour get more
        # chances to look odd by luck, so they need proportionally stronger evidence. (Longer
        # ones get no looser: 7 posts in a day is no storm for a term that has 2.)
        scale = min(1.0, minutes / 60) if settings.scaled else 1.0
        alpha = settings.p_value * scale
        spike = (
            count >= settings.min_count and count >= settings.min_ratio * expected and p <= alpha
        )
        elevated = elevated or (
            count >= settings.min_count / 2
            and count >= settings.min_ratio / 1.5 * expected
            and p <= relaxed_p
        )
        found = Assessment(start, now, count, expected, p, spike, False)
        if best is None or (found.spike, -found.p_value) > (best.spike, -best.p_value):
            best = found
    assert best is not None
    best.elevated = elevated or best.spike
    return best


def step(
    found: Assessment, episode: Episode, settings: SpikeSettings, now: datetime
) -> tuple[Episode, Spike | None]:
    """Move the episode on by one assessment; a Spike when one starts or ends."""
    stamp = _iso(now)
    if not episode.active:
        if not found.spike:
            return episode, None
        started = Episode(
            True,
            _iso(found.window_start),
            stamp,
            found.count,
            found.expected,
            [*episode.history[-9:], _iso(found.window_start)],
        )
        return started, Spike(
            "start",
            found.window_start,
            found.window_end,
            found.count,
            found.expected,
            found.p_value,
            found.window_start,
        )
    if found.elevated:
        if found.count > episode.peak:
            episode.peak, episode.peak_expected = found.count, found.expected
        episode.last_elevated = stamp
        return episode, None
    last = _parse(episode.last_elevated) if episode.last_elevated else now
    if now - last < timedelta(minutes=settings.quiet_minutes):
        return episode, None
    began = _parse(episode.started_at) if episode.started_at else last
    ended = Spike("end", began, last, episode.peak, episode.peak_expected, found.p_value, began)
    return Episode(history=episode.history), ended


def check(
    counts: Mapping[int, int],
    now: datetime,
    episode: Episode,
    zone: tzinfo,
    settings: SpikeSettings | None = None,
    history_start: datetime | None = None,
    baseline: Baseline | None = None,
) -> tuple[Episode, Spike | None]:
    """One poll's decision for one term (and sentiment): the new state, and a Spike to
    announce when an episode starts or ends. `counts` covers at least the history and the
    recent windows before `now` (see `counts_needed`)."""
    settings = settings or SpikeSettings()
    baseline = baseline or fit(counts, now, zone, settings, history_start)
    if baseline is None:
        return episode, None
    return step(assess(counts, now, baseline, settings), episode, settings, now)


def counts_needed(now: datetime, settings: SpikeSettings) -> tuple[datetime, datetime]:
    """The [start, end) of created_at times `check` reads at `now`."""
    first = _bin(now) - settings.recent_bins - settings.history_bins
    return datetime.fromtimestamp(first * BIN_SECONDS, UTC), now + timedelta(seconds=1)


def tail(count: int, mean: float, dispersion: float = 0.0) -> float:
    """P(X >= count) for a Poisson (dispersion 0) or negative binomial count with this mean."""
    if count <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if count <= mean:
        return 1.0  # not in the upper tail; no test here cares about it
    if dispersion <= 1e-9:

        def ratio(j: int) -> float:
            return mean / (j + 1)
    else:
        r = 1.0 / dispersion
        q = mean / (r + mean)

        def ratio(j: int) -> float:
            return (j + r) / (j + 1) * q

    term = _pmf(count, mean, dispersion)
    total, j = term, count
    while term > total * 1e-9 and j < count + 100000:
        term *= ratio(j)
        total += term
        j += 1
    return min(1.0, total)


def _bin(moment: datetime) -> int:
    return int(moment.timestamp()) // BIN_SECONDS


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
