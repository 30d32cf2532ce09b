"""A poll's peak memory when every platform sends too much, against an ordinary poll.

    python benchmarks/poll_memory.py [--runs 3]

Runs the real `mentionwatch poll` as a process against the loopback web (every platform),
and reads the process's peak resident memory (ru_maxrss) when it ends:

- anchor: the platforms' ordinary fixtures;
- huge: every search answer is a 64 MB body;
- bomb: every search answer is a gzip body of 256 MB once decompressed (260 KB sent);
- large: Hacker News and GitHub send pages of 2.8 MB of real items (under the 8 MB cap,
  over the 1 MB above which bodies are read one at a time).

Prints the lowest peak of `--runs` runs of each and its ratio to the anchor's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from mentionwatch.testing.demo import toml_table
from mentionwatch.testing.server import LoopbackWeb

MB = 2**20
TERMS = "[[terms]]\nname = 'pebblebase'\nquery = 'pebblebase OR \"pebble base\"'\n\n"
MEASURED = """
import resource, sys
from mentionwatch import cli
try:
    cli.main()
finally:
    print(f"peak_rss_kb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
"""


def _huge(web: LoopbackWeb) -> None:
    for platform in web.platforms.values():
        web.fail(platform.search_path, 200, times=1000, huge=64 * MB)


def _bomb(web: LoopbackWeb) -> None:
    for platform in web.platforms.values():
        web.fail(platform.search_path, 200, times=1000, huge=256 * MB, gzip=True)


def _large(web: LoopbackWeb) -> None:
    padding = "pebblebase " * (700 * 1024 // 11)
    for i in range(4):
        web.platform("hackernews").add_item(f"pebblebase {i} {padding}", 1_796_000_000 + i)
        web.platform("github").add_item(f"pebblebase {i}", 1_796_000_000 + i)
        web.platform("github").extra_items[-1]["body"] = padding


CASES: dict[str, Callable[[LoopbackWeb], None]] = {
    "anchor": lambda web: None,
    "huge": _huge,
    "bomb": _bomb,
    "large": _large,
}


def peak(case: str) -> tuple[float, int]:
    """Peak resident MB of one poll, and its exit code."""
    with LoopbackWeb() as web, tempfile.TemporaryDirectory() as tmp:
        CASES[case](web)
        tables = [toml_table(f"sources.{n}", p.source_settings()) for n, p in web.platforms.items()]
        config = Path(tmp) / "config.toml"
        config.write_text(TERMS + "\n".join(tables))
        argv = [sys.executable, "-c", MEASURED, "--config", str(config),
                "--db", str(Path(tmp) / "bench.db"), "poll", "--quiet"]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True)
    line = next(x for x in result.stderr.splitlines() if x.startswith("peak_rss_kb="))
    return int(line.split("=")[1]) / 1024, result.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for _ in range(args.runs):  # interleaved, so the machine's load falls on every case alike
        for case in CASES:
            mb, code = peak(case)
            results[case] = min(results.get(case, (mb, code)), (mb, code))
    anchor = results["anchor"][0]
    for case, (mb, code) in results.items():
        print(f"{case:7} peak {mb:6.1f} MB  {mb / anchor:4.2f}× anchor  (exit {code})")


if __name__ == "__main__":
    main()
