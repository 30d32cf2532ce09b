"""`mentionwatch demo`: the real poll and feed, offline, against the loopback web."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mentionwatch.testing.server import LoopbackWeb

DEMO_TERMS = """\
[[terms]]
name = "pebblebase"
query = 'pebblebase OR "pebble base" -"pebble base camp"'
"""


def demo_config(web: LoopbackWeb, db: Path) -> str:
    """A config that points every demo source at the loopback web."""
    feeds = [f"{web.base_url('rss')}/feeds/{name}" for name in ("blog.xml", "alerts.atom")]
    return (
        f'[storage]\ndb = "{db.as_posix()}"\n\n{DEMO_TERMS}\n'
        f'[sources.hackernews]\nbase_url = "{web.base_url("hackernews")}/api/v1"\n\n'
        f"[sources.rss]\nfeeds = {json.dumps(feeds)}\n"
    )


def run_demo(console: Any, keep: Path | None, say: Callable[[str], None]) -> None:
    from mentionwatch.cli import app

    with tempfile.TemporaryDirectory(prefix="mentionwatch-demo-") as tmp, LoopbackWeb() as web:
        db = keep or Path(tmp) / "demo.db"
        config = Path(tmp) / "config.toml"
        config.write_text(demo_config(web, db), encoding="utf-8")
        say(f"demo: a loopback web at {web.url} plays Hacker News and two feeds")
        base = ["--config", str(config), "--db", str(db)]
        say("demo: $ mentionwatch poll")
        app([*base, "poll"], standalone_mode=False)
        say("demo: $ mentionwatch feed\n")
        app([*base, "feed"], standalone_mode=False)
        note = f"the demo database is kept at {db}" if keep else "the demo database was temporary"
        say(f"\ndemo: {note}. To watch your own product: mentionwatch init, edit the terms, "
            "mentionwatch poll.")  # fmt: skip
