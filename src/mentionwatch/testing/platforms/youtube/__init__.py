"""The YouTube Data API v3 (www.googleapis.com/youtube/v3) and Google's OAuth endpoints.

Played from threads.json (the channel's comment threads, and each searched video's) and
search.json. Reads take the API key (`key=`) or an OAuth bearer token; writes only the token.
Paging uses opaque page tokens; `quota` counts units as YouTube does (1 a list, 50 an
insert) and `searches` the search.list bucket; set `units_left` or `searches_left` to make
the next calls answer 403 quotaExceeded. Errors are Google's envelope with its reasons.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from mentionwatch.testing.oauth import UNAUTHENTICATED, AuthServer
from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

KEY = "AIzaSyPebbleTestKey0000000000000000000"
CLIENT_ID = "4815-pebbletest.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-PebbleTestClientSecret00"
CHANNEL = "UCpebblebaseHQ0000000000"
SCOPE = "https://www.googleapis.com/auth/youtube.force-ssl"
PREFIX = "/youtube/v3"


def google_error(
    status: int, reason: str, message: str, domain: str = "youtube.commentThread"
) -> Response:
    """Google's error envelope."""
    statuses = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
    }
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": statuses.get(status, "UNKNOWN"),
        }
    }
    return json_response(body, status)


QUOTA_EXCEEDED = (
    "The request cannot be completed because you have exceeded your "
    '<a href="/youtube/v3/getting-started#quota">quota</a>.'
)


def _token(index: int) -> str:
    return base64.b64encode(f"page:{index}".encode()).decode()


def _index(token: str | None) -> int | None:
    if not token:
        return 0
    try:
        text = base64.b64decode(token).decode()
    except ValueError:
        return None
    return int(text.split(":")[1]) if text.startswith("page:") else None


