"""Build the default analyzer's model (sentiment + intents) shipped in ``sentiment_data``.

Reproducible: fixed seeds, deterministic solver, and the same ``features()`` function the
analyzer runs; the same data and options rebuild ``model.bin`` bit for bit. Only derived
weights are written, never texts.

    python scripts/train_sentiment.py --data-dir ../shared/data           # build model.bin
    python scripts/train_sentiment.py --data-dir ../shared/data --cv      # cross-origin report

Every modelling choice is decided by cross-validation across *origins* (datasets): each
group of origins in ``HOLDOUT_GROUPS`` is left out in turn, a model is trained on the rest
and scored on the left-out origins (plus two evaluation-only sets that are never trained on:
TweetEval's validation tweets and SentiCR's code-review comments). See ``cross_origin``.

Needs scikit-learn and vaderSentiment (its MIT-licensed lexicon seeds the lexicon
features); neither is needed at run time.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import re
import sys
import tempfile
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mentionwatch.sentiment import _MAGIC as MAGIC  # noqa: E402
from mentionwatch.sentiment import (  # noqa: E402
    LABELS,
    OUTPUTS,
    MentionwatchAnalyzer,
    features,
    pack,
)

DEFAULT_OUT = ROOT / "src" / "mentionwatch" / "sentiment_data" / "model.bin"
INTENT_OUTPUTS = ("complaint", "request")  # learned; the OUTPUTS after the sentiment pair
EVAL_INTENTS = ("complaint", "praise", "request")  # scored (praise is a rule: positive)

# Hand-set valences (VADER scale, -4..4) for emoji that are frequent in customer
# mentions and that VADER's description-based scoring misses or under-rates.
EMOJI_OVERRIDES: dict[str, float] = {
    "😡": -3.0, "🤬": -3.2, "😠": -2.6, "😤": -1.8, "😢": -2.2, "😭": -2.0, "😞": -2.2,
    "😔": -1.8, "😩": -2.0, "😫": -2.0, "😒": -1.8, "🙄": -1.6, "😑": -1.0, "😐": -0.6,
    "😕": -1.3, "🙁": -1.6, "☹": -1.8, "😣": -1.8, "😖": -2.0, "💔": -2.4, "👎": -2.0,
    "🤦": -1.6, "😬": -0.8, "😰": -1.8, "😱": -1.2, "🤮": -2.6, "🤢": -2.2, "💩": -2.0,
    "😍": 3.0, "🥰": 3.0, "😘": 2.4, "❤": 2.6, "💕": 2.4, "💖": 2.6, "💙": 2.2,
    "💜": 2.2, "💚": 2.2, "💛": 2.2, "😊": 2.4, "☺": 2.2, "😀": 2.2, "😃": 2.4,
    "😄": 2.4, "😁": 2.2, "😂": 1.2, "🤣": 1.2, "😆": 1.8, "🙂": 1.2, "😎": 1.8,
    "👍": 2.0, "👏": 2.2, "🙌": 2.4, "🎉": 2.4, "🔥": 1.6, "✨": 1.4, "💯": 2.0,
    "🙏": 0.8, "🤗": 2.2, "😉": 1.4, "🥳": 2.6, "⭐": 1.6, "🌟": 1.8, "✅": 1.0,
}  # fmt: skip


def build_lexicon() -> dict[str, float]:
    """VADER's word/emoticon lexicon plus emoji valences (VADER-scored descriptions)."""
    import vaderSentiment
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    base = Path(vaderSentiment.__file__).parent
    lexicon: dict[str, float] = {}
    for line in (base / "vader_lexicon.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and " " not in parts[0]:
            lexicon[parts[0].lower()] = float(parts[1])
    vader = SentimentIntensityAnalyzer()
    for line in (base / "emoji_utf8_lexicon.txt").read_text(encoding="utf-8").splitlines():
        emoji, _, description = line.partition("\t")
        emoji = emoji.replace("\ufe0f", "")
        if len(emoji) == 1:  # the tokenizer sees single code points only
            compound = vader.polarity_scores(description)["compound"]
            if abs(compound) >= 0.05:
                lexicon[emoji] = round(compound * 3.0, 2)
    lexicon.update(EMOJI_OVERRIDES)
    return lexicon


# --------------------------------------------------------------------------- the data


@dataclass
class Example:
    """One labelled text. ``None`` means the source does not say (not trained on)."""

    text: str
    origin: str
    sentiment: str | None = None
    intents: dict[str, int | None] = field(default_factory=dict)
    group: str = ""  # which sample weight applies: tweets, se, feedback, weak


TWEETS = "semeval_tweets"
EVAL_ONLY = ("tweeteval_val",)
# Held out together (each group's model is trained on every other origin). lin2018's app
# reviews repeat clap_rq1 texts, so they are left out together; each software-sentiment
# origin sits in a different group so the others still teach the domain.
HOLDOUT_GROUPS: tuple[tuple[str, ...], ...] = (
    ("semeval_tweets#0", "lin2018_stackoverflow", "clap_rq3"),
    ("semeval_tweets#1", "coutinho2024_github_pr", "marc_jha2017"),
    ("semeval_tweets#2", "imtiaz2018_github", "lin2018_appreviews", "clap_rq1"),
    ("semeval_tweets#3", "urr_ciurumelea2017", "senticr2017_codereview"),
)
TWEET_FOLDS = 5  # semeval tweets are one origin of 48k: a fifth of them is held out per group


def read_rows(path: Path) -> Iterable[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        yield from reader


def load(data_dir: Path) -> list[Example]:
    """Every labelled text of the shared development data, with what each one says."""
    out: list[Example] = []
    none = dict.fromkeys(EVAL_INTENTS)
    for row in read_rows(data_dir / "sentiment" / "semeval_2013_2016.tsv"):
        if len(row) >= 2 and row[0] in LABELS:
            label, text = row[0], "\t".join(row[1:])
            # A positive tweet complains about nothing; a neutral one may ("flight delayed
            # again"), a negative one may not (politics, weather): those teach nothing here.
            intents = {"complaint": 0 if label == "positive" else None,
                       "praise": None if label == "positive" else 0, "request": 0}  # fmt: skip
            out.append(Example(text, TWEETS, label, intents, "tweets"))
    for row in read_rows(data_dir / "sentiment" / "tweeteval_val.tsv"):
        if len(row) >= 2 and row[0] in LABELS:
            out.append(Example("\t".join(row[1:]), "tweeteval_val", row[0], dict(none), "eval"))
    for label, text, _, origin in read_rows(data_dir / "feedback" / "se_sentiment_dev.tsv"):
        # Software talk: a positive sentence is no complaint, a neutral one may be (a bug
        # report in neutral words: "the build fails with ..."), a negative one is unknown; a
        # positive one praises (a library, a fix, an app), the rest do not; nor are they
        # feature requests (asking a colleague for a change in review is not asking a
        # company).
        intents = {"complaint": 0 if label == "positive" else None,
                   "praise": int(label == "positive"), "request": 0}  # fmt: skip
        out.append(Example(text, origin, label, intents, "se"))
    for label, text, _, origin in read_rows(data_dir / "feedback" / "code_review_negativity.tsv"):
        # negative / non-negative: "non-negative" merges neutral and positive; trained on (if
        # at all, see w_cr) as neutral, the commonest of the two in code review.
        sentiment = "negative" if label == "negative" else "neutral"
        out.append(Example(text, origin, sentiment, dict(none), "cr"))
    for label, text, _, origin in read_rows(data_dir / "feedback" / "intents_feedback.tsv"):
        intents = {name: int(name == label) for name in EVAL_INTENTS}
        weak = {"complaint": "negative", "praise": "positive"}.get(label)
        out.append(Example(text, origin, weak, intents, "feedback"))
    for label, text, _, origin in read_rows(data_dir / "feedback" / "complaint_binary.tsv"):
        intents = {"complaint": int(label == "complaint"), "praise": None, "request": None}
        out.append(Example(text, origin, None, intents, "feedback"))
    return out


def tweet_fold(text: str) -> int:
    """A fixed fold of a tweet, from its text (stable across runs and machines)."""
    return hashlib.sha1(text.encode()).digest()[0] % TWEET_FOLDS


def origin_of(ex: Example) -> str:
    return f"{TWEETS}#{tweet_fold(ex.text)}" if ex.origin == TWEETS else ex.origin


_NORM = re.compile(r"[^a-z0-9]+")


def same_text(text: str) -> str:
    """Texts equal up to case and punctuation (lin2018's app reviews repeat CLAP's)."""
    return _NORM.sub("", text.lower())


# ----------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class Params:
    """Every modelling choice; the defaults are the ones cross-validation chose."""

    c: float = 0.05  # inverse L2 strength of the sentiment model
    c_intents: float = 0.1  # … of the intent models
    nb_power: float = 0.5  # NB log-count-ratio scaling exponent (0: off)
    min_count: int = 3  # features seen in fewer training texts are dropped
    w_se: float = 2.0  # sample weight of a software-talk sentence (a tweet weighs 1)
    w_weak: float = 1.0  # weight of app reviews as weak sentiment (complaint-, praise+)
    w_tweet_intents: float = 0.3  # weight of tweets as intent negatives
    w_se_intents: float = 1.0  # weight of software-talk sentences as intent negatives
    w_cr: float = 0.0  # weight of code-review comments (negative / neutral) for sentiment
    step: float = 0.01  # weight quantisation step
    temperature: float = 1.2  # sentiment calibration (fitted on held-out logits by --cv)
    fail_prior: float = 0.0  # lower bound of the `_fail` cue's negative weight (0: learned)
    complaint_negative: bool = False  # a neutral complaint is labelled negative (run-time rule)
    negative_complaint: bool = False  # a negative mention is a complaint (run-time rule)
    fail_complaint: bool = True  # a non-positive mention naming a failure is a complaint
    fail_negative: str = ""  # a neutral one is negative: "any", "complaint" (if also one), ""
    praise_with_request: bool = True  # a positive request (a wish) is praise too
    cue_request: bool = False  # a request cue ("please add", "any plans") is a request
    prune: int = 4  # sparse weights of at most this many steps (every output) are dropped
    # Offsets added to the intents' biases: where each yes/no threshold sits (F1 by CV).
    bias_complaint: float = 0.5
    bias_request: float = 0.5
    seed: int = 13

    def sample_weight(self, ex: Example, task: str) -> float:
        if ex.group == "tweets":
            return 1.0 if task == "sentiment" else self.w_tweet_intents
        if ex.group == "se":
            return self.w_se if task == "sentiment" else self.w_se_intents
        if ex.group == "feedback" and task == "sentiment":
            return self.w_weak
        if ex.group == "cr":
            return self.w_cr if task == "sentiment" else 0.0
        return 1.0


def nb_ratios(x, y, names: Sequence[str], power: float):
    """Per-feature NB log-count-ratio scale (Wang & Manning 2012), one-vs-rest averaged.

    For each class c, r_c = log((p_c / |p_c|) / (q_c / |q_c|)) over binarised counts, with
    p_c the documents of class c and q_c the rest (add-one smoothed); a feature's scale is
    mean_c |r_c| ** ``power``. Dense (``_``) features keep scale 1.
    """
    import numpy as np

    y = np.asarray(y)
    xb = (x > 0).astype(np.float64)
    ratios = []
    for lab in sorted(set(y.tolist())):
        mask = y == lab
        p = np.asarray(xb[mask].sum(0)).ravel() + 1.0
        q = np.asarray(xb[~mask].sum(0)).ravel() + 1.0
        ratios.append(np.abs(np.log((p / p.sum()) / (q / q.sum()))))
        if len(ratios) == 1 and len(set(y.tolist())) == 2:
            break  # binary: both classes give the same |r|
    r = np.mean(ratios, axis=0) ** power
    r[np.array([name.startswith("_") for name in names])] = 1.0
    return r


def fit_lr(x, y, weights, c: float, seed: int, nb_power: float, names):
    """Logistic regression (balanced classes) on NB-scaled counts; the scale is folded back
    into the coefficients, so the result scores the raw counts the analyzer sees."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    r = nb_ratios(x, y, names, nb_power) if nb_power else None
    xs = x.multiply(r).tocsr() if r is not None else x
    clf = LogisticRegression(
        C=c, class_weight="balanced", max_iter=3000, random_state=seed, solver="lbfgs"
    )
    clf.fit(xs, y, sample_weight=np.asarray(weights))
    if r is not None:
        clf.coef_ = clf.coef_ * r
    return clf


def prune_counts(feats: list[dict[str, float]], min_count: int) -> list[dict[str, float]]:
    """Drop features seen in fewer than ``min_count`` documents (noise, and model size)."""
    counts: dict[str, int] = {}
    for f in feats:
        for k in f:
            counts[k] = counts.get(k, 0) + 1
    keep = {k for k, n in counts.items() if n >= min_count}
    return [{k: v for k, v in f.items() if k in keep} for f in feats]


@dataclass
class Fitted:
    names: list[str]  # feature names (DictVectorizer order)
    coef: list  # one row per OUTPUTS entry (numpy arrays)
    bias: list[float]


def fit(examples: Sequence[Example], feats: Sequence[dict[str, float]], p: Params) -> Fitted:
    """The sentiment model (3 classes) and one binary model per learned intent."""
    import numpy as np
    from sklearn.feature_extraction import DictVectorizer

    vec = DictVectorizer()
    x = vec.fit_transform(prune_counts(list(feats), p.min_count)).tocsr()
    names = list(vec.feature_names_)
    rows = [i for i, ex in enumerate(examples) if ex.sentiment and p.sample_weight(ex, "sentiment")]
    clf = fit_lr(x[rows], [examples[i].sentiment for i in rows],
                 [p.sample_weight(examples[i], "sentiment") for i in rows], p.c, p.seed,
                 p.nb_power, names)  # fmt: skip
    classes = list(clf.classes_)
    ineg, ineu, ipos = (classes.index(lab) for lab in LABELS)
    coef = [clf.coef_[ineg] - clf.coef_[ineu], clf.coef_[ipos] - clf.coef_[ineu]]
    bias = [float(clf.intercept_[ineg] - clf.intercept_[ineu]),
            float(clf.intercept_[ipos] - clf.intercept_[ineu])]  # fmt: skip
    for intent in INTENT_OUTPUTS:
        rows = [i for i, ex in enumerate(examples)
                if ex.intents.get(intent) is not None and p.sample_weight(ex, intent)]  # fmt: skip
        y = np.array([examples[i].intents[intent] for i in rows])
        clf = fit_lr(x[rows], y, [p.sample_weight(examples[i], intent) for i in rows],
                     p.c_intents, p.seed, p.nb_power, names)  # fmt: skip
        coef.append(clf.coef_[0])
        bias.append(float(clf.intercept_[0]))
    return Fitted(names, coef, bias)


# Domain priors for the customer-service rule features, as (negative - neutral,
# positive - neutral) logit bounds. SemEval's general tweets contain few service failures,
# so the learned weights under-rate them; these bounds encode the design card's known
# failure modes (complaints without negative words, polite requests that are not praise,
# sarcastic thanks). They are applied after fitting and never looked at validation data.
DENSE_PRIORS: dict[str, tuple[float | None, float | None]] = {
    # feature: (min negative weight, max positive weight)
    "_svc": (1.2, -0.6),
    "_still": (1.5, -0.8),
    "_plea": (0.4, -1.0),
    "_sarc": (1.5, -1.5),
}
def export(model: Fitted, lexicon: dict[str, float], out: Path, p: Params) -> None:
    """Write model.bin: sparse weights quantised to ``step`` and packed, dense as floats."""
    keys, sent, intent, dense = [], [], [], {}
    order = sorted(range(len(model.names)), key=model.names.__getitem__)
    for j in order:
        name = model.names[j]
        w = [float(row[j]) for row in model.coef]
        if name.startswith("_"):
            lo_neg, hi_pos = DENSE_PRIORS.get(name, (None, None))
            if name == "_fail" and p.fail_prior:
                lo_neg = p.fail_prior
            if lo_neg is not None:
                w[0] = max(w[0], lo_neg)
            if hi_pos is not None:
                w[1] = min(w[1], hi_pos)
            dense[name] = [round(v, 4) for v in w]
            continue
        q = [round(v / p.step) for v in w]
        if max(map(abs, q)) > p.prune:  # tiny (or zero) weights: drop, lookups default 0
            keys.append(name)
            s, i = pack(q)
            sent.append(s)
            intent.append(i)
    offsets = [0.0, 0.0, p.bias_complaint, p.bias_request]  # OUTPUTS order
    header = {
        "format": 3,
        "labels": list(LABELS),
        "outputs": list(OUTPUTS),
        "scale": p.step,
        "bias": [round(b + off, 4) for b, off in zip(model.bias, offsets, strict=True)],
        "dense": dense,
        "temperature": p.temperature,
        "complaint_negative": p.complaint_negative,
        "negative_complaint": p.negative_complaint,
        "fail_complaint": p.fail_complaint,
        "fail_negative": p.fail_negative,
        "praise_with_request": p.praise_with_request,
        "cue_request": p.cue_request,
    }
    header["version"] = hashlib.sha1(json.dumps([header, keys]).encode()).hexdigest()[:12]
    write_model(out, header, keys, [sent, intent], sorted(lexicon.items()))


def write_model(out: Path, header: dict, keys, packed: list[list[int]], lex) -> None:
    """Serialise to the ``model.bin`` layout that ``sentiment.read_model`` reads."""
    blobs = [
        "\n".join(keys).encode(),
        "\n".join(k for k, _ in lex).encode(),
        *(array("q", values) for values in packed),
        array("d", [v for _, v in lex]),
    ]
    if sys.byteorder != "little":
        for blob in blobs[2:]:
            blob.byteswap()  # type: ignore[union-attr]
    raw = [bytes(b) if isinstance(b, bytes) else b.tobytes() for b in blobs]
    head = json.dumps(
        {**header, "sizes": [len(blob) for blob in raw]}, ensure_ascii=False, separators=(",", ":")
    ).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Deterministic: sorted keys, fixed seeds, no timestamps.
    out.write_bytes(b"".join([MAGIC, len(head).to_bytes(4, "little"), head, *raw]))


# -------------------------------------------------------------------------- evaluating


def f1(gold: Sequence[bool], pred: Sequence[bool]) -> float:
    tp = sum(g and q for g, q in zip(gold, pred, strict=True))
    n_pred, n_gold = sum(pred), sum(gold)
    if not tp:
        return 0.0
    precision, recall = tp / n_pred, tp / n_gold
    return 2 * precision * recall / (precision + recall)


def sentiment_metrics(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    """Macro-recall, macro-F1 and per-class F1 over the labels present in ``gold``."""
    labels = [lab for lab in LABELS if lab in gold]
    recalls = []
    out: dict[str, float] = {}
    for lab in labels:
        g = [x == lab for x in gold]
        q = [x == lab for x in pred]
        tp = sum(a and b for a, b in zip(g, q, strict=True))
        recalls.append(tp / sum(g))
        out[f"f1_{lab}"] = f1(g, q)
    out["macro_recall"] = sum(recalls) / len(recalls)
    out["macro_f1"] = sum(out[f"f1_{lab}"] for lab in labels) / len(labels)
    return out


def evaluate(analyzer, examples: Sequence[Example]) -> dict[str, float]:
    """The figures one origin supports: sentiment, negativity or intents."""
    scores = [analyzer.score(ex.text) for ex in examples]
    out: dict[str, float] = {"n": len(examples)}
    labelled = [(ex, s) for ex, s in zip(examples, scores, strict=True) if ex.sentiment]
    if labelled and labelled[0][0].origin == "senticr2017_codereview":
        gold = [ex.sentiment == "negative" for ex, _ in labelled]
        pred = [s.label == "negative" for _, s in labelled]
        out["f1_negative"] = f1(gold, pred)
        other = f1([not g for g in gold], [not q for q in pred])
        out["macro_f1"] = (out["f1_negative"] + other) / 2
    elif labelled and labelled[0][0].group != "feedback":
        out.update(sentiment_metrics([ex.sentiment for ex, _ in labelled],
                                     [s.label for _, s in labelled]))  # fmt: skip
    intent_f1 = []
    for intent in EVAL_INTENTS:
        rows = [(ex, s) for ex, s in zip(examples, scores, strict=True)
                if ex.group == "feedback" and ex.intents.get(intent) is not None]  # fmt: skip
        if rows and any(ex.intents[intent] for ex, _ in rows):
            value = f1([bool(ex.intents[intent]) for ex, _ in rows],
                       [intent in s.intents for _, s in rows])  # fmt: skip
            out[f"f1_{intent}"] = value
            intent_f1.append(value)
    if intent_f1:
        out["intent_macro_f1"] = sum(intent_f1) / len(intent_f1)
    return out


# Choices that only change the export (bounds, pruning) or the run-time rules: scored from
# the same fitted models, so trying them costs no refit.
EXPORT_ONLY = ("temperature", "fail_prior", "complaint_negative", "negative_complaint", "prune",
               "bias_complaint", "bias_request", "fail_complaint", "praise_with_request",
               "fail_negative", "cue_request")  # fmt: skip


def cross_origin(
    examples: list[Example],
    feats: list[dict[str, float]],
    p: Params,
    groups: Sequence[Sequence[str]] = HOLDOUT_GROUPS,
    variants: Sequence[dict] = ({},),
) -> list[tuple[dict[str, dict[str, float]], list[tuple[list[float], str]]]]:
    """Train without each group of origins, score its origins and the evaluation-only sets.

    For each variant (overrides of EXPORT_ONLY fields), returns per-origin figures
    (evaluation-only sets averaged over the group models) and the held-out sentiment logits
    with their gold labels (to fit the temperature on).
    """
    runs: list[tuple[dict, list, dict]] = [({}, [], {}) for _ in variants]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "fold.bin"
        for held in groups:
            test_texts = {same_text(ex.text) for ex in examples if origin_of(ex) in held}
            train = [i for i, ex in enumerate(examples)
                     if ex.origin not in EVAL_ONLY and origin_of(ex) not in held
                     and same_text(ex.text) not in test_texts]  # fmt: skip
            model = fit([examples[i] for i in train], [feats[i] for i in train], p)
            for variant, (results, logits, eval_only) in zip(variants, runs, strict=True):
                assert set(variant) <= set(EXPORT_ONLY), variant
                export(model, LEXICON, out, Params(**{**p.__dict__, **variant}))
                analyzer = MentionwatchAnalyzer(str(out))
                for origin in held:
                    test = [ex for ex in examples if origin_of(ex) == origin]
                    results[origin] = evaluate(analyzer, test)
                    for ex in test:
                        if ex.sentiment and ex.group in ("tweets", "se"):
                            logits.append((analyzer.logits(normalize_low(ex.text))[:2],
                                           ex.sentiment))  # fmt: skip
                for origin in EVAL_ONLY:
                    eval_only.setdefault(origin, []).append(
                        evaluate(analyzer, [ex for ex in examples if ex.origin == origin])
                    )
            print(f"  held out {', '.join(held)}", file=sys.stderr)
    for results, _, eval_only in runs:
        for origin, scores in eval_only.items():
            results[origin] = {k: sum(r[k] for r in scores) / len(scores) for k in scores[0]}
    return [(results, logits) for results, logits, _ in runs]


def normalize_low(text: str) -> str:
    from mentionwatch.sentiment import normalize

    return normalize(text).lower()


def fit_temperature(logits: list[tuple[list[float], str]]) -> float:
    """The temperature minimising the negative log-likelihood of held-out labels."""

    def nll(t: float) -> float:
        total = 0.0
        for (neg, pos), gold in logits:
            z = {"negative": neg / t, "neutral": 0.0, "positive": pos / t}
            top = max(z.values())
            log_sum = top + math.log(sum(math.exp(v - top) for v in z.values()))
            total += log_sum - z[gold]
        return total / len(logits)

    grid = [round(0.5 + 0.05 * i, 2) for i in range(41)]  # 0.5 .. 2.5
    return min(grid, key=nll)


def calibration_error(logits: list[tuple[list[float], str]], t: float, bins: int = 10) -> float:
    """Expected calibration error of the top-label probability (10 equal-width bins)."""
    buckets: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for (neg, pos), gold in logits:
        z = [neg / t, 0.0, pos / t]
        top = max(z)
        e = [math.exp(v - top) for v in z]
        probs = [v / sum(e) for v in e]
        k = max(range(3), key=probs.__getitem__)
        buckets[min(bins - 1, int(probs[k] * bins))].append((probs[k], LABELS[k] == gold))
    n = len(logits)
    return sum(
        len(b) / n * abs(sum(c for c, _ in b) / len(b) - sum(ok for _, ok in b) / len(b))
        for b in buckets
        if b
    )


SOFTWARE = ("lin2018_stackoverflow", "coutinho2024_github_pr", "imtiaz2018_github")
INTENT_ORIGINS = ("clap_rq1", "clap_rq3", "marc_jha2017")


def summary(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """The few numbers choices are made on (each an average over held-out origins)."""

    def mean(origins: Iterable[str], key: str) -> float:
        values = [results[o][key] for o in origins if key in results.get(o, {})]
        return sum(values) / len(values) if values else float("nan")

    tweets = [o for o in results if o.startswith(TWEETS)]
    out = {
        "software_macro_f1": mean(SOFTWARE, "macro_f1"),
        "tweets_macro_recall": mean(tweets, "macro_recall"),
        "tweeteval_val_macro_recall": mean(["tweeteval_val"], "macro_recall"),
        "intent_macro_f1": mean(INTENT_ORIGINS, "intent_macro_f1"),
        "complaint_f1": mean([*INTENT_ORIGINS, "urr_ciurumelea2017"], "f1_complaint"),
        "codereview_neg_f1": mean(["senticr2017_codereview"], "f1_negative"),
    }
    out["objective"] = (
        out["software_macro_f1"] + out["tweets_macro_recall"] + out["intent_macro_f1"]
        + out["complaint_f1"]
    ) / 4  # fmt: skip
    return out


def table(results: dict[str, dict[str, float]]) -> str:
    """Per-origin Markdown table of the held-out figures."""
    cols = ("n", "macro_recall", "macro_f1", "f1_negative", "f1_complaint", "f1_request",
            "f1_praise", "intent_macro_f1")  # fmt: skip
    lines = ["| held-out origin | " + " | ".join(c.replace("_", " ") for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]  # fmt: skip
    tweets = sorted(o for o in results if o.startswith(TWEETS))
    merged = dict(results)
    if tweets:  # the tweet folds, averaged: one origin
        runs = [results[o] for o in tweets]
        merged = {k: v for k, v in results.items() if not k.startswith(TWEETS)}
        merged[f"{TWEETS} ({len(tweets)} folds)"] = {
            k: sum(r[k] for r in runs) / len(runs) for k in runs[0]
        }
    for origin in sorted(merged):
        r = merged[origin]
        cells = [f"{r[c]:.0f}" if c == "n" else f"{r[c]:.3f}" if c in r else "" for c in cols]
        lines.append(f"| {origin} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


QUESTION_LABELS = Path(__file__).with_name("question_labels.tsv")


def question_report(examples: Sequence[Example]) -> dict[str, float]:
    """Precision, recall and F1 of the question rule on the hand-labelled sample (no dataset
    labels questions; see question_labels.tsv)."""
    from mentionwatch.sentiment import is_question

    by_hash = {hashlib.sha1(ex.text.encode()).hexdigest()[:12]: ex.text for ex in examples}
    gold, pred = [], []
    for line in QUESTION_LABELS.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or line.startswith("origin\t"):
            continue
        _, digest, label = line.split("\t")
        if digest in by_hash:
            gold.append(label == "1")
            pred.append(is_question(normalize_low(by_hash[digest])))
    tp = sum(g and q for g, q in zip(gold, pred, strict=True))
    return {"n": len(gold), "questions": sum(gold), "precision": tp / max(1, sum(pred)),
            "recall": tp / max(1, sum(gold)), "f1": f1(gold, pred)}  # fmt: skip


LEXICON: dict[str, float] = {}


def default_data_dir() -> Path:
    for candidate in (ROOT.parent / "shared" / "data", ROOT.parents[1] / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return Path("shared/data")


def prepare(data_dir: Path) -> tuple[list[Example], list[dict[str, float]]]:
    LEXICON.clear()
    LEXICON.update(build_lexicon())
    examples = load(data_dir)
    return examples, [features(ex.text, LEXICON) for ex in examples]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=default_data_dir(),
                    help="the shared data folder (with sentiment/ and feedback/)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--cv", action="store_true", help="report cross-origin CV, build nothing")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a Params field, e.g. --set w_se=2 (repeatable)")  # fmt: skip
    args = ap.parse_args(argv)
    defaults = Params()
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        kind = type(getattr(defaults, name))
        overrides[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    p = Params(**{**defaults.__dict__, **overrides})
    examples, feats = prepare(args.data_dir)
    if args.cv:
        ((results, logits),) = cross_origin(examples, feats, p)
        t = fit_temperature(logits)
        print(table(results))
        print(json.dumps({**summary(results), "params": overrides}, sort_keys=True))
        print("question rule on the hand-labelled sample:", json.dumps(question_report(examples)))
        before, after = calibration_error(logits, 1.0), calibration_error(logits, t)
        print(f"temperature fitted on held-out logits: {t} (ECE {before:.3f} at 1.0, "
              f"{after:.3f} at {t})")
        return 0
    train = [i for i, ex in enumerate(examples) if ex.origin not in EVAL_ONLY]
    model = fit([examples[i] for i in train], [feats[i] for i in train], p)
    export(model, LEXICON, args.out, p)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
