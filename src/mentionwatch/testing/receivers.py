"""Loopback receivers for alerts: where tests and the demo watch deliveries land.

`Receivers` is one HTTP server on 127.0.0.1 that records every request and answers:

- `/hooks/…`: a webhook endpoint (any path below it), 200 with `{"ok": true}`;
- `/slack/…`, `/discord/…`, `/telegram/…`: stand-ins for those services' APIs; `apprise_to()`
  points Apprise's plugins for them here, so their real request bodies can be read;
- everything else: an ntfy-compatible server (ntfy's JSON publish at `/` and the plain one at
  `/TOPIC`), answering with ntfy's message object; Apprise reaches it as `ntfy_url(TOPIC)`.

Switches: `answer(prefix, status, times)` (e.g. 500), `hang(prefix, seconds)` (accept the
request and say nothing for that long), `slow(prefix, seconds)` (answer normally, late),
`trickle(prefix, seconds)` (a slow loris: the answer's head a byte at a time for that long)
and `huge(prefix, size, status)` (an answer of `size` bytes; `Receivers.written` says how many
the client took before it hung up).

`SmtpReceiver` is a loopback SMTP server (aiosmtpd, a development dependency) that keeps every
message, with optional AUTH, for Apprise's `mailto://` channel.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from mentionwatch.testing.server import Server, trickle_head


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float = field(default_factory=time.time)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class _Behaviour:
    prefix: str
    status: int = 200
    times: int = 1
    hang: float = 0.0  # seconds of silence before giving up on the client
    delay: float = 0.0  # seconds before a normal answer
    trickle: float = 0.0  # seconds of an answer's head sent a byte at a time
    huge: int = 0  # bytes of body
    headers: dict[str, str] = field(default_factory=dict)  # of an answer that is not 200


class Receivers:
    """Start with `with Receivers() as rx:`; `rx.url("/hooks/a")` is a webhook URL."""

    def __init__(self, on_request: Callable[[Received], None] | None = None) -> None:
        self.received: list[Received] = []
        self.written: list[int] = []  # bytes of each huge answer the client read
        self.behaviours: list[_Behaviour] = []
        self.on_request = on_request
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._server: Server | None = None

    def start(self) -> Receivers:
        self._server = Server(type("Handler", (_Handler,), {"receivers": self}))
        return self

    def stop(self) -> None:
        if self._server:
            self._server.stop()

    def __enter__(self) -> Receivers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server, "start() the receivers first"
        return int(self._server.server_address[1])

    def url(self, path: str = "/hooks/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ntfy_url(self, topic: str) -> str:
        """The Apprise URL of a topic on the loopback ntfy server."""
        return f"ntfy://127.0.0.1:{self.port}/{topic}"

    # Switches

    def answer(
        self, prefix: str, status: int, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next `times` requests under `prefix` with `status` (e.g. 500), and
        `headers` (e.g. Retry-After)."""
        self._add(_Behaviour(prefix, status=status, times=times, headers=headers or {}))

    def hang(self, prefix: str, seconds: float, times: int = 1) -> None:
        """Read the next requests under `prefix` and say nothing for `seconds`."""
        self._add(_Behaviour(prefix, times=times, hang=seconds))

    def slow(self, prefix: str, seconds: float, times: int = 1) -> None:
        """Answer the next requests under `prefix` normally, `seconds` late."""
        self._add(_Behaviour(prefix, times=times, delay=seconds))

    def trickle(self, prefix: str, seconds: float, times: int = 1) -> None:
        """Answer the next requests under `prefix` with a head sent a byte every 0.05 s for
        `seconds` (a slow loris), then hang up."""
        self._add(_Behaviour(prefix, times=times, trickle=seconds))

    def huge(self, prefix: str, size: int, status: int = 200, times: int = 1) -> None:
        """Answer the next requests under `prefix` with `status` and a body of `size` bytes."""
        self._add(_Behaviour(prefix, status=status, times=times, huge=size))

    def _add(self, behaviour: _Behaviour) -> None:
        with self._lock:
            self.behaviours.append(behaviour)

    # Observations

    def seen(self, prefix: str = "/") -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path.startswith(prefix)]

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        """Block until `count` requests under `prefix` arrived (or the timeout passed)."""
        end = time.monotonic() + timeout
        with self._arrived:
            while True:
                got = [r for r in self.received if r.path.startswith(prefix)]
                left = end - time.monotonic()
                if len(got) >= count or left <= 0:
                    return got
                self._arrived.wait(left)

    def wait_written(self, count: int = 1, timeout: float = 10.0) -> list[int]:
        """Block until `count` huge answers ended (the client read them or hung up)."""
        end = time.monotonic() + timeout
        with self._arrived:
            while len(self.written) < count and (left := end - time.monotonic()) > 0:
                self._arrived.wait(left)
            return list(self.written)

    def ntfy_messages(self, topic: str | None = None) -> list[dict[str, Any]]:
        """What the ntfy endpoint published: ntfy message objects (topic, title, message…)."""
        found = []
        for r in self.seen("/"):
            message = None if r.path.startswith(_NOT_NTFY) else _ntfy_message(r)
            if message and (topic is None or message["topic"] == topic):
                found.append(message)
        return found

    # Serving

    def _take(self, path: str) -> _Behaviour | None:
        with self._lock:
            for b in self.behaviours:
                if b.times > 0 and path.startswith(b.prefix):
                    b.times -= 1
                    return b
        return None

    def _record(self, request: Received) -> None:
        with self._arrived:
            self.received.append(request)
            self._arrived.notify_all()
        if self.on_request:
            self.on_request(request)

    def respond(
        self, request: Received, behaviour: _Behaviour | None = None
    ) -> tuple[int, dict[str, str], bytes] | None:
        """(status, headers, body) for a request, or None to hang up without an answer."""
        behaviour = behaviour or self._take(request.path)
        if behaviour and behaviour.hang:
            time.sleep(behaviour.hang)
            return None
        if behaviour and behaviour.delay:
            time.sleep(behaviour.delay)
        if behaviour and behaviour.status != 200:
            body = json.dumps({"error": f"injected HTTP {behaviour.status}"}).encode()
            return behaviour.status, {"Content-Type": "application/json", **behaviour.headers}, body
        if request.path.startswith("/slack"):
            return 200, {"Content-Type": "text/plain"}, b"ok"
        if request.path.startswith("/telegram"):
            sent = json.dumps({"ok": True, "result": {"message_id": len(self.received)}})
            return 200, {"Content-Type": "application/json"}, sent.encode()
        if request.path.startswith(_NOT_NTFY):
            return 200, {"Content-Type": "application/json"}, b'{"ok": true}'
        message = _ntfy_message(request) or {"error": "no topic"}
        status = 200 if "id" in message else 400
        return status, {"Content-Type": "application/json"}, json.dumps(message).encode()


