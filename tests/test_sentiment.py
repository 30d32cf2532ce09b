"""Behaviour tests of mentionwatch.sentiment (no network; fast)."""

from __future__ import annotations

import random
import re
import subprocess
import sys

import pytest

from mentionwatch import sentiment as s
from mentionwatch import triage


@pytest.fixture(scope="module")
def default() -> s.Analyzer:
    return s.get_analyzer()


@pytest.mark.parametrize(
    "text",
    [
        "been waiting 70 minutes on hold",
        "still on the ground at 10:45pm",
        "second time my bag is lost",
        "thanks for the rude service and 3 hour delay",
        "@SouthwestAir my flight was cancelled and nobody can tell me why",
        "my package never arrived",
        "😡",
        "😢",
    ],
)
def test_customer_complaints_are_negative(default: s.Analyzer, text: str) -> None:
    assert default.score(text).label == "negative"


# Airline-style customer mentions written for these tests (not from any dataset).
@pytest.mark.parametrize(
    "text",
    [
        "@united my flight got Cancelled Flightled again",
        "2 hours on hold and still no answer",
        "you lost my bag and nobody will call me back",
        "thanks for nothing",
        "my luggage is damaged and the agent was dismissive",
        "boarding delayed three times, missed my connection",
        "charged twice for one seat, want my money back",
    ],
)
def test_airline_complaints_are_negative(default: s.Analyzer, text: str) -> None:
    assert default.score(text).label == "negative"


@pytest.mark.parametrize(
    "text",
    [
        "thank you so much for rebooking me so quickly!",
        "the crew was lovely and the landing was smooth",
        "great service today, will fly again",
    ],
)
def test_airline_thanks_are_positive(default: s.Analyzer, text: str) -> None:
    assert default.score(text).label == "positive"


@pytest.mark.parametrize(
    "text", ["Great flight, thank you! The crew was amazing", "@United I love you guys", "😍"]
)
def test_praise_is_positive(default: s.Analyzer, text: str) -> None:
    result = default.score(text)
    assert result.label == "positive"
    assert result.polarity > 0
    assert "praise" in result.intents


def test_polite_request_is_not_positive(default: s.Analyzer) -> None:
    result = default.score("Please find my bag!! Please help.")
    assert result.label != "positive"
    assert "request" in result.intents


def test_neutral_fact_and_emoji_scored(default: s.Analyzer) -> None:
    assert default.score("Flight 123 departs at 5pm").label == "neutral"
    assert default.score("🙏").label != "negative"
    assert default.score("😡").polarity < 0 < default.score("😍").polarity


def test_score_shape(default: s.Analyzer) -> None:
    result = default.score("@delta where is my refund? https://t.co/x")
    assert isinstance(result, s.Score)
    assert result.label in s.LABELS
    assert -1.0 <= result.polarity <= 1.0
    assert list(result.intents) == [i for i in s.INTENTS if i in result.intents]
    assert result.intents[0] == "question"


def test_handles_and_urls_do_not_decide(default: s.Analyzer) -> None:
    assert s.normalize("@Happy see https://good.example/great") == "@user see  http "
    assert default.score("@united").label == default.score("@user").label == "neutral"


def test_mask_terms() -> None:
    masked = s.mask_terms("@United, #united and United Airlines; unitedly", ["United"])
    assert masked == f"{s.MASK_TOKEN}, {s.MASK_TOKEN} and {s.MASK_TOKEN} Airlines; unitedly"
    assert s.mask_terms("Slack is slacking", ["slack"]) == f"{s.MASK_TOKEN} is slacking"
    assert s.mask_terms("Acme Cloud rocks", ["acme", "Acme  cloud"]) == f"{s.MASK_TOKEN} rocks"
    assert s.mask_terms("no terms", []) == "no terms"


def test_masked_brand_carries_no_sentiment(default: s.Analyzer) -> None:
    text = s.mask_terms("Honey just added a new checkout option", ["Honey"])
    assert default.score(text).label == "neutral"


