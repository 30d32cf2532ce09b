"""GitHub issues and pull requests through the search API (a token is optional)."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from mentionwatch.http import SourceError
from mentionwatch.models import Job, Mention, Option, Page, iso
from mentionwatch.query import Query, parse
from mentionwatch.sources.base import Posted, Source
from mentionwatch.sources.common import (
    Anchor,
    Batch,
    Malformed,
    Obj,
    Search,
    anchor,
    convert,
    dig,
    fit,
    page_of,
)
from mentionwatch.text import unescape

if TYPE_CHECKING:
    import httpx

API_VERSION = "2022-11-28"  # pinned: GitHub changes response shapes between versions
PER_PAGE = 100
SEARCH_PAGES = 10  # one search never returns more than 1000 results
MAX_PAGES = 10  # per search and poll (30 searches a minute); a longer backlog waits as a gap
# The search index lags behind creation, and several items can share one second: each poll
# reads this far back past the newest item seen.
OVERLAP_SECONDS = 600
# GitHub: at most 256 characters of search text (qualifiers not counted) and 5 AND/OR/NOT.
MAX_QUERY = 256
MAX_OPERATORS = 5
KINDS = ("issue", "pr")
COMMENT_LIMIT = 65536  # characters in an issue comment body
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)  # issue templates leave these in bodies


class GitHub(Source):
    name = "github"
    no_messages = (
        "has no private messages (GitHub has no direct messaging at all): reply in public on "
        "the issue, or write to an email address the author published"
    )
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

    overlap = OVERLAP_SECONDS
    max_pages = MAX_PAGES

    def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        assert job.term is not None
        texts = search_texts(parse(job.term.query), job.term.name)
        searches = [
            Search(f"{text} is:{kind}", partial(self._listing, text, kind))
            for text in texts
            for kind in KINDS
        ]
        return self.walk(searches, cursor)

    async def _listing(
        self, text: str, kind: str, lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        """Items newest first from `upper` back to `lower`; past the 1000 results one search
        returns, a new search continues from the oldest item read."""
        top = upper.at if upper else None
        while True:
            since = iso(from_stamp(lower))
            until = f"..{iso(from_stamp(top))}" if top is not None else ""
            created = f"{since}{until}" if until else f">={since}"
            query = f"{text} in:title,body is:{kind} created:{created}"
            oldest, cut = None, False
            for page in range(1, SEARCH_PAGES + 1):
                params = {
                    "q": query,
                    "sort": "created",
                    "order": "desc",
                    "per_page": PER_PAGE,
                    "page": page,
                    "advanced_search": "true",
                }
                response = await self._get(f"{self.base_url}/search/issues", params)
                data = page_of(self.http.json(response), "the search answer")
                items = data.array("items")
                mentions, problems = convert(items, to_mention, page)
                oldest = anchor(items, lambda i: i.get("created_at"))
                total = data.integer("total_count") or 0
                more = len(items) >= PER_PAGE and page * PER_PAGE < total
                cut = more and page == SEARCH_PAGES
                # A search that timed out answers what it found in time: common.capture keeps
                # the range to ask again.
                incomplete = data.get("incomplete_results") is True
                yield Batch(mentions, oldest, more, problems, incomplete=incomplete)
                if not more or cut:
                    break
            if not cut or oldest is None or oldest.at == top:
                return
            top = oldest.at

    async def _get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """GET with the API headers (http.py waits out the primary and secondary limits)."""
        return await self.http.request("GET", url, params=params, headers=self.headers())

    async def check(self) -> str:
        if not self.settings.get("token"):
            data = self.http.json(await self._get(f"{self.base_url}/rate_limit"))
            left = dig(data, "resources", "search", "remaining")
            return f"anonymous (no token): search works, {left} searches left this minute"
        return f"authenticated as {await self._user()}"

    async def _user(self) -> str:
        if self._login is None:
            login = dig(self.http.json(await self._get(f"{self.base_url}/user")), "login")
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
            raise self.http.refused(response, f"reply to {_label(mention)} rejected")
        return _posted(self.http.json(response))

    async def find_reply(self, mention: Mention, text: str) -> Posted | None:
        if self.reply_problem(mention):
            return None
        login, wanted = await self._user(), _normal(text)
        for page in range(1, MAX_PAGES + 1):
            params = {"per_page": PER_PAGE, "page": page}
            comments = self.http.json(await self._get(self._comments_url(mention), params))
            if not isinstance(comments, list):
                raise SourceError(f"{self.name}: unexpected comment list for {_label(mention)}")
            for comment in comments:
                if (
                    isinstance(comment, dict)
                    and dig(comment, "user", "login") == login
                    and _normal(comment.get("body")) == wanted
                ):
                    return _posted(comment)
            if len(comments) < PER_PAGE:
                return None
        return None

    def _comments_url(self, mention: Mention) -> str:
        owner, repo, number = _thread(mention) or ("", "", 0)
        return f"{self.base_url}/repos/{owner}/{repo}/issues/{number}/comments"


def search_texts(query: Query, term: str) -> list[str]:
    """The term as GitHub search text, split so no search exceeds the length or operator
    limit.

    Exclusions are left to the local matcher: GitHub's `-` negates qualifiers, not phrases,
    and each NOT would use up the small operator budget.
    """
    return fit(query, MAX_QUERY, _without_exclusions, source="github", term=term, fits=_fits)


def _without_exclusions(query: Query) -> str:
    return Query(query.alternatives).boolean()


def _fits(text: str) -> bool:
    return len(text) <= MAX_QUERY and text.count(" OR ") <= MAX_OPERATORS


def from_stamp(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


def to_mention(item: Obj) -> Mention | None:
    url = item.need("html_url")
    number = item.integer("number", required=True)
    created = item.time("created_at")
    assert created is not None and number is not None
    where = _owner_repo(item.string("repository_url"), url)
    if where is None:
        raise Malformed(f'{item.where} has "repository_url" and "html_url" that name no repository')
    # A deleted account's items carry user null.
    user = item.obj("user", required=False)
    login = user.string("login") if user else None
    title = unescape(item.string("title")) or None
    body = item.string("body", required=False) or ""
    # Markdown may spell characters as HTML entities (&mdash;); they render as the character.
    text = unescape(_HTML_COMMENT.sub("", body)) or ""
    reactions = item.obj("reactions", required=False)
    return Mention(
        source="github",
        native_id=url,
        text=text,
        created_at=created,
        url=url,
        author=login,
        title=title,
        # reach: comments plus reactions (reactions may be missing from search items).
        reach=item.count("comments") + (reactions.count("total_count") if reactions else 0),
        reply_url=url,
        extra={
            "owner": where[0],
            "repo": where[1],
            "number": number,
            "id": item.integer("id"),
            "kind": "pr" if item.get("pull_request") else "issue",
            "state": item.string("state", required=False),
            "locked": item.get("locked") is True,
        },
        # Not the URL: a repository named after the product is not someone mentioning it.
        searchable="\n".join(x for x in (title, text) if x),
    )


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
    comment_id = dig(comment, "id")
    if comment_id is None:
        raise SourceError("github: the comment was posted but the response has no id")
    url = dig(comment, "html_url")
    return Posted(str(comment_id), url if isinstance(url, str) else None)


def _normal(text: Any) -> str:
    return text.replace("\r\n", "\n").strip() if isinstance(text, str) else ""


SOURCE = GitHub
