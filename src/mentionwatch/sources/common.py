"""What every source adapter shares, so each platform module holds only its own facts.

- Reading: `Obj` reads one JSON object strictly. A missing or mistyped field raises
  `Malformed`, one line naming the item and the field (`item 3 has no "html_url"`);
  `convert` turns a page of items into mentions, keeping the good ones and collecting the
  problems. `dig`, `count`, `string` and `parse_time` are the lenient guards for optional
  extras (threads, reply lookups).
- Complete capture: `capture` walks each search of a job newest first until it reaches what
  the last poll covered, minus an overlap for platforms that index late (the store dedupes
  the repeats). A walk cut off by a page cap, a read budget, a crash or an error leaves a gap
  in the cursor, which the next poll reads first: no holes under any cap. The cursor moves
  with every page, in the transaction that saves it.
- Query length: `fit` splits a term into searches that each fit a platform's limit, or fails
  with a line naming the limit: never truncated, never silent.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mentionwatch.errors import SourceError
from mentionwatch.models import Mention, Page, from_epoch, parse_iso
from mentionwatch.query import Query

# Reading platform JSON


class Malformed(SourceError):
    """A page or an item is not the shape the platform documents."""


def describe(value: Any) -> str:
    """What a JSON value is, for messages: null, a string, a number, a list, an object…"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    kinds = {str: "a string", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return kinds.get(type(value), type(value).__name__)


class Obj:
    """One JSON object from a platform, read strictly. `where` names it in problems."""

    __slots__ = ("data", "where")

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise Malformed(f"{where} is {describe(data)} where an object belongs")
        self.data: dict[str, Any] = data
        self.where = where

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def _typed(
        self, key: str, kinds: tuple[type, ...], wanted: str, required: bool, nullable: bool = True
    ) -> Any:
        value = self.data.get(key)
        if value is None:
            if not required and (nullable or key not in self.data):
                return None
            if key not in self.data:
                raise Malformed(f'{self.where} has no "{key}"')
            raise Malformed(f'{self.where} has "{key}": null where {wanted} belongs')
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise Malformed(f'{self.where} has "{key}": {describe(value)} where {wanted} belongs')
        return value

    def string(self, key: str, *, required: bool = True) -> Any:
        """The string at `key`; None when optional and missing or null."""
        return self._typed(key, (str,), "a string", required)

    def need(self, key: str) -> str:
        """A string that must be there and not be empty."""
        value: str = self._typed(key, (str,), "a string", True)
        if not value.strip():
            raise Malformed(f'{self.where} has an empty "{key}"')
        return value

    def integer(self, key: str, *, required: bool = False) -> int | None:
        value: int | None = self._typed(key, (int,), "a number", required)
        return value

    def number(self, key: str, *, required: bool = True) -> float | None:
        value = self._typed(key, (int, float), "a number", required)
        return None if value is None else float(value)

    def count(self, key: str) -> int:
        """A counter (likes, points): 0 when missing or null; never negative."""
        value = self.integer(key)
        return max(0, value) if value is not None else 0

    def flag(self, key: str) -> bool:
        return bool(self._typed(key, (bool,), "true or false", False))

    def obj(self, key: str, *, required: bool = True) -> Obj | None:
        value = self._typed(key, (dict,), "an object", required)
        return None if value is None else Obj(value, f'{self.where} "{key}"')

    def array(self, key: str, *, required: bool = True, nullable: bool = True) -> list[Any]:
        """The list at `key`; [] when optional and missing (or null, when `nullable`)."""
        value = self._typed(key, (list,), "a list", required, nullable)
        return [] if value is None else value

    def time(self, key: str, *, required: bool = True) -> datetime | None:
        """An ISO 8601 string or epoch seconds."""
        value = self._typed(key, (str, int, float), "a time", required)
        if value is None:
            return None
        moment = parse_time(value)
        if moment is None:
            raise Malformed(f'{self.where} has "{key}": {json.dumps(value)[:40]}, not a time')
        return moment


def page_of(data: Any, where: str) -> Obj:
    """The top-level object of a response (`the search answer`), read strictly."""
    return Obj(data, where)


