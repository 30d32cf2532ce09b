"""A loopback web: a real HTTP server on 127.0.0.1 that plays each platform's API.

Each platform lives in `testing/platforms/<name>/`: an `__init__.py` with a `Platform` class
that answers requests under `/<name>/…`, and the fixture files it serves, written with the
platform's real field names. Fixture text may hold `{{ago:3h}}` (an ISO time that long ago),
`{{ago_epoch:3h}}` (the same as epoch seconds) and `{{ago_graph:3h}}` (Meta's form), filled in
when served, so a demo always looks like today.

Switches for tests: `latency` (seconds per request), and `fail()` to answer the next requests
under a path with a fault. Every fault works on every platform:

- `status`, `body`, `headers`, `content_type`: an error answer (an HTML page, a rate limit…);
- `truncate`: the platform's answer cut in half (a consistent Content-Length); `cut`: the
  full length announced, then the connection closed half way;
- `shape=("null" | "drop", "hits.0.objectID")`: the platform's JSON answer with the value at
  a dotted path set to null or removed (`Platform.items_path` says where items are);
- `huge=N`: a streamed body of N bytes; with `gzip=True`, N bytes once decompressed (a
  gzip bomb, a few hundred KB on the wire); `gzip=True` alone compresses the real answer;
- `redirect="loop" | "chain" | "elsewhere"`: redirect back and forth, ten times onwards, or
  (with status 307 or 308) to another origin, `web.other_url`, whose requests are kept apart
  in `web.elsewhere`;
- `echo=True`: an error body that repeats the request's credentials, query and body back,
  as some gateways and proxies do;
- `stale=True`: every request answered with the platform's answer to the first one (a cache
  that ignores the query string, a cursor that never moves);
- `delay`, `accept`: answer late (after handling the request, with `accept`);
- `trickle=N`: a slow loris, the answer's head a byte at a time for N seconds, each byte
  well within any read timeout.

Late indexing and backlogs need no switch: `Platform.add_item(text, created)` makes a new
item appear in searches now, with any creation time (behind the cursor, or 250 of them).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import selectors
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

_AGO = re.compile(r"\{\{ago(_epoch|_rfc822|_graph)?:(\d+)([smhdw])\}\}")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def fill_times(text: str, now: float | None = None) -> str:
    """Replace {{ago:3h}} (ISO), {{ago_epoch:3h}}, {{ago_rfc822:3h}} and {{ago_graph:3h}}
    (Meta's `2026-08-20T14:03:11+0000`) with times that long before now."""
    now = time.time() if now is None else now

    def sub(match: re.Match[str]) -> str:
        moment = now - int(match.group(2)) * _UNITS[match.group(3)]
        if match.group(1) == "_epoch":
            return str(int(moment))
        if match.group(1) == "_rfc822":
            return formatdate(moment, usegmt=True)
        stamp = datetime.fromtimestamp(moment, UTC)
        if match.group(1) == "_graph":
            return stamp.strftime("%Y-%m-%dT%H:%M:%S+0000")
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    return _AGO.sub(sub, text)


@dataclass
class Request:
    method: str
    path: str  # below the platform prefix, e.g. /api/v1/search_by_date
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    door: str = ""  # which door (web.door(NAME)) it came through; "" for the main one
    at: float = 0.0  # time.time() when it arrived, and when its answer was sent
    done: float = 0.0

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Response:
    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"
    truncate: bool = False  # send only the first half of the body (a cut-off transfer)
    cut: bool = False  # announce the whole body, send half, close the connection
    stream: Iterable[bytes] | None = None  # sent chunked instead of `body`
    trickle: float = 0.0  # seconds of the head sent a byte at a time, then nothing

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def json_response(data: Any, status: int = 200, **headers: str) -> Response:
    return Response(status, data, dict(headers))


@dataclass
class Fault:
    prefix: str
    status: int = 500
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    content_type: str = "application/json"
    truncate: bool = False  # answer normally, but cut the body in half
    cut: bool = False  # answer normally, but close the connection half way through the body
    delay: float = 0.0  # seconds to wait before answering
    # Let the platform handle the request (a post is accepted and stored), then wait `delay`
    # before answering: a client that times out meanwhile cannot know it succeeded.
    accept: bool = False
    shape: tuple[str, str] | None = None  # ("null" | "drop", dotted path in the JSON answer)
    huge: int = 0  # bytes of body (decompressed, with gzip)
    gzip: bool = False
    redirect: str | None = None  # "loop", "chain" or "elsewhere"
    echo: bool = False  # the error body repeats the request's credentials back
    trickle: float = 0.0  # seconds of the answer's head sent a byte at a time (a slow loris)
    # Every request answered with the answer to the first (a cache that ignores the query
    # string, a cursor that never moves).
    stale: bool = False
    first: Response | None = None

    @property
    def transforms(self) -> bool:
        """The platform answers, and the fault changes that answer."""
        return (
            self.truncate or self.cut or self.accept or self.shape is not None
            or (self.gzip and not self.huge) or self.stale
        )  # fmt: skip


class PlatformBase:
    """Shared helpers for platform emulators; each reads fixtures from its own folder."""

    name = ""
    # Where the answers that list mentions are (below /<name>), and where in their JSON the
    # items are ("" for an answer that is the list), for faults aimed at them.
    search_path = ""
    items_path = ""
    required_key = ""  # a key (dotted, inside an item) the platform always sends

    def __init__(self, web: LoopbackWeb) -> None:
        self.web = web
        self.folder = Path(str(importlib.import_module(type(self).__module__).__file__)).parent

    def fixture_text(self, relative: str) -> str:
        return fill_times((self.folder / relative).read_text(encoding="utf-8"))

    def fixture_json(self, relative: str) -> Any:
        return json.loads(self.fixture_text(relative))

    def handle(self, request: Request) -> Response | None:
        raise NotImplementedError

    def source_settings(self) -> dict[str, Any]:
        """The [sources.NAME] keys that point the real source at this emulator."""
        return {"base_url": self.web.base_url(self.name)}

    def add_item(self, text: str, created: float) -> str:
        """A new item, found by searches from now on, created at `created` (epoch seconds);
        returns the key the stored mention will have."""
        raise NotImplementedError

    def item_path(self, *more: str) -> str:
        """The dotted path of the first item of a search answer, plus `more`."""
        return ".".join(p for p in (self.items_path, "0", *more) if p)


class Server(ThreadingHTTPServer):
    """A threading HTTP server on loopback that serves from a thread of its own from the
    start, and stops at once: its select() is woken by a byte on a socket pair, where
    serve_forever() would notice a shutdown only at its next poll interval (tests start and
    stop a few servers each: waiting out the interval was most of their teardown)."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self._wake, self._waker = socket.socketpair()
        self._stopping = False
        self._stopped = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self._wake, selectors.EVENT_READ)
                while not self._stopping:
                    ready = selector.select()
                    if not self._stopping and any(key.fileobj is self for key, _ in ready):
                        self.handle_request()  # accepts the waiting connection
        finally:
            self._stopped.set()

    def stop(self) -> None:
        """Stop accepting, and close the listening socket (requests being answered finish
        on their own threads). Stopping a stopped server does nothing."""
        if self._stopping:
            return
        self._stopping = True
        self._waker.send(b"\0")
        self._stopped.wait()
        self.server_close()
        self._wake.close()
        self._waker.close()


HTML_BLOCKED = (
    "<!DOCTYPE html><html><head><title>Blocked</title></head><body><h1>You've been blocked by "
    "network security.</h1><p>To continue, log in to your account or use your developer "
    "token.</p></body></html>"
)


class LoopbackWeb:
    """Start with `with LoopbackWeb() as web:`; `web.base_url("hackernews")` is the API root."""

    def __init__(self, latency: float = 0.0, port: int = 0) -> None:
        self.latency = latency
        self.port = port  # 0: any free port; `demo --serve` asks for a fixed one
        self.requests: list[Request] = []
        self.elsewhere: list[Request] = []  # requests that reached the other origin
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self.platforms: dict[str, PlatformBase] = {}
        from mentionwatch.testing import platforms

        for module in pkgutil.iter_modules(platforms.__path__):
            mod = importlib.import_module(f"{platforms.__name__}.{module.name}")
            self.platforms[module.name] = mod.Platform(self)
        self._server: Server | None = None
        self._other: Server | None = None
        self._doors: dict[str, Server] = {}

    # Lifecycle

    def start(self) -> LoopbackWeb:
        handler = type("Handler", (_Handler,), {"web": self})
        self._server = Server(handler, self.port)
        # Another origin (another port), for redirects that must not carry credentials.
        self._other = Server(type("Elsewhere", (_Handler,), {"web": self, "other": True}))
        return self

    def door(self, name: str) -> str:
        """Another port onto the same web, whose requests are marked `door=name`: give each
        of several clients its own (a base_url through it) to tell their requests apart."""
        if name not in self._doors:
            handler = type("Door", (_Handler,), {"web": self, "door": name})
            self._doors[name] = Server(handler)
        return f"http://127.0.0.1:{self._doors[name].server_address[1]}"

    def stop(self) -> None:
        for server in (self._server, self._other, *self._doors.values()):
            if server:
                server.stop()

    def __enter__(self) -> LoopbackWeb:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server, "start() the loopback web first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def other_url(self) -> str:
        assert self._other, "start() the loopback web first"
        return f"http://127.0.0.1:{self._other.server_address[1]}"

    def base_url(self, platform: str) -> str:
        return f"{self.url}/{platform}"

    def platform(self, name: str) -> Any:
        return self.platforms[name]

    # Switches and observations for tests

    def fail(self, prefix: str, status: int = 500, times: int = 1, **kwargs: Any) -> Fault:
        """Answer the next `times` requests whose path starts with `prefix` with a fault."""
        fault = Fault(prefix=prefix, status=status, times=times, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def seen(self, prefix: str = "/") -> list[Request]:
        """Requests received whose full path starts with prefix (e.g. '/hackernews/api')."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and path.startswith(fault.prefix):
                    fault.times -= 1
                    return fault
        return None

    def dispatch(self, request: Request, elsewhere: bool = False) -> Response:
        with self._lock:
            (self.elsewhere if elsewhere else self.requests).append(request)
        if self.latency:
            time.sleep(self.latency)
        fault = None if elsewhere else self._take_fault(request.path)
        if fault and not fault.transforms:
            return self._fault_response(fault, request)
        name, _, rest = request.path.lstrip("/").partition("/")
        platform = self.platforms.get(name)
        if platform is None:
            return json_response({"error": "not found"}, 404)
        inner = Request(request.method, "/" + rest, request.query, request.headers, request.body)
        response = platform.handle(inner) or json_response({"error": "Record not found"}, 404)
        if fault and fault.stale:
            fault.first = fault.first or response
            response = replace(fault.first, headers=dict(fault.first.headers))
        if fault:
            response.truncate, response.cut = fault.truncate, fault.cut
            if fault.shape:
                response.body = _reshaped(response.payload(), *fault.shape)
            if fault.gzip:  # the platform's own answer, compressed (Stack Exchange always is)
                response.body = b"".join(_gzipped(iter([response.payload()])))
                response.headers["Content-Encoding"] = "gzip"
            time.sleep(fault.delay)
        return response

    def _fault_response(self, fault: Fault, request: Request) -> Response:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.redirect:
            return self._redirect(fault, request)
        if fault.huge:
            return _huge(fault.huge, fault.gzip, fault.status)
        if fault.trickle:
            return Response(fault.status, trickle=fault.trickle)
        body = fault.body
        if fault.echo:
            # What a careless gateway says: the rejected credentials, back in the error.
            sent = {k: v for k, v in request.headers.items() if k in ("authorization", "cookie")}
            echoed = f"{sent} {request.query} {request.body.decode('utf-8', 'replace')}"
            body = json.dumps({"message": f"rejected: {echoed}", "error": "invalid_request"})
        if body is None:
            body = json.dumps({"message": f"injected HTTP {fault.status}"})
        return Response(fault.status, body, dict(fault.headers), fault.content_type)

    def _redirect(self, fault: Fault, request: Request) -> Response:
        query = "&".join(f"{k}={v}" for k, values in request.query.items() for v in values)
        hop = int(request.arg("mw-hop", "0") or 0)
        kept = "&".join(p for p in query.split("&") if p and not p.startswith("mw-hop="))
        target = f"{request.path}?{kept}" if kept else request.path
        if fault.redirect == "elsewhere":
            target = self.other_url + target
        elif fault.redirect == "loop":  # there and back again
            target += f"{'&' if kept else '?'}mw-hop=1" if hop == 0 else ""
        else:  # a chain that never ends
            target += f"{'&' if kept else '?'}mw-hop={hop + 1}"
        status = fault.status if fault.status in (301, 302, 303, 307, 308) else 302
        return Response(status, b"", {"Location": target, **fault.headers})


def trickle_head(out: Any, seconds: float) -> None:
    """A slow loris: an HTTP answer's head, a byte every 0.05 s, for `seconds`; a client
    whose timeouts are per read never times out."""
    head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10**6
    end = time.monotonic() + seconds
    for byte in head:
        if time.monotonic() >= end:
            return
        out.write(bytes([byte]))
        out.flush()
        time.sleep(0.05)


def _reshaped(payload: bytes, action: str, path: str) -> Any:
    """The JSON answer with the value at a dotted path set to null ("null") or removed."""
    data = json.loads(payload)
    if not path:  # the whole answer
        return None if action == "null" else {}
    *parents, last = path.split(".")
    target = data
    for step in parents:
        target = target[int(step)] if isinstance(target, list) else target[step]
    key: Any = int(last) if isinstance(target, list) else last
    if action == "null":
        target[key] = None
    elif isinstance(target, list):
        target.pop(key)
    else:
        target.pop(key, None)
    return data


def _huge(size: int, gzip: bool, status: int) -> Response:
    """A JSON-looking body of `size` bytes, streamed; gzip-compressed when asked."""
    if gzip:
        return Response(status, b"", {"Content-Encoding": "gzip"}, stream=_bomb(size))
    return Response(status, b"", stream=_padding(size))


def _bomb(size: int) -> Iterator[bytes]:
    """`size` bytes of spaces, gzip-compressed, without compressing them all: after a full
    flush deflate starts afresh, so one compressed megabyte can be sent again and again."""
    chunk = b" " * 2**20
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    yield packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    count = max(2, size // len(chunk))
    for _ in range(count - 2):
        yield block
    # The trailer: the CRC-32 and length of everything the client unpacked.
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    yield packer.compress(chunk) + packer.flush(zlib.Z_SYNC_FLUSH)
    yield (
        b"\x03\x00" + crc.to_bytes(4, "little") + (count * len(chunk) % 2**32).to_bytes(4, "little")
    )


def _padding(size: int) -> Iterator[bytes]:
    head, chunk = b'{"items": [], "padding": "', b" " * 2**20
    yield head
    sent = len(head)
    while sent < size:
        piece = chunk[: size - sent]
        sent += len(piece)
        yield piece
    yield b'"}'


def _gzipped(chunks: Iterator[bytes]) -> Iterator[bytes]:
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    for chunk in chunks:
        packed = packer.compress(chunk)
        if packed:
            yield packed
    yield packer.flush()


class _Handler(BaseHTTPRequestHandler):
    web: LoopbackWeb
    other = False  # the other origin
    door = ""  # a door's name (LoopbackWeb.door)
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            door=self.door,
            at=time.time(),
        )
        try:
            self._answer(request)
        finally:
            request.done = time.time()

    def _answer(self, request: Request) -> None:
        response = self.web.dispatch(request, elsewhere=self.other)
        if response.trickle:
            self.close_connection = True
            trickle_head(self.wfile, response.trickle)
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for key, value in response.headers.items():
            self.send_header(key, value)
        if response.stream is not None:
            self._send_chunked(response.stream)
            return
        payload = response.payload()
        if response.truncate:
            payload = payload[: max(1, len(payload) // 2)]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if response.cut:  # the whole length announced, half of it sent, then nothing
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)

    def _send_chunked(self, chunks: Iterable[bytes]) -> None:
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test, a body over its limit): nothing to answer.
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve
