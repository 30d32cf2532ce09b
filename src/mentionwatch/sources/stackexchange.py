"""Stack Overflow and the other Stack Exchange sites through API 2.3 (a key is optional).

Search only: the write API needs an OAuth user token and 50 reputation, and the community
expects answers written on the site, so replies open the question or answer page instead.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, AsyncIterator
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from mentionwatch.http import SourceError, error_detail
from mentionwatch.models import Job, Mention, Option, Page, ThreadPost, from_epoch, iso
from mentionwatch.query import Query, parse
from mentionwatch.sources.base import Source
from mentionwatch.sources.common import (
    Anchor,
    Batch,
    Malformed,
    Obj,
    Search,
    anchor,
    convert,
    fit,
    page_of,
    string,
)
from mentionwatch.text import html_to_text, unescape

if TYPE_CHECKING:
    import asyncio

    import httpx

PAGE_SIZE = 100
MAX_PAGES = 3  # per search and poll: the keyless quota is 300 requests a day
# The search index lags behind creation: each poll reads this far back past the newest item.
OVERLAP_SECONDS = 600
# `q` has no documented limit; longer ones are split like on the platforms that have one.
MAX_QUERY = 512
SEARCH = "/search/excerpts"
# Sites whose web domain is <site>.com or .net rather than <site>.stackexchange.com.
_OWN_DOMAINS = {
    "stackoverflow": "stackoverflow.com",
    "serverfault": "serverfault.com",
    "superuser": "superuser.com",
    "askubuntu": "askubuntu.com",
    "stackapps": "stackapps.com",
    "mathoverflow": "mathoverflow.net",
}


class StackExchange(Source):
    name = "stackexchange"
    no_messages = "has no private messages: comment or answer in public on the question"
    default_base_url = "https://api.stackexchange.com/2.3"
    options: ClassVar[dict[str, Option]] = {
        "key": Option(str, secret=True, help="optional app key: 10,000 requests a day, not 300"),
        "site": Option(str, default="stackoverflow", help="the site's api_site_parameter"),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.site = self.settings.get("site") or "stackoverflow"
        # One lock per API method: a `backoff` applies to the next call of the same method,
        # so concurrent jobs take turns and each waits out the previous answer's backoff.
        self._locks: dict[str, asyncio.Lock] = {}

    overlap = OVERLAP_SECONDS
    max_pages = MAX_PAGES

    def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        assert job.term is not None
        # The q parameter has no documented OR: one search per alternative. Exclusions are
        # left to the local matcher, since q's syntax is undocumented.
        queries = fit(parse(job.term.query), MAX_QUERY, _rendered, source=self.name,
                      term=job.term.name, together=False)  # fmt: skip
        return self.walk([Search(q, partial(self._listing, q)) for q in queries], cursor)

    async def _listing(
        self, query: str, lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        params: dict[str, Any] = {
            "q": query,
            "sort": "creation",
            "order": "desc",
            "fromdate": int(lower),
            "pagesize": PAGE_SIZE,
            "filter": "withbody",  # the full post, not only the excerpt around the match
        }
        if upper is not None:
            params["todate"] = int(upper.at) + 1
        page = 1
        while True:
            data = await self.call(SEARCH, {**params, "page": page})
            items = data.array("items")
            mentions, problems = convert(items, lambda i: to_mention(i, self.site), page)
            more = data.get("has_more") is True
            oldest = anchor(items, lambda i: i.get("creation_date"))
            yield Batch(mentions, oldest, more, problems, note=_quota_note(data))
            if not more:
                return
            page += 1

    async def call(self, method: str, params: dict[str, Any], path: str | None = None) -> Obj:
        """GET one API method, honouring the backoff the previous call of it asked for.

        `path` is the method with its ids filled in (/questions/123 for /questions/{ids}).
        """
        import asyncio  # lazily: config loading imports every source

        params = {"site": self.site, **params}
        if self.settings.get("key"):
            params["key"] = self.settings.get("key")
        async with self._locks.setdefault(method, asyncio.Lock()):
            for attempt in range(2):
                await self._wait_backoff(method)
                await self._wait_backoff(self._quota())
                response = await self.http.request("GET", f"{self.base_url}{path or method}",
                                                   params=params)  # fmt: skip
                banned = _banned_for(response)
                if banned is None or attempt:
                    break
                # The day's quota (or a ban) of this IP is spent: a request before it renews
                # would only extend it. Kept, so the next polls (new processes) wait too.
                self.state.set(_backoff_key(self._quota()), str(time.time() + banned))
                await self.http.wait(banned, error_detail(response))
            data = page_of(self.http.json(response), f"the {method} answer")
            if data.get("error_id") is not None:  # an error wrapper in a 200, defensively
                raise SourceError(f"{self.name}: error from {method}: {error_text(data)}")
            backoff = data.number("backoff", required=False)
            if backoff and backoff > 0:
                # Kept in the database too, so the next poll (often a new process) waits.
                self.state.set(_backoff_key(method), str(time.time() + backoff))
        return data

    async def _wait_backoff(self, method: str) -> None:
        try:
            not_before = float(self.state.get(_backoff_key(method)) or 0)
        except ValueError:
            not_before = 0.0
        why = (
            "the API refused more requests until the day's quota renews"
            if method == self._quota()
            else f"the API asked for a backoff on {method}"
        )
        await self.http.wait(not_before - time.time(), why)

    def _quota(self) -> str:
        """The quota a throttle_violation spent: the IP's, or the app key's (adding a key is
        the fix for a spent keyless quota, so it must not wait for the IP's)."""
        return "quota:key" if self.settings.get("key") else "quota:ip"

    async def thread(self, mention: Mention) -> list[ThreadPost]:
        """An answer's question (title and body); a question starts its own thread: []."""
        question_id = mention.extra.get("question_id")
        if mention.extra.get("item_type") != "answer" or not isinstance(question_id, int):
            return []
        site = mention.extra.get("site")
        site = site if isinstance(site, str) and site else self.site
        data = await self.call(
            "/questions/{ids}",
            {"site": site, "filter": "withbody"},
            path=f"/questions/{question_id}",
        )
        for item in data.array("items"):
            if isinstance(item, dict) and item.get("question_id") == question_id:
                return [_question_post(item, site, question_id)]
        return []  # deleted since: nothing to show

    async def check(self) -> str:
        data = await self.call("/info", {})
        keyed = "with an app key" if self.settings.get("key") else "without a key"
        left, most = data.get("quota_remaining"), data.get("quota_max")
        return f"site {self.site} answers ({keyed}): {left} of {most} requests left today"


def _rendered(query: Query) -> str:
    return query.quoted_alternatives(exclusions=False)[0]


def to_mention(item: Obj, site: str) -> Mention | None:
    question_id = item.integer("question_id", required=True)
    created = item.time("creation_date")
    assert created is not None
    kind = item.need("item_type")
    if kind not in ("question", "answer"):
        raise Malformed(f'{item.where} has "item_type": {kind!r}, not question or answer')
    is_answer = kind == "answer"
    answer_id = item.integer("answer_id", required=is_answer)
    domain = site_domain(site)
    post_id = answer_id if is_answer else question_id
    url = f"https://{domain}/a/{answer_id}" if is_answer else f"https://{domain}/q/{question_id}"
    # A deleted user's posts carry an owner without a user_id (user_type "does_not_exist").
    owner = item.obj("owner", required=False)
    name = unescape(owner.string("display_name", required=False)) if owner else None
    # Search excerpts may wrap matches in the title in <span class="highlight"> too.
    title = html_to_text(item.string("title"))
    body = item.string("body", required=False)
    text = html_to_text(body if body is not None else item.string("excerpt", required=False))
    return Mention(
        source="stackexchange",
        # Question and answer ids share one id space per site, but not across sites.
        native_id=f"{site}:{post_id}",
        text=text,
        created_at=created,
        url=url,
        # No handles on Stack Exchange: the display name is the only name shown.
        author=name or None,
        author_name=name or None,
        title=title or None,
        reach=item.integer("score"),  # the post's score (up minus down votes; may be negative)
        reply_url=url,
        extra={
            "site": site,
            "item_type": kind,
            "question_id": question_id,
            "answer_id": answer_id,
            "user_id": owner.integer("user_id") if owner else None,
            "tags": [t for t in item.array("tags", required=False) if isinstance(t, str)],
            "is_answered": item.get("is_answered") is True,
        },
        # An answer carries its question's title: context, not something the answerer wrote.
        searchable="\n".join(x for x in (title, text) if x) if not is_answer else text,
    )


def _question_post(item: dict[str, Any], site: str, question_id: int) -> ThreadPost:
    title, body = html_to_text(string(item.get("title"))), html_to_text(string(item.get("body")))
    owner = item.get("owner")
    name = unescape(string(owner.get("display_name"))) if isinstance(owner, dict) else None
    created = item.get("creation_date")
    when = iso(from_epoch(created)) if isinstance(created, int) else None
    return ThreadPost(
        "parent",
        "\n".join(x for x in (title, body) if x),
        name or None,
        f"https://{site_domain(site)}/q/{question_id}",
        when,
    )


def site_domain(site: str) -> str:
    """The web domain of a site from its api_site_parameter (or its domain, also accepted)."""
    if site.endswith((".com", ".net")):
        return site
    if site in _OWN_DOMAINS:
        return _OWN_DOMAINS[site]
    head, _, rest = site.partition(".")
    if head == "meta" and rest:
        base = _OWN_DOMAINS.get(rest)
        return f"meta.{base}" if base else f"{rest}.meta.stackexchange.com"
    if rest in _OWN_DOMAINS:  # localised Stack Overflow: pt.stackoverflow, ru.stackoverflow
        return f"{head}.{_OWN_DOMAINS[rest]}"
    return f"{site}.stackexchange.com"


def error_text(data: Obj) -> str:
    """`throttle_violation (502): too many requests from this IP, …` in one line."""
    name, number = data.get("error_name"), data.get("error_id")
    message = string(data.get("error_message"))
    head = f"{name} ({number})" if name else f"error {number}"
    return " ".join(f"{head}: {message}".split())[:300] if message else head


def _quota_note(data: Obj) -> str | None:
    left = data.integer("quota_remaining")
    # Only worth a line when it is running out (the keyless daily quota is 300).
    return f"{left} API requests left today" if left is not None and left < 50 else None


def _banned_for(response: httpx.Response) -> float | None:
    """The seconds a throttle_violation names ("too many requests from this IP, more requests
    available in 82311 seconds": the day's quota is spent), or None."""
    if response.status_code < 400 or b"throttle_violation" not in response.content[:2000]:
        return None
    found = re.search(rb"available in (\d+) seconds", response.content[:2000])
    return float(found.group(1)) if found else None


def _backoff_key(method: str) -> str:
    return f"not_before:{method}"


SOURCE = StackExchange
