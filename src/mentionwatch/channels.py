"""How each kind of alert channel is spoken to, and messages written for people.

- a webhook (an http(s) URL): one signed JSON event per delivery, the contract in design.md;
- a command: the same JSON on stdin, delivered when it exits 0;
- anything else goes to Apprise (ntfy, Slack, Discord, Telegram, Matrix, mail…) as a message
  a person reads: a headline, the text cut short, the link and the command to answer; for a
  pile-up, what piled up and a few examples; a digest as HTML for mail and Markdown for chat.

Mention text is hostile: `inert` makes it one line that no chat service, mail client or
terminal interprets (no pings, links, markup, controls or invisible characters). httpx and
Apprise are imported only when something is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import shlex
import subprocess
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from mentionwatch.alerts import mask_url, url_secrets
from mentionwatch.text import clean

GROUP_SHOWN = 5  # mentions listed in one grouped message; the rest are counted
SINGLE_EXCERPT, GROUPED_EXCERPT = 280, 120  # characters of mention text in a message
ANSWER_EXCERPT_BYTES = 4096  # of a failing webhook's answer, read to say why it failed


_FORMAT_CHARS = {"Cf", "Zl", "Zp"}  # invisible formatting and line/paragraph separators
_MD_LINK = re.compile(r"!?\[([^\]\n]*)\]\(\s*([^)\s]*)[^)]*\)")
# @ starts a ping on Slack, Discord, Matrix and Telegram; < > make Slack's <!channel>,
# <@U123> and <url|text>, and HTML; [ ] make markdown links. Each becomes a look-alike
# that no service parses (visible characters: never an invisible one).
_DEFUSE = str.maketrans({"@": "\uff20", "<": "\u2039", ">": "\u203a", "[": "\uff3b", "]": "\uff3d"})
_MASS_PING = re.compile(r"@(?=(?:everyone|here|channel|room|all|group)\b)", re.I)


def inert(value: object) -> str:
    """Untrusted text as one line that no chat service, mail client or terminal interprets:
    controls and invisible characters removed, pings, links and markup defused."""
    if value is None:
        return ""
    text = clean(str(value))
    text = "".join(" " if unicodedata.category(c) in _FORMAT_CHARS else c for c in text)
    text = " ".join(text.split())
    # A disguised link shows where it really goes.
    text = _MD_LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})" if m.group(2) else m.group(1),
                        text)  # fmt: skip
    return text.translate(_DEFUSE)


def safe_link(url: object) -> str | None:
    """A mention's own link, if it is a plain http(s) URL, with anything that could break out
    of it (spaces, brackets, pings) percent-encoded; None otherwise."""
    if not isinstance(url, str):
        return None
    url = "".join(c for c in clean(url) if unicodedata.category(c) not in _FORMAT_CHARS)
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    keep = "/%:=&?~#+!$,;'*-._"

    def enc(piece: str) -> str:
        return quote(_MASS_PING.sub("%40", piece), safe=keep + "@")

    return urlunsplit((parts.scheme, parts.netloc, enc(parts.path), enc(parts.query),
                       enc(parts.fragment)))  # fmt: skip


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.") + "…"


def headline(rec: Mapping[str, Any]) -> str:
    """`negative · reddit · acme — ＠author`: what it is, where, about what, by whom."""
    parts = [rec.get("sentiment"), rec.get("source"), ", ".join(rec.get("terms") or ())]
    line = " · ".join(inert(p) for p in parts if p)
    author = inert(rec.get("author"))
    return f"{line} — \uff20{author.lstrip(chr(0xFF20))}" if author else line


def _excerpt(rec: Mapping[str, Any], limit: int) -> str:
    text = inert(rec.get("text"))
    title = inert(rec.get("title"))
    if title and not text:
        text = title
    return f"“{shorten(text, limit)}”" if text else ""


def single_message(alert: str, rec: Mapping[str, Any]) -> tuple[str, str]:
    """Title and body of a message about one mention."""
    lines = []
    title = inert(rec.get("title"))
    if title and rec.get("text"):
        lines.append(shorten(title, 120))
    lines.append(_excerpt(rec, SINGLE_EXCERPT))
    link = safe_link(rec.get("url"))
    if link:
        lines.append(link)
    lines.append(f"Answer: mentionwatch reply {rec.get('id')} · alert: {inert(alert)}")
    return headline(rec), "\n".join(x for x in lines if x)


def grouped_message(alert: str, recs: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """Title and body of one message about several mentions: the first few, then a count."""
    shown = recs[:GROUP_SHOWN]
    lines = []
    for rec in shown:
        link = safe_link(rec.get("url"))
        line = f"• {headline(rec)}: {_excerpt(rec, GROUPED_EXCERPT)}"
        lines.append(line + (f" {link}" if link else "") + f" (reply {rec.get('id')})")
    if len(recs) > len(shown):
        lines.append(f"…and {len(recs) - len(shown)} more: mentionwatch feed --since 1h")
    lines.append(f"Answer: mentionwatch reply ID · alert: {inert(alert)}")
    return f"{inert(alert)}: {len(recs)} new mentions", "\n".join(lines)


def _window(spike: Mapping[str, Any]) -> tuple[str, str, str]:
    """The spike's window in the event's zone: (start, end, how long)."""
    from mentionwatch.models import parse_iso
    from mentionwatch.trends import zone_from_name

    zone = zone_from_name(spike.get("zone"))
    start, end = (parse_iso(spike[k]).astimezone(zone) for k in ("window_start", "window_end"))
    minutes = max(1, round((end - start).total_seconds() / 60))
    length = f"{minutes} min" if minutes < 120 else f"{minutes / 60:.0f} h"
    day = "%a %H:%M" if (end - start).days or start.date() != end.date() else "%H:%M"
    return start.strftime("%a %H:%M"), end.strftime(day), length


def spike_message(alert: str, spike: Mapping[str, Any]) -> tuple[str, str]:
    """Title and body of a message about a pile-up (or its end)."""
    term = inert(spike.get("term"))
    sentiment = inert(spike.get("sentiment"))
    what = f"{sentiment} mentions" if sentiment else "mentions"
    about = f"{term} ({sentiment})" if sentiment else term
    start, end, length = _window(spike)
    expected = f"about {float(spike.get('baseline') or 0):.1f} expected"
    if spike.get("kind") == "end":
        title = f"pile-up over · {about}"
        lines = [f"The pile-up on {term} that began {start} is over: at most {spike.get('count')} "
                 f"{what} in a window ({expected}), quiet since {end}."]  # fmt: skip
    else:
        baseline = float(spike.get("baseline") or 0)
        ratio = f"{spike['count'] / baseline:.0f}× the usual" if baseline else "none usual"
        title = f"pile-up · {about}: {spike.get('count')} {what} in {length}"
        echoes = int(spike.get("echoes") or 0)
        repeats = f"; {echoes} of them repeat other posts" if echoes else ""
        lines = [f"{spike.get('count')} {what} of {term} from {start} to {end}, {expected} "
                 f"({ratio}){repeats}."]  # fmt: skip
        for rec in spike.get("examples") or ():
            link = safe_link(rec.get("url"))
            line = f"• {headline(rec)}: {_excerpt(rec, GROUPED_EXCERPT)}"
            lines.append(line + (f" {link}" if link else "") + f" (reply {rec.get('id')})")
        flags = f"--term {shlex.quote(str(spike.get('term')))}"
        if spike.get("sentiment"):
            flags += f" --sentiment {spike['sentiment']}"
        lines.append(f"See them: mentionwatch feed {inert(flags)} --since {spike['window_start']}")
    lines.append(f"alert: {inert(alert)}")
    return title, "\n".join(lines)


@dataclass(frozen=True)
class Message:
    """A message for people: plain text, and the richer forms a service may prefer."""

    title: str
    text: str
    markdown: str | None = None  # chat services (Slack, Discord, Telegram, Matrix…)
    html: str | None = None  # mail


def event_message(alert: str, payload: Mapping[str, Any]) -> Message:
    """The message a person gets for one queued event (a mention, a pile-up or a digest)."""
    from mentionwatch import trendview

    event = payload.get("event")
    if event == "spike":
        return Message(*spike_message(alert, payload.get("spike") or {}))
    if event == "digest":
        data = payload.get("digest") or {}
        moved = data.get("change")
        title = (f"{inert(alert)}: {data.get('total', 0)} mentions, {data.get('negative', 0)} "
                 f"negative{f' ({moved:+.0%})' if moved is not None else ''}")  # fmt: skip
        text = trendview.digest_text(data, defused=True)
        page = trendview.digest_html(data, defused=True)
        return Message(title, text, trendview.digest_markdown(data), page)
    return Message(*single_message(alert, payload.get("mention") or {}))


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str  # "HTTP 200", "timed out after 5s", what Apprise said…
    retry_after: float | None = None  # seconds the receiver asked us to wait (Retry-After)


class Channel:
    kind = ""
    per_event = True  # machines get one event per mention; people channels get messages

    def __init__(self, target: str) -> None:
        self.target = target  # may hold secrets: never printed or stored
        self.id = hashlib.sha256(f"{self.kind}:{target}".encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """The channel as shown to people: its secrets masked."""
        return mask_url(self.target)

    def scrub(self, text: str) -> str:
        """An answer fit to show and store: any part of the channel's URL that is secret
        (a token the service echoes back, say) replaced by ***."""
        for secret in url_secrets(self.target):
            text = text.replace(secret, "***")
        return text

    def send_event(self, body: dict[str, Any], timeout: float) -> Outcome:
        raise NotImplementedError

    def send_message(
        self, title: str, body: str, timeout: float, markdown: str | None = None,
        html: str | None = None,
    ) -> Outcome:  # fmt: skip
        """Send `body` (plain text), or its `markdown` or `html` form where the service
        reads that."""
        raise NotImplementedError


def event_body(payload: Mapping[str, Any], delivery: str) -> dict[str, Any]:
    """The webhook body: `event`, `alert`, `delivery` first, then what the event carries."""
    return {"event": payload["event"], "alert": payload["alert"], "delivery": delivery,
            **{k: v for k, v in payload.items() if k not in ("event", "alert")}}  # fmt: skip


def sign(secret: str, body: bytes) -> str:
    """The X-Mentionwatch-Signature-256 value: GitHub's webhook convention."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel(Channel):
    kind = "webhook"

    def __init__(self, url: str, secret: str | None) -> None:
        super().__init__(url)
        self.secret = secret

    def send_event(self, body: dict[str, Any], timeout: float) -> Outcome:
        import asyncio

        import httpx

        from mentionwatch.http import DEFAULT_USER_AGENT

        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": DEFAULT_USER_AGENT,
            # Only the first words of an answer are read: uncompressed, they can be shown.
            "Accept-Encoding": "identity",
            "X-Mentionwatch-Event": body["event"],
            "X-Mentionwatch-Delivery": body["delivery"],
        }
        if self.secret:
            headers["X-Mentionwatch-Signature-256"] = sign(self.secret, raw)
        try:
            # The whole exchange within `timeout`: httpx's timeouts are per read, so a
            # receiver that trickles its answer a byte at a time would hold the channel
            # (and a cron poll waiting for it) forever.
            return asyncio.run(asyncio.wait_for(self._post(raw, headers, timeout), timeout))
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(False, f"no answer within {timeout:g}s")
        except httpx.ConnectError as exc:
            return Outcome(False, f"cannot connect ({type(exc).__name__})")
        except httpx.HTTPError as exc:  # connected, but the answer broke off or made no sense
            return Outcome(False, f"no complete answer ({type(exc).__name__})")

    async def _post(self, raw: bytes, headers: dict[str, str], timeout: float) -> Outcome:
        import httpx

        # No redirects: a signed body goes only where the config says.
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
            client.stream("POST", self.target, content=raw, headers=headers) as response,
        ):
            detail = f"HTTP {response.status_code}"
            if response.is_success:  # the body is not read at all: a 2xx is the answer
                return Outcome(True, detail)
            excerpt = ""
            if response.headers.get("content-encoding", "identity") == "identity":
                answer = await _first_bytes(response, ANSWER_EXCERPT_BYTES)
                excerpt = answer.decode(response.charset_encoding or "utf-8", "replace")
            excerpt = self.scrub(inert(excerpt[:200]))
            return Outcome(False, f"{detail}: {shorten(excerpt, 80)}" if excerpt else detail,
                           _asked_wait(response))  # fmt: skip


