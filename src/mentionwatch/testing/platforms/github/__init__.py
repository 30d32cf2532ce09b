"""GitHub's REST API (api.github.com): issue search, the token's user, issue comments.

Played from issues.json (search result items) and comments.json. Like GitHub, search matches
words inside longer words and in any order (close enough to its stemming), so a search for
`pebblebase` also returns `pebblebased`: the client must verify matches itself. Search is
rate limited per minute (10 anonymous, 30 with a token) with GitHub's headers and 403.
`timeouts = N` makes the next N searches time out as GitHub's do: the items found in time
(here every other one) with `incomplete_results: true`.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from mentionwatch.testing.server import PlatformBase, Request, Response, json_response

TOKEN = "ghp_PebbleTest0000000000000000000000000000"  # the one token this GitHub accepts
LOGIN = "pebblebase-team"
API_VERSIONS = ("2022-11-28", "2026-03-10")
DOCS = "https://docs.github.com/rest"
_QUALIFIER = re.compile(r"(-?)(\w+):(\S+)")
_COMMENTS = re.compile(r"/repos/([^/]+)/([^/]+)/issues/(\d+)/comments")


class Platform(PlatformBase):
    name = "github"
    search_path = "/github/search/issues"
    items_path = "items"
    required_key = "html_url"

    def __init__(self, web: Any) -> None:
        super().__init__(web)
        self.extra_items: list[dict[str, Any]] = []  # tests add hostile or edge-case items
        self.posted: list[dict[str, Any]] = []  # comments created through the API
        self.searches: list[float] = []  # times of search calls, for the per-minute limit
        self.timeouts = 0  # the next searches that time out (answered incomplete)

    def items(self) -> list[dict[str, Any]]:
        return self.fixture_json("issues.json")["items"] + self.extra_items

    def source_settings(self) -> dict[str, Any]:
        return {"base_url": self.web.base_url(self.name), "token": TOKEN}

    def add_item(self, text: str, created: float) -> str:
        number = 1000 + len(self.extra_items)
        url = f"https://github.com/backlog-org/backlog/issues/{number}"
        self.extra_items.append({
            "url": f"https://api.github.com/repos/backlog-org/backlog/issues/{number}",
            "repository_url": "https://api.github.com/repos/backlog-org/backlog",
            "html_url": url, "id": 3_900_000_000 + number, "number": number, "title": text,
            "user": {"login": "backlog-reader", "id": 7, "type": "User"}, "state": "open",
            "comments": 0, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
            "body": "", "reactions": {"total_count": 0}, "score": 1.0,
        })  # fmt: skip
        return f"github:{url}"

    def handle(self, request: Request) -> Response | None:
        problem = self._auth_problem(request)
        if problem:
            return problem
        if request.path == "/search/issues":
            return self.search(request)
        if request.path == "/user":
            if not _authorized(request):
                return _error(401, "Requires authentication")
            return json_response({"login": LOGIN, "id": 190001, "type": "User", "name": "Pebble"})
        if request.path == "/rate_limit":
            limit, used = self._search_budget(request)
            search = {"limit": limit, "remaining": limit - used, "reset": int(time.time()) + 60}
            return json_response({"resources": {"search": search}, "rate": search})
        match = _COMMENTS.fullmatch(request.path)
        if match:
            thread = (match.group(1), match.group(2), int(match.group(3)))
            return self.comment(request, *thread) if request.method == "POST" else (
                self.comments(request, *thread))  # fmt: skip
        return None

    def _auth_problem(self, request: Request) -> Response | None:
        version = request.headers.get("x-github-api-version")
        if version is not None and version not in API_VERSIONS:
            return _error(400, f"The '{version}' API version is not supported.")
        if "authorization" in request.headers and not _authorized(request):
            return _error(401, "Bad credentials")
        return None

    def _search_budget(self, request: Request) -> tuple[int, int]:
        now = time.time()
        self.searches = [t for t in self.searches if now - t < 60]
        return (30 if _authorized(request) else 10), len(self.searches)

    def search(self, request: Request) -> Response:
        limit, used = self._search_budget(request)
        reset = str(int((self.searches[0] if self.searches else time.time()) + 60))
        headers = {"x-ratelimit-limit": str(limit), "x-ratelimit-reset": reset,
                   "x-ratelimit-resource": "search", "x-ratelimit-used": str(used + 1)}  # fmt: skip
        if used >= limit:
            headers.update({"x-ratelimit-remaining": "0", "x-ratelimit-used": str(used)})
            return Response(403, {"message": "API rate limit exceeded for user.",
                                  "documentation_url": DOCS}, headers)  # fmt: skip
        self.searches.append(time.time())
        headers["x-ratelimit-remaining"] = str(limit - used - 1)
        query = request.arg("q", "") or ""
        if not any(k == "is" and v in ("issue", "pr") for _, k, v in _QUALIFIER.findall(query)):
            return _error(422, "Validation Failed", "Query must include 'is:issue' or 'is:pr'")
        found = sorted(
            (i for i in self.items() if _matches(i, query)),
            key=lambda i: _time(i.get("created_at")),
            reverse=True,
        )
        incomplete = self.timeouts > 0
        if incomplete:
            self.timeouts -= 1
            found = found[::2]
        per_page = min(int(request.arg("per_page", "30") or 30), 100)
        page = int(request.arg("page", "1") or 1)
        body = {"total_count": len(found), "incomplete_results": incomplete,
                "items": found[(page - 1) * per_page : page * per_page]}  # fmt: skip
        return Response(200, body, headers)

    def _thread(self, owner: str, repo: str, number: int) -> dict[str, Any] | None:
        for item in self.items():
            if item.get("repository_url", "").endswith(f"/repos/{owner}/{repo}") and (
                item.get("number") == number
            ):
                return item
        return None

    def comments(self, request: Request, owner: str, repo: str, number: int) -> Response:
        if self._thread(owner, repo, number) is None:
            return _error(404, "Not Found")
        key = f"{owner}/{repo}#{number}"
        every = self.fixture_json("comments.json").get(key, []) + [
            c for c in self.posted if c["thread"] == key
        ]
        per_page = min(int(request.arg("per_page", "30") or 30), 100)
        page = int(request.arg("page", "1") or 1)
        shown = every[(page - 1) * per_page : page * per_page]
        return json_response([{k: v for k, v in c.items() if k != "thread"} for c in shown])

    def comment(self, request: Request, owner: str, repo: str, number: int) -> Response:
        if not _authorized(request):
            return _error(401, "Requires authentication")
        issue = self._thread(owner, repo, number)
        if issue is None:
            return _error(404, "Not Found")
        if issue.get("locked"):
            return _error(403, "Unable to create comment because issue is locked.")
        body = (request.json() or {}).get("body")
        if not isinstance(body, str) or not body.strip():
            return _error(422, "Validation Failed", "body cannot be blank", "body")
        if len(body) > 65536:
            too_long = "body is too long (maximum is 65536 characters)"
            return _error(422, "Validation Failed", too_long, "body")
        comment_id = 2_400_000_000 + len(self.posted)
        comment = {
            "id": comment_id,
            "html_url": f"{issue['html_url']}#issuecomment-{comment_id}",
            "body": body,
            "user": {"login": LOGIN, "id": 190001, "type": "User"},
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "author_association": "OWNER",
            "thread": f"{owner}/{repo}#{number}",
        }
        self.posted.append(comment)
        return json_response({k: v for k, v in comment.items() if k != "thread"}, 201)


def _authorized(request: Request) -> bool:
    return request.headers.get("authorization") in (f"Bearer {TOKEN}", f"token {TOKEN}")


def _error(status: int, message: str, detail: str | None = None, field: str = "q") -> Response:
    """GitHub's error body; a 422 lists what failed validation in `errors`."""
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
    if detail:
        resource = "Search" if field == "q" else "IssueComment"
        body["errors"] = [{"resource": resource, "field": field, "code": "invalid",
                           "message": detail}]  # fmt: skip
    return json_response(body, status)


