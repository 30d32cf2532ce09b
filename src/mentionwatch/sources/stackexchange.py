"""Stack Overflow and the other Stack Exchange sites through API 2.3 (a key is optional).

Search only: the write API needs an OAuth user token and 50 reputation, and the community
expects answers written on the site, so replies open the question or answer page instead.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from mentionwatch.http import RateLimited, SourceError, error_detail, redact_url
from mentionwatch.models import Job, Mention, Option, Page, ThreadPost, from_epoch, iso
from mentionwatch.query import parse
from mentionwatch.sources.base import Source
from mentionwatch.text import html_to_text, unescape

if TYPE_CHECKING:
    import asyncio

    import httpx

PAGE_SIZE = 100
MAX_PAGES = 3  # the keyless quota is 300 requests a day: a busy term must not eat it
# The search index lags behind creation: each poll looks back this far and dedupes.
OVERLAP_SECONDS = 300
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

    async def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        assert job.term is not None
        since = int(cursor) if cursor and cursor.isdigit() else int(self.first_since().timestamp())
        newest = since
        # The q parameter has no documented OR: one search per alternative. Exclusions are
        # left to the local matcher, since q's syntax is undocumented.
        for query in parse(job.term.query).quoted_alternatives(exclusions=False):
            async for items, note in self._pages(query, since - OVERLAP_SECONDS):
                mentions = [m for m in (to_mention(i, self.site) for i in items) if m is not None]
                newest = max([newest, *(int(m.created_at.timestamp()) for m in mentions)])
                yield Page(mentions, note=note)
        yield Page([], cursor=str(newest))

    async def _pages(
        self, query: str, since: int
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str | None]]:
        for page in range(1, MAX_PAGES + 1):
            params = {
                "q": query,
                "sort": "creation",
                "order": "desc",
                "fromdate": since,
                "pagesize": PAGE_SIZE,
                "page": page,
                "filter": "withbody",  # the full post, not only the excerpt around the match
            }
            data = await self.call(SEARCH, params)
            if not isinstance(data.get("items"), list):
                raise SourceError(f"{self.name}: unexpected response shape (no 'items' list)")
            items = [i for i in data["items"] if isinstance(i, dict)]
            yield items, _quota_note(data)
            if data.get("has_more") is not True:
                return

    async def call(
        self, method: str, params: dict[str, Any], path: str | None = None
    ) -> dict[str, Any]:
        """GET one API method, honouring the backoff the previous call of it asked for.

        `path` is the method with its ids filled in (/questions/123 for /questions/{ids}).
        """
        import asyncio  # lazily: config loading imports every source

        params = {"site": self.site, **params}
        if self.settings.get("key"):
            params["key"] = self.settings.get("key")
        url = f"{self.base_url}{path or method}"
        async with self._locks.setdefault(method, asyncio.Lock()):
            await self._wait_backoff(method)
            response = await self.http.request("GET", url, params=params)
            data = self._json(response)
            backoff = data.get("backoff")
            if isinstance(backoff, int | float) and not isinstance(backoff, bool) and backoff > 0:
                # Kept in the database too, so the next poll (often a new process) waits.
                self.state.set(_backoff_key(method), str(time.time() + backoff))
        return data

    async def _wait_backoff(self, method: str) -> None:
        import asyncio  # lazily: config loading imports every source

        try:
            not_before = float(self.state.get(_backoff_key(method)) or 0)
        except ValueError:
            not_before = 0.0
        wait = not_before - time.time()
        if wait <= 0:
            return
        if wait > self.poll_settings.max_wait:
            raise RateLimited(
                f"{self.name}: the API asked for a {round(wait)}s backoff on {method}; try later"
            )
        await asyncio.sleep(wait)

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        # The endpoint without its query: the search string would drown the reason.
        where = redact_url(str(response.request.url.copy_with(query=None)))
        if response.status_code >= 400:
            raise SourceError(
                f"{self.name}: HTTP {response.status_code} from {where}: {reason(response)}"
            )
        data = self.http.json(response, where)
        if not isinstance(data, dict):
            raise SourceError(f"{self.name}: unexpected response shape from {where}")
        if data.get("error_id") is not None:  # an error wrapper in a 200, defensively
            raise SourceError(f"{self.name}: error from {where}: {_error_text(data)}")
        return data

    async def thread(self, mention: Mention) -> list[ThreadPost]:
        """An answer's question (title and body); a question starts its own thread: []."""
        question_id = _int(mention.extra.get("question_id"))
        if mention.extra.get("item_type") != "answer" or question_id is None:
            return []
        site = mention.extra.get("site")
        site = site if isinstance(site, str) and site else self.site
        data = await self.call(
            "/questions/{ids}",
            {"site": site, "filter": "withbody"},
            path=f"/questions/{question_id}",
        )
        items = data.get("items")
        if not isinstance(items, list):
            raise SourceError(f"{self.name}: unexpected response shape (no 'items' list)")
        for item in items:
            if isinstance(item, dict) and _int(item.get("question_id")) == question_id:
                return [_question_post(item, site, question_id)]
        return []  # deleted since: nothing to show

    async def check(self) -> str:
        data = await self.call("/info", {})
        keyed = "with an app key" if self.settings.get("key") else "without a key"
        left, most = data.get("quota_remaining"), data.get("quota_max")
        return f"site {self.site} answers ({keyed}): {left} of {most} requests left today"


