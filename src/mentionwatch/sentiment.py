"""Sentiment and intent tagging for mentions.

Importing this module is deliberately cheap (stdlib ``re``/``math`` only): the heavy
third-party analyzers (TextBlob, VADER) are imported inside their constructors, and the
default analyzer's weights are loaded on first use.

Public interface (the rest of the app codes against it): :class:`Score`,
:class:`Analyzer`, :data:`ANALYZER_NAMES`, :data:`DEFAULT_ANALYZER`, :func:`get_analyzer`,
:func:`mask_terms` and :func:`detect_intents` (ranking lives in triage.py).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
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
    # The substring checks skip the regex scans for the many texts without URLs/handles.
    if "http" in text or "www." in text or "WWW." in text or "HTTP" in text:
        text = _URL_RE.sub(" http ", text)
    if "@" in text:
        text = _HANDLE_RE.sub("@user", text)
    return text


# -------------------------------------------------------------------------- intents
# The patterns run on lower-cased, normalised text (see detect_intents).

# Question openers are matched at the start only (``match``); the rest is searched only
# when one of its literals occurs, which keeps this cheap for the many texts without.
_QUESTION_START_RE = re.compile(r"\s*(?:how|what|why|when|where|who|which|whats|anyone|anybody)\b")
_QUESTION_RE = re.compile(
    r"\b(?:any ?one|anybody|does anyone) (?:know|tried|else|use|recommend)|"
    r"\bhow (?:do|can|to|does|long)\b|\bwondering\b"
)
_REQUEST_RE = re.compile(
    r"\b(?:please|pls|plz|kindly|help me|help us|can you|could you|would you|dm me|"
    r"send me|let me know|need help|need your help|get back to me|fix (?:this|it)|"
    r"reach out|contact me|call me|email me|assist)\b|\bhelp\W*$"
)
_COMPLAINT_RE = re.compile(
    r"\b(?:wait(?:ing|ed)?|delay(?:s|ed)?|cancel+(?:ed|ation|ations)?|lost|missing|"
    r"refund|still|on hold|hold for|nobody|no one|never (?:received|got|arrived|came|"
    r"showed|answered|responded|replied)|not (?:working|received|happy|helpful)|"
    r"doesn'?t work|does not work|didn'?t work|broken|stuck|stranded|worst|terrible|"
    r"awful|horrible|rude|unacceptable|ridiculous|disappoint\w*|frustrat\w*|annoy\w*|"
    r"useless|crash\w*|bug(?:gy|s)?|outage|down again|charged|overcharged|scam|"
    r"complain\w*|fail(?:ed|s|ure)?|late|no response|no answer|"
    r"(?:first|second|third|\d+(?:st|nd|rd|th)) time)\b"
)
_PRAISE_RE = re.compile(
    r"\b(?:love[sd]?|loving|great|awesome|amazing|excellent|fantastic|thanks|thank you|"
    r"thx|kudos|best|brilliant|wonderful|perfect|impressed|recommend|props|shout ?out|"
    r"appreciate\w*|nice|cool|rocks?|superb|well done|good job|helpful)\b"
)
_PRAISE_EMOJI_RE = re.compile(r"[😍🥰❤💕💖👏🙌😊👍]")
# Literals one of which every _REQUEST_RE / _PLEA_RE match contains: a few C-level
# substring tests skip the regex scan for most texts.
_REQUEST_HINTS = (
    "pl", "kindly", "help", "n you", "d you", "dm me", "send me", "let me know", "need",
    "get back", "fix", "reach out", "contact me", "call me", "email me", "assist",
)  # fmt: skip
_PLEA_HINTS = ("pl", "help", "dm me", "fix", "n you", "d you", "need ", "wh", "how")


def detect_intents(text: str, label: str) -> tuple[str, ...]:
    """Rule-based intents of a mention, in :data:`INTENTS` order.

    ``label`` gates two intents: praise needs a positive label (so "thanks for the 3 hour
    delay" is not praise) and complaint a non-positive one.
    """
    return _intents(normalize(text).lower(), label)


def _intents(low: str, label: str) -> tuple[str, ...]:
    found = []
    if (
        "?" in low
        or _QUESTION_START_RE.match(low)
        or (("any" in low or "how" in low or "wondering" in low) and _QUESTION_RE.search(low))
    ):
        found.append("question")
    # A negative mention is a complaint by definition here; a neutral one only when it
    # names a typical service failure ("still waiting", "bag lost").
    if label == "negative" or (label == "neutral" and _COMPLAINT_RE.search(low)):
        found.append("complaint")
    if label == "positive" and (
        _PRAISE_RE.search(low) or (not low.isascii() and _PRAISE_EMOJI_RE.search(low))
    ):
        found.append("praise")
    if any(hint in low for hint in _REQUEST_HINTS) and _REQUEST_RE.search(low):
        found.append("request")
    return tuple(found)


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


# ------------------------------------------------------- default (trained) analyzer
#
# A multinomial logistic regression over sparse string features (word uni/bigrams with
# negation scope, character 4-grams of words, lexicon sums, emoji valence,
# customer-service rule features), trained
# by scripts/train_sentiment.py. The same ``_analyse()`` runs at training and at run
# time, so the shipped weights cannot drift from the extractor.

_TOKEN_RE = re.compile(
    r"[#@]?[a-z0-9]+(?:['’][a-z]+)*"  # words, hashtags, @user placeholder
    r"|[!?]+|(?:[<>]?[:;=][\-o*']?[)\](\[dp/}{@|\\]|<3)"  # punctuation runs, emoticons
    r"|[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B50]"  # emoji
)
_ELONG_RE = re.compile(r"([a-z])\1\1+")
_DIGIT_RE = re.compile(r"[1-9]")
_NEGATIONS = frozenset(
    [
        "not",
        "no",
        "never",
        "nothing",
        "nobody",
        "none",
        "nowhere",
        "neither",
        "nor",
        "cannot",
        "without",
        "aint",
        "isnt",
        "arent",
        "wasnt",
        "werent",
        "dont",
        "doesnt",
        "didnt",
        "cant",
        "couldnt",
        "wont",
        "wouldnt",
        "shouldnt",
        "hasnt",
        "havent",
        "hadnt",
        "ain't",
        "isn't",
        "aren't",
        "wasn't",
        "weren't",
        "don't",
        "doesn't",
        "didn't",
        "can't",
        "couldn't",
        "won't",
        "wouldn't",
        "shouldn't",
        "hasn't",
        "haven't",
        "hadn't",
    ]
)
_INTENSIFIERS = frozenset(
    [
        "very",
        "so",
        "really",
        "extremely",
        "totally",
        "absolutely",
        "completely",
        "super",
        "too",
        "most",
        "such",
        "incredibly",
        "utterly",
        "truly",
    ]
)
_SARCASM_TRIGGERS = frozenset(
    "thanks thank thx love great nice awesome wonderful fantastic appreciate glad".split()  # noqa: SIM905
)
# Service-failure vocabulary: customers complain with neutral words ("still waiting",
# "bag lost", "on hold"); general tweets rarely use these, so they get their own feature.
_SERVICE_RE = re.compile(
    r"\b(?:wait(?:ing|ed)?|delay(?:s|ed)?|cancel+(?:ed|ation|ations|s)?|lost|missing|"
    r"refund|on hold|hold(?:ing)? for|nobody|no one|never (?:received|got|arrived|came|"
    r"showed|answered|responded|replied|heard)|stuck|stranded|overbooked|rebook(?:ed)?|"
    r"diverted|charged|broken|damaged|late|not working|doesn'?t work|no response|"
    r"no answer|no reply|(?:second|third|0nd|0rd|another|0+(?:st|nd|rd|th)) time|"
    r"(?:hours?|hrs?|minutes?|mins?) (?:late|delay|wait|on hold|and counting|now|later|"
    r"ago|sitting|on the (?:ground|tarmac|phone))|on the (?:ground|tarmac))\b"
)
# First words of the _SERVICE_RE alternatives (after digit folding).
_SERVICE_TRIGGERS = frozenset(
    [
        "wait",
        "waiting",
        "waited",
        "delay",
        "delays",
        "delayed",
        "cancel",
        "cancelled",
        "canceled",
        "cancellation",
        "cancellations",
        "cancels",
        "lost",
        "missing",
        "refund",
        "on",
        "hold",
        "holding",
        "nobody",
        "no",
        "never",
        "stuck",
        "stranded",
        "overbooked",
        "rebook",
        "rebooked",
        "diverted",
        "charged",
        "broken",
        "damaged",
        "late",
        "not",
        "doesn't",
        "doesnt",
        "second",
        "third",
        "0nd",
        "0rd",
        "another",
        "0st",
        "0th",
        "hour",
        "hours",
        "hr",
        "hrs",
        "minute",
        "minutes",
        "min",
        "mins",
    ]
)
# "still waiting", "still on the ground", "still no refund": an unresolved state, the
# commonest shape of a complaint without a negative word.
_STILL_RE = re.compile(
    r"\b(?:still|yet) (?:no|not|nothing|waiting|on|at|in|here|sitting|stuck|haven'?t|"
    r"hasn'?t|don'?t|didn'?t|can'?t|cannot|isn'?t|waiting)\b"
)
_PLEA_RE = re.compile(
    r"\b(?:please|pls|plz|help|dm me|fix|can you|could you|need (?:to|a|an|my|help)|"
    r"where is|where's|why is|why does|why can'?t|how (?:long|come|hard|many times))\b"
)
# "thanks for the rude service", "love waiting 3 hours": gratitude or praise aimed at a
# service failure is sarcasm.
_SARCASM_RE = re.compile(
    r"\b(?:thanks?(?: you)?|thx|love|great|nice|awesome|wonderful|fantastic|"
    r"appreciate|glad)\b(?:\W+\w+){0,6}?\W+(?:for |)(?:the |a |an |my |another |)"
    r"(?:rude|delay\w*|cancel\w*|lost|late|wait\w*|hold|nothing|broken|0+ ?(?:hours?|"
    r"hrs?|minutes?|mins?)|worst|terrible|awful|horrible|no\b|losing|never|stuck|charg\w*)"
)


def _subwords(unit: str) -> list[str]:
    """Character 4-gram keys (``c:`` + 4-gram of ``<word>``) of one unigram key.

    They let the model share weight between spellings and inflections it saw apart
    ("disappoint", "disappointing", "disappointed"). A negation-scoped ``n:word`` has the
    4-grams of ``word``; hashtags have none (their bare word, also a unigram key, has
    them), nor have @user, numbers, punctuation and emoji.
    """
    if unit[:2] == "n:":
        unit = unit[2:]
    if len(unit) < 2 or not unit[0].isalpha():
        return []
    w = "<" + unit + ">"
    return ["c:" + w[i : i + 4] for i in range(len(w) - 3)]


class _UnitCache(dict):
    """Unigram key -> its packed weight plus that of its :func:`_subwords`, on first sight.

    Tweets reuse words heavily, so a unigram with its 4-grams costs one C-level lookup.
    """

    __slots__ = ("_packed",)
    _LIMIT = 200_000  # distinct keys kept before the cache starts afresh

    def __init__(self, packed: dict[str, int]) -> None:
        super().__init__()
        self._packed = packed

    def __missing__(self, unit: str) -> int:
        if len(self) >= self._LIMIT:
            self.clear()
        get = self._packed.get
        value = get(unit, 0) + sum(map(get, _subwords(unit), repeat(0)))
        self[unit] = value
        return value


def _analyse(low: str, lexicon: dict[str, float]) -> tuple[list[str], list[str], dict[str, float]]:
    """Unigram keys, bigram keys (both with repeats = counts) and dense features of a text.

    ``low`` is ``normalize(text).lower()``. Unigram keys: bare tokens, ``n:tok`` for a token
    inside a negation scope (which ends at ! or ?), and the bare word of each hashtag
    (``#happy`` also counts as ``happy``, with its lexicon valence); each also brings its
    character 4-grams (:func:`_subwords`). Bigram keys: ``a b``. Dense: summed lexicon
    valence ``_lex+``/``_lex-`` (negation flips and damps it, an intensifier boosts it),
    and counts of the customer-service rules ``_svc``, ``_still``, ``_plea``, ``_sarc``.
    """
    low = _DIGIT_RE.sub("0", low)
    toks = _TOKEN_RE.findall(_ELONG_RE.sub(r"\1\1", low))
    if _NEGATIONS.isdisjoint(toks) and _INTENSIFIERS.isdisjoint(toks):
        keys = toks.copy()
        vals = [v for v in map(lexicon.get, toks) if v]
    else:
        keys, vals = _scoped(toks, lexicon)
    pairs = [a + " " + b for a, b in zip(["<s>", *toks], [*toks, "</s>"], strict=True)]
    if "#" in low:  # hashtags: also the bare word, and its lexicon valence
        for tok in toks:
            if tok[0] == "#" and len(tok) > 2:
                keys.append(tok[1:])
                v = lexicon.get(tok[1:])
                if v:
                    vals.append(v)
    pos = sum(v for v in vals if v > 0)
    neg = sum(v for v in vals if v < 0)
    dense: dict[str, float] = {}
    if pos:
        dense["_lex+"] = pos / 4.0
    if neg:
        dense["_lex-"] = -neg / 4.0
    if not vals:
        dense["_lex0"] = 1.0
    elif pos and neg:
        dense["_lex+-"] = 1.0
    if not _SERVICE_TRIGGERS.isdisjoint(toks):  # cheap pre-check before the long regex
        svc = len(_SERVICE_RE.findall(low))
        if svc:
            dense["_svc"] = min(svc, 3)
    if ("still" in toks or "yet" in toks) and _STILL_RE.search(low):
        dense["_still"] = 1.0
    if any(hint in low for hint in _PLEA_HINTS) and _PLEA_RE.search(low):
        dense["_plea"] = 1.0
    if not _SARCASM_TRIGGERS.isdisjoint(toks) and _SARCASM_RE.search(low):
        dense["_sarc"] = 1.0
    return keys, pairs, dense


def _scoped(toks: list[str], lexicon: dict[str, float]) -> tuple[list[str], list[float]]:
    # Slow path, only for texts with a negation or an intensifier.
    keys, vals = [], []
    negated = False
    boost = 1.0
    for tok in toks:
        if tok[0] in "!?":
            negated = False
            keys.append(tok)
            continue
        keys.append("n:" + tok if negated else tok)
        val = lexicon.get(tok)
        if val:
            vals.append(val * boost * (-0.74 if negated else 1.0))  # VADER's negation scalar
        if tok in _NEGATIONS:
            negated = True
        boost = 1.3 if tok in _INTENSIFIERS else 1.0
    return keys, vals


def features(text: str, lexicon: dict[str, float]) -> dict[str, float]:
    """Feature dict of a raw text, as the training script feeds it to scikit-learn."""
    units, pairs, dense = _analyse(normalize(text).lower(), lexicon)
    feats: dict[str, float] = {}
    for key in [*units, *pairs, *(k for unit in units for k in _subwords(unit))]:
        feats[key] = feats.get(key, 0.0) + 1.0
    feats.update(dense)
    return feats


_DATA_FILE = "model.bin"
# Sparse weights are packed as ``neg * 2**32 + pos`` integers (in units of ``scale``) so a
# whole text is scored with C-level ``sum(map(...))`` calls; the positive part
# cannot overflow its 32 bits below millions of tokens.
_PACK = 1 << 32
_HALF = 1 << 31
# model.bin: magic, uint32 header length, JSON header, then the blobs the header sizes:
# sparse keys ("\n"-joined UTF-8), lexicon keys (same), packed weights (int64) and
# lexicon valences (float64), both little-endian. Built by scripts/train_sentiment.py;
# loading it is a few C-level calls (no JSON parse of 70k numbers).
_MAGIC = b"MWS1"


def read_model(raw: bytes) -> tuple[dict, dict[str, int], dict[str, float]]:
    """Header, packed sparse weights and lexicon of a ``model.bin`` payload."""
    import json
    from array import array
    from sys import byteorder

    if raw[:4] != _MAGIC:
        raise ValueError("not a mentionwatch sentiment model (bad magic)")
    start = 8 + int.from_bytes(raw[4:8], "little")
    header = json.loads(raw[8:start])
    blobs = []
    for size in header["sizes"]:
        blobs.append(raw[start : start + size])
        start += size
    keys, lex_keys, packed_raw, lex_raw = blobs
    packed, valences = array("q"), array("d")
    packed.frombytes(packed_raw)
    valences.frombytes(lex_raw)
    if byteorder != "little":
        packed.byteswap()
        valences.byteswap()
    weights = dict(zip(keys.decode().split("\n"), packed, strict=True))
    lexicon = dict(zip(lex_keys.decode().split("\n"), valences, strict=True))
    return header, weights, lexicon


class MentionwatchAnalyzer:
    """The default: a compact linear model trained on SemEval tweets plus lexicons.

    Pure Python at run time. The weights (``sentiment_data/model.bin``) are read when
    the analyzer is constructed, which :func:`get_analyzer` defers to first use.
    """

    name = "mentionwatch"

    def __init__(self, path: str | None = None) -> None:
        # ``path`` lets the training script score a freshly built model (CV folds).
        if path is None:
            path = os.path.join(os.path.dirname(__file__), "sentiment_data", _DATA_FILE)
            if not os.path.exists(path):  # e.g. imported from a zip: ask importlib
                from importlib.resources import files

                raw = files("mentionwatch").joinpath("sentiment_data", _DATA_FILE).read_bytes()
                path = None
        if path is not None:
            with open(path, "rb") as fh:
                raw = fh.read()
        model, self._packed, self._lexicon = read_model(raw)
        self._units = _UnitCache(self._packed)
        self._scale: float = model["scale"]
        # Dense features and bias: (negative - neutral, positive - neutral) float pairs;
        # softmax is shift invariant, so the neutral column is implicitly zero.
        self._dense: dict[str, list[float]] = model["dense"]
        self._bias: list[float] = model["bias"]

    def score(self, text: str) -> Score:
        low = normalize(text).lower()
        units, pairs, dense = _analyse(low, self._lexicon)
        total = sum(map(self._units.__getitem__, units)) + sum(
            map(self._packed.get, pairs, repeat(0))
        )
        pos_units = (total + _HALF) % _PACK - _HALF
        neg = self._bias[0] + (total - pos_units) // _PACK * self._scale
        pos = self._bias[1] + pos_units * self._scale
        for key, value in dense.items():
            w = self._dense.get(key)
            if w is not None:
                neg += w[0] * value
                pos += w[1] * value
        # Softmax over (neg, 0, pos); polarity = P(positive) - P(negative).
        top = max(neg, pos, 0.0)
        e_neg, e_neu, e_pos = math.exp(neg - top), math.exp(-top), math.exp(pos - top)
        polarity = (e_pos - e_neg) / (e_neg + e_neu + e_pos)
        label = "negative" if neg > pos and neg > 0.0 else "positive" if pos > 0.0 else "neutral"
        return Score(label, round(polarity, 4), _intents(low, label))


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
