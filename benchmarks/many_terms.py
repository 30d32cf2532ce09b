"""Start-up with a config of many terms against a one-term config, in one run.

    python benchmarks/many_terms.py [--terms 10000] [--runs 9]

Two configs over the same small database (corpus mentions): one term, and N terms with
quoted phrases, OR and exclusions. Each command runs as its own process writing to
/dev/null (export with --since in the future: start-up, not rows), the two configs
interleaved run by run; printed per command: the median wall time
of both and their ratio (target for 10,000 terms: feed and export within 2x).
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

sys.path.insert(0, str(Path(__file__).parent))

import corpus

COMMANDS = (("feed", "--limit", "20"), ("export", "--format", "jsonl", "--since", "2099-01-01"))


def term(i: int) -> str:
    return f'[[terms]]\nname = "brand{i}"\nquery = \'brand{i} OR "brand {i} app" -jobs\'\n'


def wall(argv: list[str]) -> float:
    with open(os.devnull, "w") as sink:
        start = time.perf_counter()
        subprocess.run(argv, stdout=sink, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terms", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "m.db"
        corpus.build_db(str(db), 2_000)
        configs = {
            "one term": Path(tmp) / "one.toml",
            f"{args.terms} terms": Path(tmp) / "many.toml",
        }
        configs["one term"].write_text(term(0))
        configs[f"{args.terms} terms"].write_text("\n".join(term(i) for i in range(args.terms)))
        for path in configs.values():
            path.chmod(0o600)
        base = [sys.executable, "-m", "mentionwatch", "--db", str(db)]
        for command in COMMANDS:
            times: dict[str, list[float]] = {name: [] for name in configs}
            wall([*base, "--config", str(configs["one term"]), *command])  # warm the caches
            for _ in range(args.runs):
                for name, path in configs.items():
                    times[name].append(wall([*base, "--config", str(path), *command]))
            one, many = (statistics.median(t) for t in times.values())
            print(f"{command[0]:<7} one term {one * 1000:6.0f} ms   {args.terms} terms "
                  f"{many * 1000:6.0f} ms   ratio {many / one:.2f}x (target <= 2x)")  # fmt: skip


if __name__ == "__main__":
    main()
