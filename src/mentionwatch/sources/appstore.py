"""App Store reviews: the public customer-review feed of any app, and App Store Connect for
the founder's own apps (with replies).

- `apps` × `countries`: the RSS feed's JSON (`/{country}/rss/customerreviews/page=N/id=APP/
  sortby=mostrecent/json`), 10 pages of about 50, newest first, one storefront each. No login,
  no replies. Its quirks: every value wrapped as `{"label": …}`, `entry` an object when there
  is one review, app metadata as the first entry in older feeds, dates missing in some.
- `connect_apps`: App Store Connect's `/v1/apps/{id}/customerReviews?sort=-createdDate`, every
  territory, with the developer response included; replies through customerReviewResponses
  (which creates or replaces, so a retry never doubles it). Auth is an ES256 JWT signed with
  the team's .p8 key (PyJWT with cryptography, `pip install 'mentionwatch[appstore]'`), made
  for 15 minutes and reused. Every answer carries `X-Rate-Limit: user-hour-lim:3500;
  user-hour-rem:N;`: kept for `sources`, and a used-up hour waits.

Every review is about the app: each belongs to every term. The star rating is kept
(`extra["rating"]`), and priority uses it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mentionwatch import scrub
from mentionwatch.errors import ConfigError
from mentionwatch.http import SourceError
from mentionwatch.models import Job, Mention, Option, Page, Term, utcnow
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
    page_of,
    parse_time,
)

if TYPE_CHECKING:
    import httpx

RSS = "https://itunes.apple.com"
RSS_PAGES = 10  # the feed serves pages 1-10 only
TOKEN_LIFETIME = 900  # seconds; Apple accepts at most 20 minutes
PAGE_SIZE = 100
REPLY_LIMIT = 5970  # characters of a developer response
_LIMIT = re.compile(r"user-hour-lim:(\d+);\s*user-hour-rem:(-?\d+)")


def _label(entry: Obj, key: str) -> str | None:
    """The `{"label": …}` value of a feed field, or None."""
    value = dig(entry.data, key, "label")
    return value if isinstance(value, str) else None


class AppStore(Source):
    name = "appstore"
    default_base_url = "https://api.appstoreconnect.apple.com/v1"
    options: ClassVar[dict[str, Option]] = {
        "apps": Option(list, default=[], help="app ids whose public review feed is read"),
        "countries": Option(list, default=["us"], help="storefronts of the public feed"),
        "rss_url": Option(str, default=RSS, help="where the public feed is"),
        "connect_apps": Option(list, default=[], help="your apps, read through App Store Connect"),
        "key_id": Option(str, help="App Store Connect API key id"),
        "issuer_id": Option(str, help="the key's issuer id (none for an individual key)"),
        "private_key_file": Option(str, help="the key's .p8 file"),
        "private_key": Option(str, secret=True, help="or the .p8 file's text"),
    }
    reply_limit = REPLY_LIMIT
    can_reply = True
    overlap = 3600.0  # reviews appear in the feed hours after they are written
    max_pages = RSS_PAGES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._jwt: tuple[str, float] | None = None

    def missing_credentials(self) -> str | None:
        if not (self.settings.get("apps") or self.settings.get("connect_apps")):
            return (
                f"{self.name}: no apps: set sources.{self.name}.apps (public feed) or connect_apps"
            )
        if self.settings.get("connect_apps"):
            return self._connect_problem()
        return None

    def _connect_problem(self) -> str | None:
        if not self.settings.get("key_id") or not (
            self.settings.get("private_key_file") or self.settings.get("private_key")
        ):
            return (
                f"{self.name}: App Store Connect needs sources.{self.name}.key_id, issuer_id and "
                "private_key_file (Users and Access → Integrations → App Store Connect API)"
            )
        return None

    def credentials(self) -> str | None:
        if self.settings.get("connect_apps"):
            return "App Store Connect key set (replies work)"
        return "none needed (public feed; replies need App Store Connect)"

    def jobs(self, terms: Sequence[Term]) -> list[Job]:
        if not any(t.applies_to(self.name) for t in terms):
            return []
        countries = [c.lower() for c in self.settings.get("countries") or ["us"]]
        feeds = [
            Job(self.name, f"rss:{a}:{c}", owned=True)
            for a in self.settings.get("apps") or []
            for c in countries
        ]
        return feeds + [
            Job(self.name, f"connect:{a}", owned=True)
            for a in self.settings.get("connect_apps") or []
        ]

    def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        kind, _, rest = job.scope.partition(":")
        if kind == "rss":
            app, _, country = rest.partition(":")
            return self.walk([Search("reviews", partial(self._feed, app, country))], cursor)
        return self.walk([Search("reviews", partial(self._connect, rest))], cursor)

    # The public feed

    async def _feed(
        self, app: str, country: str, lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        base = (self.settings.get("rss_url") or RSS).rstrip("/")
        for number in range(1, RSS_PAGES + 1):
            url = f"{base}/{country}/rss/customerreviews/page={number}/id={app}/sortby=mostrecent/json"  # noqa: E501
            response = await self.http.request("GET", url)
            if response.status_code >= 400:
                raise self.http.error(response, f"reading the {country} review feed of app {app}")
            feed = page_of(self.http.json(response), "the review feed").obj("feed")
            assert feed is not None
            raw = feed.get("entry")
            entries = (
                [raw]
                if isinstance(raw, dict)
                else feed.array("entry", required=False, nullable=False)
            )
            # Older feeds put the app itself first: an entry without a rating is no review.
            reviews = [e for e in entries if not (isinstance(e, dict) and "im:rating" not in e)]
            mentions, problems = convert(
                reviews, partial(_feed_review, app=app, country=country), number
            )
            oldest = anchor(reviews, lambda e: dig(e, "updated", "label"))
            yield Batch(mentions, oldest, bool(entries) and number < RSS_PAGES, problems)
            if not entries:
                return

    # App Store Connect

    def _token(self) -> str:
        """The signed JWT, made anew when less than a minute of it is left."""
        if self._jwt and self._jwt[1] > time.time() + 60:
            return self._jwt[0]
        try:
            import jwt  # PyJWT, with cryptography for ES256: only App Store Connect needs them
        except ImportError:
            raise SourceError(
                f"{self.name}: App Store Connect tokens are signed with PyJWT and "
                "cryptography: pip install 'mentionwatch[appstore]'"
            ) from None
        now = int(time.time())
        claims: dict[str, Any] = {
            "iat": now,
            "exp": now + TOKEN_LIFETIME,
            "aud": "appstoreconnect-v1",
        }
        issuer = self.settings.get("issuer_id")
        claims.update(
            {"iss": issuer} if issuer else {"sub": "user"}
        )  # an individual key has no issuer
        try:
            token = jwt.encode(
                claims,
                self._key(),
                algorithm="ES256",
                headers={"kid": self.settings.get("key_id"), "typ": "JWT"},
            )
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise SourceError(
                f"{self.name}: cannot sign with the App Store Connect key "
                f"({type(exc).__name__}): is it the .p8 file Apple gave you?"
            ) from None
        scrub.register(token)
        self._jwt = (token, now + TOKEN_LIFETIME)
        return token

    def _key(self) -> str:
        text = self.settings.get("private_key")
        path = self.settings.get("private_key_file")
        if not text and path:
            try:
                text = Path(path).expanduser().read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"sources.{self.name}.private_key_file: cannot read {path}: {exc.strerror}"
                ) from None
        if not text or "PRIVATE KEY" not in text:
            raise ConfigError(f"sources.{self.name}: the private key is not a .p8 key (PEM)")
        scrub.register(text)
        return text

    async def _asc(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token()}"}
        response = await self.http.request(method, url, headers=headers, **kwargs)
        if response.status_code == 429:  # RATE_LIMIT_EXCEEDED: the rolling hour is spent
            await self.http.wait(3600, "App Store Connect's hourly request limit is used up")
        limit = _LIMIT.search(response.headers.get("x-rate-limit", ""))
        if limit:
            self.state.set(
                "rate",
                json.dumps({"limit": int(limit[1]), "left": int(limit[2]), "at": time.time()}),
            )
            if int(limit[2]) < 1:  # a rolling hour: the next call waits for it
                await self.http.wait(3600, "App Store Connect's hourly request limit is used up")
        return response

    async def _connect(
        self, app: str, lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        url: str | None = (
            upper.id if upper and upper.id else f"{self.base_url}/apps/{app}/customerReviews"
        )
        params: dict[str, Any] | None = {
            "sort": "-createdDate",
            "limit": PAGE_SIZE,
            "include": "response",
        }
        if upper and upper.id:
            params = None  # links.next is the whole next URL
        page = 1
        while url:
            response = await self._asc("GET", url, params=params)
            if response.status_code >= 400:
                raise self.http.error(response, f"reading the reviews of app {app}")
            data = page_of(self.http.json(response), "the customerReviews answer")
            items = data.array("data")
            replies = {
                dig(i, "id"): dig(i, "attributes", "responseBody")
                for i in data.array("included", required=False)
                if isinstance(i, dict)
            }
            mentions, problems = convert(
                items, partial(_connect_review, app=app, replies=replies), page
            )
            links = data.obj("links", required=False)
            url = links.string("next", required=False) if links else None
            oldest = anchor(items, lambda i: dig(i, "attributes", "createdDate"))
            yield Batch(mentions, oldest and Anchor(oldest.at, url), bool(url), problems)
            params, page = None, page + 1

    def usage(self) -> str | None:
        try:
            rate = json.loads(self.state.get("rate") or "{}")
        except ValueError:
            return None
        if (
            not isinstance(rate, dict)
            or "left" not in rate
            or rate.get("at", 0) < time.time() - 3600
        ):
            return None
        return f"App Store Connect: {rate['left']} of {rate['limit']} requests left this hour (as last reported)"  # noqa: E501

    # Checking and replying

    async def check(self) -> str:
        lines = []
        for app in self.settings.get("connect_apps") or []:
            response = await self._asc(
                "GET", f"{self.base_url}/apps/{app}", params={"fields[apps]": "name"}
            )
            if response.status_code >= 400:
                raise self.http.error(response, f"App Store Connect app {app}")
            lines.append(repr(dig(self.http.json(response), "data", "attributes", "name") or app))
        if lines:
            lines = [f"App Store Connect key works for {', '.join(lines)}; replies work"]
        apps = self.settings.get("apps") or []
        if apps:
            countries = self.settings.get("countries") or ["us"]
            async for _ in self._feed(apps[0], countries[0].lower(), time.time(), None):
                break
            lines.append(
                f"public feed readable ({len(apps)} app(s) × {len(countries)} storefront(s))"
            )
        if self.usage():
            lines.append(self.usage() or "")
        return "; ".join(lines)

    def reply_problem(self, mention: Mention) -> str | None:
        if mention.extra.get("via") != "connect":
            return (
                f"{self.name}: this review came from the public feed, which takes no replies: "
                f"list app {mention.extra.get('app')} in sources.{self.name}.connect_apps "
                "(with an App Store Connect key) to answer it"
            )
        return self._connect_problem()

    async def post_reply(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        body = {
            "data": {
                "type": "customerReviewResponses",
                "attributes": {"responseBody": text},
                "relationships": {
                    "review": {"data": {"type": "customerReviews", "id": mention.native_id}}
                },
            }
        }
        response = await self._asc(
            "POST", f"{self.base_url}/customerReviewResponses", json=body, retry=False
        )
        if response.status_code >= 400:
            raise self.http.refused(response)
        data = dig(self.http.json(response), "data")
        if not isinstance(dig(data, "id"), str):
            raise SourceError(f"{self.name}: the response was sent but the answer has no id")
        # Apple publishes it after a review ("PENDING_PUBLISH"), usually within a day.
        return Posted(data["id"], mention.url)

    async def find_reply(self, mention: Mention, text: str) -> Posted | None:
        if self.reply_problem(mention):
            return None
        response = await self._asc(
            "GET", f"{self.base_url}/customerReviews/{mention.native_id}/response"
        )
        if response.status_code == 404:
            return None
        data = dig(self.http.json(response), "data")
        if (dig(data, "attributes", "responseBody") or "").strip() == text.strip():
            return Posted(str(dig(data, "id")), mention.url)
        return None


def _rating(value: Any, where: str) -> int:
    try:
        rating = int(value)
    except (TypeError, ValueError):
        raise Malformed(f'{where} has no star rating ("im:rating")') from None
    if not 1 <= rating <= 5:
        raise Malformed(f"{where} has a star rating of {rating}, not 1 to 5")
    return rating


def _feed_review(entry: Obj, app: str, country: str) -> Mention:
    review_id = _label(entry, "id")
    if not review_id:
        raise Malformed(f'{entry.where} has no "id"')
    updated = parse_time(_label(entry, "updated"))
    author = dig(entry.data, "author", "name", "label")
    link = dig(entry.data, "link", "attributes", "href")
    url = f"https://apps.apple.com/{country}/app/id{app}?see-all=reviews"
    return Mention(
        source="appstore",
        native_id=review_id,
        text=_label(entry, "content") or "",
        created_at=updated or utcnow(),  # some feeds carry no dates: when it was first seen
        url=url,
        author=author if isinstance(author, str) else None,
        title=_label(entry, "title"),
        reach=max(0, int(_label(entry, "im:voteSum") or 0))
        if (_label(entry, "im:voteSum") or "").lstrip("-").isdigit()
        else 0,
        reply_url=url,
        extra={
            "kind": "review",
            "via": "rss",
            "rating": _rating(_label(entry, "im:rating"), entry.where),
            "app": app,
            "country": country,
            "version": _label(entry, "im:version"),
            "review_link": link if isinstance(link, str) else None,
            "dated": updated is not None,
        },
    )


def _connect_review(item: Obj, app: str, replies: dict[Any, Any]) -> Mention:
    review_id = item.need("id")
    attributes = item.obj("attributes")
    assert attributes is not None
    response_id = dig(item.data, "relationships", "response", "data", "id")
    url = f"https://appstoreconnect.apple.com/apps/{app}/distribution/activity/ios/ratingsResponses"
    return Mention(
        source="appstore",
        native_id=review_id,
        text=attributes.string("body", required=False) or "",
        created_at=attributes.time("createdDate"),  # type: ignore[arg-type]
        url=url,
        author=attributes.string("reviewerNickname", required=False),
        title=attributes.string("title", required=False),
        reply_url=url,
        extra={
            "kind": "review",
            "via": "connect",
            "app": app,
            "rating": _rating(attributes.get("rating"), attributes.where),
            "territory": attributes.string("territory", required=False),
            "developer_reply": replies.get(response_id) if response_id else None,
        },
    )


SOURCE = AppStore
