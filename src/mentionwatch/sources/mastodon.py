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
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from mentionwatch.http import SourceError, error_detail, redact_url
from mentionwatch.models import Job, Mention, Option, Page, Term, ThreadPost, iso, parse_iso
from mentionwatch.query import parse
from mentionwatch.sources.base import Posted, Source
from mentionwatch.text import html_to_text, unescape

PAGE_SIZE = 40  # the API's maximum for timelines and search
MAX_PAGES = 5  # per job and poll: 200 posts per hashtag is plenty for one poll
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
    can_reply = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base_url = self.base_url.rstrip("/")
        self.home = instance_key(self.base_url)
        urls = [self.base_url, *(self.settings.get("instances") or [])]
        self.instances = {instance_key(u): u.rstrip("/") for u in urls}
        # An instance may allow longer posts; check() and reply() remember what it said.
        cached = self.state.get("max_characters")
        if cached and cached.isdigit():
            self.reply_limit = int(cached)

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

    async def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        if job.term is not None:
            pages = self._search(job.term, cursor)
        else:
            tag, _, key = job.scope.removeprefix("tag:").partition("@")
            pages = self._timeline(tag, key, cursor)
        async for page in pages:
            yield page

    async def _timeline(self, tag: str, key: str, cursor: str | None) -> AsyncIterator[Page]:
        base = self.instances.get(key)
        if base is None:  # the instance was removed from the config since the job was made
            return
        url = f"{base}/api/v1/timelines/tag/{quote(tag)}"
        # Tokens belong to the home instance: never send one to another server.
        headers = self._auth() if key == self.home else {}
        if cursor:
            # min_id pages forward from the cursor, each page right after the previous one, so
            # every page can store its own newest id.
            for _ in range(MAX_PAGES):
                statuses = await self._statuses(url, {"min_id": cursor}, headers, tag)
                if not statuses:
                    return
                cursor = newest_id([s.get("id") for s in statuses], cursor)
                yield Page(self._mentions(statuses, key), cursor=cursor)
            return
        # First poll: newest page, then back in time (max_id) until the lookback is covered.
        # The cursor is the newest id, stored only once every page is saved.
        newest, params = None, {}
        since = self.first_since()
        for _ in range(MAX_PAGES):
            statuses = await self._statuses(url, params, headers, tag)
            mentions = self._mentions(statuses, key)
            ids = [s.get("id") for s in statuses]
            newest = newest_id(ids, newest)
            yield Page([m for m in mentions if m.created_at >= since])
            oldest = oldest_id(ids)
            if len(statuses) < PAGE_SIZE or oldest is None or _all_older(mentions, since):
                break
            params = {"max_id": oldest}
        if newest is not None:
            yield Page([], cursor=newest)

    async def _statuses(
        self, url: str, params: dict[str, str], headers: dict[str, str], tag: str
    ) -> list[dict[str, Any]]:
        response = await self.http.request(
            "GET", url, params={**params, "limit": PAGE_SIZE}, headers=headers
        )
        if response.status_code == 404:  # a tag nobody used yet is "Record not found"
            return []
        if response.status_code == 401 and not headers:
            raise SourceError(
                f"{self.name}: {redact_url(url)} requires a login for hashtag timelines "
                f"({error_detail(response)}); poll #{tag} on the home instance with a token"
            )
        data = self.http.json(response, url)
        if not isinstance(data, list):
            raise SourceError(f"{self.name}: unexpected response from {redact_url(url)} (no list)")
        return [s for s in data if isinstance(s, dict)]

    async def _search(self, term: Term, cursor: str | None) -> AsyncIterator[Page]:
        newest = cursor
        for query in parse(term.query).quoted_alternatives():
            for page in range(MAX_PAGES):
                statuses = await self._search_page(query, cursor, page * PAGE_SIZE)
                ids = [s.get("id") for s in statuses]
                newest = newest_id(ids, newest)
                # Servers without full-text search may ignore min_id: skip what is not newer.
                fresh = [s for s in statuses if cursor is None or _newer(s.get("id"), cursor)]
                mentions = self._mentions(fresh, self.home)
                since = self.first_since()
                yield Page([m for m in mentions if cursor or m.created_at >= since])
                if len(statuses) < PAGE_SIZE:
                    break
        if newest is not None:
            yield Page([], cursor=newest)

    async def _search_page(self, query: str, cursor: str | None, offset: int) -> list[Any]:
        params: dict[str, Any] = {"q": query, "type": "statuses", "limit": PAGE_SIZE}
        if cursor:
            params["min_id"] = cursor
        if offset:
            params["offset"] = offset
        url = f"{self.base_url}/api/v2/search"
        data = await self.http.get_json(url, params=params, headers=self._auth())
        statuses = data.get("statuses") if isinstance(data, dict) else None
        if not isinstance(statuses, list):
            raise SourceError(f"{self.name}: unexpected search response (no 'statuses' list)")
        return [s for s in statuses if isinstance(s, dict)]

    def _mentions(self, statuses: list[dict[str, Any]], key: str) -> list[Mention]:
        found = (to_mention(s, key, self.instances[key], self.base_url) for s in statuses)
        return [m for m in found if m is not None]

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
        form = {"status": status, "in_reply_to_id": local_id, "visibility": "public"}
        # The Idempotency-Key makes retries safe: Mastodon answers a repeat with the first post.
        response = await self.http.request("POST", url, data=form, headers=headers)
        if response.status_code >= 400:
            raise SourceError(
                f"{self.name}: reply refused (HTTP {response.status_code}): "
                f"{error_detail(response)}"
            )
        return _posted(self.http.json(response, url), self.name)

    async def find_reply(self, mention: Mention, text: str) -> Posted | None:
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
        limit = _dig(data, "configuration", "statuses", "max_characters")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            limit = DEFAULT_MAX_CHARACTERS
        self.state.set("max_characters", str(limit))
        self.reply_limit = limit
        return limit


