"""Relevance: is a mention about *my* product, or about another thing with the same name?

Two layers, combined into one score in 0..1 stored with each mention:

1. **Local, from the config.** A term's ``about`` text describes the product ("issue
   tracker for software teams"), its ``not_about`` list names words that mean another thing
   ("algebra", "regression"). Words of ``about`` in a mention raise the score, a
   ``not_about`` word lowers it a lot. The ``about`` evidence fades
   as the founder's decisions accumulate; ``not_about`` never does.
2. **Learned, from the founder's decisions.** Ignoring a mention teaches "not about my
   product"; handling it or replying to it teaches "about my product". Each term keeps a
   small naive-Bayes model in the database (counts of words, source, subreddit, repository
   seen in relevant and irrelevant mentions), updated online as decisions are made and
   exactly undone when a decision is reversed. The database records every status change in
   ``relevance_events`` (a trigger), so no code path can skip a lesson; :func:`learn`
   consumes them.

A mention found in the founder's own channels (a review of their app, a comment on their
Page: `Mention.addressed`) is about the product by where it was written and scores 1.

``feed --relevant`` keeps mentions scoring at least :data:`THRESHOLD` (and those not
scored yet). Stdlib only: feed and handle import this without slowing down.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mentionwatch.models import Filters, Mention, Term

if TYPE_CHECKING:
    from mentionwatch.config import Config
    from mentionwatch.store import Store

# A mention scoring at least this is "about my product" (feed --relevant; alert rules'
# min_relevance takes any value in 0..1). 0.5: even odds under the model.
THRESHOLD = 0.5

# Local layer (log-odds): each distinct word of `about` found adds ABOUT_WEIGHT (at most
# three count); a mention with none of them stays at even odds (ABOUT_MISSING: a one-line
# description misses most ways people talk about a product, so missing its words must not
# hide a customer); each `not_about` word found (at most two count) subtracts
# NOT_ABOUT_WEIGHT, more than the most `about` words add.
ABOUT_WEIGHT = 1.0
ABOUT_MISSING = 0.0
NOT_ABOUT_WEIGHT = 4.0
# Learned layer: the naive-Bayes evidence is divided by sqrt(features) (its words are far
# from independent) and shrunk by n / (n + SHRINK) for n decisions, so a handful of
# decisions nudges the score and a month of them decides it.
SHRINK = 8.0
SMOOTHING = 0.5  # additive smoothing of the counts

_WORD = re.compile(r"[a-z0-9][a-z0-9'+#.-]*[a-z0-9+#]|[a-z0-9]")
# Function words carry no topic; kept short on purpose (the model learns the rest).
STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have how i
    if in into is it its it's just me my no not of on or our so than that the their them
    then there these they this to too up us was we were what when where which who why will
    with would you your i'm i've im ive don't dont""".split()  # noqa: SIM905
)


@dataclass(frozen=True, slots=True)
class TermProfile:
    """What the local layer knows of one term."""

    name: str
    about: frozenset[str]  # content words of `about` (and their singular forms)
    not_about: tuple[re.Pattern[str], ...]
    own: frozenset[str]  # the term's own query words: present in every mention, no signal


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


class _Stems(dict[str, str]):
    """_stem of each word seen, kept (a text's words are then one C-level map)."""

    def __missing__(self, word: str) -> str:
        if len(self) > 100_000:
            self.clear()
        self[word] = stem = _stem(word)
        return stem


_STEMS = _Stems()


def words(text: str) -> set[str]:
    """Content words of a text: lower-cased, singular, no function words."""
    found = set(_WORD.findall(text.lower()))
    found -= STOPWORDS  # before stemming: "this" is a function word, its "stem" "thi" is not
    return set(map(_STEMS.__getitem__, found))


def profile(term: Term, atoms: Sequence[str] = ()) -> TermProfile:
    own = set()
    for atom in atoms or (term.name,):
        own |= words(atom.lstrip("@#"))
    patterns = tuple(
        re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, phrase.lower().split())) + r"(?!\w)")
        for phrase in term.not_about
        if phrase.strip()
    )
    return TermProfile(term.name, frozenset(words(term.about or "") - own), patterns,
                       frozenset(own))  # fmt: skip


def features(m: Mention, prof: TermProfile) -> list[str]:
    """What the learned layer counts: words (not the term's own), and where it was said."""
    text = "\n".join(x for x in (m.title, m.text) if x)
    feats = sorted(words(text) - prof.own)
    feats.append(f"source:{m.source}")
    for key in ("subreddit", "repo"):
        value = m.extra.get(key)
        if isinstance(value, str) and value:
            feats.append(f"{key}:{value.lower()}")
    return feats


def local_logit(m: Mention, prof: TermProfile) -> tuple[float, float]:
    """The local layer's two parts: the `about` words' evidence and the `not_about` penalty."""
    about, hits = 0.0, 0
    if prof.about or prof.not_about:  # a term with neither reads no text (a poll's hot path)
        text = "\n".join(x for x in (m.title, m.text) if x).lower()
        if prof.about:
            found = len(prof.about & words(text))
            about = ABOUT_WEIGHT * min(found, 3) if found else ABOUT_MISSING
        hits = sum(1 for p in prof.not_about if p.search(text))
    return about, -NOT_ABOUT_WEIGHT * min(hits, 2)


