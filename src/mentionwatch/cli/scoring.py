"""Sentiment: scoring text, and re-scoring stored mentions."""

from __future__ import annotations

import sys
from typing import Annotated

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

SCORE_FORMATS = ("plain", "jsonl")
BATCH = 1000  # lines per write
AnalyzerOpt = Annotated[
    str | None,
    typer.Option("--analyzer", metavar="NAME",
                 help="mentionwatch (default), textblob, vader; or [sentiment] analyzer."),
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
) -> None:
    """Score text: sentiment, polarity and intents.

    \b
    Examples:
      mentionwatch sentiment "the new release broke my build"
      mentionwatch sentiment --format jsonl < texts.txt
      mentionwatch sentiment --analyzer vader "love it"
    """
    import json

    from mentionwatch.sentiment import get_analyzer

    try:
        scorer = get_analyzer(analyzer or load_config().analyzer)
    except ValueError as exc:
        fail(str(exc))
    lines = texts if texts else (line.rstrip("\n") for line in sys.stdin)
    from mentionwatch.text import inert

    # Output goes out in batches: one write per BATCH lines, not one print per line.
    batch: list[str] = []
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    for text in lines:
        if not text.strip():
            continue
        score = scorer.score(text)
        if fmt == "jsonl":
            batch.append(
                dumps(
                    {
                        "text": inert(text),
                        "sentiment": score.label,
                        "polarity": score.polarity,
                        "intents": list(score.intents),
                    }
                )
            )
        else:
            intents = ",".join(score.intents) or "-"
            batch.append(f"{score.label:<8}\t{score.polarity:+.3f}\t{intents}\t{inert(text)}")
        if len(batch) == BATCH:
            sys.stdout.write("\n".join(batch) + "\n")
            batch = []
    if batch:
        sys.stdout.write("\n".join(batch) + "\n")


@app.command()
def rescore(
    analyzer: AnalyzerOpt = None,
) -> None:
    """Re-tag every stored mention with the current analyzer.

    Run it after an upgrade or after changing [sentiment] analyzer.

    \b
    Examples:
      mentionwatch rescore
      mentionwatch rescore --analyzer textblob
    """
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
