"""The one scrubber: every secret the process holds, removed from text before it is stored,
logged or printed.

It learns secrets from two places: the config (every option marked secret, once resolved) and
run time (every credential a request carries — Authorization, cookies, API-key headers — and
the tokens sources obtain, such as OAuth access tokens and session JWTs). A server or proxy
that echoes a credential back, raw or encoded, finds it replaced by `***` in every error line,
database row, log record and traceback.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
# Shorter values are not scrubbed: they would garble ordinary words, and nothing real is that
# short (a cookie named "lang=en" is not a credential).
MIN_LENGTH = 4
# A message cut short (error reasons are truncated to one line) may end inside a secret: this
# many leading characters of a longer secret are enough to mask what follows of it.
PARTIAL = 8
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie", "x-api-key", "api-key",
                       "x-auth-token", "x-access-token", "private-token")  # fmt: skip

_lock = threading.Lock()
_secrets: dict[str, list[str]] = {}  # leading characters -> the secrets that start so
_pattern: re.Pattern[str] | None = None


def register(*values: str | None) -> None:
    """Remember secrets, with the forms an echo may take (URL-, JSON- and HTML-escaped)."""
    global _pattern
    forms = {form for value in values if value for form in _forms(value)}
    with _lock:
        known = {s for group in _secrets.values() for s in group}
        if forms <= known:
            return
        for form in forms - known:
            _secrets.setdefault(form[:PARTIAL], []).append(form)
        _pattern = re.compile("|".join(map(re.escape, sorted(_secrets, key=len, reverse=True))))


def _forms(value: str) -> Iterable[str]:
    import html  # here: it loads 2,000 entities, which a config without secrets never needs

    value = value.strip()
    if len(value) < MIN_LENGTH:
        return ()
    forms = {value, quote(value, safe=""), quote_plus(value), html.escape(value),
             json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1]}  # fmt: skip
    return {f for f in forms if len(f) >= MIN_LENGTH}


def scrub(text: str) -> str:
    """`text` with every known secret, and what is left of one cut short, replaced by ***."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    parts: list[str] = []
    done = 0
    for match in pattern.finditer(text):
        start = match.start()
        if start < done:
            continue
        end = max(start + _common_length(text, start, s) for s in _secrets[match.group()])
        parts += (text[done:start], MASK)
        done = end
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def _common_length(text: str, start: int, secret: str) -> int:
    """How many characters of `secret` the text repeats from `start`."""
    if text.startswith(secret, start):
        return len(secret)
    length = PARTIAL
    while length < len(secret) and start + length < len(text):
        if text[start + length] != secret[length]:
            break
        length += 1
    return length


def forget() -> None:
    """Drop every registered secret (a new config is loaded in the same process: tests)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def register_headers(headers: Any) -> None:
    """Remember the credentials a request carries: whole header values, the token after an
    auth scheme ("Bearer …"), Basic credentials decoded, and each cookie's value."""
    for name in _CREDENTIAL_HEADERS:
        for value in _all(headers, name):
            if name == "cookie":  # each cookie's value; their names are not secret
                register(*(part.partition("=")[2] for part in value.split(";")))
                continue
            register(value)
            scheme, _, token = value.partition(" ")
            if token and name.endswith("authorization"):
                register(token.strip())
                if scheme.lower() == "basic":
                    register(*_basic(token.strip()))


def _all(headers: Any, name: str) -> list[str]:
    get_list = getattr(headers, "get_list", None)
    if callable(get_list):
        return list(get_list(name))
    value = headers.get(name) if headers is not None else None
    return [value] if value else []


def _basic(token: str) -> list[str]:
    import base64
    import binascii

    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return []
    password = decoded.partition(":")[2]
    return [decoded, password]  # the user name alone is not secret


async def note_request(request: Any) -> None:
    """An httpx request hook: learn the credentials of every request before it is sent,
    including those httpx adds itself (auth=, the cookie jar)."""
    register_headers(request.headers)


def guard_logging() -> None:
    """Scrub every log record Python prints (asyncio's "exception never retrieved", a
    library's warning): the last-resort handler and any root handler get a scrubbing
    formatter."""
    import logging

    from mentionwatch.text import inert

    class Scrubbing(logging.Formatter):
        def __init__(self, inner: logging.Formatter | None) -> None:
            super().__init__()
            self.inner = inner or logging.Formatter()

        def format(self, record: logging.LogRecord) -> str:
            return inert(self.inner.format(record))

    for handler in (logging.lastResort, *logging.getLogger().handlers):
        if handler is not None and type(handler.formatter).__name__ != "Scrubbing":
            handler.setFormatter(Scrubbing(handler.formatter))


def print_traceback() -> None:
    """The current exception's traceback (for --debug), scrubbed and with controls removed."""
    import traceback

    from mentionwatch.text import inert

    print(inert(traceback.format_exc()), file=sys.stderr, end="")
