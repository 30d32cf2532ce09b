"""PostgreSQL URLs as users write them: the password masked wherever a URL is shown, and
mentionwatch's own `schema=NAME` parameter (several brands in one database, one schema
each) taken out before libpq reads the rest. No driver is imported here."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


# libpq reads a password from the URL's user part or from a `password=` parameter.
_QUERY_PASSWORD = re.compile(r"(?i)((?:^|&)(?:ssl)?password=)[^&]*")


def masked(url: str) -> str:
    """The URL with its password (if any, in the user part or a parameter) replaced by ***."""
    try:
        parts = urlsplit(url)
        secret = parts.password
    except ValueError:
        return re.sub(r"(//[^/:@]*:)[^/@]*@", r"\1***@", url).split("?", 1)[0]
    if parts.query:
        parts = parts._replace(query=_QUERY_PASSWORD.sub(r"\1***", parts.query))
    if secret:
        netloc = parts.netloc.rsplit("@", 1)
        user = netloc[0].split(":", 1)[0]
        parts = parts._replace(netloc=f"{user}:***@{netloc[1]}")
    return urlunsplit(parts)


def password(url: str) -> str | None:
    """The URL's password: its user part's, else a `password=` parameter's."""
    try:
        parts = urlsplit(url)
        secret = parts.password
    except ValueError:
        return None
    given = [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    return secret or (given[-1] if given else None)


def split_schema(url: str) -> tuple[str, str | None]:
    """(the URL libpq reads, the schema named by `schema=`, if any). Raises ValueError for
    a schema name that is not a plain identifier."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in query if k == "schema"]
    if not schemas:
        return url, None
    schema = schemas[-1]
    if not _SCHEMA.fullmatch(schema):
        raise ValueError(
            f"schema={schema!r}: a schema name is letters, digits and _ (not starting with "
            "a digit), at most 63 characters"
        )
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema
