"""Export throughput and peak memory against `sqlite-utils rows --nl`, in one run.

    python benchmarks/export.py [--sizes 10000,1000000] [--runs 3] [--keep DIR] [--url URL]

Databases of corpus mentions (benchmarks/corpus.py) at each size; each side runs as its own
process writing to /dev/null: `mentionwatch export --format jsonl` (every mention, oldest
first, with terms, priority and every record key) and `sqlite-utils rows DB mentions --nl`
(the table's rows as they are). Printed per size: rows/s of both and their ratio (target
>= 1.0), and each one's peak RSS, with mentionwatch's at the largest size against its own at
the smallest (target: within 1.3x, i.e. memory does not grow with the rows).

With --url (a PostgreSQL server; the corpus is copied there as feed_scaling_pg.py does,
kept as schema corpus_SIZE with --keep): `export --db URL`, and as the anchor `psql`
streaming the same columns out of the server as JSON lines (COPY (SELECT to_json(...))
TO STDOUT), the way sqlite-utils streams them out of the file.
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


def psql_rows(location: str) -> list[str]:
    """The anchor on PostgreSQL: psql streaming every mention (the stored columns but the
    full-text one) as a JSON line."""
    from mentionwatch.engines.urls import split_schema
    from mentionwatch.store import Store

    store = Store(location, readonly=True)
    columns = ", ".join(f'"{c}"' for c in store.columns("mentions"))
    store.close()
    conninfo, schema = split_schema(location)
    from mentionwatch.testing.postgres import bin_dir

    psql = shutil.which("psql") or str((bin_dir() or Path("/usr/bin")) / "psql")
    rows = f"COPY (SELECT to_json(r) FROM (SELECT {columns} FROM mentions) r) TO STDOUT"
    return [psql, conninfo, "-X", "-q", "-c", f'SET search_path TO "{schema}"', "-c", rows]


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
    parser.add_argument("--url", help="measure on this PostgreSQL server (anchor: psql)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    utils = shutil.which("sqlite-utils") or "sqlite-utils"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text('[[terms]]\nname = "pebblebase"\nquery = "pebblebase"\n')
        config.chmod(0o600)
        anchor_name = "psql" if args.url else "sqlite-utils"
        print(f"| rows | mentionwatch rows/s | {anchor_name} rows/s | ratio | mentionwatch peak "
              f"RSS MB | {anchor_name} peak RSS MB |\n|---:|---:|---:|---:|---:|---:|")  # fmt: skip
        peaks = []
        for size in sizes:
            db = Path(corpus.cached_db(args.keep, tmp, size))
            location, theirs = str(db), [utils, "rows", str(db), "mentions", "--nl"]
            if args.url:
                from feed_scaling_pg import on_server

                location = on_server(db, args.url, size, keep=bool(args.keep))
                theirs = psql_rows(location)
            ours = [sys.executable, "-m", "mentionwatch", "--config", str(config), "--db",
                    location, "export", "--format", "jsonl"]  # fmt: skip
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
