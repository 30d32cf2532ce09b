"""Mastodon: hashtag timelines (public) on one or more instances, plus full-text status search
on the home instance when a token is set.

Config (`[sources.mastodon]`):
  base_url   the home instance, e.g. https://mastodon.social: the token belongs to it, replies
             are posted there, and its hashtag timelines are polled.
  token      a user access token of the home instance (scopes `read:search read:statuses
             write:statuses`). Optional: without it only hashtag timelines are polled and
             replies are impossible.
  instances  extra instance URLs (e.g. ["https://fosstodon.org"]) whose public hashtag
             timelines are polled too, since an instance only sees posts federated to it.
             These are read without the token (tokens are per instance).

Each term becomes hashtags (`Query.hashtags()`); every (hashtag, instance) pair is a streaming
job with its own `min_id` cursor, and the local matcher decides which terms a post mentions.
With a token each term is also searched (`/api/v2/search`, statuses), which finds posts without
the hashtag on servers that have full-text search.

`reply --private` posts a "private mention": a status with visibility `direct`, seen only by
the accounts it mentions (Mastodon has no separate chat), in reply to the mention.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from mentionwatch.http import SourceError, error_detail
from mentionwatch.models import Job, Mention, Option, Page, Term, ThreadPost, iso
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
    describe,
    dig,
    fit,
    page_of,
    parse_time,
    string,
)
from mentionwatch.text import html_to_text, unescape

if TYPE_CHECKING:
    import httpx

PAGE_SIZE = 40  # the API's maximum for timelines and search
MAX_PAGES = 5  # per job and poll; a longer backlog waits as a gap for the next poll
# Federation delivers posts from other servers late (retries can take many minutes), and a
# remote post's id is made from its own creation time: each poll reads this far back.
OVERLAP_SECONDS = 900
# `q` has no documented limit; longer ones are split like on the platforms that have one.
MAX_QUERY = 512
DEFAULT_MAX_CHARACTERS = 500
URL_LENGTH = 23  # Mastodon counts every link as 23 characters, whatever its length
_URL = re.compile(r"https?://\S+")
# A remote mention counts as its username only: "@ann@example.social" costs 4 characters.
_REMOTE_MENTION = re.compile(r"(?<!\w)(@\w+)@[\w.-]+\w")
_ANY_MENTION = re.compile(r"(?<![\w/])@\w+(@[\w.-]+\w)?")


class Mastodon(Source):
    name = "mastodon"
    default_base_url = "https://mastodon.social"
    options: ClassVar[dict[str, Option]] = {
        "token": Option(str, secret=True, help="user access token of the home instance"),
        "instances": Option(list, default=[], help="extra instance URLs for hashtag timelines"),
    }
    reply_limit = DEFAULT_MAX_CHARACTERS
    message_limit = DEFAULT_MAX_CHARACTERS
    can_reply = True
    can_message = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base_url = self.base_url.rstrip("/")
        self.home = instance_key(self.base_url)
        urls = [self.base_url, *(self.settings.get("instances") or [])]
        self.instances = {instance_key(u): u.rstrip("/") for u in urls}
        # An instance may allow longer posts; check() and reply() remember what it said.
        cached = self.state.get("max_characters")
        if cached and cached.isdigit():
            self.reply_limit = self.message_limit = int(cached)

    @property
    def token(self) -> str | None:
        return self.settings.get("token") or None

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    # Polling

    def jobs(self, terms: Sequence[Term]) -> list[Job]:
        mine = [t for t in terms if t.applies_to(self.name)]
        tags = dict.fromkeys(tag for t in mine for tag in parse(t.query).hashtags())
        jobs = [Job(self.name, f"tag:{tag}@{key}") for key in self.instances for tag in tags]
        if self.token:
            jobs += [Job(self.name, t.name, t) for t in mine]
        return jobs

    overlap = OVERLAP_SECONDS
    max_pages = MAX_PAGES

    def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        if job.term is not None:
            queries = fit(parse(job.term.query), MAX_QUERY, _rendered, source=self.name,
                          term=job.term.name, together=False)  # fmt: skip
            # Search results are ranked by the server: walked until a page holds nothing new.
            searches = [Search(q, partial(self._search, q), newest_first=False) for q in queries]
        else:
            tag, _, key = job.scope.removeprefix("tag:").partition("@")
            # An instance removed from the config since the job was made: nothing to read.
            searches = [Search("timeline", partial(self._timeline, tag, key))]
            if key not in self.instances:
                searches = []
        return self.walk(searches, cursor)

    def legacy_mark(self, cursor: str) -> float | None:
        """A cursor of an earlier release was a status id: Mastodon's ids carry their time in
        milliseconds above 16 bits."""
        if not cursor.isdigit():
            return None
        stamp = (int(cursor) >> 16) / 1000
        return stamp if 1.4e9 < stamp < 4e9 else None

    async def _timeline(
        self, tag: str, key: str, lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        """A hashtag timeline newest first, paged back with max_id."""
        url = f"{self.instances[key]}/api/v1/timelines/tag/{quote(tag)}"
        # Tokens belong to the home instance: never send one to another server.
        headers = self._auth() if key == self.home else {}
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if upper is not None and upper.id:
            params["max_id"] = upper.id
        page = 1
        while True:
            response = await self.http.request("GET", url, params=params, headers=headers)
            if response.status_code == 404:  # a tag nobody used yet is "Record not found"
                return
            if response.status_code == 401 and not headers:
                raise SourceError(
                    f"{self.name}: {url} requires a login for hashtag timelines "
                    f"({error_detail(response)}); poll #{tag} on the home instance with a token"
                )
            statuses = self.http.json(response)
            batch = self._batch(statuses, key, page, f"the #{tag} timeline")
            # A page can be shorter than `limit` with more behind it (Mastodon leaves out
            # statuses it cannot load after paging, and other servers filter after paging):
            # the Link header says whether a next page follows, as Mastodon's API guidelines
            # advise relying on.
            batch.more = batch.more or (bool(statuses) and _has_next(response))
            yield batch
            if not batch.more or batch.oldest is None or not batch.oldest.id:
                return
            params["max_id"] = batch.oldest.id
            page += 1

    async def _search(
        self, query: str, lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        params: dict[str, Any] = {"q": query, "type": "statuses", "limit": PAGE_SIZE}
        if upper is not None and upper.id:
            params["max_id"] = upper.id
        url = f"{self.base_url}/api/v2/search"
        for page in range(1, MAX_PAGES + 1):
            if page > 1:
                params["offset"] = (page - 1) * PAGE_SIZE
            data = page_of(await self.http.get_json(url, params=params, headers=self._auth()),
                           "the search answer")  # fmt: skip
            batch = self._batch(data.array("statuses"), self.home, page, "the search answer")
            yield batch
            if not batch.more:
                return

    def _batch(self, statuses: Any, key: str, page: int, what: str) -> Batch:
        if not isinstance(statuses, list):
            raise Malformed(f"{what} is {describe(statuses)} where a list of statuses belongs")
        instance = self.instances[key]
        mentions, problems = convert(
            statuses, lambda s: to_mention(s, key, instance, self.base_url), page
        )
        oldest = anchor(statuses, lambda s: s.get("created_at"), lambda s: s.get("id"))
        return Batch(mentions, oldest, len(statuses) >= PAGE_SIZE, problems)

    # Thread

    async def thread(self, mention: Mention) -> list[ThreadPost]:
        """The status this one replies to (the last of its ancestors) and the thread's first
        (the first ancestor), from the instance the status was read on: its id is only valid
        there. The token goes to the home instance only."""
        extra = mention.extra or {}
        if not extra.get("in_reply_to_id"):
            return []
        key, local_id = extra.get("instance"), extra.get("id")
        base = self.instances.get(key) if isinstance(key, str) else None
        if base is None or not local_id:
            raise SourceError(
                f"{self.name}: the instance this post was read on ({key}) is no longer "
                "configured, so its thread cannot be read"
            )
        headers = self._auth() if key == self.home else {}
        url = f"{base}/api/v1/statuses/{quote(str(local_id), safe='')}/context"
        data = await self.http.get_json(url, headers=headers)
        ancestors = data.get("ancestors") if isinstance(data, dict) else None
        if not isinstance(ancestors, list):
            raise SourceError(f"{self.name}: unexpected context response (no 'ancestors' list)")
        # Deleted or hidden ancestors are left out by the instance.
        found = [p for p in (_thread_post(s, base) for s in ancestors) if p is not None]
        if not found:
            return []
        posts = [ThreadPost("parent", *found[-1])]
        if len(found) > 1:
            posts.append(ThreadPost("root", *found[0]))
        return posts

    # Checking and replying

    async def check(self) -> str:
        limit = await self._max_characters()
        if not self.token:
            return (
                f"{self.home} reachable (posts up to {limit} characters); no token: hashtag "
                f"timelines only, set sources.{self.name}.token to search and reply"
            )
        me = await self.http.get_json(
            f"{self.base_url}/api/v1/accounts/verify_credentials", headers=self._auth()
        )
        if not isinstance(me, dict) or not isinstance(me.get("acct"), str):
            raise SourceError(f"{self.name}: unexpected verify_credentials response")
        return f"authenticated as @{me['acct']}@{self.home}; replies up to {limit} characters"

    def reply_length(self, text: str) -> int:
        """As Mastodon counts: links are 23 characters, remote mentions only their username.

        reply() adds "@author " in front of the text when it is missing: that counts too.
        """
        return len(_REMOTE_MENTION.sub(r"\1", _URL.sub("x" * URL_LENGTH, text)))

    def reply_problem(self, mention: Mention) -> str | None:
        if not self.token:
            return f"{self.name}: replying needs a token: set sources.{self.name}.token"
        return None

    async def post_reply(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        return await self._post_status(mention, text, idempotency_key, "public")

    async def find_reply(self, mention: Mention, text: str) -> Posted | None:
        return await self._find_status(mention, text, "public")

    # Private mentions (visibility: direct)

    message_length = reply_length

    def message_where(self, mention: Mention) -> str:
        return f"a private mention (visibility: direct) to @{mention.author} from {self.home}"

    def message_problem(self, mention: Mention) -> str | None:
        if not self.token:
            return (
                f"{self.name}: private mentions need a token with write:statuses: set "
                f"sources.{self.name}.token"
            )
        if not mention.author:
            return f"{self.name}: this mention has no author to mention privately"
        return None

    async def post_message(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        return await self._post_status(mention, text, idempotency_key, "direct")

    async def find_message(self, mention: Mention, text: str) -> Posted | None:
        return await self._find_status(mention, text, "direct")

    async def _post_status(
        self, mention: Mention, text: str, idempotency_key: str, visibility: str
    ) -> Posted:
        """A status in reply to the mention, addressed to its author: public, or direct (seen
        only by the accounts it mentions)."""
        status = with_mention(mention.author, text)
        limit = await self._max_characters()
        if self.reply_length(status) > limit:
            raise SourceError(
                f"{self.name}: the reply is {self.reply_length(status)} characters with the "
                f"mention; {self.home} allows {limit}"
            )
        local_id = await self._local_id(mention)
        # Mastodon keeps Idempotency-Key for an hour, so the next `reply` after a timeout is
        # safe. No retries here: a timeout must raise Uncertain, so the attempt stays recorded
        # with its key (retries used up would fail it, and the next run would post again).
        headers = {**self._auth(), "Idempotency-Key": idempotency_key}
        url = f"{self.base_url}/api/v1/statuses"
        form = {"status": status, "in_reply_to_id": local_id, "visibility": visibility}
        # The Idempotency-Key makes retries safe: Mastodon answers a repeat with the first post.
        response = await self.http.request("POST", url, data=form, headers=headers)
        if response.status_code >= 400:
            raise self.http.refused(response, "reply refused" if visibility == "public" else
                                    "private mention refused")  # fmt: skip
        return _posted(self.http.json(response, url), self.name)

    async def _find_status(self, mention: Mention, text: str, visibility: str) -> Posted | None:
        if self.reply_problem(mention):
            return None
        me = await self.http.get_json(
            f"{self.base_url}/api/v1/accounts/verify_credentials", headers=self._auth()
        )
        local_id = await self._local_id(mention)
        url = f"{self.base_url}/api/v1/statuses/{quote(local_id)}/context"
        context = await self.http.get_json(url, headers=self._auth())
        if not isinstance(me, dict) or not isinstance(context, dict):
            return None
        wanted = _comparable(text)
        for status in context.get("descendants") or []:
            if (
                isinstance(status, dict)
                and isinstance(status.get("account"), dict)
                and status["account"].get("id") == me.get("id")
                and status.get("in_reply_to_id") == local_id
                and status.get("visibility", "public") == visibility
                and _comparable(html_to_text(status.get("content"))) == wanted
            ):
                return _posted(status, self.name)
        return None

    async def _local_id(self, mention: Mention) -> str:
        """The status id on the home instance: ids are per instance, so a post found on
        another instance is looked up (resolve=true fetches it over federation if needed)."""
        extra = mention.extra or {}
        if extra.get("instance") == self.home and extra.get("id"):
            return str(extra["id"])
        uri = extra.get("uri") or mention.url or mention.native_id
        data = await self.http.get_json(
            f"{self.base_url}/api/v2/search",
            params={"q": uri, "resolve": "true", "type": "statuses", "limit": 1},
            headers=self._auth(),
        )
        statuses = data.get("statuses") if isinstance(data, dict) else None
        if statuses and isinstance(statuses[0], dict) and statuses[0].get("id"):
            return str(statuses[0]["id"])
        raise SourceError(f"{self.name}: {self.home} cannot find the post {uri} to reply to")

    async def _max_characters(self) -> int:
        data = await self.http.get_json(f"{self.base_url}/api/v2/instance")
        limit = dig(data, "configuration", "statuses", "max_characters")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            limit = DEFAULT_MAX_CHARACTERS
        self.state.set("max_characters", str(limit))
        self.reply_limit = self.message_limit = limit
        return limit


def _rendered(query: Query) -> str:
    return query.quoted_alternatives()[0]


def _has_next(response: httpx.Response) -> bool:
    """Whether the Link header (RFC 8288: `<url>; rel="next", <url>; rel="prev"`) names a
    next page."""
    link = response.headers.get("link", "").replace(" ", "").lower()
    return 'rel="next"' in link or "rel=next" in link


def to_mention(status: Obj, key: str, instance: str, home: str) -> Mention | None:
    """A Mention from a Status (the boosted one, for a boost).

    `key` and `instance` name the instance the status came from (its `id` is only valid
    there); `home` is where a person replies by hand.
    """
    # A boost is a status of its own too, with its own id, uri and booster.
    status.need("id"), status.need("uri"), status.obj("account")
    post = status.obj("reblog", required=False) or status
    account = post.obj("account")
    assert account is not None
    uri, local_id = post.need("uri"), post.need("id")
    created = post.time("created_at")
    assert created is not None
    author = full_acct(account.need("acct"), account.string("url", required=False), instance)
    url = post.string("url", required=False) or uri
    return Mention(
        source="mastodon",
        native_id=uri,  # ids are per instance; the federation URI is the same everywhere
        text=html_to_text(post.string("content")),
        created_at=created,
        url=url,
        author=author,
        author_name=unescape(account.string("display_name", required=False)) or None,
        # The content warning, if any.
        title=unescape(post.string("spoiler_text", required=False)) or None,
        # Reach: favourites plus boosts, the two ways people spread a post.
        reach=post.count("favourites_count") + post.count("reblogs_count"),
        reply_url=f"{home}/authorize_interaction?uri={quote(uri, safe='')}",
        extra={
            "id": local_id,
            "instance": key,
            "uri": uri,
            "in_reply_to_id": post.string("in_reply_to_id", required=False),
            "followers": account.count("followers_count"),
            "boosted_by": _boosted_by(status, post, instance),
        },
    )


def _thread_post(
    status: Any, instance: str
) -> tuple[str, str | None, str | None, str | None] | None:
    """(text, author, url, created_at) of an ancestor Status; None when it is malformed."""
    if not isinstance(status, dict):
        return None
    acct = string(dig(status, "account", "acct"))
    author = full_acct(acct, dig(status, "account", "url"), instance) if acct else None
    url = string(status.get("url")) or string(status.get("uri"))
    created = parse_time(status.get("created_at"))
    text = html_to_text(string(status.get("content")))
    warning = unescape(string(status.get("spoiler_text")))
    if warning:
        text = f"[{warning}] {text}" if text else f"[{warning}]"
    if not text and author is None:
        return None
    return text, author, url, iso(created) if created else None


def full_acct(acct: str, account_url: object, instance: str) -> str:
    """`user@host`: a local account's acct has no host, so add the instance's.

    The account's own page names its public host (base_url may be a proxy or test address).
    """
    if "@" in acct:
        return acct
    host = urlsplit(account_url).hostname if isinstance(account_url, str) else None
    return f"{acct}@{host or urlsplit(instance).netloc}"


def with_mention(author: str | None, text: str) -> str:
    """Put "@author " in front so the author is notified (Mastodon does not add it)."""
    if not author:
        return text
    handle = f"@{author}"
    if text.lower().startswith(handle.lower()):
        return text
    return f"{handle} {text}"


def instance_key(url: str) -> str:
    """A short stable name for an instance in cursor scopes: host and path, no scheme."""
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}".rstrip("/")


def _boosted_by(status: Obj, post: Obj, instance: str) -> str | None:
    acct = string(dig(status.data, "account", "acct"))
    if post is status or not acct:
        return None
    return full_acct(acct, dig(status.data, "account", "url"), instance)


def _comparable(text: str) -> str:
    """Text as posted, minus @mentions (Mastodon renders "@ann@host" as "@ann") and spacing."""
    return " ".join(_ANY_MENTION.sub(" ", text).split())


def _posted(data: Any, source: str) -> Posted:
    if not isinstance(data, dict) or not data.get("id"):
        raise SourceError(f"{source}: the reply was sent but the answer has no status id")
    url = data.get("url") or data.get("uri")
    return Posted(str(data["id"]), url if isinstance(url, str) else None)


SOURCE = Mastodon
