"""GitHub issues and pull requests through the search API (a token is optional)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from mentionwatch.http import RateLimited, SourceError, error_detail, redact_url, reset_delay
from mentionwatch.models import Job, Mention, Option, Page, iso, parse_iso
from mentionwatch.query import Query, parse
from mentionwatch.sources.base import Posted, Source
from mentionwatch.text import unescape

if TYPE_CHECKING:
    import httpx

API_VERSION = "2022-11-28"  # pinned: GitHub changes response shapes between versions
PER_PAGE = 100
MAX_PAGES = 10  # a search never returns more than 1000 results
# The search index lags behind creation, and several items can share one second: each poll
# looks back this far before the newest item seen and dedupes.
OVERLAP = timedelta(minutes=5)
# GitHub allows at most 5 AND/OR/NOT operators per query: 6 alternatives joined by OR.
MAX_ALTERNATIVES = 6
KINDS = ("issue", "pr")
COMMENT_LIMIT = 65536  # characters in an issue comment body
SECONDARY_LIMIT_WAIT = 60.0  # GitHub: without retry-after, wait at least a minute
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)  # issue templates leave these in bodies


class GitHub(Source):
    name = "github"
    default_base_url = "https://api.github.com"
    options: ClassVar[dict[str, Option]] = {
        "token": Option(str, secret=True, help="optional: raises search to 30/min; replies"),
    }
    reply_limit = COMMENT_LIMIT
    can_reply = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._login: str | None = None  # the token's user, read once for find_reply

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        if self.settings.get("token"):
            headers["Authorization"] = f"Bearer {self.settings.get('token')}"
        return headers

    async def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        assert job.term is not None
        since = _since(cursor) or self.first_since()
        newest = since
        after = iso(since - OVERLAP)
        for text in search_texts(parse(job.term.query)):
            for kind in KINDS:
                query = f"{text} in:title,body is:{kind} created:>{after}"
                async for items, note in self._pages(query):
                    mentions = [m for m in map(to_mention, items) if m is not None]
                    newest = max([newest, *(m.created_at for m in mentions)])
                    yield Page(mentions, note=note)
        yield Page([], cursor=iso(newest))

    async def _pages(self, query: str) -> AsyncIterator[tuple[list[dict[str, Any]], str | None]]:
        for page in range(1, MAX_PAGES + 1):
            params = {
                "q": query,
                "sort": "created",
                "order": "desc",
                "per_page": PER_PAGE,
                "page": page,
                "advanced_search": "true",
            }
            data = self._json(await self._get(f"{self.base_url}/search/issues", params))
            if not isinstance(data, dict) or not isinstance(data.get("items"), list):
                raise SourceError(f"{self.name}: unexpected response shape (no 'items' list)")
            items = [i for i in data["items"] if isinstance(i, dict)]
            # Results are cut off when the search times out: say so rather than look complete.
            note = "GitHub returned incomplete results" if data.get("incomplete_results") else None
            yield items, note
            total = data.get("total_count")
            if len(items) < PER_PAGE or (isinstance(total, int) and page * PER_PAGE >= total):
                return

    async def _get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """GET with the API headers. http.py waits out the primary limit (403/429 with
        remaining 0); GitHub's secondary limit (403 with retry-after, or only a message) is
        waited out here, so a busy minute slows a poll down instead of failing it."""
        import asyncio  # lazily: config loading imports every source

        attempt = 0
        while True:
            response = await self.http.request("GET", url, params=params, headers=self.headers())
            if not _secondary_limit(response) or attempt >= self.poll_settings.retries:
                return response
            wait = reset_delay(response.headers)
            wait = SECONDARY_LIMIT_WAIT if wait is None else wait
            if wait > self.poll_settings.max_wait:
                raise RateLimited(
                    f"{self.name}: secondary rate limit; GitHub asks to wait {round(wait)}s, "
                    "try again then"
                )
            await asyncio.sleep(wait)
            attempt += 1

    def _json(self, response: httpx.Response) -> Any:
        # The endpoint without its query: the search string would drown the reason.
        where = redact_url(str(response.request.url.copy_with(query=None)))
        if response.status_code >= 400:
            raise SourceError(
                f"{self.name}: HTTP {response.status_code} from {where}: {reason(response)}"
            )
        return self.http.json(response, where)

    async def check(self) -> str:
        if not self.settings.get("token"):
            data = self._json(await self._get(f"{self.base_url}/rate_limit"))
            left = _dig(data, "resources", "search", "remaining")
            return f"anonymous (no token): search works, {left} searches left this minute"
        return f"authenticated as {await self._user()}"

    async def _user(self) -> str:
        if self._login is None:
            login = _dig(self._json(await self._get(f"{self.base_url}/user")), "login")
            if not isinstance(login, str):
                raise SourceError(f"{self.name}: GET /user returned no login")
            self._login = login
        return self._login

    def reply_problem(self, mention: Mention) -> str | None:
        if not self.settings.get("token"):
            return (
                f"{self.name}: replying needs a token: set sources.{self.name}.token "
                "(with write access to issues, or pull requests)"
            )
        if _thread(mention) is None:
            return f"{self.name}: this mention has no repository and issue number to reply to"
        return None

    async def post_reply(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        # GitHub has no idempotency key: find_reply() is how a retry avoids a double post.
        response = await self.http.request(
            "POST",
            self._comments_url(mention),
            json={"body": text},
            headers=self.headers(),
            retry=False,
        )
        if response.status_code != 201:
            raise SourceError(
                f"{self.name}: reply to {_label(mention)} rejected (HTTP "
                f"{response.status_code}): {reason(response)}"
            )
        return _posted(self.http.json(response))

    async def find_reply(self, mention: Mention, text: str) -> Posted | None:
        if self.reply_problem(mention):
            return None
        login, wanted = await self._user(), _normal(text)
        for page in range(1, MAX_PAGES + 1):
            params = {"per_page": PER_PAGE, "page": page}
            comments = self._json(await self._get(self._comments_url(mention), params))
            if not isinstance(comments, list):
                raise SourceError(f"{self.name}: unexpected comment list for {_label(mention)}")
            for comment in comments:
                if (
                    isinstance(comment, dict)
                    and _dig(comment, "user", "login") == login
                    and _normal(comment.get("body")) == wanted
                ):
                    return _posted(comment)
            if len(comments) < PER_PAGE:
                return None
        return None

    def _comments_url(self, mention: Mention) -> str:
        owner, repo, number = _thread(mention) or ("", "", 0)
        return f"{self.base_url}/repos/{owner}/{repo}/issues/{number}/comments"


def search_texts(query: Query) -> list[str]:
    """The term as GitHub search text, split so no query exceeds the operator limit.

    Exclusions are left to the local matcher: GitHub's `-` negates qualifiers, not phrases,
    and each NOT would use up the small operator budget.
    """
    alts = query.alternatives
    chunks = [alts[i : i + MAX_ALTERNATIVES] for i in range(0, len(alts), MAX_ALTERNATIVES)]
    return [Query(chunk).boolean() for chunk in chunks]


def to_mention(item: dict[str, Any]) -> Mention | None:
    url = item.get("html_url")
    number = item.get("number")
    if not isinstance(url, str) or not isinstance(number, int) or isinstance(number, bool):
        return None
    try:
        created = parse_iso(item["created_at"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    where = _owner_repo(item.get("repository_url"), url)
    if where is None:
        return None
    login = _dig(item, "user", "login")
    title = unescape(item.get("title") if isinstance(item.get("title"), str) else None) or None
    body = item.get("body") if isinstance(item.get("body"), str) else ""
    # Markdown may spell characters as HTML entities (&mdash;); they render as the character.
    text = unescape(_HTML_COMMENT.sub("", body)) or ""
    return Mention(
        source="github",
        native_id=url,
        text=text,
        created_at=created,
        url=url,
        author=login if isinstance(login, str) else None,
        title=title,
        # reach: comments plus reactions (reactions may be missing from search items).
        reach=_count(item.get("comments")) + _count(_dig(item, "reactions", "total_count")),
        reply_url=url,
        extra={
            "owner": where[0],
            "repo": where[1],
            "number": number,
            "id": item.get("id"),
            "kind": "pr" if item.get("pull_request") else "issue",
            "state": item.get("state"),
            "locked": item.get("locked"),
        },
        # Not the URL: a repository named after the product is not someone mentioning it.
        searchable="\n".join(x for x in (title, text) if x),
    )


def reason(response: httpx.Response) -> str:
    """GitHub's message plus the first validation error, in one line."""
    try:
        data = response.json()
    except ValueError:
        return error_detail(response)
    first = _dig(data, "errors", 0)
    detail = (_dig(first, "message") or _dig(first, "code")) if isinstance(first, dict) else first
    parts = [p for p in (_dig(data, "message"), detail) if isinstance(p, str) and p]
    text = ": ".join(parts) or json.dumps(data)
    return " ".join(text.split())[:300]


