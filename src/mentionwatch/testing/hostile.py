"""A hostile world for tests: text written to cause trouble, and a gateway that echoes
credentials.

- `HOSTILE` holds one sample of every kind of trouble mention text carries (ANSI and OSC 8
  escapes, BEL, NUL, C1 controls, bidi overrides, zero-width and tag characters, a lone CR,
  rich markup, spreadsheet formulas, a lone surrogate); `hostile_text()` joins them, and
  `forbidden()` names any character of that kind left in an output.
- `hn_hit`, `reddit_post`, `bluesky_post` and `rss_feed` put such text into each platform's
  real shapes (an author, a display name, a title, a feed title).
- `EchoGateway` sits in front of the loopback web like a careless corporate proxy or API:
  requests under its `echo` prefixes are answered with an error that repeats the request's
  credentials (headers and body) in the body and in response headers; the rest is forwarded.
"""

from __future__ import annotations

import copy
import http.client
import json
import re
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from mentionwatch.testing.server import Server

HOSTILE = {
    "ansi": "\x1b[31mred\x1b[0m\x1b[2J\x1b[H",
    "osc8": "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\",
    "title": "\x1b]0;pwned\x07",
    "bel": "ding\x07\x07",
    "nul": "nul\x00byte",
    "c1": "\x9b2J csi\x9d osc",
    "bidi": "\u202egnp.exe\u202c \u2066isolated\u2069 \u200fmark\u061c",
    "zero_width": "zero\u200bwidth\u2060joined\ufeffbom\u00adshy\u3164filler",
    "tags": "hidden\U000e0069\U000e0067\U000e006e\U000e006f\U000e0072\U000e0065",
    "cr": "looks safe\rEVIL OVERWRITE",
    "rich": "[bold red]styled[/] [link=https://evil.example]linked[/link]",
    "formula": '=HYPERLINK("https://evil.example","click")',
    "surrogate": "lone \ud800 surrogate",
}
# What must never reach an output: controls other than tab and newline, bidi controls,
# invisible format characters, lone surrogates, tag characters.
_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\u3164\ufeff\ud800-\udfff\U000e0000-\U000e007f]"
)


def hostile_text(lead: str = "pebblebase") -> str:
    """Every sample in HOSTILE, after `lead` (a term, so the mention is kept)."""
    return " ".join([lead, *HOSTILE.values()])


def forbidden(text: str) -> list[str]:
    """Every forbidden character in `text`, as U+XXXX (empty when the text is inert)."""
    return sorted({f"U+{ord(c):04X}" for c in _FORBIDDEN.findall(text)})


def hn_hit(object_id: str, text: str, created: int, **fields: Any) -> dict[str, Any]:
    """An Algolia comment hit whose text, author and story title can all be hostile."""
    hit = {
        "objectID": object_id,
        "created_at_i": created,
        "author": "mallory",
        "title": None,
        "comment_text": text,
        "story_id": 1,
        "story_title": "Ask HN: anything",
        "_tags": ["comment", "author_mallory", "story_1"],
    }
    hit.update(fields)
    return hit


def reddit_post(platform: Any, post_id: str, title: str, text: str, author: str) -> dict:
    """A copy of the emulator's first post with hostile title, body and author."""
    post = copy.deepcopy(platform.things("posts.json")[0])
    post["data"].update(id=post_id, name=f"t3_{post_id}", title=title, selftext=text,
                        author=author)  # fmt: skip
    return post


def bluesky_post(platform: Any, rkey: str, text: str, display_name: str) -> dict:
    """A copy of the emulator's first post with hostile text and display name."""
    post = copy.deepcopy(platform.fixture_json("posts.json")["posts"][0])
    post["uri"] = post["uri"].rsplit("/", 1)[0] + "/" + rkey
    post["record"]["text"] = text
    post["record"].pop("facets", None)
    post["author"]["displayName"] = display_name
    return post


