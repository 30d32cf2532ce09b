"""A loopback web: a real HTTP server on 127.0.0.1 that plays each platform's API.

Each platform lives in `testing/platforms/<name>/`: an `__init__.py` with a `Platform` class
that answers requests under `/<name>/…`, and the fixture files it serves, written with the
platform's real field names. Fixture text may hold `{{ago:3h}}` (an ISO time that long ago)
and `{{ago_epoch:3h}}` (the same as epoch seconds), filled in when served, so a demo always
looks like today.

Switches for tests: `latency` (seconds per request), and `fail()` to answer the next requests
under a path with a status, headers, an HTML page or a truncated body.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

_AGO = re.compile(r"\{\{ago(_epoch|_rfc822)?:(\d+)([smhdw])\}\}")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def fill_times(text: str, now: float | None = None) -> str:
    """Replace {{ago:3h}} (ISO), {{ago_epoch:3h}} and {{ago_rfc822:3h}} with times that long
    before now."""
    now = time.time() if now is None else now

    def sub(match: re.Match[str]) -> str:
        moment = now - int(match.group(2)) * _UNITS[match.group(3)]
        if match.group(1) == "_epoch":
            return str(int(moment))
        if match.group(1) == "_rfc822":
            return formatdate(moment, usegmt=True)
        stamp = datetime.fromtimestamp(moment, UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    return _AGO.sub(sub, text)


@dataclass
class Request:
    method: str
    path: str  # below the platform prefix, e.g. /api/v1/search_by_date
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

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
    delay: float = 0.0  # seconds to wait before answering
    # Let the platform handle the request (a post is accepted and stored), then wait `delay`
    # before answering: a client that times out meanwhile cannot know it succeeded.
    accept: bool = False


class PlatformBase:
    """Shared helpers for platform emulators; each reads fixtures from its own folder."""

    name = ""

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
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self.platforms: dict[str, PlatformBase] = {}
        from mentionwatch.testing import platforms

        for module in pkgutil.iter_modules(platforms.__path__):
            mod = importlib.import_module(f"{platforms.__name__}.{module.name}")
            self.platforms[module.name] = mod.Platform(self)
        self._server: ThreadingHTTPServer | None = None

    # Lifecycle

    def start(self) -> LoopbackWeb:
        handler = type("Handler", (_Handler,), {"web": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        # A short poll interval makes stop() quick: tests start and stop a web each.
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> LoopbackWeb:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server, "start() the loopback web first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

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

    def dispatch(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
        if self.latency:
            time.sleep(self.latency)
        fault = self._take_fault(request.path)
        if fault and not (fault.truncate or fault.accept):
            return self._fault_response(fault)
        name, _, rest = request.path.lstrip("/").partition("/")
        platform = self.platforms.get(name)
        if platform is None:
            return json_response({"error": "not found"}, 404)
        inner = Request(request.method, "/" + rest, request.query, request.headers, request.body)
        response = platform.handle(inner) or json_response({"error": "Record not found"}, 404)
        if fault:
            response.truncate = fault.truncate
            time.sleep(fault.delay)
        return response

    def _fault_response(self, fault: Fault) -> Response:
        if fault.delay:
            time.sleep(fault.delay)
        body = fault.body
        if body is None:
            body = json.dumps({"message": f"injected HTTP {fault.status}"})
        return Response(fault.status, body, dict(fault.headers), fault.content_type)


class _Handler(BaseHTTPRequestHandler):
    web: LoopbackWeb
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
        )
        response = self.web.dispatch(request)
        payload = response.payload()
        if response.truncate:
            payload = payload[: max(1, len(payload) // 2)]
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test): nothing to answer, nothing to report.
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve
