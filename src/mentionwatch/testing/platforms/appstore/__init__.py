"""The App Store's public customer-review feed (itunes.apple.com) and the App Store Connect API
(api.appstoreconnect.apple.com/v1) for customer reviews and responses.

The feed is played from rss.json (page 1; later pages are empty, as for a small app). App
Store Connect checks the ES256 JWT the way Apple does (signature with the key's public half,
`kid`, `aud`, an expiry at most 20 minutes away) when PyJWT and cryptography are installed;
the key pair is made when the emulator starts, and its private half is written to a 0600
file for the config. Errors are Apple's `{"errors": [{"status", "code", "title", "detail"}]}`;
every answer carries `X-Rate-Limit: user-hour-lim:3500;user-hour-rem:N;`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

APP = "1660000000"
KEY_ID = "PEBBLE0001"
ISSUER = "57246542-96fe-1a63-e053-0824d011072a"
_FEED = re.compile(r"/rss/(\w+)/rss/customerreviews/page=(\d+)/id=(\d+)/sortby=mostrecent/json")
_REVIEWS = re.compile(r"/v1/apps/(\d+)/customerReviews")
_RESPONSE = re.compile(r"/v1/customerReviews/([\w-]+)/response")


def apple_error(status: int, code: str, title: str, detail: str) -> Response:
    return json_response(
        {
            "errors": [
                {
                    "id": "b2c4e1a0-pebble",
                    "status": str(status),
                    "code": code,
                    "title": title,
                    "detail": detail,
                }
            ]
        },
        status,
    )


class Platform(PlatformBase):
    name = "appstore"
    search_path = f"/appstore/rss/us/rss/customerreviews/page=1/id={APP}/sortby=mostrecent/json"
    items_path = "feed.entry"
    required_key = "id"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.extra: list[dict[str, Any]] = []
        self.responses: dict[str, dict[str, Any]] = {}
        self.rate_left = 3500
        self.tokens: list[str] = []  # JWTs received (for leak checks)
        self.signing = importlib.util.find_spec("jwt") is not None
        self._key_file: Path | None = None
        self._public: Any = None
        self._connect: dict[str, Any] | None = None

    def key_file(self) -> Path:
        """A fresh .p8 key for this emulator, written owner-only."""
        if self._key_file is None:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import ec

            key = ec.generate_private_key(ec.SECP256R1())
            self._public = key.public_key()
            self._folder = tempfile.TemporaryDirectory(prefix="mentionwatch-appstore-")
            self._key_file = Path(self._folder.name) / f"AuthKey_{KEY_ID}.p8"
            fd = os.open(self._key_file, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(
                    key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                )
        return self._key_file

    def source_settings(self) -> dict[str, Any]:
        base = self.web.base_url(self.name)
        settings: dict[str, Any] = {
            "base_url": f"{base}/v1",
            "rss_url": f"{base}/rss",
            "apps": [APP],
            "countries": ["us"],
        }
        if self.signing:  # App Store Connect only where its tokens can be signed
            settings.update(
                connect_apps=[APP],
                key_id=KEY_ID,
                issuer_id=ISSUER,
                private_key_file=str(self.key_file()),
            )
        return settings

    def add_item(self, text: str, created: float) -> str:
        review_id = str(12_000_000_000 + len(self.extra))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S-00:00", time.gmtime(created))
        self.extra.append(
            {
                "author": {"name": {"label": "backlog reader"}},
                "updated": {"label": stamp},
                "im:rating": {"label": "3"},
                "id": {"label": review_id},
                "title": {"label": "Backlog"},
                "content": {"label": text, "attributes": {"type": "text"}},
            }
        )
        return f"appstore:{review_id}"

    def handle(self, request: Request) -> Response | None:
        feed = _FEED.fullmatch(request.path)
        if feed:
            return self.feed(*feed.groups())
        if not request.path.startswith("/v1/"):
            return None
        problem = self._auth_problem(request)
        if problem:
            return problem
        self.rate_left -= 1
        response = self.connect(request)
        response.headers["X-Rate-Limit"] = f"user-hour-lim:3500;user-hour-rem:{self.rate_left};"
        return response

    def feed(self, country: str, page: str, app: str) -> Response:
        if app != APP:  # Apple answers an unknown app with an empty feed
            return json_response({"feed": {"author": {"name": {"label": "iTunes Store"}}}})
        data = self.fixture_json("rss.json")
        data.pop("_origin", None)
        entries = data["feed"]["entry"] + self.extra if page == "1" else []
        entries.sort(key=lambda e: e["updated"]["label"], reverse=True)
        if entries:
            data["feed"]["entry"] = entries
        else:
            del data["feed"]["entry"]
        return json_response(data)

    def _auth_problem(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return apple_error(
                401,
                "NOT_AUTHORIZED",
                "Authentication credentials are missing or invalid.",
                "Provide a properly configured and signed bearer token, and make sure that it has not expired.",  # noqa: E501
            )
        token = header.removeprefix("Bearer ")
        self.tokens.append(token)
        try:
            import jwt

            head = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token, self._public, algorithms=["ES256"], audience="appstoreconnect-v1"
            )
        except Exception:  # a bad signature, a foreign key, an expired token: Apple's 401
            return apple_error(
                401,
                "NOT_AUTHORIZED",
                "Authentication credentials are missing or invalid.",
                "Provide a properly configured and signed bearer token, and make sure that it has not expired.",  # noqa: E501
            )
        if (
            head.get("kid") != KEY_ID
            or claims.get("iss") != ISSUER
            or claims["exp"] - time.time() > 1200
        ):
            return apple_error(
                401,
                "NOT_AUTHORIZED",
                "Authentication credentials are missing or invalid.",
                "The token's key id, issuer or lifetime is not accepted.",
            )
        if self.rate_left <= 0:
            return apple_error(
                429,
                "RATE_LIMIT_EXCEEDED",
                "The request rate limit has been reached.",
                "We've received too many requests for this API. Please wait and try again or slow down your request rate.",  # noqa: E501
            )
        return None

    def reviews(self) -> list[dict[str, Any]]:
        if self._connect is None:  # times filled once: a review's createdDate does not move
            self._connect = self.fixture_json("connect.json")
        return list(self._connect[APP])

    def connect(self, request: Request) -> Response:
        match = _REVIEWS.fullmatch(request.path)
        if match:
            if match.group(1) != APP:
                return apple_error(
                    404,
                    "NOT_FOUND",
                    "The specified resource does not exist.",
                    f"There is no resource of type 'apps' with id '{match.group(1)}'",
                )
            items = sorted(
                self.reviews(), key=lambda r: r["attributes"]["createdDate"], reverse=True
            )
            limit = int(request.arg("limit") or 50)
            if limit > 200:
                return apple_error(
                    400,
                    "PARAMETER_ERROR.INVALID",
                    "A parameter has an invalid value",
                    "'limit' must be less than or equal to 200",
                )
            start = int(request.arg("cursor") or 0)
            shown = [
                {
                    **r,
                    "relationships": {
                        "response": {
                            "data": {"type": "customerReviewResponses", "id": f"r-{r['id']}"}
                        }
                        if r["id"] in self.responses
                        else {}
                    },
                }
                for r in items[start : start + limit]
            ]
            body: dict[str, Any] = {
                "data": shown,
                "links": {"self": self.web.url + request.path},
                "meta": {"paging": {"total": len(items), "limit": limit}},
            }
            if request.arg("include") == "response":
                body["included"] = [
                    self.responses[r["id"]] for r in shown if r["id"] in self.responses
                ]
            if start + limit < len(items):
                body["links"]["next"] = (
                    f"{self.web.base_url(self.name)}{request.path}?sort=-createdDate&limit={limit}&include=response&cursor={start + limit}"  # noqa: E501
                )
            return json_response(body)
        if request.path == f"/v1/apps/{APP}":
            return json_response(
                {"data": {"type": "apps", "id": APP, "attributes": {"name": "Pebblebase"}}}
            )
        match = _RESPONSE.fullmatch(request.path)
        if match:
            found = self.responses.get(match.group(1))
            return (
                json_response({"data": found})
                if found
                else apple_error(
                    404,
                    "NOT_FOUND",
                    "The specified resource does not exist.",
                    "There is no response for this review",
                )
            )
        if request.path == "/v1/customerReviewResponses" and request.method == "POST":
            return self.respond(request)
        return apple_error(
            404,
            "NOT_FOUND",
            "The specified resource does not exist.",
            f"The path provided does not match a defined resource type: {request.path}",
        )

    def respond(self, request: Request) -> Response:
        data = (request.json() or {}).get("data") or {}
        text = (data.get("attributes") or {}).get("responseBody")
        review = ((data.get("relationships") or {}).get("review") or {}).get("data") or {}
        if not any(r["id"] == review.get("id") for r in self.reviews()):
            return apple_error(
                409,
                "ENTITY_ERROR.RELATIONSHIP.INVALID",
                "The provided entity includes a relationship with an invalid value",
                f"'{review.get('id')}' is not a valid id for this relationship.",
            )
        if not isinstance(text, str) or not text.strip():
            return apple_error(
                409,
                "ENTITY_ERROR.ATTRIBUTE.REQUIRED",
                "The provided entity is missing a required attribute",
                "You must provide a value for the attribute 'responseBody' with this request",
            )
        response = {
            "type": "customerReviewResponses",
            "id": f"r-{review['id']}",
            "attributes": {
                "responseBody": text,
                "lastModifiedDate": time.strftime("%Y-%m-%dT%H:%M:%S-07:00"),
                "state": "PENDING_PUBLISH",
            },
        }
        self.responses[review["id"]] = response  # creates or replaces
        return json_response({"data": response, "links": {"self": "…"}}, 201)
