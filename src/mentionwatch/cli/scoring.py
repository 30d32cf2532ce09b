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
    explain: Annotated[
        bool, typer.Option("--explain", help="Show the features that decided each label.")
    ] = False,
) -> None:
    """Score text with the sentiment analyzer."""
    import json

    from mentionwatch.sentiment import OUTPUTS
    from mentionwatch.tagging import analyzer_for
    from mentionwatch.text import strip_controls

    if fmt not in ("plain", "jsonl"):
        fail(f"--format must be plain or jsonl, not {fmt!r}")
    try:
        scorer = analyzer_for(load_config(), None, analyzer, notify=say)
    except ValueError as exc:
        fail(str(exc))
    explainer = getattr(scorer, "explain", None)
    if explain and explainer is None:
        fail(f"--explain needs the default analyzer (the {scorer.name!r} analyzer cannot say why)")
    lines = texts if texts else (line.rstrip("\n") for line in sys.stdin)
    for text in lines:
        if not text.strip():
            continue
        score, why = explainer(text) if explain else (scorer.score(text), None)
        if fmt == "jsonl":
            row = {"text": text, "sentiment": score.label, "polarity": score.polarity,
                   "intents": list(score.intents)}  # fmt: skip
            if why is not None:
                row["features"] = [{"feature": c.feature, "weights": dict(zip(OUTPUTS, c.weights,
                                   strict=True))} for c in why]  # fmt: skip
            print(json.dumps(row, ensure_ascii=False))
            continue
        intents = ",".join(score.intents) or "-"
        print(f"{score.label:<8}\t{score.polarity:+.3f}\t{intents}\t{strip_controls(text)}")
        for c in why or ():
            parts = "  ".join(f"{name} {w:+.2f}" for name, w in zip(OUTPUTS, c.weights,
                              strict=True) if w)  # fmt: skip
            print(f"    {strip_controls(c.feature):<24} {parts}")


@app.command()
def rescore(
    analyzer: Annotated[str | None, typer.Option("--analyzer", help="Analyzer name.")] = None,
) -> None:
    """Tag every stored mention again: sentiment, intents, relevance (after an upgrade or a
    config change)."""
    from mentionwatch.render import progress_bar
    from mentionwatch.tagging import rescore as rescore_all

    cfg = load_config()
    store = open_store(cfg)
    try:
        with progress_bar("rescoring", enabled=sys.stderr.isatty()) as advance:
            changed, total = rescore_all(cfg, store, analyzer, advance)
    except ValueError as exc:
        fail(str(exc))
    say(f"rescored {total} mention(s); {changed} changed label")