def to_mention(item: dict[str, Any], site: str) -> Mention | None:
    question_id = _int(item.get("question_id"))
    created = _int(item.get("creation_date"))
    if question_id is None or created is None:
        return None
    is_answer = item.get("item_type") == "answer"
    answer_id = _int(item.get("answer_id"))
    if is_answer and answer_id is None:
        return None
    domain = site_domain(site)
    post_id = answer_id if is_answer else question_id
    url = f"https://{domain}/a/{answer_id}" if is_answer else f"https://{domain}/q/{question_id}"
    owner = item.get("owner") if isinstance(item.get("owner"), dict) else {}
    name = (
        unescape(owner.get("display_name")) if isinstance(owner.get("display_name"), str) else None
    )
    # Search excerpts may wrap matches in the title in <span class="highlight"> too.
    title = html_to_text(item.get("title")) if isinstance(item.get("title"), str) else None
    body = item.get("body") if isinstance(item.get("body"), str) else item.get("excerpt")
    text = html_to_text(body if isinstance(body, str) else None)
    score = _int(item.get("score"))
    return Mention(
        source="stackexchange",
        # Question and answer ids share one id space per site, but not across sites.
        native_id=f"{site}:{post_id}",
        text=text,
        created_at=from_epoch(created),
        url=url,
        # No handles on Stack Exchange: the display name is the only name shown.
        author=name or None,
        author_name=name or None,
        title=title or None,
        reach=score,  # reach: the post's score (up minus down votes; may be negative)
        reply_url=url,
        extra={
            "site": site,
            "item_type": "answer" if is_answer else "question",
            "question_id": question_id,
            "answer_id": answer_id,
            "user_id": _int(owner.get("user_id")),
            "tags": [t for t in item.get("tags") or [] if isinstance(t, str)],
            "is_answered": item.get("is_answered"),
        },
        # An answer carries its question's title: context, not something the answerer wrote.
        searchable="\n".join(x for x in (title, text) if x) if not is_answer else text,
    )


def _question_post(item: dict[str, Any], site: str, question_id: int) -> ThreadPost:
    title = html_to_text(item.get("title")) if isinstance(item.get("title"), str) else ""
    body = html_to_text(item.get("body")) if isinstance(item.get("body"), str) else ""
    owner = item.get("owner") if isinstance(item.get("owner"), dict) else {}
    name = owner.get("display_name")
    created = _int(item.get("creation_date"))
    return ThreadPost(
        "parent",
        "\n".join(x for x in (title, body) if x),
        (unescape(name) or None) if isinstance(name, str) else None,
        f"https://{site_domain(site)}/q/{question_id}",
        iso(from_epoch(created)) if created is not None else None,
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


def reason(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return error_detail(response)
    return _error_text(data) if isinstance(data, dict) else error_detail(response)


def _error_text(data: dict[str, Any]) -> str:
    """`throttle_violation (502): too many requests from this IP, …` in one line."""
    name, number, message = data.get("error_name"), data.get("error_id"), data.get("error_message")
    head = f"{name} ({number})" if name else f"error {number}"
    return " ".join(f"{head}: {message}".split())[:300] if message else head


def _quota_note(data: dict[str, Any]) -> str | None:
    left = _int(data.get("quota_remaining"))
    # Only worth a line when it is running out (the keyless daily quota is 300).
    return f"{left} API requests left today" if left is not None and left < 50 else None


def _backoff_key(method: str) -> str:
    return f"not_before:{method}"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


SOURCE = StackExchange
