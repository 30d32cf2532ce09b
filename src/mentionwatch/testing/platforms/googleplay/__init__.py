"""The Google Play Developer API's reviews (androidpublisher/v3) and Google's OAuth endpoints.

Played from reviews.json, per package. Calls need an OAuth bearer token for the androidpublisher
scope; an unknown package answers 404, a caller without access 403, as Google does. Replies
over 350 characters are rejected; a reply replaces the previous one.
"""

from __future__ import annotations

import re
import time
from typing import Any

from mentionwatch.testing.oauth import UNAUTHENTICATED, AuthServer
from mentionwatch.testing.platforms.youtube import google_error
from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

CLIENT_ID = "1623-pebbleplay.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-PebblePlayClientSecret0"
SCOPE = "https://www.googleapis.com/auth/androidpublisher"
PACKAGE = "io.pebblebase.app"
PREFIX = "/androidpublisher/v3/applications/"
_PATH = re.compile(r"/androidpublisher/v3/applications/([\w.]+)/reviews(?:/([\w:.-]+?))?(:reply)?")


class Platform(PlatformBase):
    name = "googleplay"
    search_path = f"/googleplay{PREFIX}{PACKAGE}/reviews"
    items_path = "reviews"
    required_key = "reviewId"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.auth = AuthServer(CLIENT_ID, CLIENT_SECRET, (SCOPE,))
        self.demo_refresh = self.auth.seed_refresh_token("1//0gPebblePlayRefreshToken00000000")
        self.extra: list[dict[str, Any]] = []
        self.replies: dict[str, str] = {}
        self._fixture: dict[str, Any] | None = None  # times filled once: lastModified is fixed

    def source_settings(self) -> dict[str, Any]:
        base = self.web.base_url(self.name)
        return {
            "base_url": f"{base}/androidpublisher/v3",
            "packages": [PACKAGE],
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": self.demo_refresh,
            "authorize_url": f"{base}/o/oauth2/v2/auth",
            "token_url": f"{base}/token",
        }

    def add_item(self, text: str, created: float) -> str:
        review_id = f"gp:AOqpBacklog{len(self.extra):06d}"
        self.extra.append(
            {
                "reviewId": review_id,
                "authorName": "Backlog Reader",
                "comments": [
                    {
                        "userComment": {
                            "text": text,
                            "lastModified": {"seconds": str(int(created)), "nanos": 0},
                            "starRating": 3,
                            "reviewerLanguage": "en",
                        }
                    }
                ],
            }
        )
        return f"googleplay:{review_id}"

    def reviews(self, package: str) -> list[dict[str, Any]]:
        if self._fixture is None:
            self._fixture = self.fixture_json("reviews.json")
        found = [dict(r) for r in self._fixture.get(package, [])] + self.extra
        for review in found:
            reply = self.replies.get(review["reviewId"])
            if reply:
                review["comments"] = [c for c in review["comments"] if "userComment" in c] + [
                    {
                        "developerComment": {
                            "text": reply,
                            "lastModified": {"seconds": str(int(time.time())), "nanos": 0},
                        }
                    }
                ]
        return sorted(
            found,
            key=lambda r: int(r["comments"][0]["userComment"]["lastModified"]["seconds"]),
            reverse=True,
        )

    def handle(self, request: Request) -> Response | None:
        if request.path == "/o/oauth2/v2/auth":
            return self.auth.handle_authorize(request)
        if request.path == "/token":
            return self.auth.handle_token(request)
        match = _PATH.fullmatch(request.path)
        if not match:
            return None
        if not self.auth.authorized(request):
            return json_response(UNAUTHENTICATED, 401)
        package, review_id, reply = match.groups()
        if package not in ("io.pebblebase.app",):
            return google_error(
                404, "applicationNotFound", f"Package not found: {package}.", "global"
            )
        found = self.reviews(package)
        if review_id is None:
            start = (
                int((request.arg("token") or "0").removeprefix("t"))
                if (request.arg("token") or "0").removeprefix("t").isdigit()
                else -1
            )
            if start < 0:
                return google_error(400, "invalidPageToken", "The page token is invalid.", "global")
            size = min(int(request.arg("maxResults") or 20), 100)
            body: dict[str, Any] = {
                "reviews": found[start : start + size],
                "pageInfo": {
                    "totalResults": len(found),
                    "resultPerPage": size,
                    "startIndex": start,
                },
            }
            if start + size < len(found):
                body["tokenPagination"] = {"nextPageToken": f"t{start + size}"}
            return json_response(body)
        review = next((r for r in found if r["reviewId"] == review_id), None)
        if review is None:
            return google_error(404, "reviewNotFound", "The review was not found.", "global")
        if not reply:
            return json_response(review)
        text = (request.json() or {}).get("replyText")
        if not isinstance(text, str) or not text.strip():
            return google_error(400, "badRequest", "Reply text must not be empty.", "global")
        if len(text) > 350:
            return google_error(
                400, "badRequest", "The reply text is too long (maximum 350 characters).", "global"
            )
        self.replies[review_id] = re.sub(r"<[^>]+>", "", text)
        edited = {"seconds": str(int(time.time())), "nanos": 0}
        return json_response(
            {"result": {"replyText": self.replies[review_id], "lastEdited": edited}}
        )
