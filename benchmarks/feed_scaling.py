"""Feed at 10k, 100k and 1M mentions: every filter and order, own work and whole process.

    python benchmarks/feed_scaling.py [--sizes 10000,100000,1000000] [--runs 5]

Databases of corpus mentions (benchmarks/corpus.py, written in bulk) at each size. For each
filter and order the feed offers:
- own work: in the process, what `feed --limit 20` reads (the 20 mentions and the note's
  capped counts), median of --runs;
- whole process: `mentionwatch feed --limit 20 --format jsonl …` wall time, median;
and the anchor, in the same run: `sqlite-utils rows DB mentions --limit 20` (whole process)
on the 100k database, twice: as installed here, and as it runs where numpy is not installed.
sqlite-utils imports numpy when it can (for numpy values in inserts), and mentionwatch
depends on numpy, so beside mentionwatch it starts ~50 ms slower than on its own: the ratios
are given against the anchor without numpy, the stricter of the two. Printed: the time at
each size, the ratio largest/smallest size (the target: <= 1.5, an order served by an index
stays flat), and feed/sqlite-utils at 100k.

Then, at 100k, the feed's output formats (rich, the default, on a pipe; plain; ids; jsonl)
against the same anchor and against the floors of any Python CLI (`python -c pass`, `python
-c 'import typer'`), as wall time and as CPU time (user + system of the child): on a shared,
busy machine the CPU time is the steadier of the two.
"""

from __future__ import annotations

import argparse
import os
import resource
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
CASES: dict[str, list[str]] = {
    "default (open, newest)": [],
    "--since 7d": ["--since", "7d"],
    "--source x": ["--source", "x"],
    "--term stonebase": ["--term", "stonebase"],
    "--sentiment negative": ["--sentiment", "negative"],
    "--intent complaint": ["--intent", "complaint"],
    "--status all": ["--status", "all"],
    "--search WORD": ["--search", "kalo"],
    "--search WORD --sort relevance": ["--search", "kalo", "--sort", "relevance"],
    "--sort priority": ["--sort", "priority"],
    "--sort priority --sentiment negative": ["--sort", "priority", "--sentiment", "negative"],
}


def parsed(args: list[str]) -> tuple[object, str]:
    """A case's options as the feed parses them: its filters and its order."""
    from mentionwatch.cli.app import build_filters

    opts = dict(zip(args[::2], args[1::2], strict=True))
    filters = build_filters(
        opts.get("--since"), [opts["--source"]] if "--source" in opts else None,
        [opts["--term"]] if "--term" in opts else None,
        [opts["--sentiment"]] if "--sentiment" in opts else None,
        [opts["--status"]] if "--status" in opts else None, opts.get("--search"),
        [opts["--intent"]] if "--intent" in opts else None,
    )  # fmt: skip
    order = opts.get("--sort", "newest")
    return filters, order


def own_work(db: Path, args: list[str], runs: int) -> float:
    """The feed's reads, in this process (options through the CLI's own parsing)."""
    from mentionwatch.cli import mentions as cli_mentions
    from mentionwatch.store import Store

    filters, order = parsed(args)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        store = Store(db, readonly=True)
        shown = list(store.mentions(filters, limit=20, order=order))
        store.count_by_status(filters, cap=cli_mentions.note_cap(filters))
        store.close()
        times.append(time.perf_counter() - start)
        assert shown or "--since" in args, args
    return statistics.median(times)


