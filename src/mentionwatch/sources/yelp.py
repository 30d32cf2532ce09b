"""Yelp Places API (formerly Fusion): the review excerpts of the founder's businesses.

`GET /businesses/{id or alias}/reviews` gives Yelp's three review excerpts a business shows
first (not a full history; re-read each poll, kept once each). Every review is about the
business: it belongs to every term, and its star rating is kept. Replies go through Yelp's
partner-only Respond to Reviews API, so `reply` opens the owner page (biz.yelp.com) instead.
Calls count against a daily plan (the trial Starter plan: 300 a day, reset at midnight
UTC); Yelp's RateLimit-* headers are kept for `sources`, and ACCESS_LIMIT_REACHED waits for
the reset.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

from mentionwatch.http import reset_delay
from mentionwatch.models import Job, Mention, Option, Page, Term
from mentionwatch.sources.base import Source
from mentionwatch.sources.common import Malformed, Obj, convert, page_of
from mentionwatch.text import clean

OWNER_PAGE = "https://biz.yelp.com/"
# Yelp's review times are local to its headquarters: "2016-08-29 00:41:13".
YELP_ZONE = "America/Los_Angeles"


class Yelp(Source):
    name = "yelp"
    default_base_url = "https://api.yelp.com/v3"
    options: ClassVar[dict[str, Option]] = {
        "api_key": Option(str, secret=True, help="Places API key (Bearer)"),
        "businesses": Option(list, default=[], help="your businesses' Yelp ids or aliases"),
        "locale": Option(str, help="reviews in this locale, e.g. en_US"),
        "owner_url": Option(
            str, default=OWNER_PAGE, help="where you answer reviews (Yelp for Business)"
        ),
    }
    required = (("api_key",),)

    def missing_credentials(self) -> str | None:
        if not self.settings.get("businesses"):
            return (
                f"{self.name}: no businesses: set sources.{self.name}.businesses to your Yelp ids"
            )
        return super().missing_credentials()

    def jobs(self, terms: Sequence[Term]) -> list[Job]:
        if not any(t.applies_to(self.name) for t in terms):
            return []
        return [
            Job(self.name, f"biz:{b}", owned=True) for b in self.settings.get("businesses") or []
        ]

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Obj:
        headers = {
            "Authorization": f"Bearer {self.settings.get('api_key')}",
            "Accept": "application/json",
        }
        response = await self.http.request(
            "GET", f"{self.base_url}{path}", params=params, headers=headers
        )
        limits = {
            k: response.headers.get(f"ratelimit-{k}")
            for k in ("dailylimit", "remaining", "resettime")
        }
        if limits["remaining"] is not None:
            self.state.set("rate", json.dumps(limits))
        if response.status_code == 429 and b"ACCESS_LIMIT_REACHED" in response.content[:2000]:
            wait = reset_delay({"ratelimit-reset": limits["resettime"]}) or 3600.0
            await self.http.wait(wait, "Yelp's daily API limit is used up (ACCESS_LIMIT_REACHED)")
        if response.status_code >= 400:
            raise self.http.error(
                response, f"GET {path}", f"check sources.{self.name}.api_key and businesses"
            )
        return page_of(self.http.json(response), f"the {path} answer")

    async def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        business = job.scope.removeprefix("biz:")
        locale = self.settings.get("locale")
        data = await self._get(
            f"/businesses/{business}/reviews", {"locale": locale} if locale else None
        )
        reviews = data.array("reviews")
        owner = self.settings.get("owner_url") or OWNER_PAGE
        mentions, problems = convert(reviews, lambda r: to_mention(r, business, owner))
        total = data.integer("total")
        note = (
            f"Yelp shows 3 of the {total} reviews"
            if total and total > len(reviews) and cursor is None
            else None
        )
        yield Page(mentions, "seen", note, problems=problems)

    def usage(self) -> str | None:
        try:
            rate = json.loads(self.state.get("rate") or "{}")
        except ValueError:
            return None
        if not isinstance(rate, dict) or rate.get("remaining") is None:
            return None
        reset = f", resets {rate['resettime']}" if rate.get("resettime") else ""
        return f"{rate['remaining']} of {rate.get('dailylimit') or '?'} API calls left today{reset}"

    async def check(self) -> str:
        names = []
        for business in self.settings.get("businesses") or []:
            data = await self._get(f"/businesses/{business}")
            names.append(repr(data.string("name", required=False) or business))
        usage = self.usage()
        return f"API key works: {', '.join(names)}" + (f"; {usage}" if usage else "")

    def reply_link(self, mention: Mention) -> str | None:
        """Answering is Yelp for Business (partner API only): the owner page."""
        return self.settings.get("owner_url") or OWNER_PAGE


def _time(value: str, where: str) -> datetime:
    from zoneinfo import ZoneInfo

    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Malformed(f'{where} has "time_created": {value[:30]!r}, not a time') from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(YELP_ZONE))


def to_mention(review: Obj, business: str, owner: str) -> Mention:
    review_id = review.need("id")
    rating = review.number("rating")
    if rating is None or not 1 <= rating <= 5:
        raise Malformed(f'{review.where} has "rating": {rating}, not 1 to 5')
    user = review.obj("user", required=False)
    name = user.string("name", required=False) if user else None
    url = review.string("url", required=False)
    return Mention(
        source="yelp",
        native_id=review_id,
        text=clean(review.string("text")),
        created_at=_time(review.need("time_created"), review.where),
        url=url,
        author=name,
        author_name=name,
        reply_url=owner,
        extra={
            "kind": "review",
            "rating": int(rating),
            "business": business,
            "excerpt": True,
            "user_id": user.string("id", required=False) if user else None,
        },
    )


SOURCE = Yelp
