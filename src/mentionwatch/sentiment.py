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
from functools import partial, reduce
from itertools import compress, repeat
from operator import add, gt, lt, mul, or_
from typing import Protocol

from mentionwatch.models import ANALYZER_NAMES, INTENTS

__all__ = [
    "ANALYZER_NAMES",
    "DEFAULT_ANALYZER",
    "INTENTS",
    "LABELS",
    "MASK_TOKEN",
    "Analyzer",
    "Post",
    "Score",
    "detect_intents",
    "get_analyzer",
    "mask_terms",
    "normalize",
    "score_post",
    "score_posts",
]

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")

# Placeholder for masked brand/product names. Lower-case letters only so every tokenizer
# (TextBlob, VADER, ours) keeps it as one word, and it is in no sentiment lexicon.
MASK_TOKEN = "xterm"


@dataclass(frozen=True, slots=True)
class Score:
    """Sentiment of one text: a label, a polarity in -1..1 and detected intents.

    ``polarity`` is P(positive) - P(negative) of the default analyzer's calibrated
    probabilities. ``relevance`` (0..1, is the mention about the term's product?) is set
    only by analyzers that judge it (the LLM analyzer); the rest leave it to relevance.py.
    """

    label: str  # "positive" | "neutral" | "negative"
    polarity: float  # -1..1
    intents: tuple[str, ...] = ()  # subset of INTENTS, in that order
    relevance: float | None = None


@dataclass(frozen=True, slots=True)
class Post:
    """What is scored of one mention: the author's text, and its title as context.

    ``about`` describes the product the mention's terms stand for (from the config), and
    ``key`` names the mention (the LLM analyzer caches its answers by it).
    """

    text: str
    title: str | None = None
    about: str | None = None
    key: str | None = None


class Analyzer(Protocol):
    name: str

    def score(self, text: str) -> Score: ...


def score_post(analyzer: Analyzer, post: Post) -> Score:
    """Score a mention whose title is context and whose body is what the person said.

    The body decides the label whenever it has one; a title only speaks for a neutral (or
    missing) body, as in "App crashes on start" over a body of steps to reproduce. Intents
    of the title count when they fit the label: a question or request in a title is still
    asked; its complaint or praise must agree with the final sentiment.
    """
    title = (post.title or "").strip()
    body = post.text.strip()
    if not title or not body:
        return analyzer.score(body or title)
    b, t = analyzer.score(body), analyzer.score(title)
    if b.label != "neutral" or t.label == "neutral":
        label, polarity = b.label, b.polarity
    else:
        label = t.label
        # The title's sign with the body's doubt: halfway between them, never past neutral.
        polarity = (b.polarity + t.polarity) / 2
        polarity = max(polarity, 0.0) if label == "positive" else min(polarity, 0.0)
    agree = {"question": True, "request": True, "complaint": label != "positive",
             "praise": label == "positive"}  # fmt: skip
    found = set(b.intents) | {i for i in t.intents if agree[i]}
    if label == "positive":
        found.discard("complaint")
    elif label == "negative":
        found.discard("praise")
    return Score(label, polarity, tuple(i for i in INTENTS if i in found), b.relevance)


def score_posts(analyzer: Analyzer, posts: Sequence[Post]) -> list[Score]:
    """Score many mentions; an analyzer that works in batches (the LLM) gets them at once."""
    batch = getattr(analyzer, "score_posts", None)
    if batch is not None:
        return list(batch(posts))
    return [score_post(analyzer, p) for p in posts]


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
    parts, starts = [], {"@", "#"}
    # Longest first so "acme cloud" wins over "acme" in the alternation.
    for phrase in sorted({p.strip() for p in phrases if p.strip()}, key=len, reverse=True):
        words = phrase.lstrip("@#").split()
        if words:
            parts.append(r"\s+".join(map(re.escape, words)))
            starts.add(words[0][0])
    pattern = None
    if parts:
        alternation = "|".join(parts)
        # A match starts with "@", "#" or a phrase's first letter: looked ahead for first,
        # re passes over the other characters without trying the rest (a third less time).
        start = "".join(map(re.escape, sorted(starts)))
        pattern = re.compile(
            rf"(?=[{start}])(?<![\w@#])[@#]?(?:{alternation})(?!\w)", re.IGNORECASE
        )
    if len(_MASK_CACHE) > 256:
        _MASK_CACHE.clear()
    _MASK_CACHE[phrases] = pattern
    return pattern


# ---------------------------------------------------------------------- normalising

_URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE_RE = re.compile(r"@(?<!\w@)\w+")  # an "@" not after a word; "@" first: re scans for it
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
# The patterns run on lower-cased, normalised text. They serve twice: as features of the
# learned model (``_analyse``) and, for the TextBlob/VADER analyzers, as rules.

# Intent cues are sets of tokens and token pairs ("a b", with "<s>" opening the text), as
# _analyse() makes them: a C-level set intersection per text, no regex scan.
#
# A question: a "?" that ends a word (not "?sslmode=require" in code), or words that open
# one. No dataset here labels questions, so "question" stays a rule (measured on a
# hand-labelled sample, see scripts/train_sentiment.py).
_QMARK_RE = re.compile(r"[\w)\"'’*`]\s?\?+(?:\s|$|[)\"'’*`!.,:;])")


def _phrases(text: str) -> frozenset[str]:
    """A set of "|"-separated phrases (whitespace around each ignored)."""
    return frozenset(" ".join(p.split()) for p in text.split("|") if p.strip())


_QUESTION_PAIRS = _phrases(
    """<s> how|<s> what|<s> why|<s> where|<s> who|<s> which|<s> whats|<s> what's|
    <s> is|<s> are|<s> does|<s> do|<s> did|<s> can|<s> could|<s> should|<s> has|<s> have|
    <s> anyone|<s> anybody|does anyone|anyone know|anybody know|anyone else|anyone tried|
    anyone using|is there|are there|how do|how does|how can|how long|how much|how come|
    what is|what's the|wondering if|wondering whether|wondering how|ask hn|any way|any idea|
    any ideas|can i|can someone|can anyone|could someone|could anyone|should i|do i|do you"""
)
# A request: a feature request, or something the author asks the company to do.
_REQUEST_PAIRS = _phrases(
    """would love|would like|be nice|be great|be awesome|be cool|be helpful|be useful|
    please add|please support|please make|please consider|please allow|please implement|
    please bring|please include|please let|please fix|please give|please provide|
    please update|please enable|please change|please help|please dm|please contact|pls add|
    pls fix|plz add|plz fix|add support|add an|add a|add the|support for|feature request|
    any plans|i wish|wish there|wish it|wish you|hope you|should add|should support|
    should allow|should include|should offer|should let|need an|needs an|need a|needs a|
    want an|can you|could you|would you|would it|it possible|allow us|allow me|allow users|
    let us|ability to|option to|dm me|help me|help us|need help|get back|contact me|email me|
    call me|bring back|dark mode|an option|a setting|a way"""
)
# Software and service failures: what complaints about a product are made of.
_FAIL_WORDS = _phrases(
    """crash|crashes|crashed|crashing|crashy|bug|bugs|buggy|error|errors|broke|broken|breaks|
    fails|failed|failing|failure|failures|outage|outages|throttled|throttling|throttles|
    freezes|freezing|froze|frozen|unusable|unresponsive|laggy|lagging|glitch|glitches|glitchy|
    uninstall|uninstalled|uninstalling|corrupted|corrupt|regression|refund|overcharged|
    timeout|timeouts"""
)
_FAIL_PAIRS = _phrases(
    """is down|was down|are down|went down|goes down|been down|down again|not working|
    not loading|not responding|not opening|not syncing|doesn't work|didn't work|won't load|
    won't open|won't start|won't work|can't connect|can't login|can't log|cannot connect|
    keeps crashing|keeps failing|keeps dropping|keeps throttling|keeps returning|
    keeps freezing|hasn't answered|haven't heard|never answered|no response|no reply|
    no answer|ate my|timed out|timing out|times out|lost my|lost all|still waiting|
    still broken|still no|still not|not fixed|000 error|wasted my"""
)
# First person: a failure that hurts the author, not one a developer describes.
_MINE = frozenset(["my", "our", "me", "us", "n:my", "n:our", "n:me", "n:us"])
# The first words of the cue pairs: a pair opened by another word is no cue.
_CUE_OPENERS = frozenset(
    p.partition(" ")[0] for p in _QUESTION_PAIRS | _REQUEST_PAIRS | _FAIL_PAIRS
)
_PRAISE_RE = re.compile(
    r"\b(?:love[sd]?|loving|great|awesome|amazing|excellent|fantastic|thanks|thank you|"
    r"thx|kudos|best|brilliant|wonderful|perfect|impressed|recommend|props|shout ?out|"
    r"appreciate\w*|nice|cool|rocks?|superb|well done|good job|helpful|magic|lovely|neat|"
    r"generous|painless|killer feature)\b"
)
_PRAISE_EMOJI_RE = re.compile(r"[😍🥰❤💕💖👏🙌😊👍✨]")