def to_mention(status: dict[str, Any], key: str, instance: str, home: str) -> Mention | None:
    """A Mention from a Status, or None when a field it needs is missing or malformed.

    `key` and `instance` name the instance the status came from (its `id` is only valid
    there); `home` is where a person replies by hand.
    """
    post = status.get("reblog") if isinstance(status.get("reblog"), dict) else status
    account = post.get("account")
    uri, local_id = post.get("uri"), post.get("id")
    if not (isinstance(account, dict) and isinstance(uri, str) and uri and local_id):
        return None
    acct = account.get("acct")
    if not isinstance(acct, str) or not acct:
        return None
    try:
        created = parse_iso(post["created_at"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    author = full_acct(acct, account.get("url"), instance)
    url = post.get("url") if isinstance(post.get("url"), str) else uri
    return Mention(
        source="mastodon",
        native_id=uri,  # ids are per instance; the federation URI is the same everywhere
        text=html_to_text(post.get("content") if isinstance(post.get("content"), str) else ""),
        created_at=created,
        url=url,
        author=author,
        author_name=unescape(account.get("display_name")) or None,
        title=unescape(post.get("spoiler_text")) or None,  # the content warning, if any
        # Reach: favourites plus boosts, the two ways people spread a post.
        reach=_count(post, "favourites_count") + _count(post, "reblogs_count"),
        reply_url=f"{home}/authorize_interaction?uri={quote(uri, safe='')}",
        extra={
            "id": str(local_id),
            "instance": key,
            "uri": uri,
            "in_reply_to_id": post.get("in_reply_to_id"),
            "followers": _count(account, "followers_count"),
            "boosted_by": _boosted_by(status, post, instance),
        },
    )


def _thread_post(
    status: Any, instance: str
) -> tuple[str, str | None, str | None, str | None] | None:
    """(text, author, url, created_at) of an ancestor Status; None when it is malformed."""
    if not isinstance(status, dict):
        return None
    account = status.get("account") if isinstance(status.get("account"), dict) else {}
    acct = account.get("acct")
    author = (
        full_acct(acct, account.get("url"), instance) if isinstance(acct, str) and acct else None
    )
    url = status.get("url") or status.get("uri")
    try:
        created = iso(parse_iso(status["created_at"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        created = None
    content = status.get("content") if isinstance(status.get("content"), str) else ""
    text = html_to_text(content)
    spoiler = status.get("spoiler_text")
    warning = unescape(spoiler) if isinstance(spoiler, str) else None
    if warning:
        text = f"[{warning}] {text}" if text else f"[{warning}]"
    if not text and author is None:
        return None
    return text, author, url if isinstance(url, str) else None, created


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


def newest_id(ids: Sequence[object], current: str | None) -> str | None:
    """The largest status id. Ids are strings "not guaranteed to be a number"; Mastodon's are
    snowflakes that only grow, so longer is newer and equal lengths compare as text (which
    is numeric order for digits)."""
    best = current
    for value in ids:
        if isinstance(value, str | int) and str(value) and (best is None or _newer(value, best)):
            best = str(value)
    return best


def oldest_id(ids: Sequence[object]) -> str | None:
    valid = [str(i) for i in ids if isinstance(i, str | int) and str(i)]
    return min(valid, key=_id_key) if valid else None


def _newer(value: object, than: str) -> bool:
    return isinstance(value, str | int) and _id_key(str(value)) > _id_key(than)


def _id_key(value: str) -> tuple[int, str]:
    return (len(value), value)


def _all_older(mentions: list[Mention], since: Any) -> bool:
    return bool(mentions) and all(m.created_at < since for m in mentions)


def _count(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _boosted_by(status: dict[str, Any], post: dict[str, Any], instance: str) -> str | None:
    if post is status or not isinstance(status.get("account"), dict):
        return None
    acct = status["account"].get("acct")
    return full_acct(acct, status["account"].get("url"), instance) if acct else None


def _comparable(text: str) -> str:
    """Text as posted, minus @mentions (Mastodon renders "@ann@host" as "@ann") and spacing."""
    return " ".join(_ANY_MENTION.sub(" ", text).split())


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _posted(data: Any, source: str) -> Posted:
    if not isinstance(data, dict) or not data.get("id"):
        raise SourceError(f"{source}: the reply was sent but the answer has no status id")
    url = data.get("url") or data.get("uri")
    return Posted(str(data["id"]), url if isinstance(url, str) else None)


SOURCE = Mastodon