def _xml(value: str) -> str:
    # Controls are not allowed in XML even as references; a hostile feed sends them raw.
    # (A lone surrogate cannot be sent at all: a feed is bytes.)
    value = re.sub("[\ud800-\udfff]", "", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def rss_feed(title: str, entry_title: str, author: str, body: str, link: str) -> str:
    """An RSS 2.0 feed whose channel title, entry title, author and body are hostile."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>{_xml(title)}</title><link>https://feeds.example/</link>"
        f"<item><title>{_xml(entry_title)}</title><link>{_xml(link)}</link>"
        f"<guid>{_xml(link)}</guid><dc:creator>{_xml(author)}</dc:creator>"
        "<pubDate>{{ago_rfc822:1h}}</pubDate>"
        f"<description>{_xml(body)}</description></item></channel></rss>"
    )


class EchoGateway:
    """A gateway in front of `upstream` (the loopback web's URL); same paths, own port.

    Requests whose path starts with one of `echo` get HTTP `status` with a body that
    repeats every request header and the request body (as JSON by default, or an HTML page
    or plain text with `style`), and response headers that repeat the credentials. Others are
    forwarded unchanged. `echo` may be changed while it runs.
    """

    def __init__(
        self, upstream: str, echo: Sequence[str] = ("/",), status: int = 401, style: str = "json"
    ) -> None:
        self.upstream = urlsplit(upstream)
        self.echo = list(echo)
        self.status = status
        self.style = style
        self.echoed = 0
        self._server: Server | None = None

    def __enter__(self) -> EchoGateway:
        self._server = Server(type("Handler", (_GatewayHandler,), {"gateway": self}))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server:
            self._server.stop()

    @property
    def url(self) -> str:
        assert self._server, "use the gateway in a with block"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def echo_response(self, method: str, path: str, headers: dict[str, str], body: bytes):
        """(status, content type, body, headers) repeating the request's credentials."""
        self.echoed += 1
        text = body.decode("utf-8", "replace")
        dump = "; ".join(f"{k}: {v}" for k, v in headers.items())
        credentials = headers.get("authorization") or headers.get("cookie") or text
        # Padding first, so a reason cut to one short line is cut inside the credentials.
        message = f"rejected {method} {path} with {credentials} ({dump}) body={text}"
        out_headers = {
            "X-Echo-Authorization": credentials.replace("\r", " ").replace("\n", " ")[:4000],
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{dump}"'[:4000]
            .replace("\r", " ")
            .replace("\n", " "),
        }
        if self.style == "html":
            page = f"<html><head><title>Denied: {message}</title></head><body>{dump}</body></html>"
            return self.status, "text/html", page.encode(), out_headers
        if self.style == "text":
            return self.status, "text/plain", message.encode(), out_headers
        data = {"error": "invalid_token", "message": message, "headers": headers, "body": text}
        return self.status, "application/json", json.dumps(data).encode(), out_headers

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes):
        host = self.upstream.hostname or "127.0.0.1"
        conn = http.client.HTTPConnection(host, self.upstream.port, timeout=30)
        try:
            sent = {k: v for k, v in headers.items() if k not in ("host", "connection")}
            conn.request(method, path, body=body or None, headers=sent)
            answer = conn.getresponse()
            payload = answer.read()
            kept = {k: v for k, v in answer.getheaders()
                    if k.lower() not in ("content-length", "connection", "transfer-encoding",
                                         "content-type")}  # fmt: skip
            ctype = answer.getheader("content-type", "application/octet-stream")
            return answer.status, ctype, payload, kept
        finally:
            conn.close()


class _GatewayHandler(BaseHTTPRequestHandler):
    gateway: EchoGateway
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = urlsplit(self.path).path
        gw = self.gateway
        if any(path.startswith(prefix) for prefix in gw.echo):
            status, ctype, payload, out = gw.echo_response(self.command, self.path, headers, body)
        else:
            status, ctype, payload, out = gw.forward(self.command, self.path, headers, body)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for key, value in out.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve
