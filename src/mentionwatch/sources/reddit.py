"""Reddit through the OAuth Data API: post search per term, plus optional subreddit comment
streams matched locally (the documented search has no comment type).

Auth is OAuth only (anonymous .json is blocked): a script app with username and password
(needed to reply), or app-only client credentials (read-only). The token is kept in the
source state until it expires and fetched again on a 401.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from mentionwatch import __version__, scrub
from mentionwatch.http import RateLimited, SourceError, error_detail, redact_url
from mentionwatch.models import Job, Mention, Option, Page, Term, ThreadPost, from_epoch, iso
from mentionwatch.query import parse
from mentionwatch.sources.base import Posted, Source
from mentionwatch.text import unescape

if TYPE_CHECKING:
    import httpx

WEB = "https://www.reddit.com"
LIMIT = 100  # the API's maximum per listing page
MAX_PAGES = 5  # bounded walk back in time per job and poll
# Search results can reach the index a little after their creation time: stop only once past
# the newest item seen minus this, and let the store dedupe the overlap.
OVERLAP_SECONDS = 300
TOKEN_MARGIN = 10  # refresh this early, as prawcore does
TOKEN_KEY = "token"
# Search `t` windows, smallest first: the one that still covers the cursor is sent.
WINDOWS = (("hour", 3600), ("day", 86400), ("week", 604800), ("month", 2678400), ("year", 31622400))


@dataclass(frozen=True, slots=True)
class Seen:
    """Where the last poll stopped: the newest fullname and its creation time."""

    name: str | None
    created: float

    def covers(self, mention: Mention) -> bool:
        stamp = mention.created_at.timestamp()
        return mention.native_id == self.name or stamp < self.created - OVERLAP_SECONDS

    def dump(self) -> str:
        return json.dumps({"name": self.name, "created": self.created})


class Reddit(Source):
    name = "reddit"
    default_base_url = "https://oauth.reddit.com"
    options: ClassVar[dict[str, Option]] = {
        "client_id": Option(str, help="the app's client id (reddit.com/prefs/apps)"),
        "client_secret": Option(str, secret=True, help="the app's secret"),
        "username": Option(str, help="the account of a script app (needed to reply)"),
        "password": Option(str, secret=True, help="that account's password"),
        "user_agent": Option(str, help="descriptive User-Agent, e.g. python:app:1.0 (by /u/me)"),
        "auth_url": Option(str, default=WEB, help="where tokens come from"),
        "subreddits": Option(list, default=[], help="subreddits whose new comments are read"),
    }
    required = (("client_id", "client_secret"),)
    reply_limit = 10_000
    can_reply = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import asyncio  # lazily: config loading imports every source

        super().__init__(*args, **kwargs)
        # Jobs of one poll run concurrently: one token request serves them all.
        self._token_lock = asyncio.Lock()
        self._window_opens = 0.0  # monotonic time when an exhausted rate-limit window reopens

    def missing_credentials(self) -> str | None:
        missing = super().missing_credentials()
        if missing is None and bool(self.settings.get("username")) != bool(
            self.settings.get("password")
        ):
            return (
                f"{self.name}: set both sources.{self.name}.username and "
                f"sources.{self.name}.password (or neither, for read-only app access)"
            )
        return missing

    @property
    def user_agent(self) -> str:
        configured = self.settings.get("user_agent")
        if configured:
            return configured
        by = (
            f"by /u/{self.settings.get('username')}"
            if self.settings.get("username")
            else "app-only"
        )
        return f"python:mentionwatch:{__version__} ({by})"

    def jobs(self, terms: Sequence[Term]) -> list[Job]:
        searches = super().jobs(terms)
        if not searches:
            return []
        return searches + [Job(self.name, f"r/{sub}/comments") for sub in self._subreddits()]

    def _subreddits(self) -> list[str]:
        names = (s.strip().strip("/").removeprefix("r/") for s in self.settings.get("subreddits"))
        # Subreddit names are letters, digits and underscores: anything else is not a path.
        return list(dict.fromkeys(n for n in names if n and n.replace("_", "").isalnum()))

    # Polling

    async def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        seen = self._seen(cursor)
        if job.term is None:
            path, params = f"/{job.scope}", {}
        else:
            path = "/search"
            params = {
                "q": parse(job.term.query).boolean()[:512],
                "sort": "new",
                "t": _window(time.time() - seen.created),
                "type": "link",
            }
        newest = seen
        async for mentions in self._newest_first(path, params, seen):
            for m in mentions:
                if m.created_at.timestamp() > newest.created:
                    newest = Seen(m.native_id, m.created_at.timestamp())
            yield Page(mentions)
        yield Page([], cursor=newest.dump())

    def _seen(self, cursor: str | None) -> Seen:
        try:
            data = json.loads(cursor) if cursor else None
            return Seen(data.get("name"), float(data["created"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            return Seen(None, self.first_since().timestamp())

    async def _newest_first(
        self, path: str, params: dict[str, Any], seen: Seen
    ) -> AsyncIterator[list[Mention]]:
        """Listing pages newest first, until an item the last poll already covered."""
        after = None
        for _ in range(MAX_PAGES):
            page = {**params, "limit": LIMIT, "raw_json": 1, **({"after": after} if after else {})}
            children, after = self._listing(await self._get(path, page), path)
            mentions = []
            for child in children:
                mention = to_mention(child)
                if mention is None:
                    continue
                if seen.covers(mention):
                    yield mentions
                    return
                mentions.append(mention)
            yield mentions
            if not after:
                return

    def _listing(self, data: Any, path: str) -> tuple[list[Any], str | None]:
        listing = data.get("data") if isinstance(data, dict) else None
        if not isinstance(listing, dict) or not isinstance(listing.get("children"), list):
            raise SourceError(f"{self.name}: unexpected response from {path} (not a Listing)")
        after = listing.get("after")
        return listing["children"], after if isinstance(after, str) and after else None

    # Auth and requests

    async def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.base_url}{path}"
        return self.http.json(await self._api("GET", url, params=params), url)

    async def _api(
        self, method: str, url: str, *, retry: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """A call with the bearer token; on 401 (expired or revoked) one new token, one retry."""
        for attempt in range(2):
            await self._await_budget()
            token = await self._token()
            headers = {"Authorization": f"bearer {token}", "User-Agent": self.user_agent}
            response = await self.http.request(method, url, headers=headers, retry=retry, **kwargs)
            self._note_budget(response)
            if response.status_code != 401 or attempt:
                break
            await self._forget(token)
        return response

    async def _forget(self, token: str) -> None:
        """Drop a rejected token, unless a concurrent job already replaced it."""
        async with self._token_lock:
            if self._saved_token().get("access_token") == token:
                self.state.set(TOKEN_KEY, None)

    async def _token(self) -> str:
        async with self._token_lock:
            return await self._cached_or_new_token()

    async def _cached_or_new_token(self) -> str:
        # A token of another app or account (the config changed) is not ours.
        owner = f"{self.settings.get('client_id')}:{self.settings.get('username') or ''}"
        saved = self._saved_token()
        if saved.get("owner") == owner and saved.get("expires_at", 0) > time.time() + TOKEN_MARGIN:
            return saved["access_token"]
        data = await self._request_token()
        expires_in = data.get("expires_in")
        lifetime = expires_in if isinstance(expires_in, int | float) else 3600
        record = {
            "owner": owner,
            "access_token": data["access_token"],
            "expires_at": time.time() + lifetime,
        }
        self.state.set(TOKEN_KEY, json.dumps(record))
        return data["access_token"]

    def _saved_token(self) -> dict[str, Any]:
        try:
            saved = json.loads(self.state.get(TOKEN_KEY) or "{}")
        except ValueError:
            return {}
        return saved if isinstance(saved, dict) else {}

    async def _request_token(self) -> dict[str, Any]:
        username, password = self.settings.get("username"), self.settings.get("password")
        if username and password:
            form = {"grant_type": "password", "username": username, "password": password}
            hint = "client_id, client_secret, username and password"
        else:
            form, hint = {"grant_type": "client_credentials"}, "client_id and client_secret"
        url = f"{(self.settings.get('auth_url') or WEB).rstrip('/')}/api/v1/access_token"
        response = await self.http.request(
            "POST",
            url,
            data=form,
            auth=(self.settings.get("client_id"), self.settings.get("client_secret")),
            headers={"User-Agent": self.user_agent},
        )
        if response.status_code >= 400:
            raise SourceError(
                f"{self.name}: login failed: HTTP {response.status_code} from {redact_url(url)}: "
                f"{error_detail(response)} (check sources.{self.name}: {hint})"
            )
        data = self.http.json(response, url)
        # Reddit reports a bad password as HTTP 200 with {"error": "invalid_grant"}.
        token = data.get("access_token") if isinstance(data, dict) else None
        scrub.register(token if isinstance(token, str) else None)
        if not isinstance(token, str) or not token:
            reason = data.get("error") if isinstance(data, dict) else None
            raise SourceError(
                f"{self.name}: login failed: {reason or 'no access_token in the answer'} "
                f"(check sources.{self.name}: {hint})"
            )
        return data

    def _note_budget(self, response: httpx.Response) -> None:
        """Remember when an exhausted window reopens, so the next call waits instead of
        earning a 429. X-Ratelimit-Remaining may be a float string; X-Ratelimit-Reset is
        seconds until the reset."""
        try:
            remaining = float(response.headers.get("x-ratelimit-remaining", "1"))
            reset = float(response.headers.get("x-ratelimit-reset", "0"))
        except ValueError:
            return
        if remaining < 1 and reset > 0:
            self._window_opens = time.monotonic() + reset

    async def _await_budget(self) -> None:
        import asyncio  # lazily: config loading imports every source

        wait = self._window_opens - time.monotonic()
        if wait <= 0:
            return
        if wait > self.poll_settings.max_wait:
            raise RateLimited(
                f"{self.name}: rate limit used up; it resets in {round(wait)}s, try again then"
            )
        await asyncio.sleep(wait)

    async def check(self) -> str:
        username = self.settings.get("username")
        if not username:
            await self._get("/search", {"q": "reddit", "limit": 1, "type": "link"})
            return "app-only token works (read-only: set username and password to reply)"
        me = await self._get("/api/v1/me", {"raw_json": 1})
        name = me.get("name") if isinstance(me, dict) else None
        if not isinstance(name, str):
            raise SourceError(f"{self.name}: /api/v1/me did not name the account")
        return f"authenticated as u/{name}"

    # Thread

    async def thread(self, mention: Mention) -> list[ThreadPost]:
        """What a comment replies to (a comment, or the post), with the post as the thread's
        root when the parent is a comment: both in one /api/info call. A post: []."""
        parent, post = mention.extra.get("parent_id"), mention.extra.get("link_id")
        if mention.extra.get("kind") != "comment" or not _fullname(parent, ("t1_", "t3_")):
            return []
        wanted = {"parent": parent}
        if _fullname(post, ("t3_",)) and post != parent:
            wanted["root"] = post
        data = await self._get("/api/info", {"id": ",".join(wanted.values()), "raw_json": 1})
        children, _ = self._listing(data, "/api/info")
        by_name = {
            c["data"].get("name"): c["data"]
            for c in children
            if isinstance(c, dict) and isinstance(c.get("data"), dict)
        }
        subreddit = mention.extra.get("subreddit")
        found = [_thread_post(r, by_name.get(n), subreddit) for r, n in wanted.items()]
        return [p for p in found if p is not None]

    # Replies

    def reply_problem(self, mention: Mention) -> str | None:
        if not (self.settings.get("username") and self.settings.get("password")):
            return (
                f"{self.name}: replies need a user token: set sources.{self.name}.username and "
                f"sources.{self.name}.password (a script app)"
            )
        if not str(mention.extra.get("fullname") or "").startswith(("t1_", "t3_")):
            return f"{self.name}: this mention has no Reddit fullname to reply to"
        return None

    async def post_reply(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        url = f"{self.base_url}/api/comment"
        form = {"api_type": "json", "thing_id": mention.extra["fullname"], "text": text}
        # Not idempotent: a timeout must not resend (find_reply looks for it instead).
        data = self.http.json(await self._api("POST", url, data=form, retry=False), url)
        body = data.get("json") if isinstance(data, dict) else None
        if not isinstance(body, dict):
            raise SourceError(f"{self.name}: unexpected answer to the reply (no 'json' object)")
        # Rejections (rate limit, locked thread, too long) come back as HTTP 200.
        if body.get("errors"):
            raise SourceError(f"{self.name}: reply rejected: {_errors(body['errors'])}")
        things = (body.get("data") or {}).get("things") or []
        thing = things[0].get("data") if things and isinstance(things[0], dict) else None
        if not isinstance(thing, dict) or not thing.get("name"):
            raise SourceError(f"{self.name}: the reply was accepted but no comment came back")
        return Posted(thing["name"], _comment_url(thing, mention.extra.get("subreddit")))

    async def find_reply(self, mention: Mention, text: str) -> Posted | None:
        """Our newest comments, looking for this text under this parent."""
        username = self.settings.get("username")
        fullname = mention.extra.get("fullname")
        if not username or not fullname:
            return None
        data = await self._get(f"/user/{username}/comments", {"limit": LIMIT, "raw_json": 1})
        children, _ = self._listing(data, "/user/…/comments")
        for child in children:
            thing = child.get("data") if isinstance(child, dict) else None
            if (
                isinstance(thing, dict)
                and thing.get("parent_id") == fullname
                and isinstance(thing.get("body"), str)
                and thing["body"].strip() == text.strip()
                and thing.get("name")
            ):
                return Posted(thing["name"], _comment_url(thing, mention.extra.get("subreddit")))
        return None


def to_mention(child: Any) -> Mention | None:
    """A post (t3) or comment (t1) from a Listing; anything else or malformed: None."""
    if not isinstance(child, dict) or not isinstance(child.get("data"), dict):
        return None
    kind, data = child.get("kind"), child["data"]
    name, created = data.get("name"), data.get("created_utc")
    if kind not in ("t1", "t3") or not isinstance(name, str) or not name.startswith(kind + "_"):
        return None
    if not isinstance(created, int | float) or isinstance(created, bool):
        return None
    author = data.get("author") if isinstance(data.get("author"), str) else None
    score = data.get("score")
    common = {
        "source": "reddit",
        "native_id": name,
        "created_at": from_epoch(created),
        "author": None if author in (None, "[deleted]") else unescape(author),
        # Reach: the post's or comment's score (upvotes minus downvotes).
        "reach": score if isinstance(score, int) and not isinstance(score, bool) else None,
    }
    subreddit = data.get("subreddit") if isinstance(data.get("subreddit"), str) else None
    if kind == "t3":
        return _post(data, common, subreddit)
    return _comment(data, common, subreddit)


def _post(data: dict[str, Any], common: dict[str, Any], subreddit: str | None) -> Mention:
    url = (
        _web_url(data.get("permalink"))
        or f"{WEB}/comments/{data.get('id') or common['native_id'][3:]}/"
    )
    link = data.get("url") if isinstance(data.get("url"), str) else None
    link = None if link is None or link.startswith(WEB) or data.get("is_self") else link
    title = unescape(_str(data.get("title"))) or None
    text = unescape(_str(data.get("selftext"))) or ""
    return Mention(
        **common,
        text=text,
        url=url,
        title=title,
        reply_url=url,
        extra={
            "kind": "post",
            "fullname": common["native_id"],
            "subreddit": subreddit,
            "link": link,
            "num_comments": data.get("num_comments"),
            "locked": bool(data.get("locked")),
        },
        searchable="\n".join(x for x in (title, text, link) if x),
    )


def _comment(data: dict[str, Any], common: dict[str, Any], subreddit: str | None) -> Mention:
    link_id = _str(data.get("link_id"))
    # Old listings carry permalink null for comments: build the canonical comment URL.
    url = _web_url(data.get("permalink")) or _comment_url(
        {"link_id": link_id, "id": common["native_id"][3:]}, subreddit
    )
    text = unescape(_str(data.get("body"))) or ""
    return Mention(
        **common,
        text=text,
        url=url,
        title=unescape(_str(data.get("link_title"))) or None,
        reply_url=url,
        extra={
            "kind": "comment",
            "fullname": common["native_id"],
            "subreddit": subreddit,
            "link_id": link_id or None,
            "parent_id": _str(data.get("parent_id")) or None,
            "locked": bool(data.get("locked")),
        },
        # The post's title is context, not something the commenter wrote.
        searchable=text,
    )


def _fullname(value: Any, kinds: tuple[str, ...]) -> bool:
    return isinstance(value, str) and value.startswith(kinds) and len(value) > 3


def _thread_post(relation: str, data: Any, subreddit: Any) -> ThreadPost | None:
    """A comment (its body) or a post (title and selftext) from /api/info; None if missing."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    name = data["name"]
    author = data.get("author") if isinstance(data.get("author"), str) else None
    created = data.get("created_utc")
    when = (
        iso(from_epoch(created))
        if isinstance(created, int | float) and not isinstance(created, bool)
        else None
    )
    if name.startswith("t3_"):
        parts = (unescape(_str(data.get("title"))), unescape(_str(data.get("selftext"))))
        text = "\n".join(x for x in parts if x)
        url = _web_url(data.get("permalink")) or f"{WEB}/comments/{name[3:]}/"
    else:
        text = unescape(_str(data.get("body"))) or ""
        where = subreddit if isinstance(subreddit, str) else None
        url = _comment_url({**data, "id": data.get("id") or name[3:]}, where)
    return ThreadPost(relation, text, None if author in (None, "[deleted]") else unescape(author),
                      url, when)  # fmt: skip


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _web_url(permalink: Any) -> str | None:
    return f"{WEB}{permalink}" if isinstance(permalink, str) and permalink.startswith("/") else None


def _comment_url(thing: dict[str, Any], subreddit: str | None) -> str:
    permalink = _web_url(thing.get("permalink"))
    if permalink:
        return permalink
    post = _str(thing.get("link_id")).removeprefix("t3_")
    prefix = f"/r/{subreddit}" if subreddit else ""
    return f"{WEB}{prefix}/comments/{post}/_/{thing.get('id') or ''}/"


def _errors(errors: Any) -> str:
    """Reddit's [[NAME, message, field], …] as one line."""
    parts = []
    for error in errors if isinstance(errors, list) else [errors]:
        if isinstance(error, list) and error:
            parts.append(": ".join(str(x) for x in error[:2] if x))
        else:
            parts.append(str(error))
    return "; ".join(parts)[:300]


def _window(age: float) -> str:
    """The smallest search time window that still reaches back `age` seconds."""
    return next((name for name, span in WINDOWS if age + OVERLAP_SECONDS <= span), "all")


SOURCE = Reddit