def _tokens(low: str) -> list[str]:
    """Tokens of lower-cased, normalised text (digits folded to 0, elongations cut)."""
    return _TOKEN_RE.findall(_ELONG_RE.sub(r"\1\1", _DIGIT_RE.sub("0", low)))


def _pairs(toks: list[str], openers: frozenset[str] | None = None) -> list[str]:
    """The "a b" pairs of a text's tokens ("<s>" before the first, "</s>" after the last);
    with ``openers``, only the pairs whose first word is one of them."""
    # " ".join mapped over the pairs: a third less than concatenating each in Python.
    firsts, seconds = ["<s>", *toks], [*toks, "</s>"]
    if openers is None:
        return list(map(" ".join, zip(firsts, seconds, strict=True)))
    opened = map(openers.__contains__, firsts)
    return list(map(" ".join, compress(zip(firsts, seconds, strict=True), opened)))


def _cues(low: str, toks: list[str], pairs: list[str], kinds: int) -> dict[str, float]:
    """The intent cue features of a text (see the sets above; ``kinds``: :func:`_kinds`)."""
    cues: dict[str, float] = {}
    if "?" in low and _QMARK_RE.search(low):
        cues["_q"] = 1.0
    if not _QUESTION_PAIRS.isdisjoint(pairs):
        cues["_qopen"] = 1.0
    if not _REQUEST_PAIRS.isdisjoint(pairs):
        cues["_req"] = 1.0
    fails = len(_FAIL_PAIRS.intersection(pairs))
    if kinds & _FAIL:
        fails += len(_FAIL_WORDS.intersection(toks))
    if fails:
        cues["_fail"] = min(fails, 3)
    return cues


def asks(cues: dict[str, float]) -> bool:
    """A question: a question mark, or question words that are not a request's politeness
    ("could you add ..." asks for a feature, not for an answer)."""
    return "_q" in cues or ("_qopen" in cues and "_req" not in cues)


def is_question(low: str) -> bool:
    """True when lower-cased, normalised text asks something."""
    toks = _tokens(low)
    return asks(_cues(low, toks, _pairs(toks), _kinds(toks)))


def detect_intents(text: str, label: str) -> tuple[str, ...]:
    """Rule-based intents of a mention, in :data:`INTENTS` order (the TextBlob and VADER
    analyzers use these; the default analyzer learned its own from labelled feedback).

    ``label`` gates two intents: praise needs a positive label (so "thanks for the 3 hour
    delay" is not praise) and complaint a non-positive one.
    """
    low = normalize(text).lower()
    toks = _tokens(low)
    cues = _cues(low, toks, _pairs(toks), _kinds(toks))
    found = []
    if asks(cues):
        found.append("question")
    if label == "negative" or (label == "neutral" and ("_fail" in cues or _SERVICE_RE.search(low))):
        found.append("complaint")
    if label == "positive" and (
        _PRAISE_RE.search(low) or (not low.isascii() and _PRAISE_EMOJI_RE.search(low))
    ):
        found.append("praise")
    if "_req" in cues:
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

_TOKENS = (
    r"[#@]?[a-z0-9]+(?:['’][a-z]+)*"  # words, hashtags, @user placeholder
    r"|[!?]+|(?:[<>]?[:;=][\-o*']?[)\](\[dp/}{@|\\]|<3)"  # punctuation runs, emoticons
    r"|[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B50]"  # emoji
)
# The characters a token can start with, looked ahead for first: re then passes over the
# others (spaces, most punctuation) without trying each alternative: a quarter less time.
_TOKEN_START = r"(?=[#@a-z0-9!?<>:;=\U0001F000-\U0001FAFF\u2600-\u27BF\u2B50])"
_TOKEN_RE = re.compile(f"{_TOKEN_START}(?:{_TOKENS})")
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
# One alternative per phrase, so that each opens with text all its matches contain.
_AFTER_TIME = (
    r"(?:late|delay|wait|on hold|and counting|now|later|ago|sitting|"
    r"on the (?:ground|tarmac|phone))"
)
_SERVICE_PHRASES = (
    r"wait(?:ing|ed)?", r"delay(?:s|ed)?", r"cancel+(?:ed|ation|ations|s)?", "lost", "missing",
    "refund", "on hold", r"hold(?:ing)? for", "nobody", "no one",
    r"never (?:received|got|arrived|came|showed|answered|responded|replied|heard)", "stuck",
    "stranded", "overbooked", r"rebook(?:ed)?", "diverted", "charged", "broken", "damaged",
    "late", "not working", r"doesn'?t work", "no response", "no answer", "no reply",
    "second time", "third time", "0nd time", "0rd time", "another time",
    r"0+(?:st|nd|rd|th) time", rf"hours? {_AFTER_TIME}", rf"hrs? {_AFTER_TIME}",
    rf"minutes? {_AFTER_TIME}", rf"mins? {_AFTER_TIME}", r"on the (?:ground|tarmac)",
)  # fmt: skip
_SERVICE_RE = re.compile(rf"\b(?:{'|'.join(_SERVICE_PHRASES)})\b")


def _opening(phrase: str) -> str:
    """The text every match of a phrase pattern starts with: its leading plain characters,
    less the last one when "?", "*" or "{" may leave that one out."""
    lead = re.match(r"[a-z0-9 ']*", phrase).group()  # type: ignore[union-attr]
    return lead[:-1] if phrase[len(lead) : len(lead) + 1] in ("?", "*", "{") else lead


# Every _SERVICE_RE match contains one of these (digit-folded text): a few C-level substring
# tests skip the long pattern for most texts (an opening within another one suffices).
_SERVICE_HINTS = tuple(
    dict.fromkeys(
        h for h in map(_opening, _SERVICE_PHRASES)
        if not any(g != h and g in h for g in map(_opening, _SERVICE_PHRASES))
    )
)  # fmt: skip
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
# Literals one of which every _PLEA_RE match contains: a few C-level substring tests skip
# the regex scan for most texts.
_PLEA_HINTS = ("pl", "help", "dm me", "fix", "n you", "d you", "need ", "wh", "how")
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
        if unit[:2] == "n:" and unit[2:4] != "n:":  # a negated word: the bare word's 4-grams
            word = unit[2:]
            value = get(unit, 0) + self[word] - get(word, 0)
        else:
            value = get(unit, 0) + sum(map(get, _subwords(unit), repeat(0)))
        self[unit] = value
        return value


_ABOVE_ZERO, _BELOW_ZERO = partial(lt, 0.0), partial(gt, 0.0)  # v > 0, v < 0

# The word sets whose members a text's rules ask about, one bit each: a word's bits are
# one look-up, so one pass over the tokens says which sets a text meets.
_NEGATION, _INTENSIFIER, _SERVICE, _STILL, _SARCASM, _FAIL = 1, 2, 4, 8, 16, 32
_KINDS: dict[str, int] = {}
for _bit, _words in (
    (_NEGATION, _NEGATIONS), (_INTENSIFIER, _INTENSIFIERS), (_SERVICE, _SERVICE_TRIGGERS),
    (_STILL, ("still", "yet")), (_SARCASM, _SARCASM_TRIGGERS), (_FAIL, _FAIL_WORDS),
):  # fmt: skip
    for _word in _words:
        _KINDS[_word] = _KINDS.get(_word, 0) | _bit


def _kinds(toks: list[str]) -> int:
    """The bits of the word sets above that some token of a text is in."""
    return reduce(or_, set(map(_KINDS.get, toks, repeat(0))), 0)


def _analyse(
    low: str, lexicon: dict[str, float], openers: frozenset[str] | None = None
) -> tuple[list[str], list[str], dict[str, float]]:
    """Unigram keys, bigram keys (both with repeats = counts) and dense features of a text.

    ``low`` is ``normalize(text).lower()``. Unigram keys: bare tokens, ``n:tok`` for a token
    inside a negation scope (which ends at ! or ?), and the bare word of each hashtag
    (``#happy`` also counts as ``happy``, with its lexicon valence); each also brings its
    character 4-grams (:func:`_subwords`). Bigram keys: ``a b`` (with ``openers``, only
    those whose first word is one: the model's others weigh nothing). Dense: summed lexicon
    valence ``_lex+``/``_lex-`` (negation flips and damps it, an intensifier boosts it),
    and counts of the customer-service rules ``_svc``, ``_still``, ``_plea``, ``_sarc``.
    """
    low = _DIGIT_RE.sub("0", low)
    toks = _TOKEN_RE.findall(_ELONG_RE.sub(r"\1\1", low))
    kinds = _kinds(toks)
    if not kinds & (_NEGATION | _INTENSIFIER):
        keys = toks.copy()
        vals = list(filter(None, map(lexicon.get, toks)))  # the non-zero valences, in order
    else:
        keys, vals = _scoped(toks, lexicon)
    pairs = _pairs(toks, openers)
    if "#" in low:  # hashtags: also the bare word, and its lexicon valence
        for tok in toks:
            if tok[0] == "#" and len(tok) > 2:
                keys.append(tok[1:])
                v = lexicon.get(tok[1:])
                if v:
                    vals.append(v)
    pos = sum(filter(_ABOVE_ZERO, vals))  # C-level filters: the same sums, in the same order
    neg = sum(filter(_BELOW_ZERO, vals))
    dense: dict[str, float] = {}
    if pos:
        dense["_lex+"] = pos / 4.0
    if neg:
        dense["_lex-"] = -neg / 4.0
    if not vals:
        dense["_lex0"] = 1.0
    elif pos and neg:
        dense["_lex+-"] = 1.0
    # Cheap pre-checks before the long regex: a trigger word, then a hint.
    if kinds & _SERVICE and any(map(low.__contains__, _SERVICE_HINTS)):
        svc = len(_SERVICE_RE.findall(low))
        if svc:
            dense["_svc"] = min(svc, 3)
    if kinds & _STILL and _STILL_RE.search(low):
        dense["_still"] = 1.0
    if any(map(low.__contains__, _PLEA_HINTS)) and _PLEA_RE.search(low):
        dense["_plea"] = 1.0
    if kinds & _SARCASM and _SARCASM_RE.search(low):
        dense["_sarc"] = 1.0
    # Intent cues (see the intents section); the model learns how much each counts.
    dense.update(_cues(low, toks, pairs, kinds))
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
# What the default model predicts, in the order its weights are packed: two sentiment
# logits (negative - neutral, positive - neutral; softmax is shift invariant, so neutral's
# is implicitly zero) and one logit per learned intent. Question and praise are rules:
# no dataset labels questions, and "a positive mention is praise" beat a learned praise
# model in cross-validation (scripts/train_sentiment.py).
OUTPUTS: tuple[str, ...] = ("negative", "positive", "complaint", "request")
# A key's weights are quantised to integers (units of ``scale``) and packed into one Python
# int, so a whole text is scored with C-level ``sum(map(...))`` calls. Field widths in bits:
# the two sentiment fields fill one int64 of model.bin, the two intent fields another.
_WIDTHS = (32, 32, 32, 32)
# model.bin: magic, uint32 header length, JSON header, then the blobs the header sizes:
# sparse keys ("\n"-joined UTF-8), lexicon keys (same), packed sentiment weights and packed
# intent weights (int64 each) and lexicon valences (float64), all little-endian. Built by
# scripts/train_sentiment.py; loading it is a few C-level calls (no JSON parse of 100k
# numbers).
_MAGIC = b"MWS2"