def _secondary_limit(response: httpx.Response) -> bool:
    if response.status_code not in (403, 429):
        return False
    if response.headers.get("retry-after"):
        return True
    return "secondary rate limit" in response.text[:2000].lower()


def _since(cursor: str | None) -> datetime | None:
    if not cursor:
        return None
    try:
        return parse_iso(cursor)
    except ValueError:
        return None


def _owner_repo(repository_url: Any, html_url: str) -> tuple[str, str] | None:
    """Owner and repo from `.../repos/{owner}/{repo}` (GitHub Enterprise has a longer prefix),
    else from the web URL `https://github.com/{owner}/{repo}/issues/{number}`."""
    if isinstance(repository_url, str):
        path = urlsplit(repository_url).path
        found = re.search(r"/repos/([^/]+)/([^/]+)/?$", path)
        if found:
            return found.group(1), found.group(2)
    found = re.match(r"/([^/]+)/([^/]+)/(?:issues|pull)/\d+", urlsplit(html_url).path)
    return (found.group(1), found.group(2)) if found else None


def _thread(mention: Mention) -> tuple[str, str, int] | None:
    owner, repo, number = (mention.extra.get(k) for k in ("owner", "repo", "number"))
    if isinstance(owner, str) and isinstance(repo, str) and isinstance(number, int):
        return owner, repo, number
    return None


def _label(mention: Mention) -> str:
    owner, repo, number = _thread(mention) or ("?", "?", "?")
    return f"{owner}/{repo}#{number}"


def _posted(comment: Any) -> Posted:
    comment_id = _dig(comment, "id")
    if comment_id is None:
        raise SourceError("github: the comment was posted but the response has no id")
    url = _dig(comment, "html_url")
    return Posted(str(comment_id), url if isinstance(url, str) else None)


def _normal(text: Any) -> str:
    return text.replace("\r\n", "\n").strip() if isinstance(text, str) else ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _dig(data: Any, *keys: str | int) -> Any:
    for key in keys:
        if isinstance(key, int) and isinstance(data, list) and len(data) > key:
            data = data[key]
        elif isinstance(key, str) and isinstance(data, dict):
            data = data.get(key)
        else:
            return None
    return data


SOURCE = GitHub