def _time(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=UTC)


def _in_range(moment: datetime, spec: str) -> bool:
    """GitHub's range qualifiers: >X, >=X, <X, <=X and X..Y (inclusive)."""
    if not spec:
        return True
    if ".." in spec:
        low, _, high = spec.partition("..")
        return (low == "*" or moment >= _time(low)) and (high == "*" or moment <= _time(high))
    for op, test in ((">=", moment.__ge__), ("<=", moment.__le__), (">", moment.__gt__),
                     ("<", moment.__lt__)):  # fmt: skip
        if spec.startswith(op):
            return bool(test(_time(spec[len(op) :])))
    return True


def _matches(item: dict[str, Any], query: str) -> bool:
    qualifiers = {k: v for negated, k, v in _QUALIFIER.findall(query) if not negated}
    if (qualifiers.get("is") == "pr") != bool(item.get("pull_request")):
        return False
    if not _in_range(_time(item.get("created_at")), qualifiers.get("created", "")):
        return False
    words = _QUALIFIER.sub(" ", query)
    alternatives = [a for a in re.split(r"\bOR\b", words) if a.strip()]
    haystack = f"{item.get('title') or ''} {item.get('body') or ''}".lower()
    # Each alternative's words must all appear, anywhere, even inside longer words.
    return any(all(w in haystack for w in re.findall(r"\w+", alt.lower())) for alt in alternatives)
