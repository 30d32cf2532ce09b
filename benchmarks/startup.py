"""Start-up time of the commands that must feel instant, against Python itself.

    python benchmarks/startup.py [--runs 15]

Runs each command as a fresh process on an empty temporary database and prints the minimum
and median wall time. `feed`, `export` and `handle` should cost about what Python costs;
`sentiment` pays once for loading the analyzer (target: at most 60 ms over `--analyzer
textblob`'s baseline cost of starting the CLI).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Installed packages run from cached bytecode (pip compiles on install); a developer
# environment that sets PYTHONDONTWRITEBYTECODE would time the compiler instead.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall_times(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, capture_output=True, env=ENV, check=False)  # warm-up: writes .pyc
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, env=ENV, check=False)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        config = Path(tmp) / "config.toml"
        config.write_text("")
        cli = [sys.executable, "-m", "mentionwatch", "--config", str(config), "--db", str(db)]
        from mentionwatch.store import Store

        Store(db).close()  # create the schema (reading commands never create a database)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "mentionwatch --version": [*cli, "--version"],
            "mentionwatch feed": [*cli, "feed"],
            "mentionwatch export": [*cli, "export"],
            "mentionwatch handle (unknown id)": [*cli, "handle", "1"],
            "mentionwatch sentiment (default analyzer)": [*cli, "sentiment", "great tool"],
        }
        print("| command | min ms | median ms |\n|---|---:|---:|")
        for name, argv in commands.items():
            times = wall_times(argv, args.runs)
            print(f"| {name} | {min(times) * 1000:.0f} | {statistics.median(times) * 1000:.0f} |")


if __name__ == "__main__":
    main()
