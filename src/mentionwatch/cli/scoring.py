"""Sentiment: scoring text, and re-scoring stored mentions."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mentionwatch.cli.app import (
    app,
    fail,
    load_config,
    open_store,
    say,
)


@app.command()
def sentiment(
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts; none reads stdin lines.")
    ] = None,
    analyzer: Annotated[str | None, typer.Option("--analyzer", help="Analyzer name.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="plain or jsonl.")] = "plain",
) -> None:
    """Score text with the sentiment analyzer."""
    import json

    from mentionwatch.sentiment import get_analyzer

    if fmt not in ("plain", "jsonl"):
        fail(f"--format must be plain or jsonl, not {fmt!r}")
    try:
        scorer = get_analyzer(analyzer or load_config().analyzer)
    except ValueError as exc:
        fail(str(exc))
    lines = texts if texts else (line.rstrip("\n") for line in sys.stdin)
    from mentionwatch.text import inert

    for text in lines:
        if not text.strip():
            continue
        score = scorer.score(text)
        if fmt == "jsonl":
            row = {"text": inert(text), "sentiment": score.label, "polarity": score.polarity,
                   "intents": list(score.intents)}  # fmt: skip
            print(json.dumps(row, ensure_ascii=False))
        else:
            intents = ",".join(score.intents) or "-"
            print(f"{score.label:<8}\t{score.polarity:+.3f}\t{intents}\t{inert(text)}")


@app.command()
def rescore(
    analyzer: Annotated[str | None, typer.Option("--analyzer", help="Analyzer name.")] = None,
) -> None:
    """Apply the current sentiment analyzer to every stored mention (after an upgrade)."""
    from mentionwatch.poller import rescore as rescore_all
    from mentionwatch.render import progress_bar

    cfg = load_config()
    store = open_store(cfg)
    try:
        with progress_bar("rescoring", enabled=sys.stderr.isatty()) as advance:
            changed, total = rescore_all(cfg, store, analyzer, advance)
    except ValueError as exc:
        fail(str(exc))
    say(f"rescored {total} mention(s); {changed} changed label")