@dataclass
class Counts:
    """A term's learned model: per feature, how many relevant / irrelevant mentions had it."""

    relevant: int = 0  # decisions
    irrelevant: int = 0
    by_feature: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def learned(self) -> bool:
        """True once decisions taught something (before that, logit is 0 for any text)."""
        return bool(self.relevant + self.irrelevant and self.by_feature)

    def logit(self, feats: Iterable[str]) -> float:
        if not self.learned:
            return 0.0
        n = self.relevant + self.irrelevant
        a = SMOOTHING
        evidence, count = 0.0, 0
        for f in feats:
            rel, irr = self.by_feature.get(f, (0, 0))
            if not rel and not irr:
                continue  # never seen in a decision: no evidence either way
            evidence += math.log((rel + a) / (self.relevant + 2 * a)) - math.log(
                (irr + a) / (self.irrelevant + 2 * a)
            )
            count += 1
        prior = math.log((self.relevant + 1) / (self.irrelevant + 1))
        if count:
            evidence /= math.sqrt(count)
        return (prior + evidence) * n / (n + SHRINK)


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def logit_of(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


class Scorer:
    """Scores mentions against the configured terms and each term's learned model."""

    def __init__(self, terms: Sequence[Term], atoms: Mapping[str, Sequence[str]], store: Store):
        self.profiles = {t.name: profile(t, atoms.get(t.name, ())) for t in terms}
        self.store = store
        self._counts: dict[str, Counts] = {}

    def counts(self, term: str) -> Counts:
        if term not in self._counts:
            relevant, irrelevant, by_feature = self.store.relevance_counts(term)
            # Never below zero: decisions learned twice by racing processes (before learning
            # took a lock) could have undone a lesson twice; a count below zero broke scoring.
            by_feature = {f: (max(0, r), max(0, i)) for f, (r, i) in by_feature.items()}
            self._counts[term] = Counts(max(0, relevant), max(0, irrelevant), by_feature)
        return self._counts[term]

    def forget(self, terms: Iterable[str]) -> None:
        for term in terms:
            self._counts.pop(term, None)

    def score(self, m: Mention) -> float | None:
        """Relevance in 0..1: the best over the mention's terms (None: no configured term).

        An analyzer that read the term's ``about`` (the LLM) left its judgement in
        ``m.llm_relevance``; it then replaces the word-matching part of the local layer.
        """
        if m.addressed and m.terms:  # a review of my app, a comment on my Page: mine by place
            return 1.0
        analyzer_relevance = m.llm_relevance
        best = None
        for term in m.terms:
            prof = self.profiles.get(term)
            if prof is None:
                continue
            about, penalty = local_logit(m, prof)
            if analyzer_relevance is not None:  # an LLM read `about`: its judgement leads
                about = logit_of(analyzer_relevance)
            counts = self.counts(term)
            # The founder's decisions say more than a one-line description: as they add up,
            # the `about` evidence fades (an explicit not_about word never does).
            n = counts.relevant + counts.irrelevant
            about *= SHRINK / (n + SHRINK)
            # A term without decisions yet learned nothing: its text's features are not read.
            learned = counts.logit(features(m, prof)) if counts.learned else 0.0
            value = sigmoid(about + penalty + learned)
            best = value if best is None else max(best, value)
        return None if best is None else round(best, 4)


def lesson(status: str) -> bool | None:
    """What a status teaches: True about the product, False not, None nothing (reopened)."""
    return {"handled": True, "replied": True, "ignored": False}.get(status)


def learn(terms: Sequence[Term], atoms: Mapping[str, Sequence[str]], store: Store) -> int:
    """Apply the decisions recorded since the last call, then re-score the open mentions of
    the terms that learned something. Returns how many decisions were applied."""
    scorer = Scorer(terms, atoms, store)
    if not store.relevance_events():  # a cheap look first: usually there is nothing new
        return 0
    touched: set[str] = set()
    with store.transaction():
        # One learner at a time (several watch workers, a person's handle): each decision is
        # counted once. Read again under the lock: another process may have learned them.
        store.lock("relevance")
        events = store.relevance_events()
        if not events:
            return 0
        for _event_id, mention_id, status in events:
            m = store.get(mention_id)
            taught = lesson(status)
            if status == "replied" and m.status == "ignored":
                taught = None  # replied to, then ignored: the later decision stands
            for term in m.terms:
                prof = scorer.profiles.get(term)
                if prof is None:
                    continue
                previous = store.relevance_lesson(mention_id, term)
                if previous is not None and previous[0] == taught:
                    continue
                if previous is not None:  # a reversed decision: undo the old lesson exactly
                    store.add_relevance_counts(term, previous[1], previous[0], -1)
                    store.set_relevance_lesson(mention_id, term, None, ())
                if taught is not None:
                    feats = features(m, prof)
                    store.add_relevance_counts(term, feats, taught, +1)
                    store.set_relevance_lesson(mention_id, term, taught, feats)
                touched.add(term)
        store.delete_relevance_events(events[-1][0])
    if touched:
        scorer.forget(touched)
        rescore_open(scorer, store, touched)
    return len(events)


def learn_now(config: Config, store: Store) -> int:
    """:func:`learn` for the configured terms (after handle, ignore or reopen)."""
    from mentionwatch.query import parse

    return learn(config.terms, {t.name: parse(t.query).atoms() for t in config.terms}, store)


def rescore_open(scorer: Scorer, store: Store, terms: Iterable[str]) -> None:
    """Store fresh scores for the open mentions of ``terms`` (what the founder still reads)."""
    mentions = store.mentions(Filters(statuses=("open",), terms=tuple(sorted(terms))))
    store.set_relevance([(m.id, scorer.score(m)) for m in mentions if m.id is not None])
