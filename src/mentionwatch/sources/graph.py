"""What the three Meta sources share (Threads, Facebook Pages, Instagram): the Graph API's
token, its error envelope, its cursor paging and its ids.

- One token per source, sent as `Authorization: Bearer` (never in the URL, where logs and
  paging links would keep it); `access_token()` is the one place it is read: the token
  `mentionwatch auth` stored (renewed before it expires) for a source with an OAuth `Spec`,
  else the configured `token`.
- Errors are `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`;
  `http.message_in` reads them, and the codes that need an action get a hint here (190: a
  new token; 10 and 200-299: a permission; 368: a temporary block). Throttling codes and
  the usage headers (X-App-Usage, X-Business-Use-Case-Usage) are handled in http.py, for
  every Meta source alike; the last usage seen is kept for `sources`.
- Paging follows `paging.cursors.after` on our own URL, never a `paging.next` link: a
  hostile answer could point it elsewhere, and our token would follow.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from mentionwatch.http import SourceError, meta_usage
from mentionwatch.models import Mention, iso, utcnow
from mentionwatch.oauth import Tokens
from mentionwatch.sources.base import Posted, Source
from mentionwatch.sources.common import Malformed, Obj, describe, dig, page_of

if TYPE_CHECKING:
    import httpx

# Graph ids are digits, joined by "_" for a post or comment of a Page: anything else from
# a platform answer never becomes part of a URL path.
_GRAPH_ID = re.compile(r"^[0-9]+(?:_[0-9]+)*$")
USAGE_KEY = "usage"
# Meta's private reply: one message per comment (or visitor post), within 7 days of it.
PRIVATE_REPLY_WINDOW = timedelta(days=7)
PERMISSION_CODES = {10, *range(200, 300)}


def graph_id(value: Any, where: str = "the answer") -> str:
    """A Graph object id checked before it goes into a URL path."""
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not _GRAPH_ID.match(text):
        raise Malformed(f'{where} has "id": {json.dumps(value)[:40]}, not a Graph id')
    return text


def context(text: Any, limit: int = 200) -> str | None:
    """A post's text, shortened, as the title of a comment on it (what it answers)."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_code(response: httpx.Response) -> tuple[int | None, int | None]:
    """(code, error_subcode) of a Graph error answer."""
    try:
        error = json.loads(response.content).get("error")
    except (ValueError, AttributeError, RecursionError):
        return None, None
    if not isinstance(error, dict):
        return None, None
    code, sub = error.get("code"), error.get("error_subcode")
    return (code if isinstance(code, int) else None), (sub if isinstance(sub, int) else None)


class GraphError(SourceError):
    """A refusal in Graph's envelope; `graph_code` and `graph_subcode` say which (`code` is
    the exit code, as for every error)."""

    graph_code: int | None = None
    graph_subcode: int | None = None


