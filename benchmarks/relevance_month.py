"""A simulated month of a founder's decisions: how precise does `feed --relevant` get?

    python benchmarks/relevance_month.py [--days 30] [--per-day 30] [--seeds 5]

The product is "Linear", an issue tracker: a name that is also a word of mathematics,
statistics and television. Every day brings new mentions of the term (about 45% of them
about another "linear"), generated from templates with shared filler words, sources and
subreddits. Each day, *before* deciding, the day's mentions are scored and
`--relevant` (relevance >= 0.5) is measured against the truth; then the founder handles
half of the relevant ones (not every mention needs an answer) and ignores most of the
others, and also makes a few mistakes (5% of decisions are the wrong way). The real
`relevance` module and the real database (triggers, learned counts) do the rest.

Printed per week: precision and recall of `--relevant` on that week's new mentions, with
the term's `about` and `not_about` set and without them (decisions only). The texts are
synthetic: the numbers show how fast the learned layer adapts, not how a given product's
mentions will score.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mentionwatch import relevance
from mentionwatch.models import Mention, Term, utcnow
from mentionwatch.store import Store

ABOUT = "issue tracker and project planning for software teams"
NOT_ABOUT = ("algebra", "regression", "linear tv")  # what the README's example config says

RELEVANT = [
    "moved our team's {thing} to Linear and the {praise}",
    "Linear {verb} my {thing} again, {feeling}",
    "does Linear have a {feature} yet? our {team} needs it",
    "Linear's {feature} is {praise2}, {filler}",
    "comparing Linear and {rival} for our {team}: {opinion}",
    "the Linear {feature} keeps {failing} since the last update",
    "we triage every {thing} in Linear now, {filler}",
    "Linear cycles finally made our {team} ship on time",
    "switched to Linear last week, {filler}",
    "Linear pricing went up for our {team}",
    "is Linear worth it over {rival}?",
]
IRRELEVANT = [
    "{math} homework: is this map linear? {filler}",
    "linear {stat} with {n} features overfits, {filler}",
    "linear {tv} is dying and nobody {feeling2}",
    "solving a linear {eq} system with {n} unknowns",
    "my linear {fitness} plan stalled at {n} kg",
    "linear {stat} assumptions: residuals should be {dist}",
    "why is the linear {math} exam so {feeling3}",
    "{n} episodes of linear {tv} tonight, {filler}",
    # Developers using the word: the hardest ones, same places and words as the product's.
    "linear {cs} is too slow for our {team}, {filler}",
    "bug in my linear {cs} code, {filler}",
    "replaced a linear {cs} with a hash map and the API got fast",
    "css linear gradient looks {feeling3} on the roadmap page",
]
SLOTS = {
    "thing": ["backlog", "sprint", "roadmap", "bug queue", "tickets", "issues", "support inbox"],
    "praise": ["keyboard shortcuts are magic", "sync is instant", "GitHub integration just works"],
    "verb": ["lost", "duplicated", "archived", "scrambled"],
    "feeling": ["not happy", "so annoying", "please fix", "seriously"],
    "feature": [
        "Slack integration", "roadmap view", "API", "triage inbox", "Jira importer",
        "GitHub sync", "SLA timer",
    ],
    "team": ["startup", "design team", "eng team", "backend team", "on-call rotation"],
    "praise2": ["great", "so fast", "a joy", "underrated"],
    "filler": ["honestly", "just saying", "thoughts?", "anyone else?", "today", "again", "lol"],
    "rival": ["Jira", "Asana", "GitHub Projects", "Shortcut", "Trello"],
    "opinion": ["Linear wins on speed", "still undecided", "Jira has more reports"],
    "failing": ["failing to sync", "timing out", "logging me out", "dropping comments"],
    "math": ["algebra", "calculus", "matrix", "vector space"],
    "stat": ["regression", "model", "classifier", "fit"],
    "tv": ["TV", "television", "broadcast", "channels"],
    "feeling2": ["watches it", "cares", "misses ads"],
    "eq": ["equation", "inequality", "programming"],
    "fitness": ["progression", "periodization", "overload"],
    "dist": ["normal", "independent", "homoscedastic"],
    "feeling3": ["hard", "long", "early"],
    "n": ["3", "12", "40", "100"],
    "cs": ["search", "scan", "probing", "interpolation", "time loop"],
}
# Everyday words anyone may add to a post.
FILLER = "|".join(
    ["today|week|really|just|new|team|work|update|code|project|time|people|thing|help|good",
     "bad|fast|slow|love|hate|need|want|use|using|tried|try|again|still|finally|anyone|else",
     "thanks|please|why|how|what|best|worst"]
).split("|")  # fmt: skip
SOURCES = {
    True: [("x", None), ("hackernews", None), ("reddit", "startups"), ("github", None),
           ("reddit", "programming"), ("mastodon", None)],
    False: [("reddit", "learnmath"), ("stackexchange", None), ("x", None), ("hackernews", None),
            ("reddit", "programming"), ("github", None), ("mastodon", None)],
}  # fmt: skip


def mention(rng: random.Random, relevant: bool, serial: int, day: int) -> Mention:
    template = rng.choice(RELEVANT if relevant else IRRELEVANT)
    text = template.format(**{k: rng.choice(v) for k, v in SLOTS.items()})
    text += " " + " ".join(rng.sample(FILLER, rng.randint(1, 4)))
    source, sub = rng.choice(SOURCES[relevant])
    created = utcnow() - timedelta(days=30 - day)
    m = Mention(source=source, native_id=str(serial), text=text, created_at=created,
                terms=["linear"], extra={"subreddit": sub} if sub else {})  # fmt: skip
    m.extra["truth"] = relevant  # read back by the simulation only
    return m


@dataclass
class Week:
    span: str  # the days measured, "1" or "2-8"
    precision: float
    recall: float
    decisions: int


def simulate(
    days: int = 30, per_day: int = 30, seed: int = 1, about: str | None = ABOUT
) -> list[Week]:
    rng = random.Random(seed)
    term = Term(name="linear", query="linear", about=about,
                not_about=NOT_ABOUT if about else ())  # fmt: skip
    atoms = {"linear": ["linear"]}
    weeks: list[Week] = []
    tally = [0, 0, 0]
    first = 1  # true positives, predicted positives, actual positives
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "month.db")
        serial = 0
        for day in range(days):
            scorer = relevance.Scorer([term], atoms, store)
            batch = []
            for _ in range(per_day):
                serial += 1
                m = mention(rng, rng.random() < 0.55, serial, day)
                m.relevance = scorer.score(m)
                batch.append(m)
            store.save_page(batch[0].source, "linear", batch, None)
            for m in batch:
                truth, passed = m.extra["truth"], (m.relevance or 0) >= relevance.THRESHOLD
                tally[0] += truth and passed
                tally[1] += passed
                tally[2] += truth
            # The founder's day: answer half of the relevant ones, ignore most of the rest.
            ids = {m.key: i for i, m in zip(store.resolve([m.key for m in batch]), batch,
                                           strict=True)}  # fmt: skip
            handle, ignore = [], []
            for m in batch:
                truth = m.extra["truth"]
                if rng.random() < 0.05:
                    truth = not truth  # a mistake
                if truth and rng.random() < 0.5:
                    handle.append(ids[m.key])
                elif not truth and rng.random() < 0.8:
                    ignore.append(ids[m.key])
            store.set_status(handle, "handled")
            store.set_status(ignore, "ignored")
            relevance.learn([term], atoms, store)
            if day == 0 or day % 7 == 0 or day == days - 1:
                decided = store.conn.execute(
                    "SELECT relevant + irrelevant FROM relevance_counts WHERE feature = ''"
                ).fetchone()
                span = f"{first}-{day + 1}" if day + 1 > first else str(first)
                first = day + 2
                precision, recall = tally[0] / max(1, tally[1]), tally[0] / max(1, tally[2])
                weeks.append(Week(span, precision, recall, decided[0] if decided else 0))
                tally = [0, 0, 0]
        store.close()
    return weeks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--per-day", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args(argv)
    print(f"{args.days} days x {args.per_day} mentions, mean of {args.seeds} seeds; "
          "precision / recall of --relevant on each week's new mentions\n")  # fmt: skip
    print("| days | decisions so far | with about/not_about: precision | recall "
          "| without: precision | recall |\n|---|---:|---:|---:|---:|---:|")  # fmt: skip
    runs = {
        name: [simulate(args.days, args.per_day, seed, about) for seed in range(args.seeds)]
        for name, about in (("about", ABOUT), ("none", None))
    }
    for w in range(len(runs["about"][0])):

        def mean(name: str, field: str, w: int = w) -> float:
            return sum(getattr(run[w], field) for run in runs[name]) / len(runs[name])

        span = runs["about"][0][w].span
        print(f"| {span} | {mean('about', 'decisions'):.0f} | {mean('about', 'precision'):.2f} "
              f"| {mean('about', 'recall'):.2f} | {mean('none', 'precision'):.2f} "
              f"| {mean('none', 'recall'):.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
