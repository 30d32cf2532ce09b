"""Sentiment and intent tagging for mentions.

Importing this module is deliberately cheap (stdlib ``re``/``math`` only): the heavy
third-party analyzers (TextBlob, VADER) are imported inside their constructors, and the
default analyzer's weights are loaded on first use.

Public interface (the rest of the app codes against it): :class:`Score`,
:class:`Analyzer`, :data:`ANALYZER_NAMES`, :data:`DEFAULT_ANALYZER`, :func:`get_analyzer`,
:func:`mask_terms`, :func:`priority` and :func:`detect_intents`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "ANALYZER_NAMES",
    "DEFAULT_ANALYZER",
    "INTENTS",
    "LABELS",
    "MASK_TOKEN",
    "Analyzer",
    "Score",
    "detect_intents",
    "get_analyzer",
    "mask_terms",
    "normalize",
    "priority",
]

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
INTENTS: tuple[str, ...] = ("question", "complaint", "praise", "request")

# Placeholder for masked brand/product names. Lower-case letters only so every tokenizer
# (TextBlob, VADER, ours) keeps it as one word, and it is in no sentiment lexicon.
MASK_TOKEN = "xterm"


@dataclass(frozen=True, slots=True)
class Score:
    """Sentiment of one text: a label, a polarity in -1..1 and detected intents."""

    label: str  # "positive" | "neutral" | "negative"
    polarity: float  # -1..1
    intents: tuple[str, ...] = ()  # subset of INTENTS, in that order


class Analyzer(Protocol):
    name: str

    def score(self, text: str) -> Score: ...


# --------------------------------------------------------------------------- masking


def mask_terms(text: str, phrases: Sequence[str]) -> str:
    """Replace each phrase in ``text`` with :data:`MASK_TOKEN`.

    Matching is case-insensitive and word-boundary aware, and takes an optional leading
    ``@`` or ``#``: ``"acme"`` masks ``"Acme"``, ``"@acme"`` and ``"#ACME"`` but not
    ``"acmeville"``. Whitespace inside a multi-word phrase matches any whitespace. This
    keeps a brand whose name is a sentiment word ("United", "Honey", "Slack") from
    deciding the sentiment of its own mentions.
    """
    pattern = _mask_pattern(tuple(phrases))
    if pattern is None:
        return text
    return pattern.sub(MASK_TOKEN, text)


_MASK_CACHE: dict[tuple[str, ...], re.Pattern[str] | None] = {}


def _mask_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    # The same few brand terms are masked for every mention: compile once per set.
    if phrases in _MASK_CACHE:
        return _MASK_CACHE[phrases]
    parts = []
    # Longest first so "acme cloud" wins over "acme" in the alternation.
    for phrase in sorted({p.strip() for p in phrases if p.strip()}, key=len, reverse=True):
        body = r"\s+".join(re.escape(w) for w in phrase.lstrip("@#").split())
        if body:
            parts.append(body)
    pattern = None
    if parts:
        alternation = "|".join(parts)
        pattern = re.compile(rf"(?<![\w@#])[@#]?(?:{alternation})(?!\w)", re.IGNORECASE)
    if len(_MASK_CACHE) > 256:
        _MASK_CACHE.clear()
    _MASK_CACHE[phrases] = pattern
    return pattern


# ---------------------------------------------------------------------- normalising

_URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE_RE = re.compile(r"(?<!\w)@\w+")
_ESCAPE_RE = re.compile(r"\\u([0-9a-fA-F]{4})")


def normalize(text: str) -> str:
    """Replace URLs and @handles with placeholder tokens (``http``, ``@user``).

    Handles name companies and people ("@SouthwestAir", "@united"): they must not carry
    sentiment, and URLs are noise. Literal ``\\uXXXX`` escapes (common in scraped tweet
    dumps) are decoded so emoji and punctuation are seen as such.
    """
    if "\\u" in text:
        text = _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), text)
    text = _URL_RE.sub(" http ", text)
    return _HANDLE_RE.sub("@user", text)


# -------------------------------------------------------------------------- intents

_QUESTION_RE = re.compile(
    r"\?|^\s*(?:how|what|why|when|where|who|which|is|are|can|could|does|do|did|will|would|"
    r"should|has|have|any(?:one|body))\b.*\b(?:you|i|it|there|this|we|they|know)\b|"
    r"\b(?:anyone|anybody|does anyone|any ?one) (?:know|tried|else|use|recommend)|"
    r"\bhow (?:do|can|to|does)\b|\bwondering\b",
    re.IGNORECASE,
)
_REQUEST_RE = re.compile(
    r"\b(?:please|pls|plz|kindly|help me|help us|can you|could you|would you|dm me|"
    r"send me|let me know|need help|need your help|get back to me|fix (?:this|it)|"
    r"follow ?back|reach out|contact me|call me|email me)\b|\bhelp[.!]*\s*$|"
    r"\bassist\b|\bplease help\b",
    re.IGNORECASE,
)
_COMPLAINT_RE = re.compile(
    r"\b(?:wait(?:ing|ed)?|delay(?:s|ed)?|cancel+(?:ed|ation|ations)?|lost|missing|"
    r"refund|still|on hold|hold for|nobody|no one|never (?:received|got|arrived|came|"
    r"showed|answered|responded|replied)|not (?:working|received|happy|helpful)|"
    r"doesn'?t work|does not work|didn'?t work|broken|stuck|stranded|worst|terrible|"
    r"awful|horrible|rude|unacceptable|ridiculous|disappointed|disappointing|"
    r"frustrat\w*|annoy\w*|useless|crash\w*|bug(?:gy|s)?|outage|down again|"
    r"charged|overcharged|scam|complain\w*|fail(?:ed|s|ure)?|again\?|hours? late|"
    r"mins? late|minutes? late|no response|no answer|customer service|"
    r"(?:first|second|third|\d+(?:st|nd|rd|th)) time)\b",
    re.IGNORECASE,
)
_PRAISE_RE = re.compile(
    r"\b(?:love[sd]?|loving|great|awesome|amazing|excellent|fantastic|thanks|thank you|"
    r"thx|kudos|best|brilliant|wonderful|perfect|impressed|recommend|props|shout ?out|"
    r"appreciate\w*|nice|cool|rocks?|superb|well done|good job|great job|helpful)\b|"
    r"[😍🥰❤️💕💖👏🙌😊👍]",
    re.IGNORECASE,
)


def detect_intents(text: str, label: str) -> tuple[str, ...]:
    """Rule-based intents of a mention, in :data:`INTENTS` order.

    ``label`` gates two intents: praise needs a positive label (so "thanks for the 3 hour
    delay" is not praise) and complaint needs a non-positive one.
    """
    found = []
    if _QUESTION_RE.search(text):
        found.append("question")
    # A negative mention is a complaint by definition here; a neutral one only when it
    # names a typical service failure ("still waiting", "bag lost").
    if label == "negative" or (label == "neutral" and _COMPLAINT_RE.search(text)):
        found.append("complaint")
    if label == "positive" and _PRAISE_RE.search(text):
        found.append("praise")
    if _REQUEST_RE.search(text):
        found.append("request")
    return tuple(found)


# ------------------------------------------------------------------------- priority


def priority(
    label: str,
    polarity: float,
    intents: Sequence[str],
    reach: int | None,
    age_hours: float,
) -> float:
    """Rank a mention for answering: higher means answer sooner.

    ``priority = urgency * audience * freshness`` where

    - urgency (0.5..~6): base by label (negative 3, neutral 1.5, positive 1), plus 2 for a
      complaint, 1.5 for a question, 1 for a request, 0.5 for praise, plus up to 1 for
      the strength of a negative polarity. So an unhappy customer comes before a
      question, which comes before a fan.
    - audience (>= 1): ``1 + log10(1 + reach) / 2``; the author's followers/points count,
      log-scaled so a celebrity does not drown everyone else; unknown reach counts as 0.
    - freshness (0.25..1): ``0.25 + 0.75 * 0.5 ** (age_hours / 24)``; a day-old mention
      weighs 0.625 of a new one, and old mentions never drop to zero.
    """
    base = {"negative": 3.0, "neutral": 1.5, "positive": 1.0}.get(label, 1.5)
    bonus = {"complaint": 2.0, "question": 1.5, "request": 1.0, "praise": 0.5}
    urgency = base + sum(bonus.get(i, 0.0) for i in set(intents))
    urgency += max(0.0, -max(-1.0, min(1.0, polarity)))
    audience = 1.0 + math.log10(1.0 + max(0, reach or 0)) / 2.0
    freshness = 0.25 + 0.75 * 0.5 ** (max(0.0, age_hours) / 24.0)
    return urgency * audience * freshness


# ------------------------------------------------------------------------ analyzers


def _label_from(polarity: float, threshold: float) -> str:
    if polarity > threshold:
        return "positive"
    if polarity < -threshold:
        return "negative"
    return "neutral"


class TextBlobAnalyzer:
    """TextBlob's default PatternAnalyzer polarity, >0.1 positive, <-0.1 negative."""

    name = "textblob"
    threshold = 0.1

    def __init__(self) -> None:
        from textblob.en.sentiments import PatternAnalyzer  # heavy: import lazily

        self._analyze = PatternAnalyzer().analyze

    def score(self, text: str) -> Score:
        clean = normalize(text)
        polarity = float(self._analyze(clean)[0])
        label = _label_from(polarity, self.threshold)
        return Score(label, polarity, detect_intents(clean, label))


class VaderAnalyzer:
    """vaderSentiment compound score with the standard +-0.05 thresholds."""

    name = "vader"
    threshold = 0.05

    def __init__(self) -> None:
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as exc:  # a dev/benchmark dependency only
            raise RuntimeError(
                "the 'vader' analyzer needs vaderSentiment: pip install vaderSentiment"
            ) from exc
        self._analyze = SentimentIntensityAnalyzer().polarity_scores

    def score(self, text: str) -> Score:
        clean = normalize(text)
        polarity = float(self._analyze(clean)["compound"])
        label = _label_from(polarity, self.threshold)
        return Score(label, polarity, detect_intents(clean, label))


class MentionwatchAnalyzer:
    """Placeholder default: delegates to TextBlob until the trained model lands."""

    name = "mentionwatch"

    def __init__(self) -> None:
        self._inner = TextBlobAnalyzer()

    def score(self, text: str) -> Score:
        return self._inner.score(text)


_FACTORIES: dict[str, Callable[[], Analyzer]] = {
    "mentionwatch": MentionwatchAnalyzer,
    "textblob": TextBlobAnalyzer,
    "vader": VaderAnalyzer,
}
ANALYZER_NAMES: tuple[str, ...] = tuple(_FACTORIES)
DEFAULT_ANALYZER: str = "mentionwatch"
_INSTANCES: dict[str, Analyzer] = {}


def get_analyzer(name: str | None = None) -> Analyzer:
    """Return the (cached) analyzer called ``name``; ``None`` means the default.

    Raises ValueError for an unknown name, listing the valid ones.
    """
    key = DEFAULT_ANALYZER if name is None else name.strip().lower()
    if key not in _FACTORIES:
        raise ValueError(f"unknown analyzer {name!r} (choose from: {', '.join(ANALYZER_NAMES)})")
    if key not in _INSTANCES:
        _INSTANCES[key] = _FACTORIES[key]()
    return _INSTANCES[key]