class GraphSource(Source):
    """A Meta source: one token, Graph errors and paging, the usage last seen."""

    # What `sources --check` and a 190 error tell the user to do for a new token.
    token_help: ClassVar[str] = ""
    # The permissions a code-10 refusal most likely means, per what was being done.
    permissions: ClassVar[dict[str, str]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base_url = self.base_url.rstrip("/")
        self.tokens = Tokens(self, self.oauth) if self.oauth is not None else None

    def _authorized(self) -> bool:
        return self.tokens is not None and bool(self.tokens.saved().get("access_token"))

    async def access_token(self) -> str:
        """The token every call sends: the one `mentionwatch auth` stored (renewed before it
        expires), else the configured long-lived `token`."""
        configured = str(self.settings.get("token") or "")
        if self.tokens is not None and self._authorized():
            try:
                return await self.tokens.bearer()
            except SourceError:
                if not configured:  # expired, and no token of the user's own to fall back on
                    raise
        return configured

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.access_token()}"}

    def missing_credentials(self) -> str | None:
        if self.tokens is None:
            return super().missing_credentials()
        if self._authorized() or self.settings.get("token"):
            return None
        return (
            f"{self.name}: missing credentials: set sources.{self.name}.token, or client_id "
            f"and client_secret and run 'mentionwatch auth {self.name}'"
        )

    def credentials(self) -> str | None:
        if self.tokens is None:
            return None
        if self._authorized():
            status = self.tokens.status()
            if status.startswith("not authorized") and self.settings.get("token"):
                return f"{status}; sources.{self.name}.token is used meanwhile"
            return status
        return f"token set (or run 'mentionwatch auth {self.name}' to have it renewed)"

    # Requests

    async def get(self, path: str, params: dict[str, Any] | None = None, doing: str = "") -> Obj:
        """GET `path` below base_url: the answer as an object, or one line with the reason."""
        response = await self.http.request(
            "GET", f"{self.base_url}/{path}", params=params, headers=await self.headers()
        )
        self._note_usage(response)
        if response.status_code >= 400:
            raise self.refusal(response, doing or "request refused", path)
        return page_of(self.http.json(response), f"the {path.split('/')[-1]} answer")

    async def post(self, path: str, *, doing: str, **kwargs: Any) -> Obj:
        """A write (never retried: a timeout is Uncertain, and find_* looks for it)."""
        response = await self.http.request(
            "POST", f"{self.base_url}/{path}", headers=await self.headers(), retry=False, **kwargs
        )
        self._note_usage(response)
        if response.status_code >= 400:
            raise self.refusal(response, doing, path)
        return page_of(self.http.json(response), f"the answer to the {doing}")

    def refusal(self, response: httpx.Response, doing: str, path: str = "") -> GraphError:
        """One line for a Graph refusal, with what to do when the code says it."""
        code, subcode = error_code(response)
        hint = ""
        if code in (190, 102):
            hint = f"the token expired or was revoked: {self.token_help}"
        elif code in PERMISSION_CODES:
            needed = next((p for k, p in self.permissions.items() if k in path), None)
            hint = f"the token lacks a permission{f' ({needed})' if needed else ''}"
        elif code == 368:
            hint = "Meta blocks this action for a while (too many, or taken for spam): wait"
        line = str(self.http.refused(response, doing))
        error = GraphError(f"{line} — {hint}" if hint else line)
        error.graph_code, error.graph_subcode = code, subcode
        return error

    def _note_usage(self, response: httpx.Response) -> None:
        usage = meta_usage(response.headers)
        if usage is not None:
            self.state.set(USAGE_KEY, json.dumps({"percent": usage[0], "at": time.time()}))

    def usage(self) -> str | None:
        """The share of Meta's rate budget used, as the last answer's headers said."""
        try:
            seen = json.loads(self.state.get(USAGE_KEY) or "null")
        except ValueError:
            return None
        if not isinstance(seen, dict) or not isinstance(seen.get("percent"), int | float):
            return None
        ago = max(0, int(time.time() - float(seen.get("at") or 0)) // 60)
        return f"{seen['percent']:.0f}% of Meta's rate limit used ({ago} min ago)"

    # Private replies (Messenger, Instagram)

    messages_per_mention = 1

    def window_problem(self, mention: Mention) -> str | None:
        """Why Meta's private reply window is closed for this mention, or None."""
        closes = mention.created_at + PRIVATE_REPLY_WINDOW
        if closes >= utcnow():
            return None
        return (
            f"{self.name}: the window for a private reply closed on {iso(closes)} (Meta allows "
            "one within 7 days of the comment): reply in public"
        )

    async def private_reply(self, node: str, recipient: dict[str, str], text: str) -> Posted:
        """`POST /{node}/messages` to the author of a comment or post (`recipient` names it)."""
        body = {"recipient": recipient, "message": {"text": text}}
        answer = await self.post(f"{graph_id(node)}/messages", json=body,
                                 doing="private reply refused")  # fmt: skip
        return Posted(answer.need("message_id"), None)

    # Paging

    async def pages(
        self, path: str, params: dict[str, Any], what: str, after: str | None = None
    ) -> AsyncGenerator[tuple[list[Any], str | None], None]:
        """Each page's `data` items and the cursor after it, from `after` (None: the first
        page) until the edge has no more."""
        params = dict(params)
        seen: set[str] = set()
        while True:
            if after:
                params["after"] = after
            answer = await self.get(path, params, f"reading {what}")
            items = answer.array("data")
            after = _next_cursor(answer, len(items), params.get("limit"))
            yield items, after
            if not after or after in seen:
                return
            seen.add(after)


def _next_cursor(answer: Obj, count: int, limit: Any) -> str | None:
    """The `after` cursor when another page follows: Graph sends a `next` link then, and
    some edges only cursors (then a full page means more may follow)."""
    paging = answer.get("paging")
    if paging is not None and not isinstance(paging, dict):
        raise Malformed(f'{answer.where} has "paging": {describe(paging)} where an object belongs')
    after = dig(paging, "cursors", "after")
    if not count or not isinstance(after, str) or not after:
        return None
    full = isinstance(limit, int) and count >= limit
    return after if (isinstance(dig(paging, "next"), str) or full) else None