_NOT_NTFY = ("/hooks", "/slack", "/discord", "/telegram")


def _ntfy_message(request: Received) -> dict[str, Any] | None:
    """ntfy's publish API: JSON at the root (`{"topic", "message", "title"…}`) or the body as
    the message at /TOPIC with X-Title and friends as headers."""
    topic = request.path.strip("/")
    if not topic:
        try:
            data = request.json()
        except ValueError:
            return None
        if not isinstance(data, dict) or not data.get("topic"):
            return None
        topic, message, title = data["topic"], data.get("message", ""), data.get("title")
    else:
        message = request.body.decode("utf-8", "replace")
        title = request.header("x-title") or request.header("title")
    return {"id": f"m{abs(hash((topic, request.at))) % 10**8}", "time": int(request.at),
            "event": "message", "topic": topic, "title": title, "message": message}  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    receivers: Receivers
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Received(self.command, urlsplit(self.path).path,
                           {k.lower(): v for k, v in self.headers.items()}, body)  # fmt: skip
        self.receivers._record(request)
        behaviour = self.receivers._take(request.path)
        if behaviour and behaviour.trickle:
            self._trickle(behaviour.trickle)
            return
        if behaviour and behaviour.huge:
            self._huge(behaviour)
            return
        answer = self.receivers.respond(request, behaviour)
        if answer is None:
            self.close_connection = True
            return
        status, headers, payload = answer
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _trickle(self, seconds: float) -> None:
        self.close_connection = True
        trickle_head(self.wfile, seconds)

    def _huge(self, behaviour: _Behaviour) -> None:
        self.close_connection = True
        self.send_response(behaviour.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(behaviour.huge))
        self.end_headers()
        written, chunk = 0, b"A" * 2**16
        try:
            while written < behaviour.huge:
                piece = chunk[: behaviour.huge - written]
                self.wfile.write(piece)
                written += len(piece)
        finally:
            with self.receivers._arrived:
                self.receivers.written.append(written)
                self.receivers._arrived.notify_all()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = _serve


# Apprise services that only talk to their own cloud hosts, and the class attribute that
# holds each one's API root (Apprise's plugin code builds the rest of the request).
_CLOUD_PLUGINS = {
    "slack": ("apprise.plugins.slack", "NotifySlack", "webhook_url", "/slack/services"),
    "discord": ("apprise.plugins.discord", "NotifyDiscord", "notify_url", "/discord/webhooks"),
    "telegram": ("apprise.plugins.telegram", "NotifyTelegram", "notify_url", "/telegram/bot"),
}


@contextmanager
def apprise_to(receivers: Receivers) -> Iterator[None]:
    """Within the block, Apprise's Slack, Discord and Telegram plugins (in this process) send
    their real requests to the loopback receivers instead of the services' hosts."""
    import importlib

    saved = []
    for module_name, cls_name, attr, path in _CLOUD_PLUGINS.values():
        cls = getattr(importlib.import_module(module_name), cls_name)
        saved.append((cls, attr, getattr(cls, attr)))
        setattr(cls, attr, receivers.url(path))
    try:
        yield
    finally:
        for cls, attr, value in saved:
            setattr(cls, attr, value)


class SmtpReceiver:
    """A loopback SMTP server keeping every message; `url(to)` is its Apprise mailto URL."""

    def __init__(self, user: str | None = None, password: str | None = None) -> None:
        self.user, self.password = user, password
        self.messages: list[EmailMessage] = []
        self._controller: Any = None
        self._arrived = threading.Condition()

    def start(self) -> SmtpReceiver:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with receiver._arrived:
                    receiver.messages.append(message)
                    receiver._arrived.notify_all()
                return "250 OK"

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                         auth_data: Any) -> AuthResult:  # fmt: skip
            ok = (auth_data.login.decode(), auth_data.password.decode()) == (
                self.user, self.password)  # fmt: skip
            return AuthResult(success=ok)

        extra: dict[str, Any] = {}
        if self.user:
            extra = {"authenticator": authenticate, "auth_require_tls": False}
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=_free_port(), **extra)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller:
            self._controller.stop()

    def __enter__(self) -> SmtpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def url(self, to: str = "founder@example.com", sender: str = "alerts@example.com") -> str:
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"mailto://{auth}127.0.0.1:{self.port}?to={to}&from={sender}&mode=insecure"

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        end = time.monotonic() + timeout
        with self._arrived:
            while len(self.messages) < count and time.monotonic() < end:
                self._arrived.wait(end - time.monotonic())
            return list(self.messages)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