def pack(values: Sequence[int]) -> tuple[int, int]:
    """The two int64 halves (sentiment, intents) of one key's quantised weights."""
    ints = [0, 0]
    shift = [0, 0]
    for value, width, half in zip(values, _WIDTHS, (0, 0, 1, 1), strict=True):
        ints[half] += value << shift[half]
        shift[half] += width
    return ints[0], ints[1]


def unpack(total: int) -> list[int]:
    """The per-output sums of a sum of packed weights (each field's sum is small)."""
    out = []
    for width in _WIDTHS:
        half = 1 << (width - 1)
        value = ((total + half) & ((1 << width) - 1)) - half
        out.append(value)
        total = (total - value) >> width
    return out


def read_model(raw: bytes) -> tuple[dict, dict[str, int], dict[str, float]]:
    """Header, packed sparse weights (see :func:`unpack`) and lexicon of a ``model.bin``."""
    import json
    from array import array
    from operator import add, lshift
    from sys import byteorder

    if raw[:4] != _MAGIC:
        raise ValueError("not a mentionwatch sentiment model (bad magic)")
    start = 8 + int.from_bytes(raw[4:8], "little")
    header = json.loads(raw[8:start])
    blobs = []
    for size in header["sizes"]:
        blobs.append(raw[start : start + size])
        start += size
    keys, lex_keys, sent_raw, intent_raw, lex_raw = blobs
    sent, intent, valences = array("q"), array("q"), array("d")
    sent.frombytes(sent_raw)
    intent.frombytes(intent_raw)
    valences.frombytes(lex_raw)
    if byteorder != "little":
        for arr in (sent, intent, valences):
            arr.byteswap()
    packed = map(add, sent, map(lshift, intent, repeat(64)))
    weights = dict(zip(keys.decode().split("\n"), packed, strict=True))
    lexicon = dict(zip(lex_keys.decode().split("\n"), valences, strict=True))
    return header, weights, lexicon


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one feature added to the logits of a text (see ``explain``)."""

    feature: str  # a word, "a b" bigram, "n:word" (negated), "c:<wor" 4-gram, or a "_rule"
    weights: tuple[float, ...]  # one per OUTPUTS entry, already times the feature's count


class MentionwatchAnalyzer:
    """The default: a compact linear model for sentiment and intents.

    Trained on SemEval tweets and labelled software feedback (Stack Overflow, GitHub,
    app reviews) plus lexicons; pure Python at run time. The weights
    (``sentiment_data/model.bin``) are read when the analyzer is constructed, which
    :func:`get_analyzer` defers to first use.
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
        # The words that open a weighted pair or a cue: most pairs of a text are opened by
        # another word, so they are never built or looked up (one set look-up per token).
        self._openers = _CUE_OPENERS.union(k.partition(" ")[0] for k in self._packed if " " in k)
        self._scale: float = model["scale"]
        # Dense features and biases: one float per OUTPUTS entry. The temperature
        # calibrates the sentiment probabilities (fitted on cross-validated predictions).
        self._dense: dict[str, list[float]] = model["dense"]
        self._bias: list[float] = model["bias"]
        self._temperature: float = model.get("temperature", 1.0)
        # A complaint said in neutral words ("the build broke") is still a negative mention.
        self._complaint_negative: bool = model.get("complaint_negative", False)
        # … and a negative mention of a product is a complaint about it.
        self._negative_complaint: bool = model.get("negative_complaint", False)
        # … and naming a failure ("broke", "is down", "hasn't answered") is a complaint.
        self._fail_complaint: bool = model.get("fail_complaint", False)
        # A neutral mention naming a failure is negative: "any" failure cue, one the
        # complaint model also believes ("complaint"), one that hurts the author ("mine":
        # "broke my build"), or never ("").
        self._fail_negative: str = model.get("fail_negative", "")
        # A request cue ("please add", "would love", "any plans") is a request by itself.
        self._cue_request: bool = model.get("cue_request", False)
        # A wish ("would love dark mode") is a request, not praise, unless this is set.
        self._praise_with_request: bool = model.get("praise_with_request", True)
        self.version: str = model.get("version", "")

    def logits(self, low: str) -> list[float]:
        """Raw logits (OUTPUTS order) of lower-cased, normalised text."""
        return self._logits(*_analyse(low, self._lexicon, self._openers))

    def _logits(self, units: list[str], pairs: list[str], dense: dict[str, float]) -> list[float]:
        total = sum(map(self._units.__getitem__, units)) + sum(
            map(self._packed.get, pairs, repeat(0))
        )
        # One local per output (OUTPUTS has four: a model with more fails to unpack here),
        # each the same float operations in the same order as before: o + w * value.
        o0, o1, o2, o3 = map(add, self._bias, map(mul, unpack(total), repeat(self._scale)))
        for key, value in dense.items():
            w = self._dense.get(key)
            if w is not None:
                o0 += w[0] * value
                o1 += w[1] * value
                o2 += w[2] * value
                o3 += w[3] * value
        return [o0, o1, o2, o3]

    def score(self, text: str) -> Score:
        low = normalize(text).lower()
        units, pairs, dense = _analyse(low, self._lexicon, self._openers)
        return self._decide(self._emoji_only(units, dense) or self._logits(units, pairs, dense),
                            asks(dense), self._failure(units, dense), "_req" in dense)  # fmt: skip

    def _failure(self, units: list[str], dense: dict[str, float]) -> str:
        """ "mine" when a failure is said to hurt the author ("broke my build"), "any" for
        another failure cue, "" for none."""
        if "_fail" not in dense and "_svc" not in dense and "_still" not in dense:
            return ""  # no software failure, service failure ("on hold") or unresolved state
        return "mine" if not _MINE.isdisjoint(units) else "any"

    @staticmethod
    def _emoji_only(units: list[str], dense: dict[str, float]) -> list[float] | None:
        """Logits for a mention of nothing but emoji or emoticons ("😍", "@user 😡"): the
        training tweets hold too few to learn them, so their lexicon valence decides."""
        if "_lex0" in dense or any(u[0].isalnum() and u != "http" for u in units):
            return None
        valence = dense.get("_lex+", 0.0) - dense.get("_lex-", 0.0)
        return [-valence * 2.0, valence * 2.0, 0.0, -1.0]

    def _decide(
        self, z: list[float], question: bool, failure: str = "", cue_request: bool = False
    ) -> Score:
        neg, pos = z[0] / self._temperature, z[1] / self._temperature
        # Softmax over (neg, 0, pos); polarity = P(positive) - P(negative).
        top = max(neg, pos, 0.0)
        e_neg, e_neu, e_pos = math.exp(neg - top), math.exp(-top), math.exp(pos - top)
        polarity = (e_pos - e_neg) / (e_neg + e_neu + e_pos)
        label = "negative" if neg > pos and neg > 0.0 else "positive" if pos > 0.0 else "neutral"
        if label == "neutral" and (
            (z[2] > 0.0 and self._complaint_negative)
            or (failure and self._fail_negative == "any")
            or (failure and z[2] > 0.0 and self._fail_negative == "complaint")
            or (failure == "mine" and self._fail_negative == "mine")
        ):
            label = "negative"
            polarity = min(polarity, -0.05)
        intents = ["question"] if question else []
        # Intent thresholds are folded into the biases (logit > 0 means yes). A complaint
        # is never positive: a mention that is both is the other way round (sarcasm, "love
        # the product, hate the bug"). A positive mention of a product praises it.
        if label != "positive" and (
            z[2] > 0.0
            or (label == "negative" and self._negative_complaint)
            or (failure and self._fail_complaint)
        ):
            intents.append("complaint")
        request = z[3] > 0.0 or (cue_request and self._cue_request)
        if label == "positive" and (self._praise_with_request or not request):
            intents.append("praise")
        if request:
            intents.append("request")
        return Score(label, round(polarity, 4), tuple(intents))

    def explain(self, text: str, top: int = 8) -> tuple[Score, list[Contribution]]:
        """The score of ``text`` and the features that moved it most, largest first.

        A unigram's contribution includes its character 4-grams (that is how the model
        scores it); the biases are left out (they are the same for every text).
        """
        low = normalize(text).lower()
        units, pairs, dense = _analyse(low, self._lexicon, self._openers)
        scale = self._scale
        sums: dict[str, list[float]] = {}
        for key in [*units, *pairs]:
            packed = self._units[key] if key in units else self._packed.get(key, 0)
            if packed:
                row = sums.setdefault(key, [0.0] * len(OUTPUTS))
                for i, v in enumerate(unpack(packed)):
                    row[i] += v * scale
        for key, value in dense.items():
            w = self._dense.get(key)
            if w is not None:
                sums[key] = [wi * value for wi in w]
        score = self._decide(self._logits(units, pairs, dense), asks(dense),
                             self._failure(units, dense), "_req" in dense)  # fmt: skip
        rows = [Contribution(k, tuple(round(x, 3) for x in v)) for k, v in sums.items()]
        rows.sort(key=lambda c: _relevant_weight(c, score), reverse=True)
        return score, rows[:top]


