"""`watch` and alerts against their targets, on the loopback web and a loopback webhook.

    python benchmarks/watch.py [--mentions 20] [--interval 2] [--polls 500] [--runs 15]

1. Alert latency: `watch --interval N` runs against the loopback Hacker News; mentions appear
   one at a time at random moments; each one's time from appearing to reaching the webhook
   receiver. Target: median <= interval + 1 s.
2. Idle CPU: `watch --interval 60s` after its first poll, over 10 s of waiting. Target: under
   1% of one core.
3. Memory: RSS after 10 and after `--polls` polls of `watch` (a tiny interval; a new mention
   every 25 polls, so the outbox is exercised too). Target: within 5 MB.
4. Start-up of feed, export and handle with alert rules in the config, against the same
   commands without them, and `python -c pass` as the anchor (the method of startup.py).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from startup import ENV, wall_times

from mentionwatch.testing.receivers import Receivers
from mentionwatch.testing.server import LoopbackWeb

CONFIG = """
[[terms]]
name = "pebblebase"
query = "pebblebase"

[sources.hackernews]
base_url = "{web}/hackernews/api/v1"

[[alerts]]
name = "all"
to = ["{hook}"]
secret = "bench"
"""


class Watch:
    def __init__(self, config: Path, db: Path, *args: str) -> None:
        argv = [sys.executable, "-m", "mentionwatch", "--config", str(config), "--db", str(db),
                "watch", *args]  # fmt: skip
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True, env=ENV)  # fmt: skip
        self.polls = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if " next poll in " in line:
                self.polls += 1

    def wait_polls(self, count: int, timeout: float = 600) -> None:
        end = time.monotonic() + timeout
        while self.polls < count:
            if time.monotonic() > end or self.proc.poll() is not None:
                raise SystemExit(f"watch stopped or stalled at {self.polls} polls")
            time.sleep(0.02)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def hit(object_id: str) -> dict:
    now = int(time.time())
    return {
        "objectID": object_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "created_at_i": now,
        "author": "bench",
        "title": None,
        "comment_text": f"pebblebase benchmark mention {object_id}",
        "story_id": 1,
        "story_title": "Ask HN: databases?",
        "_tags": ["comment", "author_bench", "story_1"],
    }


def setup(tmp: Path, web: LoopbackWeb, rx: Receivers, name: str) -> tuple[Path, Path]:
    config = tmp / f"{name}.toml"
    config.write_text(CONFIG.format(web=web.url, hook=rx.url(f"/hooks/{name}")))
    return config, tmp / f"{name}.db"


def latency(tmp: Path, web: LoopbackWeb, rx: Receivers, mentions: int, interval: float) -> None:
    config, db = setup(tmp, web, rx, "latency")
    watch = Watch(config, db, "--interval", f"{interval}s")
    hits = web.platform("hackernews").extra_hits
    try:
        watch.wait_polls(1)
        rx.wait_for("/hooks/latency", 1, timeout=30)
        delays = []
        for i in range(mentions):
            time.sleep(random.uniform(0, interval))  # appear at any moment of the cycle
            before = len(rx.seen("/hooks/latency"))
            appeared = time.time()
            hits.append(hit(f"5{i:07d}"))
            got = rx.wait_for("/hooks/latency", before + 1, timeout=interval * 5 + 10)
            delays.append(got[-1].at - appeared)
    finally:
        watch.stop()
    median = statistics.median(delays)
    verdict = "met" if median <= interval + 1 else "MISSED"
    print(
        f"alert latency (watch --interval {interval:g}s, {mentions} mentions): median "
        f"{median:.2f} s, max {max(delays):.2f} s; target <= {interval + 1:g} s: {verdict}"
    )


def idle_cpu(tmp: Path, web: LoopbackWeb, rx: Receivers, seconds: float = 10.0) -> None:
    config, db = setup(tmp, web, rx, "idle")
    watch = Watch(config, db, "--interval", "60s")
    try:
        watch.wait_polls(1)
        time.sleep(2)  # the first deliveries and their writes settle
        before, start = watch.cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        used = watch.cpu_seconds() - before
        share = used / (time.monotonic() - start) * 100
    finally:
        watch.stop()
    print(f"idle CPU between polls ({seconds:g} s measured): {share:.2f}% of one core "
          f"(target < 1%: {'met' if share < 1 else 'MISSED'})")  # fmt: skip


def memory(tmp: Path, web: LoopbackWeb, rx: Receivers, polls: int) -> None:
    config, db = setup(tmp, web, rx, "memory")
    watch = Watch(config, db, "--interval", "0.02s")
    hits = web.platform("hackernews").extra_hits
    early = late = 0.0
    try:
        for n in range(25, polls + 1, 25):
            hits.append(hit(f"6{n:07d}"))
            watch.wait_polls(n)
            if n == 25:
                watch.wait_polls(10)
            if early == 0.0 and watch.polls >= 10:
                early = watch.rss_mb()
        watch.wait_polls(polls)
        late = watch.rss_mb()
    finally:
        watch.stop()
    growth = late - early
    verdict = "met" if abs(growth) <= 5 else "MISSED"
    print(f"RSS after 10 polls {early:.1f} MB, after {polls} polls {late:.1f} MB: "
          f"{growth:+.1f} MB (target within 5 MB: {verdict})")  # fmt: skip


def startup(tmp: Path, web: LoopbackWeb, runs: int) -> None:
    plain = tmp / "plain.toml"
    plain.write_text(CONFIG.split("[[alerts]]")[0].format(web=web.url))
    alerted = tmp / "alerted.toml"
    rules = CONFIG.format(web=web.url, hook="https://hooks.example.com/mw")
    alerted.write_text(rules + '\n[[alerts]]\nname = "phone"\nto = ["ntfys://ntfy.sh/acme"]\n')
    db = tmp / "startup.db"
    anchor = statistics.median(wall_times([sys.executable, "-c", "pass"], runs))
    print(f"\nstart-up, median of {runs} interleaved runs (python -c pass {anchor * 1000:.0f} ms)")
    print("| command | without rules ms | with rules ms | ratio |\n|---|---:|---:|---:|")
    for command in (["feed"], ["export"], ["handle", "1"]):
        argvs = [
            [sys.executable, "-m", "mentionwatch", "--config", str(config), "--db", str(db)]
            for config in (plain, alerted)
        ]
        for argv in argvs:
            subprocess.run([*argv, "feed"], capture_output=True, env=ENV)  # schema, .pyc
        times: list[list[float]] = [[], []]
        for _ in range(runs):  # one after the other, so both see the same machine load
            for i, argv in enumerate(argvs):
                times[i] += wall_times([*argv, *command], 1)
        without, with_rules = (statistics.median(t) for t in times)
        print(f"| {' '.join(command)} | {without * 1000:.0f} | {with_rules * 1000:.0f} | "
              f"{with_rules / without:.2f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--polls", type=int, default=500)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LoopbackWeb() as web, Receivers() as rx:
        latency(Path(tmp), web, rx, args.mentions, args.interval)
        idle_cpu(Path(tmp), web, rx)
        memory(Path(tmp), web, rx, args.polls)
        startup(Path(tmp), web, args.runs)


if __name__ == "__main__":
    main()
