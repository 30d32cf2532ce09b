"""Tagging mentions: sentiment and intents from the analyzer, then relevance.

One place decides what of a mention is scored (the body, with its own title as context;
a comment's thread title is someone else's words), how terms are masked, and how the LLM
analyzer is wired to the config and the database cache. ``poll`` tags new mentions here and
``rescore`` every stored one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mentionwatch import relevance
from mentionwatch.models import Filters, Mention
from mentionwatch.query import parse
from mentionwatch.sentiment import Analyzer, Post, get_analyzer, mask_terms, score_posts
from mentionwatch.triage import rated, star_rating

if TYPE_CHECKING:
    from mentionwatch.config import Config
    from mentionwatch.store import Store


def analyzer_for(
    config: Config,
    store: Store | None,
    name: str | None = None,
    notify: Callable[[str], None] | None = None,
) -> Analyzer:
    """The analyzer called ``name`` (default: the config's), wired to the config.

    The LLM analyzer gets its settings, the database cache (when there is a store) and the
    default analyzer as its fallback. Raises ValueError for an unknown name.
    """
    key = (name or config.analyzer or "").strip().lower()
    if key == "llm":
        from mentionwatch.llm_analyzer import LLMAnalyzer

        cache = store.llm_cache() if store is not None else None
        return LLMAnalyzer(config.llm, cache=cache, fallback=get_analyzer(), notify=notify)
    return get_analyzer(key or None)


def model_id(analyzer: Analyzer) -> str:
    """Names the analyzer and its model version (the default model's weights hash)."""
    version = getattr(analyzer, "version", "")
    return f"{analyzer.name}:{version}" if version else analyzer.name


def stale_note(store: Store, analyzer: Analyzer) -> str | None:
    """A note when stored mentions were tagged by another analyzer or model version; the
    first tagging of a database just records which one it is."""
    current = model_id(analyzer)
    stored = store.get_state("tagging", "analyzer")
    if stored is None:
        store.set_state("tagging", "analyzer", current)
        return None
    if stored == current:
        return None
    return (f"stored mentions were tagged by {stored}, new ones by {current}: run "
            "'mentionwatch rescore' to tag them all alike")  # fmt: skip


class Tagger:
    """Tags mentions for one run (a poll or a rescore) with one analyzer."""

    def __init__(self, config: Config, store: Store, analyzer: Analyzer) -> None:
        self.config = config
        self.analyzer = analyzer
        self.atoms = {t.name: parse(t.query).atoms() for t in config.terms}
        self.about = {t.name: t.about for t in config.terms if t.about}
        self.relevance = relevance.Scorer(config.terms, self.atoms, store)

    def post(self, m: Mention) -> Post:
        """What is scored of a mention, with its terms masked."""
        words = [a for t in m.terms for a in self.atoms.get(t, ())]
        title = None if m.in_thread else m.title
        about = "; ".join(self.about[t] for t in m.terms if t in self.about) or None
        return Post(
            text=mask_terms(m.text or "", words),
            title=mask_terms(title, words) if title else None,
            about=about,
            key=m.key,
        )

    def tag(self, mentions: Sequence[Mention]) -> None:
        """Set sentiment, polarity, intents and relevance of each mention."""
        if not mentions:
            return
        scores = score_posts(self.analyzer, [self.post(m) for m in mentions])
        for m, score in zip(mentions, scores, strict=True):
            # A review's stars outrank its words (triage.rated): a kind 1-star is a complaint.
            m.sentiment, m.polarity, m.intents = rated(
                score.label, score.polarity, score.intents, star_rating(m)
            )
            m.llm_relevance = score.relevance
            m.relevance = self.relevance.score(m)


def rescore(
    config: Config,
    store: Store,
    analyzer_name: str | None,
    advance: Callable[[int, int], None] = lambda done, total: None,
) -> tuple[int, int]:
    """Score every stored mention again (after a model or config change), in one pass.

    Returns (how many changed label, how many were scored). Terms are masked exactly as when
    the mention was first saved; relevance is recomputed with what the decisions taught.
    """
    analyzer = analyzer_for(config, store, analyzer_name)
    tagger = Tagger(config, store, analyzer)
    relevance.learn(config.terms, tagger.atoms, store)
    mentions = list(store.mentions(Filters(statuses=())))
    changed = 0
    for start in range(0, len(mentions), 500):
        chunk = mentions[start : start + 500]
        before = [m.sentiment for m in chunk]
        tagger.tag(chunk)
        changed += sum(m.sentiment != b for m, b in zip(chunk, before, strict=True))
        store.update_sentiment(
            [(m.id, m.sentiment, m.polarity, m.intents, m.llm_relevance) for m in chunk]  # type: ignore[misc]
        )
        store.set_relevance([(m.id, m.relevance) for m in chunk if m.id is not None])
        advance(start + len(chunk), len(mentions))
    store.set_state("tagging", "analyzer", model_id(analyzer))
    return changed, len(mentions)