def _relevant_weight(c: Contribution, score: Score) -> float:
    """How much a feature pushed towards (or away from) the label and intents chosen."""
    neg, pos = c.weights[0], c.weights[1]
    moved = (
        abs(neg) + abs(pos)
        if score.label == "neutral"
        else abs(
            (neg if score.label == "negative" else pos)
            - (pos if score.label == "negative" else neg)
        )
    )
    return moved + sum(abs(w) for w in c.weights[2:])


_FACTORIES: dict[str, Callable[[], Analyzer]] = {
    "mentionwatch": MentionwatchAnalyzer,
    "textblob": TextBlobAnalyzer,
    "vader": VaderAnalyzer,
}
DEFAULT_ANALYZER: str = "mentionwatch"
_INSTANCES: dict[str, Analyzer] = {}


def get_analyzer(name: str | None = None) -> Analyzer:
    """Return the (cached) analyzer called ``name``; ``None`` means the default.

    Raises ValueError for an unknown name, listing the valid ones. The "llm" analyzer needs
    the config and the database: ``tagging.analyzer_for`` builds it.
    """
    key = DEFAULT_ANALYZER if name is None else name.strip().lower()
    if key == "llm":
        raise ValueError("the llm analyzer is built from the config: use tagging.analyzer_for")
    if key not in _FACTORIES:
        raise ValueError(f"unknown analyzer {name!r} (choose from: {', '.join(ANALYZER_NAMES)})")
    if key not in _INSTANCES:
        _INSTANCES[key] = _FACTORIES[key]()
    return _INSTANCES[key]
