"""`mentionwatch demo`: the real poll and feed, offline, against the loopback web."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mentionwatch.files import write_private
from mentionwatch.testing.server import LoopbackWeb

DEMO_TERMS = """\
[[terms]]
name = "pebblebase"
query = 'pebblebase OR "pebble base" -"pebble base camp"'
"""
DEMO_TEMPLATES = """\
[templates]
thanks = "Thanks {author}, glad Pebblebase helps!"
help = "Sorry about that, {author}. Could you email help@pebblebase.io so we can fix it?"
"""


def toml_table(name: str, values: dict[str, Any]) -> str:
    """A TOML table of strings, numbers and lists of strings (JSON spells those the same)."""
    lines = [f"[{name}]"] + [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def demo_config(web: LoopbackWeb, db: Path, platforms: list[str] | None = None) -> str:
    """A config that points every source (or the named ones) at the loopback web."""
    names = platforms or sorted(web.platforms)
    tables = [toml_table(f"sources.{n}", web.platforms[n].source_settings()) for n in names]
    return "\n".join(
        [toml_table("storage", {"db": db.as_posix()}), DEMO_TERMS, DEMO_TEMPLATES, *tables]
    )


def run_demo(console: Any, keep: Path | None, say: Callable[[str], None]) -> None:
    from mentionwatch.cli import app

    with tempfile.TemporaryDirectory(prefix="mentionwatch-demo-") as tmp, LoopbackWeb() as web:
        db = keep or Path(tmp) / "demo.db"
        config = Path(tmp) / "config.toml"
        write_private(config, demo_config(web, db))  # it holds the demo's credentials
        say(f"demo: a loopback web at {web.url} plays {', '.join(sorted(web.platforms))}")
        base = ["--config", str(config), "--db", str(db)]
        say("demo: $ mentionwatch poll")
        app([*base, "poll"], standalone_mode=False)
        say("demo: $ mentionwatch feed --sort priority --limit 12\n")
        app([*base, "feed", "--sort", "priority", "--limit", "12"], standalone_mode=False)
        if keep:
            say(f"\ndemo: the demo database is kept at {db}; try: mentionwatch --db {db} feed")
        else:
            say("\ndemo: the demo database was temporary (--keep FILE keeps one).")
        say(
            "demo: to watch your own product: mentionwatch init, edit the terms, mentionwatch poll."
        )
