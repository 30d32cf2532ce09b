"""Export throughput and peak memory against `sqlite-utils rows --nl`, in one run.

    python benchmarks/export.py [--sizes 10000,1000000] [--runs 3]

Databases of corpus mentions (benchmarks/corpus.py) at each size; each side runs as its own
process writing to /dev/null: `mentionwatch export --format jsonl` (every mention, oldest
first, with terms, priority and every record key) and `sqlite-utils rows DB mentions --nl`
(the table's rows as they are). Printed per size: rows/s of both and their ratio (target
>= 1.0), and each one's peak RSS, with mentionwatch's at the largest size against its own at
the smallest (target: within 1.3x, i.e. memory does not grow with the rows).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import corpus

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(argv: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in KB) of one process writing to /dev/null."""
    with open(os.devnull, "w") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.DEVNULL, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, argv
    return elapsed, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="build the corpus databases in DIR "
        "once and reuse them in later runs (default: a temporary folder)",
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    utils = shutil.which("sqlite-utils") or "sqlite-utils"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text('[[terms]]\nname = "pebblebase"\nquery = "pebblebase"\n')
        config.chmod(0o600)
        print("| rows | mentionwatch rows/s | sqlite-utils rows/s | ratio | mentionwatch peak "
              "RSS MB | sqlite-utils peak RSS MB |\n|---:|---:|---:|---:|---:|---:|")  # fmt: skip
        peaks = []
        for size in sizes:
            db = Path(corpus.cached_db(args.keep, tmp, size))
            ours = [sys.executable, "-m", "mentionwatch", "--config", str(config), "--db",
                    str(db), "export", "--format", "jsonl"]  # fmt: skip
            theirs = [utils, "rows", str(db), "mentions", "--nl"]
            mine, anchor = [], []
            for r in range(args.runs):  # interleaved, alternating who goes first
                for side in ("mw", "su") if r % 2 == 0 else ("su", "mw"):
                    (mine if side == "mw" else anchor).append(
                        measure(ours if side == "mw" else theirs)
                    )
            t_mine = statistics.median(t for t, _ in mine)
            t_anchor = statistics.median(t for t, _ in anchor)
            rss_mine = max(m for _, m in mine) / 1024
            rss_anchor = max(m for _, m in anchor) / 1024
            peaks.append(rss_mine)
            print(
                f"| {size} | {size / t_mine:,.0f} | {size / t_anchor:,.0f} | "
                f"{t_anchor / t_mine:.2f} | {rss_mine:.0f} | {rss_anchor:.0f} |",
                flush=True,
            )
        print(f"\nmentionwatch peak RSS at {sizes[-1]} / at {sizes[0]}: {peaks[-1] / peaks[0]:.2f}")


if __name__ == "__main__":
    main()