def test_get_analyzer_names_and_errors() -> None:
    assert s.DEFAULT_ANALYZER in s.ANALYZER_NAMES
    assert set(s.ANALYZER_NAMES) == {"mentionwatch", "textblob", "vader", "llm"}
    assert s.get_analyzer(None) is s.get_analyzer(s.DEFAULT_ANALYZER)
    with pytest.raises(ValueError, match=r"unknown analyzer 'nope' \(choose from: mentionwatch"):
        s.get_analyzer("nope")


def test_reference_analyzers_thresholds() -> None:
    assert s.get_analyzer("textblob").score("I love this great product").label == "positive"
    assert s.get_analyzer("textblob").score("the sky").label == "neutral"
    vader = pytest.importorskip("vaderSentiment")
    assert vader is not None
    assert s.get_analyzer("vader").score("This is terrible and awful").label == "negative"


def test_intents() -> None:
    assert s.detect_intents("How do I export my data?", "neutral") == ("question",)
    assert s.detect_intents("anyone know a good alternative", "neutral") == ("question",)
    # A request phrased politely is a request, not a question.
    assert s.detect_intents("can you dm me please", "neutral") == ("request",)
    assert s.detect_intents("Could you add dark mode?", "neutral") == ("question", "request")
    assert s.detect_intents("still waiting for my refund", "neutral") == ("complaint",)
    assert s.detect_intents("thanks, you guys are great", "positive") == ("praise",)
    # Praise needs a positive label: sarcastic thanks is not praise.
    assert "praise" not in s.detect_intents("thanks for the 3 hour delay", "negative")


def test_priority_orders_mentions() -> None:
    complaint = triage.priority("negative", -0.8, ("complaint",), 100, 1.0)
    question = triage.priority("neutral", 0.0, ("question",), 100, 1.0)
    praise = triage.priority("positive", 0.9, ("praise",), 100, 1.0)
    assert complaint > question > praise
    # Reach counts (log-scaled) and so does recency.
    assert triage.priority("neutral", 0.0, (), 100_000, 1.0) > triage.priority(
        "neutral", 0.0, (), 10, 1.0
    )
    assert triage.priority("neutral", 0.0, (), None, 1.0) > triage.priority(
        "neutral", 0.0, (), None, 72
    )
    assert triage.priority("negative", -0.5, ("complaint",), None, 1000) > 0


