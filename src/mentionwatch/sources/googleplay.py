"""Google Play Developer API: reviews of the founder's own apps, and replies to them.

Only production reviews that have text, and only those created or edited in the last week,
newest first: poll at least weekly or they age out. A review is kept once, as first seen (an
edit moves it to the top of the list; it is not stored again). Replying
sets or replaces the developer reply (at most about 350 characters), so a retry never
doubles it. Auth is a Google OAuth user token (`mentionwatch auth googleplay`, scope
androidpublisher); the account needs the "Reply to reviews" permission in Play Console.
Reads are limited to 200 an hour per app: mentionwatch counts them and waits past that.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from functools import partial
from typing import Any, ClassVar

from mentionwatch.http import SourceError
from mentionwatch.models import Job, Mention, Option, Page, Term, from_epoch
from mentionwatch.oauth import Tokens, google
from mentionwatch.oauth import options as oauth_options
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
)
from mentionwatch.text import clean

SCOPE = "https://www.googleapis.com/auth/androidpublisher"
STORE = "https://play.google.com/store/apps/details?id="
READS_PER_HOUR = 200  # GET quota per app (Play Console's default)
REPLY_LIMIT = 350


class GooglePlay(Source):
    name = "googleplay"
    default_base_url = "https://androidpublisher.googleapis.com/androidpublisher/v3"
    oauth = google(SCOPE)
    options: ClassVar[dict[str, Option]] = {
        "packages": Option(list, default=[], help="your apps' package names"),
        **oauth_options(google(SCOPE)),
    }
    reply_limit = REPLY_LIMIT
    can_reply = True
    overlap = 600.0
    max_pages = 5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokens = Tokens(self, google(SCOPE))

    def missing_credentials(self) -> str | None:
        if not self.settings.get("packages"):
            return f"{self.name}: no apps: set sources.{self.name}.packages to your package names"
        missing = self.tokens.missing()
        return f"{self.name}: missing credentials: {missing}" if missing else None

    def jobs(self, terms: Sequence[Term]) -> list[Job]:
        if not any(t.applies_to(self.name) for t in terms):
            return []
        return [Job(self.name, f"app:{p}", owned=True) for p in self.settings.get("packages") or []]

    def usage(self) -> str | None:
        reads = self._reads()
        if not reads:
            return None
        busiest = max(reads.items(), key=lambda kv: len(kv[1]))
        return f"{len(busiest[1])} of {READS_PER_HOUR} review reads in the last hour ({busiest[0]})"

    def _reads(self) -> dict[str, list[float]]:
        try:
            reads = json.loads(self.state.get("reads") or "{}")
        except ValueError:
            return {}
        hour = time.time() - 3600
        return (
            {k: [t for t in v if t > hour] for k, v in reads.items() if isinstance(v, list)}
            if isinstance(reads, dict)
            else {}
        )

    async def _get(self, package: str, path: str, params: dict[str, Any] | None = None) -> Any:
        reads = self._reads()
        mine = reads.setdefault(package, [])
        if len(mine) >= READS_PER_HOUR:
            await self.http.wait(
                mine[0] + 3600 - time.time(),
                f"{READS_PER_HOUR} review reads an hour for {package} used",
            )
        mine.append(time.time())
        self.state.set("reads", json.dumps(reads))
        url = f"{self.base_url}/applications/{package}{path}"
        response = await self.tokens.request("GET", url, params=params)
        if response.status_code >= 400:
            raise self.http.error(
                response,
                f"reading reviews of {package}",
                "the account needs the 'Reply to reviews' permission for the app",
            )
        return self.http.json(response)

    def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        package = job.scope.removeprefix("app:")
        return self.walk([Search("reviews", partial(self._reviews, package))], cursor)

    async def _reviews(
        self, package: str, lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        token = upper.id if upper else None
        page = 1
        while True:
            params = {"maxResults": 100, **({"token": token} if token else {})}
            data = page_of(await self._get(package, "/reviews", params), "the reviews answer")
            items = data.array("reviews", required=False, nullable=False)
            mentions, problems = convert(items, partial(to_mention, package=package), page)
            pages = data.obj("tokenPagination", required=False)
            token = pages.string("nextPageToken", required=False) if pages else None
            oldest = anchor(items, _modified)
            yield Batch(mentions, oldest and Anchor(oldest.at, token), bool(token), problems)
            if not token:
                return
            page += 1

    async def check(self) -> str:
        packages = self.settings.get("packages") or []
        for package in packages:
            await self._get(package, "/reviews", {"maxResults": 1})
        return f"reads the reviews of {len(packages)} app(s); replies work; {self.usage()}"

    def reply_problem(self, mention: Mention) -> str | None:
        missing = self.tokens.missing()
        if missing:
            return f"{self.name}: replying needs OAuth: {missing}"
        if not (mention.extra.get("review_id") and mention.extra.get("package")):
            return f"{self.name}: this mention has no review id to reply to"
        return None

    def _review_url(self, mention: Mention) -> str:
        return f"{self.base_url}/applications/{mention.extra['package']}/reviews/{mention.extra['review_id']}"  # noqa: E501

    async def post_reply(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        # Setting a reply replaces the previous one: safe to send again.
        response = await self.tokens.request(
            "POST", f"{self._review_url(mention)}:reply", json={"replyText": text}
        )
        if response.status_code >= 400:
            raise self.http.refused(response)
        result = dig(self.http.json(response), "result")
        if not isinstance(result, dict):
            raise SourceError(f"{self.name}: the reply was sent but the answer has no result")
        return Posted(f"{mention.extra['review_id']}:reply", mention.url)

    async def find_reply(self, mention: Mention, text: str) -> Posted | None:
        if self.reply_problem(mention):
            return None
        response = await self.tokens.request("GET", self._review_url(mention))
        for comment in dig(self.http.json(response), "comments") or []:
            if (dig(comment, "developerComment", "text") or "").strip() == text.strip():
                return Posted(f"{mention.extra['review_id']}:reply", mention.url)
        return None


def _modified(item: Any) -> float | None:
    seconds = dig(item, "comments", 0, "userComment", "lastModified", "seconds")
    try:
        return float(seconds)  # an int64 in JSON: a string
    except (TypeError, ValueError):
        return None


def to_mention(item: Obj, package: str) -> Mention:
    review_id = item.need("reviewId")
    comments = item.array("comments")
    user = next(
        (
            Obj(c, f"{item.where} comment").obj("userComment", required=False)
            for c in comments
            if isinstance(c, dict) and "userComment" in c
        ),
        None,
    )
    if user is None:
        raise Malformed(f"{item.where} has no userComment")
    seconds = _modified(item.data)
    if seconds is None:
        raise Malformed(f'{user.where} has no "lastModified" seconds')
    rating = user.integer("starRating", required=True)
    text = clean(user.string("text", required=False))
    title, _, body = text.partition("\t") if "\t" in text else ("", "", text)
    replied = next(
        (dig(c, "developerComment", "text") for c in comments if dig(c, "developerComment")), None
    )
    url = f"{STORE}{package}&reviewId={review_id}"
    return Mention(
        source="googleplay",
        native_id=review_id,
        text=body.strip(),
        created_at=from_epoch(seconds),
        url=url,
        author=item.string("authorName", required=False) or None,
        title=title.strip() or None,
        reach=user.count("thumbsUpCount"),
        reply_url=url,
        extra={
            "kind": "review",
            "rating": rating,
            "review_id": review_id,
            "package": package,
            "app_version": user.string("appVersionName", required=False),
            "language": user.string("reviewerLanguage", required=False),
            "device": user.string("device", required=False),
            "developer_reply": replied,
        },
    )


SOURCE = GooglePlay
