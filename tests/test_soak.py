"""The concurrency soak (benchmarks/soak.py) for half a minute: 3 `watch` workers and 3
people on one PostgreSQL database, a worker killed with SIGKILL halfway. Every check is on
content (the platforms' request logs and received replies, the webhook's deliveries, the
history); `python benchmarks/soak.py --minutes 5` runs the same for longer."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SOAK = Path(__file__).parents[1] / "benchmarks" / "soak.py"


def _driver():
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_three_workers_and_three_people_for_half_a_minute(pg_url, tmp_path):
    report = _driver().Soak(pg_url, tmp_path, seconds=30, interval=1.0).run()
    print("\n".join(report.lines()))
    assert report.problems == [], "\n".join(report.lines())
    # It did what it says: new posts, all stored and alerted, races, a takeover.
    assert report.added >= 20 and report.stored > report.added
    assert report.deliveries == report.stored
    assert report.races >= 1 and report.replies_posted >= 1
    assert report.actions["reply refused"] >= 2  # each race: one posts, two are told
    assert report.takeover is not None and report.takeover < 1.25 + 2 + 1 + 2
    assert report.runs > 50