def _asked_wait(response: Any) -> float | None:
    """The wait a receiver asks for with a 429 or 503 (Retry-After), at most a day."""
    from mentionwatch.http import MAX_WAIT, reset_delay

    if response.status_code not in (429, 503):
        return None
    wait = reset_delay(response.headers)
    return None if wait is None else min(wait, MAX_WAIT)


async def _first_bytes(response: Any, limit: int) -> bytes:
    """At most `limit` bytes of a streamed answer; the rest is never read (a receiver can
    answer with gigabytes)."""
    chunks, size = [], 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


class CommandChannel(Channel):
    kind = "command"

    def __init__(self, argv: Sequence[str]) -> None:
        super().__init__(shlex.join(argv))
        self.argv = list(argv)

    @property
    def label(self) -> str:
        more = f" (+{len(self.argv) - 1} arguments)" if len(self.argv) > 1 else ""
        return f"command: {self.argv[0]}{more}"

    def send_event(self, body: dict[str, Any], timeout: float) -> Outcome:
        import os

        env = {
            **os.environ,
            "MENTIONWATCH_EVENT": body["event"],
            "MENTIONWATCH_DELIVERY": body["delivery"],
            "MENTIONWATCH_ALERT": body["alert"],
        }
        try:
            done = subprocess.run(
                self.argv, input=json.dumps(body, ensure_ascii=False).encode(), env=env,
                capture_output=True, timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return Outcome(False, f"did not finish within {timeout:g}s")
        except OSError as exc:
            return Outcome(False, f"cannot run {self.argv[0]}: {exc.strerror or exc}")
        if done.returncode == 0:
            return Outcome(True, "exit 0")
        last = (done.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
        detail = f"exit {done.returncode}"
        return Outcome(False, f"{detail}: {shorten(inert(last), 80)}" if last else detail)


class AppriseChannel(Channel):
    kind = "apprise"
    per_event = False

    @property
    def label(self) -> str:
        plugin = apprise_plugin(self.target)
        if plugin is None:
            return mask_url(self.target)
        return str(plugin.url(privacy=True)).split("?", 1)[0]

    def send_message(
        self, title: str, body: str, timeout: float, markdown: str | None = None,
        html: str | None = None,
    ) -> Outcome:  # fmt: skip
        import apprise

        body, body_format = _richest(apprise_plugin(self.target), body, markdown, html)
        asset = apprise.AppriseAsset(
            app_id="mentionwatch", app_desc="mentionwatch alerts", async_mode=False,
            app_url="https://pypi.org/project/mentionwatch/",
        )  # fmt: skip
        notifier = apprise.Apprise(asset=asset)
        with _apprise_log() as said:
            if not notifier.add(self.target):
                return Outcome(False, "Apprise cannot use this URL")
            try:
                result = notifier.notify(body=body, title=title, body_format=body_format)
            except Exception as exc:  # a plugin bug must not stop the other channels
                return Outcome(False, f"Apprise failed: {type(exc).__name__}")
        if result:
            return Outcome(True, "accepted")
        reasons = said or _result_reasons(result)
        reason = reasons[-1] if reasons else "the service refused the message"
        return Outcome(False, self.scrub(shorten(inert(reason), 160)))


def _richest(plugin: Any, text: str, markdown: str | None, html: str | None) -> tuple[str, Any]:
    """The body and format to give Apprise: HTML for a mail service (its first format is
    HTML, and it has no Markdown), Markdown for a service that reads it (Apprise turns it into
    Slack's, Telegram's… own dialect), else plain text."""
    from apprise import NotifyFormat

    declared = getattr(plugin, "notify_format", NotifyFormat.TEXT) if plugin else NotifyFormat.TEXT
    formats = [str(getattr(f, "value", f)) for f in (
        declared if isinstance(declared, tuple | list) else (declared,))]  # fmt: skip
    if html and formats[:1] == ["html"] and "markdown" not in formats:
        return html, NotifyFormat.HTML
    if markdown and "markdown" in formats:
        return markdown, NotifyFormat.MARKDOWN
    return text, NotifyFormat.TEXT


def _result_reasons(result: Any) -> list[str]:
    """Apprise 2 sends from a thread pool and keeps each service's log in its result."""
    reasons = []
    for service in result if hasattr(result, "__iter__") else ():
        for entry in service.logs() if hasattr(service, "logs") else ():
            level = getattr(entry, "level", "")
            if str(level).upper() in ("WARNING", "ERROR", "CRITICAL", "30", "40", "50"):
                reasons.append(str(getattr(entry, "message", entry)))
    return reasons


def apprise_plugin(url: str) -> Any:
    import apprise

    with _apprise_log():
        return apprise.Apprise.instantiate(url)


class _ThreadLog(logging.Handler):
    """Collects Apprise's warnings per thread, so parallel channels keep their own reasons
    and nothing Apprise logs reaches the terminal unredacted."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.buffers: dict[int, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        buffer = self.buffers.get(threading.get_ident())
        if buffer is not None:
            buffer.append(record.getMessage())


_APPRISE_LOG = _ThreadLog()


class _apprise_log:
    def __enter__(self) -> list[str]:
        logger = logging.getLogger("apprise")
        if _APPRISE_LOG not in logger.handlers:
            logger.addHandler(_APPRISE_LOG)
            logger.propagate = False
        buffer: list[str] = []
        _APPRISE_LOG.buffers[threading.get_ident()] = buffer
        return buffer

    def __exit__(self, *exc: object) -> None:
        _APPRISE_LOG.buffers.pop(threading.get_ident(), None)
