"""Ingest on PostgreSQL: Store.save_page into a server beside the same saves into a SQLite
file and beside raw sqlite3 doing the same work (benchmarks/ingest.py's anchor), one run.

    python benchmarks/ingest_pg.py [--count 20000] [--rounds 3] [--url URL]

The pages are benchmarks/ingest.py's (corpus mentions, 15% arriving twice, pages of 100,
one transaction per page with the cursor). Each round saves them into a fresh schema of
the server (--url, else a throwaway cluster: mentionwatch.testing.postgres), into a fresh
SQLite file, and runs the raw sqlite3 anchor, in alternating order. Printed: mentions/s of
each, and the ratios PostgreSQL/SQLite and PostgreSQL/anchor (1.0 = the anchor's speed;
PostgreSQL pays a round trip per statement over loopback, and builds the tsvector of each
new mention in Python where FTS5 tokenizes in C).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from ingest import arrivals, copy, prepare_anchor, run_anchor, run_mentionwatch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", help="a PostgreSQL server to use (default: start one)")
    args = parser.parse_args()
    pages = arrivals(args.count)
    prepared = prepare_anchor(pages)
    cluster, url = None, args.url
    if url is None:
        from mentionwatch.testing.postgres import Cluster

        cluster = Cluster(Path(tempfile.mkdtemp(prefix="mentionwatch-pg-bench-")))
        url = cluster.start()
    times: dict[str, list[float]] = {"pg": [], "sqlite": [], "anchor": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                sides = ("pg", "sqlite", "anchor")
                for side in sides if r % 2 == 0 else sides[::-1]:
                    if side == "pg":
                        schema = f"ingest_{r}_{int(time.time())}"
                        at = f"{url}{'&' if '?' in url else '?'}schema={schema}"
                        times[side].append(run_mentionwatch(copy(pages), at, tag=False))  # type: ignore[arg-type]
                    elif side == "sqlite":
                        db = Path(tmp) / f"mw-{r}.db"
                        times[side].append(run_mentionwatch(copy(pages), db, tag=False))
                    else:
                        times[side].append(run_anchor(prepared, Path(tmp) / f"anchor-{r}.db"))
                pg, lite, anchor = (times[k][-1] for k in ("pg", "sqlite", "anchor"))
                print(f"round {r + 1}: PostgreSQL {args.count / pg:6.0f} mentions/s, SQLite "
                      f"{args.count / lite:6.0f}/s, raw sqlite3 {args.count / anchor:6.0f}/s",
                      flush=True)  # fmt: skip
    finally:
        if cluster is not None:
            cluster.stop()
    pg = [lite / p for p, lite in zip(times["pg"], times["sqlite"], strict=True)]
    raw = [a / p for p, a in zip(times["pg"], times["anchor"], strict=True)]
    print(f"\n{args.count} mentions in pages of 100, {args.rounds} rounds (median; range)")
    print("| save_page on PostgreSQL | mentions/s | / save_page on SQLite | / raw sqlite3 |")
    print("|---|---:|---:|---:|")
    print(
        f"| Store.save_page | {args.count / statistics.median(times['pg']):.0f} | "
        f"{statistics.median(pg):.2f} ({min(pg):.2f}–{max(pg):.2f}) | "
        f"{statistics.median(raw):.2f} ({min(raw):.2f}–{max(raw):.2f}) |"
    )


if __name__ == "__main__":
    main()
