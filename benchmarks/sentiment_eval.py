"""Score sentiment analyzers on a labelled TSV and print a Markdown table.

    python benchmarks/sentiment_eval.py FILE.tsv [--analyzer NAME ...] [--baseline-lr TRAIN.tsv]

Columns: macro-recall (TweetEval's official metric), macro-F1, per-class F1 and throughput
(docs/second, one core, the fastest of five passes after a warm-up). The analyzers need only
the package; ``--baseline-lr`` trains a plain TF-IDF logistic regression on TRAIN.tsv and
needs scikit-learn (benchmark only).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mentionwatch.sentiment import ANALYZER_NAMES, LABELS, get_analyzer


def read_tsv(path: Path) -> tuple[list[str], list[str]]:
    """Labels and texts of a ``label<TAB>text`` file with a header row."""
    labels, texts = [], []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader, None)
        for row in reader:
            if len(row) >= 2 and row[0] in LABELS:
                labels.append(row[0])
                texts.append("\t".join(row[1:]))
    return labels, texts


def metrics(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    """Macro-recall, macro-F1 and per-class F1 (stdlib only)."""
    out: dict[str, float] = {}
    recalls, f1s = [], []
    for lab in LABELS:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == lab and p == lab)
        n_gold = sum(1 for g in gold if g == lab)
        n_pred = sum(1 for p in pred if p == lab)
        recall = tp / n_gold if n_gold else 0.0
        precision = tp / n_pred if n_pred else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        recalls.append(recall)
        f1s.append(f1)
        out[f"f1_{lab}"] = f1
    out["macro_recall"] = sum(recalls) / len(recalls)
    out["macro_f1"] = sum(f1s) / len(f1s)
    return out


def timed(
    predict: Callable[[list[str]], list[str]], texts: list[str], passes: int = 5
) -> tuple[list[str], float]:
    """Predictions, and docs/second of the fastest of several passes (the least disturbed by
    whatever else the machine is doing)."""
    predict(texts[:200])  # warm-up: lazy loading and caches are not throughput
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        pred = predict(texts)
        best = min(best, time.perf_counter() - start)
    return pred, len(texts) / best


def analyzer_predict(name: str) -> Callable[[list[str]], list[str]]:
    score = get_analyzer(name).score
    return lambda texts: [score(t).label for t in texts]


def baseline_lr_predict(train: Path) -> Callable[[list[str]], list[str]]:
    """Plain TF-IDF (default settings) + logistic regression, the reference baseline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    labels, texts = read_tsv(train)
    model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))
    model.fit(texts, labels)
    return lambda batch: list(model.predict(batch))


def table(rows: list[tuple[str, dict[str, float], float]]) -> str:
    lines = [
        "| analyzer | macro-recall | macro-F1 | F1 neg | F1 neu | F1 pos | docs/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m, speed in rows:
        lines.append(
            f"| {name} | {m['macro_recall']:.3f} | {m['macro_f1']:.3f} | {m['f1_negative']:.3f}"
            f" | {m['f1_neutral']:.3f} | {m['f1_positive']:.3f} | {speed:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark mentionwatch sentiment analyzers.")
    ap.add_argument("file", type=Path, help="labelled TSV: label<TAB>text, with a header")
    ap.add_argument("--analyzer", action="append", choices=ANALYZER_NAMES, dest="analyzers")
    ap.add_argument("--baseline-lr", type=Path, metavar="TRAIN.tsv")
    args = ap.parse_args(argv)

    gold, texts = read_tsv(args.file)
    predictors = [(n, analyzer_predict(n)) for n in args.analyzers or ANALYZER_NAMES]
    if args.baseline_lr:
        predictors.append(("tfidf-lr (baseline)", baseline_lr_predict(args.baseline_lr)))
    rows = []
    for name, predict in predictors:
        pred, speed = timed(predict, texts)
        rows.append((name, metrics(gold, pred), speed))
    print(f"{args.file.name}: {len(texts)} labelled texts\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