def whole(argv: list[str], runs: int) -> float:
    subprocess.run(argv, capture_output=True, env=ENV, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, env=ENV, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _child_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def without_numpy(argv: list[str]) -> list[str]:
    """sqlite-utils' command line run as if numpy were not installed."""
    start = "import sys; sys.modules['numpy'] = None; from sqlite_utils.cli import cli; cli()"
    return [sys.executable, "-c", start, *argv[1:]]


def formats(cli: list[str], db: Path, anchor: list[str], runs: int) -> None:
    """Wall and CPU medians of each output format, the floors and the anchors, interleaved."""
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        **{f"feed -f {fmt}": [*cli, "--db", str(db), "feed", "--limit", "20", "-f", fmt]
           for fmt in ("rich", "plain", "ids", "jsonl")},
        "sqlite-utils rows --limit 20 (numpy installed)": anchor,
        "sqlite-utils rows --limit 20": without_numpy(anchor),
    }  # fmt: skip
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():
        subprocess.run(argv, capture_output=True, env=ENV, check=True)
    for _ in range(runs):
        for name, argv in commands.items():
            used, start = _child_cpu(), time.perf_counter()
            subprocess.run(argv, capture_output=True, env=ENV, check=True)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(_child_cpu() - used)
    w_anchor = statistics.median(wall["sqlite-utils rows --limit 20"])
    c_anchor = statistics.median(cpu["sqlite-utils rows --limit 20"])
    print("\n| whole process at 100k | wall ms | / sqlite-utils | CPU ms | / sqlite-utils |")
    print("|---|---:|---:|---:|---:|")
    for name in commands:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"| {name} | {w * 1000:.0f} | {w / w_anchor:.2f} | {c * 1000:.0f} | "
              f"{c / c_anchor:.2f} |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="build the corpus databases in DIR "
        "once and reuse them in later runs (default: a temporary folder)",
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text('[[terms]]\nname = "pebblebase"\nquery = "pebblebase"\n\n'
                          '[[terms]]\nname = "stonebase"\nquery = "stonebase"\n')  # fmt: skip
        config.chmod(0o600)
        dbs = {}
        for size in sizes:
            start = time.perf_counter()
            dbs[size] = Path(corpus.cached_db(args.keep, tmp, size))
            print(f"{size} mentions ready in {time.perf_counter() - start:.0f} s", flush=True)
        cli = [sys.executable, "-m", "mentionwatch", "--config", str(config)]
        anchor_size = 100_000 if 100_000 in dbs else sizes[-1]
        utils = shutil.which("sqlite-utils") or "sqlite-utils"
        anchor_argv = [utils, "rows", str(dbs[anchor_size]), "mentions", "--limit", "20"]
        installed = whole(anchor_argv, args.runs)
        anchor = whole(without_numpy(anchor_argv), args.runs)
        print(f"\nanchor: sqlite-utils rows DB mentions --limit 20 at {anchor_size}: "
              f"{anchor * 1000:.0f} ms without numpy, {installed * 1000:.0f} ms as installed "
              "here\n")  # fmt: skip
        head = " | ".join(f"{s // 1000}k ms" for s in sizes)
        print(
            f"| feed --limit 20 | own work {head} | own {sizes[-1] // 1000}k/"
            f"{sizes[0] // 1000}k | whole process {head} | whole {sizes[-1] // 1000}k/"
            f"{sizes[0] // 1000}k | whole / sqlite-utils at {anchor_size // 1000}k |"
        )
        print("|---|" + "---:|" * (2 * len(sizes) + 3))
        for name, case in CASES.items():
            own = [own_work(dbs[s], case, args.runs) for s in sizes]
            process = [whole([*cli, "--db", str(dbs[s]), "feed", "--limit", "20", "-f", "jsonl",
                              *case], max(3, args.runs // 2)) for s in sizes]  # fmt: skip
            at_anchor = process[sizes.index(anchor_size)]
            print(f"| {name} | " + " | ".join(f"{t * 1000:.1f}" for t in own)
                  + f" | {own[-1] / own[0]:.2f} | "
                  + " | ".join(f"{t * 1000:.0f}" for t in process)
                  + f" | {process[-1] / process[0]:.2f} | {at_anchor / anchor:.2f} |",
                  flush=True)  # fmt: skip
        formats(cli, dbs[anchor_size], anchor_argv, max(5, args.runs * 2))


if __name__ == "__main__":
    main()
