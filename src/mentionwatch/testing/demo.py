"""`mentionwatch demo`: the real poll and feed, offline, against the loopback web; with
`--serve`, the web keeps running with a config pointing every source at it."""

from __future__ import annotations

import json
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mentionwatch.files import write_private
from mentionwatch.testing.receivers import Received, Receivers
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

[templates.sorry-then-dm]
public = "Sorry about that, {author}: we just sent you a DM."
private = "Hi {author}, could you send me your account's email? I'll look at your deploys now."
"""
# The complaint the demo answers in public, then in private (it mentions @pebblebase, so X
# accepts the reply).
DEMO_COMPLAINT = "x:1859260000000000202"


DEMO_SECRET = "demo-signing-secret"


def demo_alert(hook_url: str) -> str:
    """A rule that pushes the demo's complaints to a webhook, signed."""
    return (f'[[alerts]]\nname = "complaints"\nsentiment = ["negative"]\n'
            f'to = ["{hook_url}"]\nsecret = "{DEMO_SECRET}"\n')  # fmt: skip


def landed(request: Received) -> str:
    """One line about a webhook the demo's receiver got, as it lands."""
    import hashlib
    import hmac

    from mentionwatch.channels import shorten
    from mentionwatch.render import safe

    body = request.json() or {}
    mention = body.get("mention") or {}
    expected = "sha256=" + hmac.new(DEMO_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    signed = "ok" if request.header("X-Mentionwatch-Signature-256") == expected else "BAD"
    return (
        f"demo: webhook received {request.header('X-Mentionwatch-Event')} "
        f"{(request.header('X-Mentionwatch-Delivery') or '')[:8]}… (signature {signed}): "
        f"{safe(mention.get('source'))} {safe(mention.get('author') or 'someone')}: "
        f"{shorten(' '.join(safe(mention.get('text') or mention.get('title')).split()), 60)}"
    )


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

    with (
        tempfile.TemporaryDirectory(prefix="mentionwatch-demo-") as tmp,
        LoopbackWeb() as web,
        Receivers(on_request=lambda request: say(landed(request))) as hooks,
    ):
        db = keep or Path(tmp) / "demo.db"
        config = Path(tmp) / "config.toml"
        hook = hooks.url("/hooks/demo")
        # it holds the demo's credentials
        write_private(config, demo_config(web, db) + demo_alert(hook))
        say(f"demo: a loopback web at {web.url} plays {', '.join(sorted(web.platforms))}")
        say(f"demo: an alert rule pushes complaints to a loopback webhook at {hook}")
        base = ["--config", str(config), "--db", str(db)]
        say("demo: $ mentionwatch poll")
        app([*base, "poll"], prog_name="mentionwatch", standalone_mode=False)
        say("demo: $ mentionwatch feed --sort priority --limit 12\n")
        app([*base, "--no-pager", "feed", "--sort", "priority", "--limit", "12"],
            prog_name="mentionwatch", standalone_mode=False)  # fmt: skip
        say(f"\ndemo: $ mentionwatch reply {DEMO_COMPLAINT} --template sorry-then-dm --yes")
        say("demo: (answer in public, then take it private: a reply, then a direct message)\n")
        app([*base, "reply", DEMO_COMPLAINT, "--template", "sorry-then-dm", "--yes"],
            prog_name="mentionwatch", standalone_mode=False)  # fmt: skip
        if keep:
            say(f"\ndemo: the demo database is kept at {db}; try: mentionwatch --db {db} feed")
        else:
            say("\ndemo: the demo database was temporary; 'mentionwatch demo --serve' keeps the"
                " web running to try every command.")  # fmt: skip
        say(
            "demo: to watch your own product: mentionwatch init, edit the terms, mentionwatch poll."
        )
        say("demo: to hear about it as it happens: add [[alerts]], then mentionwatch watch.")


def default_folder() -> Path:
    from platformdirs import user_data_path

    return user_data_path("mentionwatch") / "demo"


def serve_demo(folder: Path, port: int, say: Callable[[str], None]) -> None:
    """Start the loopback web on `port`, write `folder`/config.toml pointing every source at
    it, fill `folder`/demo.db with the demo's mentions, and serve until Ctrl-C or SIGTERM.

    The database is rebuilt on every run and its mentions are numbered in the order of their
    keys, so the same mention has the same ID every time (the README's examples rely on it).
    """
    from mentionwatch.errors import UsageError

    folder = folder.expanduser().resolve()
    web = LoopbackWeb(port=port)
    try:
        web.start()
    except OSError as exc:
        raise UsageError(
            f"cannot serve the demo on 127.0.0.1:{port}: {exc.strerror} (another "
            "'demo --serve' running?); stop it, or pass --port N"
        ) from None
    stopped = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    hooks = Receivers(on_request=lambda request: say(landed(request))).start()
    try:
        config, count = _build(web, folder, hooks.url("/hooks/demo"))
        say(f"demo: a loopback web at {web.url} plays {', '.join(sorted(web.platforms))}")
        say(f"demo: {count} mentions in {folder / 'demo.db'}, with the same IDs on every run")
        say(f"demo: alerts for complaints go to a loopback webhook at {hooks.url('/hooks/demo')}"
            "; what lands there is printed here")  # fmt: skip
        say("demo: every command works against it; in another terminal:")
        print(f"export MENTIONWATCH_CONFIG={config}", flush=True)
        say(
            "  mentionwatch feed · mentionwatch show 1 · mentionwatch reply 1 --dry-run"
            " · mentionwatch sources --check · mentionwatch poll"
        )
        say("demo: serving until Ctrl-C")
        try:
            while not stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        say("demo: stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
        hooks.stop()
        web.stop()


# Platforms added after the README's examples were written: their mentions are numbered after
# the others', so `reply 4` or `show 13` in the README keeps naming the same mention.
LATER_PLATFORMS = ("appstore", "devto", "googleplay", "lobsters", "producthunt", "yelp", "youtube")


def _build(web: LoopbackWeb, folder: Path, hook: str) -> tuple[Path, int]:
    """Write the config and a fresh database: a real poll into a staging file, its mentions
    saved again in key order (stable IDs), then a real poll of the final database so its
    cursors and the sources' last poll are as after any poll."""
    from mentionwatch.cli import app
    from mentionwatch.models import Filters
    from mentionwatch.store import Store

    db, staging, config = folder / "demo.db", folder / "staging.db", folder / "config.toml"
    _remove_database(db)
    _remove_database(staging)
    # The config holds the demo's credentials.
    write_private(config, demo_config(web, db) + demo_alert(hook))
    base = ["--config", str(config)]
    # No alerts while building: the staging database's IDs are not the ones users see.
    app([*base, "--db", str(staging), "poll", "--quiet", "--no-alerts"], prog_name="mentionwatch",
        standalone_mode=False)  # fmt: skip
    source, target = Store(staging), Store(db)
    try:
        mentions = sorted(source.mentions(Filters(statuses=())),
                          key=lambda m: (m.source in LATER_PLATFORMS, m.key))  # fmt: skip
        for m in mentions:
            target.save_page(m.source, "demo", [m], None)
    finally:
        source.close()
        target.close()
    _remove_database(staging)
    app([*base, "poll", "--quiet", "--no-alerts"], prog_name="mentionwatch",
        standalone_mode=False)  # fmt: skip
    return config, len(mentions)


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
