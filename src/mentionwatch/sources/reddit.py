"""Reddit through the OAuth Data API: post search per term, plus optional subreddit comment
streams matched locally (the documented search has no comment type).

Auth is OAuth only (anonymous .json is blocked): a script app with username and password
(needed to reply), or app-only client credentials (read-only). The token is kept in the
source state until it expires and fetched again on a 401.

`reply --private` sends a Reddit message (`/api/compose`). Reddit folded private messages
into its chat in 2025 and says the message API keeps working "for 99% of requests"; an
account that only takes chat requests answers RESTRICTED_TO_PM, said plainly.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from mentionwatch import __version__, scrub
from mentionwatch.http import SourceError
from mentionwatch.models import Job, Mention, Option, Page, Term, ThreadPost, from_epoch, iso
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
from mentionwatch.text import clean

if TYPE_CHECKING:
    import httpx

WEB = "https://www.reddit.com"
LIMIT = 100  # the API's maximum per listing page
MAX_PAGES = 10  # per search and poll; a longer backlog waits as a gap for the next poll
LISTING_DEPTH = 1000  # Reddit keeps about this many items per listing
MAX_QUERY = 512  # characters of `q`
# Search indexes posts minutes after they are made (sometimes more): each poll reads this far
# back past the newest post seen. A subreddit's comment listing is live: a short overlap.
SEARCH_OVERLAP = 900
COMMENTS_OVERLAP = 120
TOKEN_MARGIN = 10  # refresh this early, as prawcore does
TOKEN_KEY = "token"
SUBJECT_LIMIT = 100  # characters of a message subject
# Refusals of /api/compose, said plainly (Reddit's own wording is terse).
COMPOSE_REFUSALS = {
    "RESTRICTED_TO_PM": "u/{who} does not take direct messages, only chat requests (Reddit "
    "moved messages to its chat in 2025, which has no API): message them in the Reddit app, "
    "or reply in public",
    "NOT_WHITELISTED_BY_USER_MESSAGE": "u/{who} only takes messages from people they approved",
    "USER_DOESNT_EXIST": "u/{who} no longer exists",
}
# Search `t` windows, smallest first: the one that still covers the cursor is sent.
WINDOWS = (("hour", 3600), ("day", 86400), ("week", 604800), ("month", 2678400), ("year", 31622400))


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
    can_message = True
    message_limit = 10_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import asyncio  # lazily: config loading imports every source

        super().__init__(*args, **kwargs)
        # Jobs of one poll run concurrently: one token request serves them all.
        self._token_lock = asyncio.Lock()

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

    max_pages = MAX_PAGES

    def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        if job.term is None:  # a subreddit's newest comments, matched locally
            searches = [Search("comments", partial(self._listing, f"/{job.scope}", {}, cursor))]
            overlap = COMMENTS_OVERLAP
        else:
            queries = fit(parse(job.term.query), MAX_QUERY, Query.boolean, source=self.name,
                          term=job.term.name)  # fmt: skip
            search = {"sort": "new", "type": "link"}
            listing = partial(self._listing, "/search")
            searches = [Search(q, partial(listing, {**search, "q": q}, None)) for q in queries]
            overlap = SEARCH_OVERLAP
        return self.walk(searches, cursor, overlap)

    async def _listing(
        self, path: str, params: dict[str, Any], stream_cursor: str | None,
        lower: float, upper: Anchor | None,
    ) -> AsyncGenerator[Batch, None]:  # fmt: skip
        """A listing newest first, from after `upper` (a fullname) back towards `lower`."""
        after = upper.id if upper else None
        read, page = 0, 1
        if "q" in params:
            params = {**params, "t": _window(time.time() - lower)}
        while True:
            asked = {**params, "limit": LIMIT, "raw_json": 1, **({"after": after} if after else {})}
            listing = self._children(await self._get(path, asked), path)
            children = listing.array("children")
            mentions, problems = convert(children, to_mention, page)
            oldest = anchor(children, lambda c: dig(c, "data", "created_utc"),
                            lambda c: dig(c, "data", "name"))  # fmt: skip
            after = listing.string("after", required=False) or None
            read += len(children)
            # A comment stream that ends before reaching what the last poll saw was outrun:
            # Reddit keeps about 1000 items per listing. Say so.
            ended_early = not after and oldest is not None and oldest.at > lower
            deep = upper is not None or read >= LISTING_DEPTH - LIMIT
            if "q" not in params and stream_cursor and ended_early and deep:
                problems.append(_outrun(path, oldest))
            yield Batch(mentions, oldest, bool(after), problems)
            if not after:
                return
            page += 1

    def _children(self, data: Any, path: str) -> Obj:
        """The `data` of a Listing answer, read strictly."""
        return page_of(data, f"the {path} answer").obj("data") or Obj({}, path)

    # Auth and requests

    async def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.base_url}{path}"
        return self.http.json(await self._api("GET", url, params=params), url)

    async def _api(
        self, method: str, url: str, *, retry: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """A call with the bearer token; on 401 (expired or revoked) one new token, one retry."""
        for attempt in range(2):
            token = await self._token()
            headers = {"Authorization": f"bearer {token}", "User-Agent": self.user_agent}
            response = await self.http.request(method, url, headers=headers, retry=retry, **kwargs)
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
            raise self.http.error(response, "login failed", f"check sources.{self.name}: {hint}")
        data = self.http.json(response)
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
        wanted: dict[str, str] = {"parent": str(parent)}
        if isinstance(post, str) and _fullname(post, ("t3_",)) and post != parent:
            wanted["root"] = post
        data = await self._get("/api/info", {"id": ",".join(wanted.values()), "raw_json": 1})
        children = self._children(data, "/api/info").array("children")
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
        children = self._children(data, "/user/…/comments").array("children")
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

    # Messages (`reply --private`)

    def message_where(self, mention: Mention) -> str:
        return f"a Reddit message to u/{mention.author}"

    def message_problem(self, mention: Mention) -> str | None:
        if not (self.settings.get("username") and self.settings.get("password")):
            return (
                f"{self.name}: messages need a user token: set sources.{self.name}.username and "
                f"sources.{self.name}.password (a script app)"
            )
        if not mention.author or mention.author == "[deleted]":
            return f"{self.name}: the author of this mention deleted their account"
        return None

    async def post_message(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        url = f"{self.base_url}/api/compose"
        subject = f"Re: {mention.title or 'your ' + ('comment' if mention.in_thread else 'post')}"
        form = {"api_type": "json", "to": mention.author or "", "text": text,
                "subject": subject[:SUBJECT_LIMIT]}  # fmt: skip
        # Not idempotent: a timeout must not resend (find_message looks for it instead).
        response = await self._api("POST", url, data=form, retry=False)
        if response.status_code in (403, 404):
            retired = (
                "message refused (Reddit moved messages to chat and may have retired this API)"
            )
            raise self.http.refused(response, retired)
        body = self.http.json(response, url)
        errors = dig(body, "json", "errors")
        if not isinstance(dig(body, "json"), dict):
            raise SourceError(f"{self.name}: unexpected answer to the message (no 'json' object)")
        if errors:
            raise SourceError(f"{self.name}: message refused: {_compose_refusal(errors, mention)}")
        # /api/compose answers with no id: the message is the newest in our sent box.
        found = await self.find_message(mention, text)
        return found or Posted(f"message to u/{mention.author}", f"{WEB}/message/sent/")

    async def find_message(self, mention: Mention, text: str) -> Posted | None:
        data = await self._get("/message/sent", {"limit": 25, "raw_json": 1})
        for child in self._children(data, "/message/sent").array("children"):
            thing = child.get("data") if isinstance(child, dict) else None
            if (
                isinstance(thing, dict)
                and str(thing.get("dest") or "").lower() == (mention.author or "").lower()
                and str(thing.get("body") or "").strip() == text.strip()
                and isinstance(thing.get("name"), str)
            ):
                return Posted(thing["name"], f"{WEB}/message/messages/{thing.get('id') or ''}")
        return None


def _compose_refusal(errors: Any, mention: Mention) -> str:
    for error in errors if isinstance(errors, list) else []:
        name = error[0] if isinstance(error, list) and error else None
        if name in COMPOSE_REFUSALS:
            return f"{name}: {COMPOSE_REFUSALS[name].format(who=mention.author)}"
    return _errors(errors)


def to_mention(child: Obj) -> Mention | None:
    """A post (t3) or comment (t1) from a Listing."""
    kind = child.need("kind")
    data = child.obj("data")
    assert data is not None
    if kind not in ("t1", "t3"):
        raise Malformed(f'{child.where} has "kind": {kind!r}, not a post or comment')
    name = data.need("name")
    if not name.startswith(kind + "_"):
        raise Malformed(f'{data.where} has "name": {name!r}, not a {kind} fullname')
    created = data.time("created_utc")
    assert created is not None
    author = data.string("author")
    common: dict[str, Any] = {
        "source": "reddit",
        "native_id": name,
        "created_at": created,
        "author": None if author == "[deleted]" else clean(author),
        # Reach: the post's or comment's score (upvotes minus downvotes).
        "reach": data.integer("score"),
    }
    subreddit = data.string("subreddit", required=False)
    if kind == "t3":
        return _post(data, common, subreddit)
    return _comment(data, common, subreddit)


def _post(data: Obj, common: dict[str, Any], subreddit: str | None) -> Mention:
    permalink = _web_url(data.string("permalink", required=False))
    url = permalink or f"{WEB}/comments/{common['native_id'][3:]}/"
    link = data.string("url", required=False)
    link = None if link is None or link.startswith(WEB) or data.get("is_self") is True else link
    # Every read sends raw_json=1: the text comes as typed, with no entities to decode (an
    # "&amp;" in it is what someone wrote).
    title = clean(data.string("title")) or None
    text = clean(data.string("selftext", required=False))
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
            "num_comments": data.integer("num_comments"),
            "locked": data.get("locked") is True,
        },
        searchable="\n".join(x for x in (title, text, link) if x),
    )


def _comment(data: Obj, common: dict[str, Any], subreddit: str | None) -> Mention:
    link_id = data.need("link_id")
    # Old listings carry permalink null for comments: build the canonical comment URL.
    url = _web_url(data.string("permalink", required=False)) or _comment_url(
        {"link_id": link_id, "id": common["native_id"][3:]}, subreddit
    )
    text = clean(data.string("body"))
    return Mention(
        **common,
        text=text,
        url=url,
        title=clean(data.string("link_title", required=False)) or None,
        reply_url=url,
        extra={
            "kind": "comment",
            "fullname": common["native_id"],
            "subreddit": subreddit,
            "link_id": link_id,
            "parent_id": data.string("parent_id", required=False),
            "locked": data.get("locked") is True,
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
        parts = (clean(_str(data.get("title"))), clean(_str(data.get("selftext"))))
        text = "\n".join(x for x in parts if x)
        url = _web_url(data.get("permalink")) or f"{WEB}/comments/{name[3:]}/"
    else:
        text = clean(_str(data.get("body")))
        where = subreddit if isinstance(subreddit, str) else None
        url = _comment_url({**data, "id": data.get("id") or name[3:]}, where)
    return ThreadPost(relation, text, None if author in (None, "[deleted]") else clean(author),
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


def _outrun(path: str, oldest: Anchor | None) -> str:
    when = iso(from_epoch(oldest.at)) if oldest else "the newest"
    return (
        f"{path.lstrip('/')} moved faster than the polls: comments before {when} are out of "
        "reach of its listing; poll more often"
    )


def _window(age: float) -> str:
    """The smallest search time window that still reaches back `age` seconds."""
    return next((name for name, span in WINDOWS if age <= span), "all")


SOURCE = Reddit
