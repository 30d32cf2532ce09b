"""Placeholder until the analyzer work lands: TextBlob polarity with fixed thresholds."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Score:
    label: str
    polarity: float
    intents: tuple[str, ...] = ()


class TextBlobAnalyzer:
    name = "textblob"

    def score(self, text: str) -> Score:
        from textblob import TextBlob

        polarity = float(TextBlob(text).sentiment.polarity)
        label = "positive" if polarity > 0.1 else "negative" if polarity < -0.1 else "neutral"
        return Score(label, round(polarity, 4))


ANALYZER_NAMES = ("textblob",)
DEFAULT_ANALYZER = "textblob"


def get_analyzer(name: str | None = None) -> TextBlobAnalyzer:
    if name not in (None, "textblob"):
        raise ValueError(f"unknown analyzer {name!r} (choose from: textblob)")
    return TextBlobAnalyzer()


def mask_terms(text: str, phrases: Sequence[str]) -> str:
    for p in phrases:
        text = re.sub(rf"(?<!\w){re.escape(p)}(?!\w)", "something", text, flags=re.I)
    return text


def priority(label, polarity, intents, reach, age_hours) -> float:
    return 0.0