class Platform(PlatformBase):
    name = "youtube"
    search_path = f"/youtube{PREFIX}/commentThreads"
    items_path = "items"
    required_key = "id"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.auth = AuthServer(CLIENT_ID, CLIENT_SECRET, (SCOPE,))
        self.demo_refresh = self.auth.seed_refresh_token("1//0gPebbleDemoRefreshToken000000000")
        self.extra_threads: list[dict[str, Any]] = []
        self.posted: list[dict[str, Any]] = []
        self.quota = 0
        self.searches = 0
        self.units_left: int | None = None
        self.searches_left: int | None = None
        self.disabled_videos: set[str] = set()

    def source_settings(self) -> dict[str, Any]:
        base = self.web.base_url(self.name)
        return {
            "base_url": f"{base}{PREFIX}",
            "api_key": KEY,
            "channel_id": CHANNEL,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": self.demo_refresh,
            "authorize_url": f"{base}/o/oauth2/v2/auth",
            "token_url": f"{base}/token",
        }

    def add_item(self, text: str, created: float) -> str:
        number = len(self.extra_threads)
        thread_id = f"UgBacklog{number:06d}AaABAg"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
        snippet = {
            "channelId": CHANNEL,
            "videoId": "pbVid00001a",
            "textDisplay": text,
            "textOriginal": text,
            "authorDisplayName": "@backlog_reader",
            "authorChannelId": {"value": "UCbacklog000000000000000"},
            "canRate": True,
            "viewerRating": "none",
            "likeCount": 0,
            "publishedAt": stamp,
            "updatedAt": stamp,
        }
        self.extra_threads.append(
            {
                "kind": "youtube#commentThread",
                "etag": f"etag{number}",
                "id": thread_id,
                "snippet": {
                    "channelId": CHANNEL,
                    "videoId": "pbVid00001a",
                    "canReply": True,
                    "totalReplyCount": 0,
                    "isPublic": True,
                    "topLevelComment": {
                        "kind": "youtube#comment",
                        "id": thread_id,
                        "etag": f"c{number}",
                        "snippet": snippet,
                    },
                },
            }
        )
        return f"youtube:{thread_id}"

    def channel_threads(self) -> list[dict[str, Any]]:
        return self.fixture_json("threads.json")["channel"] + self.extra_threads

    # Routing

    def handle(self, request: Request) -> Response | None:
        if request.path == "/o/oauth2/v2/auth":
            return self.auth.handle_authorize(request)
        if request.path == "/token":
            return self.auth.handle_token(request)
        if not request.path.startswith(PREFIX):
            return None
        path = request.path.removeprefix(PREFIX)
        user = self.auth.authorized(request)
        if request.method != "GET":
            if not user:
                return json_response(UNAUTHENTICATED, 401)
            return self._spend(50) or self.insert(path, request)
        problem = self._reader_problem(request, user)
        if problem:
            return problem
        if path == "/search":
            return self._search_spend() or self.search(request)
        spent = self._spend(1)
        if spent:
            return spent
        if path == "/commentThreads":
            return self.threads(request)
        if path == "/comments":
            parent = request.arg("parentId")
            return self._list(
                [c for c in self.posted if c["snippet"].get("parentId") == parent], request
            )
        if path == "/channels":
            if request.arg("mine") == "true" and not user:
                return json_response(UNAUTHENTICATED, 401)
            if request.arg("mine") != "true" and request.arg("id") != CHANNEL:
                return self._list([], request, "youtube#channelListResponse")
            item = {
                "kind": "youtube#channel",
                "id": CHANNEL,
                "snippet": {"title": "Pebblebase", "customUrl": "@pebblebase"},
            }
            return self._list([item], request, "youtube#channelListResponse")
        if path == "/videos":
            return self._list(
                [{"kind": "youtube#video", "id": "pbVid00001a"}],
                request,
                "youtube#videoListResponse",
            )
        return google_error(404, "notFound", "Requested entity was not found.", "global")

    def _reader_problem(self, request: Request, user: bool) -> Response | None:
        key = request.arg("key")
        if key is not None and key != KEY:
            return google_error(
                400, "badRequest", "API key not valid. Please pass a valid API key.", "global"
            )
        if key is None and not user:
            if "authorization" in request.headers:
                return json_response(UNAUTHENTICATED, 401)
            return google_error(
                403, "forbidden", "The request is missing a valid API key.", "global"
            )
        return None

    def _spend(self, units: int) -> Response | None:
        if self.units_left is not None and self.units_left < units:
            return google_error(403, "quotaExceeded", QUOTA_EXCEEDED, "youtube.quota")
        if self.units_left is not None:
            self.units_left -= units
        self.quota += units
        return None

    def _search_spend(self) -> Response | None:
        if self.searches_left is not None and self.searches_left < 1:
            return google_error(403, "quotaExceeded", QUOTA_EXCEEDED, "youtube.quota")
        if self.searches_left is not None:
            self.searches_left -= 1
        self.searches += 1
        return None

    def _list(
        self,
        items: list[Any],
        request: Request,
        kind: str = "youtube#commentListResponse",
        size: int = 20,
    ) -> Response:
        start = _index(request.arg("pageToken"))
        if start is None:
            return google_error(
                400,
                "invalidPageToken",
                "The request specifies an invalid page token.",
                "youtube.parameter",
            )
        per_page = min(int(request.arg("maxResults") or size), 100)
        shown = items[start : start + per_page]
        body: dict[str, Any] = {
            "kind": kind,
            "etag": "pebbleEtag",
            "pageInfo": {"totalResults": len(items), "resultsPerPage": per_page},
            "items": shown,
        }
        if start + per_page < len(items):
            body["nextPageToken"] = _token(start + per_page)
        return json_response(body)

    # Reads

    def threads(self, request: Request) -> Response:
        channel, video = request.arg("allThreadsRelatedToChannelId"), request.arg("videoId")
        if channel is not None:
            if channel != CHANNEL:
                return google_error(404, "channelNotFound", "The channel could not be found.")
            items = self.channel_threads()
        elif video is not None:
            if video in self.disabled_videos:
                return google_error(
                    403,
                    "commentsDisabled",
                    "The video identified by the videoId parameter has disabled comments.",
                )
            items = self.fixture_json("threads.json")["videos"].get(video, [])
        else:
            return google_error(
                400,
                "missingRequiredParameter",
                "No filter selected. Expected "
                "one of: videoId, allThreadsRelatedToChannelId, id, channelId",
                "youtube.parameter",
            )
        items = items + [
            t
            for t in self.posted
            if t.get("kind") == "youtube#commentThread"
            and t["snippet"].get("videoId") == video
            and video
        ]
        words = (request.arg("searchTerms") or "").lower().split()
        items = [t for t in items if all(w in str(t).lower() for w in words)]
        items.sort(
            key=lambda t: t["snippet"]["topLevelComment"]["snippet"]["publishedAt"], reverse=True
        )
        if request.arg("textFormat") != "plainText":  # html: textDisplay is HTML-escaped
            pass
        return self._list(items, request, "youtube#commentThreadListResponse")

    def search(self, request: Request) -> Response:
        words = (request.arg("q") or "").lower().replace('"', " ").split()
        positive = [w for w in words if not w.startswith("-") and w != "or"]
        after, before = request.arg("publishedAfter") or "", request.arg("publishedBefore") or "9"
        items = [
            i
            for i in self.fixture_json("search.json")["items"]
            if after <= i["snippet"]["publishedAt"] < before
            and any(
                w in f"{i['snippet']['title']} {i['snippet']['description']}".lower()
                for w in positive
            )
        ]
        items.sort(key=lambda i: i["snippet"]["publishedAt"], reverse=True)
        response = self._list(items, request, "youtube#searchListResponse", size=5)
        return response

    # Writes

    def insert(self, path: str, request: Request) -> Response:
        body = request.json() or {}
        snippet = body.get("snippet") or {}
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ")
        if path == "/commentThreads":
            top = (snippet.get("topLevelComment") or {}).get("snippet") or {}
            text = top.get("textOriginal")
        else:
            text = snippet.get("textOriginal")
        if not isinstance(text, str) or not text.strip():
            return google_error(
                400,
                "commentTextRequired",
                "The comment resource must contain the snippet.textOriginal property.",
                "youtube.comment",
            )
        if len(text) > 10_000:
            return google_error(
                400,
                "commentTextTooLong",
                "The comment resource contains too "
                "many characters in the snippet.textOriginal property.",
                "youtube.comment",
            )
        mine = {
            "authorDisplayName": "@pebblebase",
            "authorChannelId": {"value": CHANNEL},
            "textOriginal": text,
            "textDisplay": text,
            "canRate": True,
            "viewerRating": "none",
            "likeCount": 0,
            "publishedAt": now,
            "updatedAt": now,
        }
        if path == "/comments":
            parent = snippet.get("parentId")
            thread = next((t for t in self.channel_threads() if t["id"] == parent), None)
            if thread is None:
                return google_error(
                    404,
                    "parentCommentNotFound",
                    "The comment identified by the parentId parameter could not be found.",
                    "youtube.comment",
                )
            if not thread["snippet"].get("canReply"):
                return google_error(
                    400,
                    "operationNotSupported",
                    "The comment thread does not allow replies.",
                    "youtube.comment",
                )
            comment = {
                "kind": "youtube#comment",
                "etag": "posted",
                "id": f"{parent}.{len(self.posted):04d}Pb",
                "snippet": {**mine, "parentId": parent},
            }
            self.posted.append(comment)
            return json_response(comment)
        if path == "/commentThreads":
            video = snippet.get("videoId")
            thread_id = f"UgPosted{len(self.posted):04d}AaABAg"
            thread = {
                "kind": "youtube#commentThread",
                "etag": "posted",
                "id": thread_id,
                "snippet": {
                    "videoId": video,
                    "canReply": True,
                    "totalReplyCount": 0,
                    "isPublic": True,
                    "topLevelComment": {
                        "kind": "youtube#comment",
                        "id": thread_id,
                        "snippet": {**mine, "videoId": video},
                    },
                },
            }
            self.posted.append(thread)
            return json_response(thread)
        return google_error(404, "notFound", "Requested entity was not found.", "global")
