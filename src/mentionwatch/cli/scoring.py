"""Sentiment: scoring text, and re-scoring stored mentions."""

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from mentionwatch.cli.app import (
    Choice,
    app,
    choice_option,
    fail,
    load_config,
    open_store,
    say,
)
from mentionwatch.models import ANALYZER_NAMES

if TYPE_CHECKING:
    from mentionwatch.sentiment import Contribution, Score

SCORE_FORMATS = ("plain", "jsonl")
AnalyzerOpt = Annotated[
    str | None,
    choice_option("--analyzer", Choice(ANALYZER_NAMES, "analyzer"),
                  "The analyzer (default: [sentiment] analyzer, else mentionwatch).", "NAME"),
]  # fmt: skip


@app.command()
def sentiment(
    texts: Annotated[
        list[str] | None,
        typer.Argument(metavar="TEXT...", help="Texts to score; none reads lines from stdin."),
    ] = None,
    analyzer: AnalyzerOpt = None,
    fmt: Annotated[
        str,
        choice_option(
            "--format", Choice(SCORE_FORMATS, "format"), "Output format.", "FORMAT", short="-f"
        ),
    ] = "plain",
    explain: Annotated[
        bool, typer.Option("--explain", help="Show the features that decided each label.")
    ] = False,
) -> None:
    """Score text: sentiment, polarity and intents.

    \b
    Examples:
      mentionwatch sentiment "the new release broke my build"
      mentionwatch sentiment --format jsonl < texts.txt
      mentionwatch sentiment --analyzer vader "love it"
      mentionwatch sentiment --explain "would love dark mode"
    """
    import json

    from mentionwatch.sentiment import OUTPUTS
    from mentionwatch.tagging import analyzer_for
    from mentionwatch.text import inert

    try:
        scorer = analyzer_for(load_config(), None, analyzer, notify=say)
    except ValueError as exc:
        fail(str(exc))
    explainer: Callable[[str], tuple[Score, list[Contribution]]] | None = getattr(
        scorer, "explain", None
    )
    if explain and explainer is None:
        fail(f"--explain needs the default analyzer (the {scorer.name!r} analyzer cannot say why)")
    lines = texts if texts else (line.rstrip("\n") for line in sys.stdin)
    for text in lines:
        if not text.strip():
            continue
        why: list[Contribution] | None = None
        if explain and explainer is not None:
            score, why = explainer(text)
        else:
            score = scorer.score(text)
        if fmt == "jsonl":
            row = {"text": inert(text), "sentiment": score.label, "polarity": score.polarity,
                   "intents": list(score.intents)}  # fmt: skip
            if why is not None:
                row["features"] = [
                    {
                        "feature": inert(c.feature),
                        "weights": dict(zip(OUTPUTS, c.weights, strict=True)),
                    }
                    for c in why
                ]
            print(json.dumps(row, ensure_ascii=False))
            continue
        intents = ",".join(score.intents) or "-"
        print(f"{score.label:<8}\t{score.polarity:+.3f}\t{intents}\t{inert(text)}")
        for c in why or ():
            parts = "  ".join(f"{name} {w:+.2f}" for name, w in zip(OUTPUTS, c.weights,
                              strict=True) if w)  # fmt: skip
            print(f"    {inert(c.feature):<24} {parts}")


@app.command()
def rescore(
    analyzer: AnalyzerOpt = None,
) -> None:
    """Re-tag every stored mention: sentiment, intents, relevance.

    Run it after an upgrade, after changing [sentiment] analyzer, or after editing a term's
    about / not_about.

    \b
    Examples:
      mentionwatch rescore
      mentionwatch rescore --analyzer textblob
    """
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
