"""The feed's reads on PostgreSQL beside SQLite's, at several database sizes.

    python benchmarks/feed_scaling_pg.py [--sizes 10000,100000,1000000] [--runs 5]
                                         [--url URL] [--keep DIR]

The same corpus databases as feed_scaling.py (benchmarks/corpus.py), each copied to its own
schema on a PostgreSQL server by `migrate-to`'s copy: --url, else a throwaway cluster
(mentionwatch.testing.postgres; needs PostgreSQL's programs). With --keep DIR the SQLite
corpus files are kept in DIR and, with --url, each size's schema (corpus_SIZE) stays on the
server, so a later run reuses both (a million takes minutes to build and copy).
For each filter and order: the feed's own work (`feed --limit 20`: the 20 mentions and the
note's capped counts, median of --runs, the sizes taking turns, the database already open)
on SQLite and on PostgreSQL at each size; printed with the ratio largest/smallest size per
engine (an order served by an index stays flat: target <= 1.5) and PostgreSQL/SQLite at the
largest size (the anchor: SQLite, measured in the same run). Opening the database
(connecting, checking its migrations) is measured apart: a command pays it once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import corpus
from feed_scaling import CASES, parsed


def reads(stores: list[object], args: list[str], runs: int) -> list[float]:
    """What `feed --limit 20` reads (the mentions and the note's capped counts) from each
    store, median of `runs`; the stores take turns in each run, so a burst of load on this
    shared machine falls on every size alike instead of on one."""
    from mentionwatch.cli import mentions as cli_mentions

    filters, order = parsed(args)
    times: list[list[float]] = [[] for _ in stores]
    for _ in range(runs + 1):  # the first warms the caches
        for i, store in enumerate(stores):
            start = time.perf_counter()
            shown = list(store.mentions(filters, limit=20, order=order))  # type: ignore[attr-defined]
            store.count_by_status(filters, cap=cli_mentions.note_cap(filters))  # type: ignore[attr-defined]
            times[i].append(time.perf_counter() - start)
            assert shown or "--since" in args, args
    return [statistics.median(t[1:]) for t in times]


def opening(location: object, runs: int) -> float:
    from mentionwatch.store import Store

    times = []
    for _ in range(runs):
        start = time.perf_counter()
        Store(location, readonly=True).close()  # type: ignore[arg-type]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def copy_to(db: Path, url: str) -> None:
    from mentionwatch import moving
    from mentionwatch.store import Store

    source, target = Store(db, readonly=True), Store(url)
    try:
        moved = moving.copy(source, target, lambda table, rows: None)
        assert not moved.differing, moved.differing
    finally:
        source.close()
        target.close()


def on_server(db: Path, url: str, size: int, keep: bool) -> str:
    """The URL of a schema holding the corpus database `db`: copied there now, or (keep)
    the copy an earlier run left, finished if it was interrupted."""
    from mentionwatch.store import Store

    schema = f"corpus_{size}" if keep else f"bench_{size}_{int(time.time())}"
    at = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    if keep:
        store = Store(at)  # applies new migrations, as cached_db does for the file
        try:
            if store.count("mentions") == size:
                return at
        finally:
            store.close()
    start = time.perf_counter()
    copy_to(db, at)
    print(f"copied {size} mentions to PostgreSQL in {time.perf_counter() - start:.0f} s",
          flush=True)  # fmt: skip
    return at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--url", help="a PostgreSQL server to use (default: start one)")
    parser.add_argument("--keep", metavar="DIR", help="keep the corpus databases in DIR "
                        "(and, with --url, their copies on the server) for later runs")  # fmt: skip
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cluster = None
    url = args.url
    if url is None:
        from mentionwatch.testing.postgres import Cluster

        cluster = Cluster(Path(tempfile.mkdtemp(prefix="mentionwatch-pg-bench-")))
        url = cluster.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files, servers = {}, {}
            for size in sizes:
                start = time.perf_counter()
                files[size] = Path(corpus.cached_db(args.keep, tmp, size))
                print(f"{size} mentions ready (SQLite) in {time.perf_counter() - start:.0f} s",
                      flush=True)  # fmt: skip
                keep = bool(args.keep and args.url)
                servers[size] = on_server(files[size], url, size, keep)
            from mentionwatch.store import Store

            head = " | ".join(f"{s // 1000}k ms" for s in sizes)
            big, small = sizes[-1] // 1000, sizes[0] // 1000
            opened = [opening(files[sizes[-1]], args.runs), opening(servers[sizes[-1]], args.runs)]
            print(f"\nopening the database ({big}k): SQLite {opened[0] * 1000:.1f} ms, "
                  f"PostgreSQL {opened[1] * 1000:.1f} ms (loopback)\n")  # fmt: skip
            print(f"| feed --limit 20, reads | SQLite {head} | SQLite {big}k/{small}k "
                  f"| PostgreSQL {head} | PostgreSQL {big}k/{small}k "
                  f"| PostgreSQL/SQLite at {big}k |")  # fmt: skip
            print("|---|" + "---:|" * (2 * len(sizes) + 3))
            places = (("sqlite", files), ("pg", servers))
            stores = {(e, s): Store(at[s], readonly=True)  # type: ignore[index]
                      for e, at in places for s in sizes}  # fmt: skip
            for name, case in CASES.items():
                lite = reads([stores["sqlite", s] for s in sizes], case, args.runs)
                pg = reads([stores["pg", s] for s in sizes], case, args.runs)
                print(f"| {name} | " + " | ".join(f"{t * 1000:.1f}" for t in lite)
                      + f" | {lite[-1] / lite[0]:.2f} | "
                      + " | ".join(f"{t * 1000:.1f}" for t in pg)
                      + f" | {pg[-1] / pg[0]:.2f} | {pg[-1] / lite[-1]:.2f} |",
                      flush=True)  # fmt: skip
            for store in stores.values():
                store.close()
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
