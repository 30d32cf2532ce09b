"""Spike detection on synthetic series: detection rate, delay and false alarms per 30 days.

    python benchmarks/spike_eval.py [--seeds 10] [--first-seed 1000] [--baselines 1,2,...]

For each baseline (mentions a day) and seed: 15 days of warm-up history, then 30 days that
are polled every 5 minutes, as `watch` would, calling `mentionwatch.spikes.check` exactly as
the alert side does (the baseline is refitted once per simulated hour to keep the run short;
it moves by 1/336 per hour). Noise is Poisson per 5-minute bin, flat ("flat") or with a
daily rhythm ("daily": 3x busier at 15:00 than at 03:00, weekends at half volume).

- False alarms: episodes started in the 30 days of pure noise, per 30 days.
- Detection: 8 bursts per series, 3.5 days apart, each adding max(10, (k-1) x the hourly
  baseline) mentions spread uniformly over one hour, so the burst hour holds on average
  k times the baseline (and at least 10 mentions more). A burst is detected when an episode
  starts within 60 minutes of its first mention; delay is minutes from its first mention.
  Starts outside any burst's hour (+ a day, while its episode may still run) are false alarms.

Seeds 0-999 were used while choosing the settings; the report uses seeds from 1000 up, which
were not looked at before, so the numbers are held-out. Target (issue 13): >= 95% of 5x bursts
within an hour and <= 1 false alarm per 30 days at every baseline from 1 to 1,000 a day.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from mentionwatch.spikes import BIN_SECONDS, Episode, SpikeSettings, check, fit

BINS_PER_DAY = 86400 // BIN_SECONDS
WARMUP_DAYS, TEST_DAYS = 15, 30
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
ZONE = UTC


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:  # normal approximation with continuity, fine at these means
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def rhythm(moment: datetime, shape: str) -> float:
    if shape == "flat":
        return 1.0
    daily = 1 + 0.5 * math.sin((moment.hour + moment.minute / 60 - 9) / 24 * 2 * math.pi)
    weekend = 0.5 if moment.weekday() >= 5 else 1.0
    return daily * weekend / 0.857  # keeps the weekly mean near the nominal baseline


def noise(rng: random.Random, per_day: float, shape: str) -> dict[int, int]:
    first = int(START.timestamp()) // BIN_SECONDS
    counts: dict[int, int] = {}
    for i in range((WARMUP_DAYS + TEST_DAYS) * BINS_PER_DAY):
        moment = START + timedelta(seconds=i * BIN_SECONDS)
        c = poisson(rng, per_day / BINS_PER_DAY * rhythm(moment, shape))
        if c:
            counts[first + i] = c
    return counts


def inject(rng: random.Random, counts: dict[int, int], per_day: float, k: float) -> list[datetime]:
    """Add 8 bursts; return their start times."""
    extra = max(10, round((k - 1) * per_day / 24))
    starts = []
    for n in range(8):
        day = WARMUP_DAYS + 0.5 + n * 3.5 + rng.random()
        start = START + timedelta(days=day)
        starts.append(start)
        for _ in range(extra):
            moment = start + timedelta(seconds=rng.random() * 3600)
            b = int(moment.timestamp()) // BIN_SECONDS
            counts[b] = counts.get(b, 0) + 1
    return starts


def run(counts: dict[int, int], settings: SpikeSettings) -> list[datetime]:
    """Poll every 5 minutes through the test days; the times episodes started."""
    episode, baseline, fitted_hour = Episode(), None, None
    starts = []
    first = int((START + timedelta(days=WARMUP_DAYS)).timestamp()) // BIN_SECONDS
    for i in range(TEST_DAYS * BINS_PER_DAY):
        # Polled just before the end of each bin, so the bin's mentions are in.
        now = datetime.fromtimestamp((first + i + 1) * BIN_SECONDS - 1, UTC)
        hour = now.replace(minute=0, second=0)
        if hour != fitted_hour:
            baseline, fitted_hour = fit(counts, now, ZONE, settings), hour
        episode, spike = check(counts, now, episode, ZONE, settings, baseline=baseline)
        if spike is not None and spike.kind == "start":
            starts.append(now)
    return starts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--baselines", default="1,2,5,10,30,100,300,1000")
    parser.add_argument("--sizes", default="2,3,5,10")
    parser.add_argument("--shapes", default="flat,daily")
    parser.add_argument("--p-value", type=float, help="override the default setting")
    parser.add_argument("--min-count", type=int, help="override the default setting")
    parser.add_argument("--windows", help="override the default windows (minutes, comma-separated)")
    parser.add_argument("--unscaled", action="store_true", help="one p-value for every window")
    args = parser.parse_args()
    windows = tuple(int(w) for w in args.windows.split(",")) if args.windows else None
    overrides = {
        "p_value": args.p_value,
        "min_count": args.min_count,
        "windows": windows,
        "scaled": False if args.unscaled else None,
    }
    settings = SpikeSettings(**{k: v for k, v in overrides.items() if v is not None})
    baselines = [float(x) for x in args.baselines.split(",")]
    sizes = [float(x) for x in args.sizes.split(",")]
    began = time.perf_counter()
    print(f"settings: {settings}")
    print(
        f"seeds {args.first_seed}..{args.first_seed + args.seeds - 1}; "
        f"{TEST_DAYS} days polled every 5 min per series\n"
    )
    header = f"{'shape':<6} {'per day':>8} {'noise FA/30d':>12}"
    for k in sizes:
        header += f" | {f'{k:g}x found':>9} {'med':>4} {'p90':>4} {'FA':>4}"
    print(header + "   (found: share within 60 min; med/p90: delay in minutes)")
    ok = True
    for shape in args.shapes.split(","):
        for per_day in baselines:
            fa = []
            cells: dict[float, tuple[list[float], int, int]] = {k: ([], 0, 0) for k in sizes}
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                rng = random.Random(seed * 7919 + int(per_day * 10))
                base = noise(rng, per_day, shape)
                fa.append(len(run(base, settings)))
                for k in sizes:
                    counts = dict(base)
                    bursts = inject(random.Random(seed * 31 + int(k * 10)), counts, per_day, k)
                    delays, missed, false = cells[k]
                    starts = run(counts, settings)
                    for started in starts:
                        owner = [b for b in bursts if b <= started < b + timedelta(days=1.1)]
                        if not owner:
                            false += 1
                    for b in bursts:
                        hits = [s for s in starts if b <= s]
                        first_hit = min(hits) if hits else None
                        if first_hit is not None and first_hit - b <= timedelta(minutes=60):
                            delays.append((first_hit - b).total_seconds() / 60)
                        else:
                            missed += 1
                    cells[k] = (delays, missed, false)
            fa_rate = sum(fa) / len(fa)
            line = f"{shape:<6} {per_day:>8g} {fa_rate:>12.2f}"
            for k in sizes:
                delays, missed, false = cells[k]
                found = len(delays) / (len(delays) + missed)
                med = statistics.median(delays) if delays else math.nan
                p90 = statistics.quantiles(delays, n=10)[-1] if len(delays) > 1 else math.nan
                line += f" | {found:>9.1%} {med:>4.0f} {p90:>4.0f} {false / args.seeds:>4.2f}"
                if k == 5 and found < 0.95:
                    ok = False
            if fa_rate > 1:
                ok = False
            print(line, flush=True)
    print(f"\n{'meets' if ok else 'MISSES'} the target; {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