def convert(
    items: Sequence[Any],
    to_mention: Callable[[Obj], Mention | list[Mention] | None],
    page: int = 1,
) -> tuple[list[Mention], list[str]]:
    """The mentions of a page's items, and a problem line for each item that is malformed.

    `to_mention` returns None for an item that is fine but not a mention (a deleted post), or
    a list for an item that holds several (a comment thread with its replies).
    """
    mentions: list[Mention] = []
    problems = []
    for number, raw in enumerate(items, 1):
        where = f"item {number}" if page == 1 else f"item {number} on page {page}"
        try:
            mention = to_mention(Obj(raw, where))
        except Malformed as exc:
            problems.append(str(exc))
            continue
        if isinstance(mention, list):
            mentions += mention
        elif mention is not None:
            mentions.append(mention)
    return mentions, problems


def anchor(
    items: Sequence[Any], at: Callable[[Any], Any], ident: Callable[[Any], Any] | None = None
) -> Anchor | None:
    """Where a page ends: the earliest time among its items (read leniently, so malformed
    items still count) and the platform id of its last item, for resuming after it."""
    times = [t for t in (parse_time(at(i)) for i in items if isinstance(i, dict)) if t]
    if not times:
        return None
    ids = [ident(i) for i in items if isinstance(i, dict)] if ident else []
    last = next((str(i) for i in reversed(ids) if isinstance(i, str | int) and str(i)), None)
    return Anchor(min(times).timestamp(), last)


def dig(data: Any, *keys: str | int) -> Any:
    """data[k1][k2]…, or None as soon as a step is missing or of the wrong type."""
    for key in keys:
        if isinstance(key, int) and isinstance(data, list) and -len(data) <= key < len(data):
            data = data[key]
        elif isinstance(key, str) and isinstance(data, dict):
            data = data.get(key)
        else:
            return None
    return data