def test_import_is_cheap() -> None:
    code = (
        "import sys, mentionwatch.sentiment; "
        "heavy = {'textblob', 'vaderSentiment', 'numpy', 'sklearn'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_intent_shortcuts_match_the_patterns() -> None:
    # Start-anchored openers, literal-gated searches and the emoji-only praise path.
    assert s.detect_intents("  Why is my order late", "neutral")[0] == "question"
    assert s.detect_intents("Add ?sslmode=require to the URL", "neutral") == ()  # code, not a "?"
    assert s.detect_intents("does anyone know a fix", "neutral")[0] == "question"
    assert s.detect_intents("just wondering if it runs on arm", "neutral") == ("question",)
    assert s.detect_intents("the how-to was fine", "neutral") == ()
    assert s.detect_intents("plz fix it", "neutral") == ("request",)
    assert s.detect_intents("Could you check my order", "neutral") == ("request",)
    assert s.detect_intents("the app keeps crashing", "neutral") == ("complaint",)
    assert s.detect_intents("😍😍", "positive") == ("praise",)
    assert s.detect_intents("😍😍", "neutral") == ()


def test_model_file_format() -> None:
    from pathlib import Path

    raw = (Path(s.__file__).parent / "sentiment_data" / "model.bin").read_bytes()
    header, weights, lexicon = s.read_model(raw)
    assert header["labels"] == list(s.LABELS) and header["outputs"] == list(s.OUTPUTS)
    assert len(header["bias"]) == len(s.OUTPUTS)
    assert set(header["dense"]) >= {"_svc", "_plea", "_sarc", "_q", "_req", "_fail"}
    assert len(weights) > 10_000 and all(isinstance(v, int) for v in list(weights.values())[:50])
    # Packed weights round-trip: every output of a key comes back from one integer.
    for values in ([0, 0, 0, 0], [-3, 7, 250, -1], [-(2**30) + 1, 2**30 - 1, -5, 5]):
        low, high = s.pack(values)
        assert s.unpack(low + (high << 64)) == values
    total = sum(low + (high << 64) for low, high in map(s.pack, ([1, -2, 3, -4],) * 7))
    assert s.unpack(total) == [7, -14, 21, -28]
    assert lexicon["good"] > 0 > lexicon["bad"]
    with pytest.raises(ValueError, match="bad magic"):
        s.read_model(b"{}" + raw[2:])


def test_the_token_start_lookahead_lets_every_token_through() -> None:
    # _TOKEN_START only speeds the scan: with and without it, every character in every
    # position gives the same tokens (a new kind of token needs its first character there).
    bare = re.compile(s._TOKENS)
    chars = [chr(c) for c in [*range(0x20, 0x3000), *range(0x1F000, 0x1FB00)]]
    for c in chars:
        text = f"{c}{c} a{c}b {c}3 :{c}) x"
        assert s._TOKEN_RE.findall(text) == bare.findall(text), repr(c)


def test_mask_terms_masks_what_the_plain_pattern_masks() -> None:
    # The look-ahead of first characters (with re.I's folding: "ı" and "İ" are i, "K" is k)
    # must not leave out a match of the pattern without it.
    phrases = ("acme cloud", "Acme", "#İnci", "@kilo", "c++", "-dash", "Ωmega", "日本")
    body = "|".join(r"\s+".join(map(re.escape, p.lstrip("@#").split()))
                    for p in sorted(phrases, key=len, reverse=True))  # fmt: skip
    plain = re.compile(rf"(?<![\w@#])[@#]?(?:{body})(?!\w)", re.IGNORECASE)
    words = ["acme", "ACME", "acme  cloud", "ınci", "İNCİ", "inci", "Kilo", "\u212ailo",
             "c++", "C++x", "-dash", "ωMEGA", "日本", "x", "@", "#", "@@", "_", "é", " ",
             "\n"]  # fmt: skip
    rng = random.Random(4)
    for _ in range(2000):
        text = "".join(rng.choice(words) + rng.choice(["", " ", ".", "@", "#"]) for _ in range(8))
        assert s.mask_terms(text, phrases) == plain.sub(s.MASK_TOKEN, text), text


# One match of each _SERVICE_PHRASES entry, in order.
_SERVICE_SAMPLES = (
    "waited", "delays", "cancellations", "lost", "missing", "refund", "on hold",
    "holding for", "nobody", "no one", "never showed", "stuck", "stranded", "overbooked",
    "rebooked", "diverted", "charged", "broken", "damaged", "late", "not working",
    "doesnt work", "no response", "no answer", "no reply", "second time", "third time",
    "0nd time", "0rd time", "another time", "00th time", "hour and counting", "hrs now",
    "minutes on the phone", "min on hold", "on the tarmac",
)  # fmt: skip


def test_every_service_match_holds_a_hint() -> None:
    # The hints only skip the pattern: every text it matches must contain one of them.
    assert len(_SERVICE_SAMPLES) == len(s._SERVICE_PHRASES)
    for phrase, sample in zip(s._SERVICE_PHRASES, _SERVICE_SAMPLES, strict=True):
        assert re.fullmatch(phrase, sample), (phrase, sample)
        assert any(hint in sample for hint in s._SERVICE_HINTS), sample
    words = [*re.findall(r"[a-z0-9']+", s._SERVICE_RE.pattern), *_SERVICE_SAMPLES, "hours",
             "cancelled", "doesn't", "x", "the", "é", "_", "#on", "0"]  # fmt: skip
    rng = random.Random(5)
    matched = 0
    for _ in range(20_000):
        text = "".join(rng.choice(words) + rng.choice([" ", " ", "", ".", "-", "'"])
                       for _ in range(rng.randint(1, 6)))  # fmt: skip
        if s._SERVICE_RE.search(text):
            matched += 1
            assert any(hint in text for hint in s._SERVICE_HINTS), text
    assert matched > 5_000
