"""Ranking what to answer first, from a mention's sentiment, intents, reach and age.

Kept apart from sentiment.py so that feed and export can rank without loading an analyzer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime

from mentionwatch.models import Mention, utcnow

# freshness = FLOOR + (1 - FLOOR) * 0.5 ** (age_hours / HALF_LIFE_HOURS)
FLOOR = 0.25
HALF_LIFE_HOURS = 24.0


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

    ``urgency * audience`` does not change with time: the store keeps it (base_priority),
    so the feed can rank by priority from indexes (store.Store.mentions).
    """
    return base_priority(label, polarity, intents, reach) * freshness(age_hours)


_LABEL_URGENCY = {"negative": 3.0, "neutral": 1.5, "positive": 1.0}
_INTENT_URGENCY = {"complaint": 2.0, "question": 1.5, "request": 1.0, "praise": 0.5}


def base_priority(
    label: str | None, polarity: float | None, intents: Sequence[str], reach: int | None
) -> float:
    """urgency * audience: the part of priority that does not age (always >= 1)."""
    # Every saved row computes this, and most have no intents, no negative polarity or no
    # reach: those parts are skipped where they would add nothing (the same floats).
    urgency = _LABEL_URGENCY.get(label or "neutral", 1.5)
    if intents:
        urgency += sum(_INTENT_URGENCY.get(i, 0.0) for i in set(intents))
    if polarity is not None and polarity < 0.0:  # a negative polarity's strength, up to 1
        urgency += min(1.0, -polarity)
    audience = 1.0 + math.log10(1.0 + max(0, reach)) / 2.0 if reach else 1.0
    return urgency * audience


def freshness(age_hours: float) -> float:
    return FLOOR + (1 - FLOOR) * 0.5 ** (max(0.0, age_hours) / HALF_LIFE_HOURS)


def by_priority(mentions: Iterable[Mention], limit: int | None = None) -> list[Mention]:
    """Mentions in the order to answer them; ties go to the newer one."""
    now = utcnow()
    ranked = sorted(mentions, key=lambda m: (mention_priority(m, now), m.created_at), reverse=True)
    return ranked[:limit] if limit else ranked


def mention_priority(m: Mention, now: datetime | None = None) -> float:
    age_hours = ((now or utcnow()) - m.created_at).total_seconds() / 3600
    label, polarity, intents = rated(m.sentiment or "neutral", m.polarity or 0.0, m.intents,
                                     star_rating(m))  # fmt: skip
    return priority(label, polarity, intents, m.reach, age_hours)


def star_rating(m: Mention) -> int | None:
    """The 1-5 stars of a review (app stores, Yelp), kept by its source in `extra["rating"]`."""
    rating = m.extra.get("rating")
    return rating if isinstance(rating, int) and 1 <= rating <= 5 else None


def rated(
    label: str, polarity: float, intents: Sequence[str], rating: int | None
) -> tuple[str, float, tuple[str, ...]]:
    """What a star rating says, over the words: one or two stars is a negative complaint
    however kindly it is written ("love the idea, but…"), five stars is at least positive
    praise whatever its words. Three and four stars leave the words to decide."""
    if rating is None or rating in (3, 4):
        return label, polarity, tuple(intents)
    kept = tuple(i for i in intents if i not in ("complaint", "praise"))
    if rating <= 2:
        return "negative", min(polarity, -0.5 if rating == 1 else -0.25), (*kept, "complaint")
    return "positive", max(polarity, 0.0), (*kept, "praise")