def count(value: Any) -> int:
    """A counter from an optional field: a non-negative integer, else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 string or epoch seconds as an aware UTC datetime; None if it is neither."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return from_epoch(value)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value.strip():
        try:
            return parse_iso(value)
        except ValueError:
            return None
    return None


# Complete capture


@dataclass(frozen=True, slots=True)
class Anchor:
    """The oldest item a walk has read: where its next page, or the next poll, continues."""

    at: float  # its sort time (creation), epoch seconds
    id: str | None = None  # the platform's handle for it: X until_id, Mastodon max_id, Reddit after


@dataclass(slots=True)
class Batch:
    """One page of a listing, newest first, as a source read it."""

    mentions: list[Mention]
    oldest: Anchor | None  # the page's oldest item; None when the page is empty
    more: bool  # the listing has another page
    problems: list[str] = field(default_factory=list)
    reads: int | None = None
    note: str | None = None
    # The platform says the page may have left items out (its search timed out: GitHub's
    # incomplete_results): its mentions are kept, but the cursor does not move past it.
    incomplete: bool = False


# A listing: pages of one search from `upper` (or the newest item) back towards `lower`. It
# may end early with `more` still true on its last batch: a read budget ran out.
Listing = Callable[[float, Anchor | None], AsyncGenerator[Batch, None]]


@dataclass(frozen=True, slots=True)
class Search:
    key: str  # names the search in the cursor; stable across polls
    listing: Listing
    # Listings sorted newest first stop at the first item older than the lower bound; a
    # loosely ranked one only at a page with nothing newer.
    newest_first: bool = True


class OutOfReach(SourceError):
    """Part of a gap can no longer be read (older than the platform keeps searchable)."""


# The sort time of a mention may be declared by its author: one far in the future must not
# push the cursor past everything that comes later.
_FUTURE_SLACK = 600.0


def capture(
    searches: Sequence[Search],
    cursor: str | None,
    *,
    first_since: float,
    overlap: float,
    max_pages: int,
    legacy: Callable[[str], float | None] | None = None,
) -> AsyncIterator[Page]:
    """Pages of every search, each carrying the job's whole cursor as it stands once that page
    is saved: a crash repeats work, never loses it. See the module docstring."""
    return _Capture(searches, cursor, first_since, overlap, max_pages, legacy).run()


@dataclass
class _Capture:
    searches: Sequence[Search]
    cursor: str | None
    first_since: float
    overlap: float
    max_pages: int
    legacy: Callable[[str], float | None] | None
    state: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def run(self) -> AsyncIterator[Page]:
        stored, legacy = load_walks(self.cursor, self.legacy)
        for search in self.searches:
            if search.key in stored:
                self.state[search.key] = stored[search.key]
            elif legacy is not None:  # a cursor of an earlier release: its time, for every search
                self.state[search.key] = {"mark": legacy}
        for search in self.searches:
            async for page in self._walk(search):
                yield page

    def dump(self) -> str:
        return json.dumps({"v": 2, "walks": self.state}, sort_keys=True, separators=(",", ":"))

    async def _walk(self, search: Search) -> AsyncIterator[Page]:
        spot = self.state.get(search.key)
        gap = spot.get("gap") if spot else None
        if gap:
            upper = Anchor(float(gap["at"]), gap.get("id"))
            finished = False
            async for page, done in self._range(search, upper, float(gap["newest"])):
                finished = done
                yield page
            if not finished:
                return
        spot = self.state.get(search.key)
        mark = float(spot["mark"]) if spot else self.first_since
        async for page, _ in self._range(search, None, mark):
            yield page

    async def _range(
        self, search: Search, upper: Anchor | None, newest: float
    ) -> AsyncIterator[tuple[Page, bool]]:
        """Read from `upper` back to the mark; yields each page and whether the range is done."""
        spot = self.state.get(search.key)
        mark = float(spot["mark"]) if spot else self.first_since
        lower = mark - self.overlap if spot else mark
        ceiling = time.time() + _FUTURE_SLACK
        oldest, pages = upper, 0
        read: set[frozenset[str]] = set()  # the pages this range has read, by their items
        # From a page that may have left items out on, the walk reads on and saves what it
        # finds, but the cursor stays where it was before that page: the gap is kept, and
        # the next poll asks the range again.
        partial = False
        listing = search.listing(lower, upper)
        try:
            async for batch in listing:
                if batch.more and batch.oldest is None and not batch.mentions:
                    # The source stopped before reading anything (its read budget is spent).
                    yield Page([], None, batch.note, batch.reads, batch.problems), False
                    return
                items = frozenset(m.key for m in batch.mentions)
                if items and items in read:
                    # A page already read, again (a cursor that does not move, a cache that
                    # ignores the query): reading on would never end. The gap stays.
                    yield Page([], None, None, batch.reads, [*batch.problems, _STUCK]), False
                    return
                read.add(items)
                stamps = [m.created_at.timestamp() for m in batch.mentions]
                # Pages of the overlap alone (re-read for late posts) are bounded by the
                # overlap; only pages with something newer than the mark count as backlog.
                pages += not stamps or max(stamps) > mark
                newest = max([newest, *(min(s, ceiling) for s in stamps)])
                oldest = batch.oldest or oldest
                if batch.oldest is None:  # an empty page; or only malformed items: read on
                    reached = not (batch.mentions or batch.problems)
                elif search.newest_first:
                    reached = batch.oldest.at < lower
                else:
                    reached = not stamps or max(stamps) < lower
                done = reached or not batch.more
                partial = partial or batch.incomplete
                if done and not partial:
                    self.state[search.key] = {"mark": max(mark, newest)}
                elif oldest is not None and not partial:
                    gap = {"at": oldest.at, "id": oldest.id, "newest": newest}
                    self.state[search.key] = {"mark": mark, "gap": gap}
                capped = not done and pages >= self.max_pages
                note = batch.note or (_PARTIAL if partial else _BACKLOG if capped else None)
                kept = [m for m in batch.mentions if m.created_at.timestamp() >= lower]
                cursor = None if partial else self.dump()
                yield Page(kept, cursor, note, batch.reads, batch.problems), done and not partial
                if done or capped:
                    return
        except OutOfReach as exc:
            # What is left of the gap cannot be read any more: say so, and go on from here.
            self.state[search.key] = {"mark": max(mark, newest)}
            yield Page([], self.dump(), problems=[str(exc)]), True
        finally:
            await listing.aclose()


_BACKLOG = "more than one poll's pages waiting: the rest comes with the next poll"
_PARTIAL = "the platform's search timed out and may have left posts out: read again next poll"
_STUCK = (
    "the platform answered the next page with one it had already sent (its paging is stuck, "
    "or a cache in the way ignores the query): stopped reading there"
)


def load_walks(
    cursor: str | None, legacy: Callable[[str], float | None] | None = None
) -> tuple[dict[str, dict[str, Any]], float | None]:
    """Each search's mark and gap from a stored cursor; or, for a cursor of an earlier release
    (a bare time, id or JSON), the one mark `legacy` reads from it."""
    if not cursor:
        return {}, None
    try:
        data = json.loads(cursor)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("v") == 2 and isinstance(data.get("walks"), dict):
        return {k: v for k, v in data["walks"].items() if _valid_walk(v)}, None
    return {}, (legacy or legacy_mark)(cursor)


def _valid_walk(walk: Any) -> bool:
    if not isinstance(walk, dict) or not isinstance(walk.get("mark"), int | float):
        return False
    gap = walk.get("gap")
    return gap is None or (
        isinstance(gap, dict)
        and isinstance(gap.get("at"), int | float)
        and isinstance(gap.get("newest"), int | float)
        and isinstance(gap.get("id"), str | None)
    )


def legacy_mark(cursor: str) -> float | None:
    """The newest time an older cursor held: epoch seconds, an ISO time, or JSON with a
    `created` time (Reddit's)."""
    moment = parse_time(float(cursor)) if _is_number(cursor) else parse_time(cursor)
    if moment is not None:
        return moment.timestamp()
    try:
        data = json.loads(cursor)
    except ValueError:
        return None
    created = data.get("created") if isinstance(data, dict) else None
    found = parse_time(created)
    return found.timestamp() if found else None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# Query length


class QueryTooLong(SourceError):
    """A term cannot be searched on a platform within its query-length limit."""


def fit(
    query: Query,
    limit: int,
    render: Callable[[Query], str],
    *,
    source: str,
    term: str,
    size: Callable[[str], int] = len,
    fits: Callable[[str], bool] | None = None,
    together: bool = True,
) -> list[str]:
    """The searches that cover `query` within a platform's limit, merged by the caller.

    With `together`, alternatives are joined into as few searches as fit (OR); otherwise each
    alternative is its own search. Exclusions are dropped from a search that does not fit with
    them, and a long alternative is searched by its most telling words only: both widen the
    search, and the local matcher still decides. An atom that alone is too long fails with a
    line naming the limit.
    """
    allowed = fits or (lambda text: size(text) <= limit)
    groups: list[list[tuple[str, ...]]] = []
    for alternative in query.alternatives:
        if together and groups and allowed(render(Query((*groups[-1], alternative), ()))):
            groups[-1].append(alternative)
        else:
            groups.append([alternative])
    searches = []
    for group in groups:
        full = render(Query(tuple(group), query.exclusions))
        if allowed(full):
            searches.append(full)
            continue
        bare = render(Query(tuple(group), ()))
        searches.append(bare if allowed(bare) else _widened(group[0], render, allowed))
    if any(not allowed(s) for s in searches):
        raise _too_long(source, term, limit)
    return list(dict.fromkeys(searches))


def _widened(
    alternative: tuple[str, ...], render: Callable[[Query], str], allowed: Callable[[str], bool]
) -> str:
    """The longest atoms of one alternative that fit together (all of them must match anyway)."""
    chosen: list[str] = []
    for atom in sorted(alternative, key=len, reverse=True):
        if allowed(render(Query((tuple([*chosen, atom]),), ()))):
            chosen.append(atom)
    return render(Query((tuple(chosen),), ())) if chosen else render(Query((alternative[:1],), ()))


def _too_long(source: str, term: str, limit: int) -> QueryTooLong:
    return QueryTooLong(
        f"{source}: term {term!r} has a word or phrase too long to search: the platform allows "
        f"{limit} characters per query; shorten it"
    )
