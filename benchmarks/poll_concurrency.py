"""How much concurrency buys: 6 sources × 10 terms against the loopback web with latency.

    python benchmarks/poll_concurrency.py [--latency 0.15] [--terms 10]

Each platform is served by its own loopback server (its own host:port, as on the real
internet, so the per-host limit applies per platform). The script runs the real
`mentionwatch poll` as a process, then prints its wall time next to the sequential
estimate: the number of requests the servers answered × the latency of each.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mentionwatch.testing.demo import toml_table
from mentionwatch.testing.server import LoopbackWeb

SOURCES = ("hackernews", "reddit", "bluesky", "x", "github", "stackexchange")
TERMS = (
    "pebblebase", '"pebble base"', "pebblebase.io", "@pebblebase", '"pebble cli"',
    '"pebble migrate"', "pebbledb", '"tiny hosted database"', "pebblecloud", '"pebble sync"',
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.15, help="seconds per request")
    parser.add_argument("--terms", type=int, default=len(TERMS))
    args = parser.parse_args()
    webs = {name: LoopbackWeb(latency=args.latency).start() for name in SOURCES}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            terms = "".join(
                f"[[terms]]\nname = 't{i}'\nquery = '{q}'\n\n"
                for i, q in enumerate(TERMS[: args.terms])
            )
            tables = [
                toml_table(f"sources.{n}", web.platform(n).source_settings())
                for n, web in webs.items()
            ]
            config = Path(tmp) / "config.toml"
            config.write_text(terms + "\n".join(tables))
            argv = [sys.executable, "-m", "mentionwatch", "--config", str(config),
                    "--db", str(Path(tmp) / "bench.db"), "poll"]  # fmt: skip
            start = time.perf_counter()
            result = subprocess.run(argv, capture_output=True, text=True)
            wall = time.perf_counter() - start
    finally:
        for web in webs.values():
            web.stop()
    requests = {name: len(web.requests) for name, web in webs.items()}
    total = sum(requests.values())
    print(result.stdout.strip())
    if result.returncode:
        print(result.stderr.strip(), file=sys.stderr)
    print(f"\nsources: {len(SOURCES)}, terms: {args.terms}, latency: {args.latency * 1000:.0f} ms")
    print("requests per source: " + ", ".join(f"{n} {c}" for n, c in requests.items()))
    sequential = total * args.latency
    print(f"sequential estimate: {total} requests × {args.latency:.3f} s = {sequential:.1f} s")
    print(f"measured wall time (whole process): {wall:.1f} s")


if __name__ == "__main__":
    main()
