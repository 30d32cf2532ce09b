"""Everything users see: the rich feed and detail view, and the JSON/JSONL/CSV/ids writers.

Mention text is hostile: it is cleaned of control characters and only ever handed to rich
as `Text` (never as markup), so it cannot recolour, clear or hyperlink the terminal.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import IO, TYPE_CHECKING, Any

from mentionwatch.models import (
    MENTION_COLUMNS,
    RECORD_KEYS,
    JobResult,
    Mention,
    PollReport,
    ThreadPost,
    iso,
    parse_iso,
    utcnow,
)
from mentionwatch.text import inert
from mentionwatch.triage import freshness, mention_priority

SENTIMENT_STYLE = {"positive": "bold green", "neutral": "dim", "negative": "bold red"}
SENTIMENT_TAG = {"positive": "+ pos", "neutral": "· neu", "negative": "- neg"}
INTENT_TAG = {"question": "?question", "complaint": "!complaint", "request": ">request",
              "praise": "*praise"}  # fmt: skip
STATUS_STYLE = {"open": "cyan", "handled": "green", "ignored": "dim"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FEED_TEXT_LIMIT = 400

if TYPE_CHECKING:  # rich is imported where a view is drawn, so export stays fast
    from rich.console import Console
    from rich.text import Text

    from mentionwatch.query import AtomPattern


def safe(value: object) -> str:
    """Any value as text that cannot drive the terminal or reveal a secret."""
    return inert(str(value)) if value is not None else ""


def record(m: Mention) -> dict[str, Any]:
    """The JSONL record of design.md: every key always present (models.RECORD_KEYS)."""
    return {key: get(m) for key, get in _RECORD_VALUES}


def _record_value(key: str) -> Callable[[Mention], Any]:
    if key == "key":
        return lambda m: m.key
    if key == "priority":
        return lambda m: round(mention_priority(m), 3)
    kind = dict(MENTION_COLUMNS).get(key)
    if kind == "time":
        return lambda m: iso(getattr(m, key))
    if kind == "json" or key == "terms":
        return lambda m: list(getattr(m, key))
    return lambda m: getattr(m, key)


_RECORD_VALUES = [(key, _record_value(key)) for key in RECORD_KEYS]


# How many distinct JSON lists (terms, intents) export keeps decoded: they repeat endlessly.
DECODED_LISTS = 10_000
# What a record reads of a stored mention (Store.rows(columns=...)): every record key but
# priority, which is made from priority_base and created_at.
ROW_COLUMNS = (*(key for key in RECORD_KEYS if key != "priority"), "priority_base")


def records(items: Iterable[Mention | Any]) -> Iterator[dict[str, Any]]:
    """JSONL records of Mentions, or of stored rows (Store.rows: export builds no Mention;
    stored times are already in the record's form)."""
    rows = iter(items)
    first = next(rows, None)
    if first is None:
        return
    if isinstance(first, Mention):
        yield from map(record, chain((first,), rows))
        return
    yield from _row_records(chain((first,), rows), list(first.keys()))


def _row_records(rows: Iterator[Any], names: list[str]) -> Iterator[dict[str, Any]]:
    """Records of stored rows with these columns: where each record key is in a row is
    worked out once, then every row is read by one itemgetter; the JSON lists and priority
    are filled after."""
    at = {name: i for i, name in enumerate(names)}
    kinds = dict(MENTION_COLUMNS)
    values = itemgetter(*(at.get(k, at["priority_base"]) for k in RECORD_KEYS))
    lists = [(k, at[k]) for k in RECORD_KEYS if k == "terms" or kinds.get(k) == "json"]
    base_at, created_at = at["priority_base"], at["created_at"]
    decode = lru_cache(maxsize=DECODED_LISTS)(json.loads)  # '[]', '["acme"]' again and again
    parse = datetime.fromisoformat
    now = utcnow().timestamp()
    for row in rows:
        rec = dict(zip(RECORD_KEYS, values(row), strict=True))
        for key, i in lists:
            rec[key] = decode(row[i] or "[]")
        age = now - parse(row[created_at]).timestamp()
        rec["priority"] = round(row[base_at] * freshness(age / 3600), 3)
        yield rec


def age(dt: datetime, now: datetime | None = None) -> str:
    """Compact age: 45s, 12m, 3h, 2d, 5w."""
    seconds = max(0, int(((now or utcnow()) - dt).total_seconds()))
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def about_product(relevance: float) -> bool:
    """A stored relevance score read as relevance.py reads it (that module is loaded only
    when a shown mention has a score: most feeds and every export never need it)."""
    from mentionwatch.relevance import THRESHOLD

    return relevance >= THRESHOLD


def _highlighted(value: str, patterns: Sequence[AtomPattern], style: str) -> Text:
    from rich.text import Text

    text = Text(safe(value))
    for pattern in patterns:
        for start, end in pattern.finditer(text.plain):
            text.stylize(style, start, end)
    return text


def _shorten(value: str, limit: int) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def entry_header(m: Mention, now: datetime, width: int | None = None) -> Text:
    """The first line of an entry; with a `width` it is fitted to one line (a terminal): the
    author's display name goes first, then the author is shortened, then the list of terms,
    and whatever is left is cut with an ellipsis, so the line never wraps."""
    header = _header(m, now, 0)
    if width is None:
        return header
    for tighter in range(1, 4):
        if header.cell_len <= width:
            return header
        header = _header(m, now, tighter)
    header.truncate(width, overflow="ellipsis")
    return header


def _header(m: Mention, now: datetime, tighter: int) -> Text:
    from rich.text import Text

    sentiment = m.sentiment or "neutral"
    header = Text(no_wrap=True, overflow="ellipsis")
    header.append(f"{m.id:>5} ", style="bold")
    header.append(f"[{SENTIMENT_TAG.get(sentiment, sentiment)}]", SENTIMENT_STYLE.get(sentiment))
    header.append(f" {m.source}", style="magenta")
    header.append(f"  {age(m.created_at, now)}", style="yellow")
    if m.author:
        author = safe(m.author) if tighter < 2 else _shorten(safe(m.author), 18)
        header.append(f"  {author}", style="bold blue")
        if m.author_name and m.author_name != m.author and tighter < 1:
            header.append(f" ({safe(m.author_name)})", style="blue")
    if m.reach is not None:
        header.append(f"  ▲{m.reach}")
    if m.intents:
        header.append("  " + " ".join(INTENT_TAG.get(i, i) for i in m.intents), style="yellow")
    if m.relevance is not None and not about_product(m.relevance):
        # Likely another thing of the same name: said in the header, as it changes what to do.
        header.append(f"  ~off-topic {m.relevance:.2f}", style="dim")
    header.append(f"  {m.status}", style=STATUS_STYLE.get(m.status))
    if m.terms:
        terms = [safe(t) for t in m.terms]
        if tighter >= 3 and len(terms) > 1:
            terms = [terms[0], f"+{len(terms) - 1}"]
        header.append("  " + ", ".join(terms), style="dim")
    return header


# Layout: lines that fit the terminal without ever cutting a word (a URL stays whole, so it
# can be clicked and copied), and hyperlinks on terminals that show them.

INDENT = 6


def fitted_lines(text: Text, width: int, indent: int = INDENT) -> list[Text]:
    """`text` word-wrapped to `width` columns, each line after `indent` spaces. A word too
    long for a line (a URL) is never cut: it gets a line of its own, unindented when even
    that is too narrow, and the terminal shows it whole."""

    from rich.cells import cell_len
    from rich.text import Text

    lines: list[Text] = []
    for paragraph in text.split("\n", allow_blank=True):
        plain = paragraph.plain
        breaks: list[int] = []
        column = 0
        for word in re.finditer(r"\S+\s*", plain):
            length = cell_len(word.group().rstrip())
            if column and column + length > width - indent:
                breaks.append(word.start())
                column = 0
            column += cell_len(word.group())
        for piece in paragraph.divide(breaks):
            piece.rstrip()
            lead = " " * indent if piece.cell_len + indent <= width else ""
            lines.append(Text.assemble(lead, piece))
    return lines


def link_target(url: str | None) -> str | None:
    """`url` when it may become a terminal hyperlink: http(s), a host, and only printable
    ASCII (no space, quote or control character that could end the escape sequence)."""
    from urllib.parse import urlsplit

    if not url or len(url) > 2000 or not all("!" <= ch <= "~" for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def supports_hyperlinks(env: Mapping[str, str], is_terminal: bool) -> bool:
    """Whether to print OSC 8 hyperlinks: FORCE_HYPERLINK=1/0 decides; otherwise only on a
    terminal known to show them (others would print the escape codes as text)."""
    forced = env.get("FORCE_HYPERLINK")
    if forced is not None:
        return forced not in ("", "0")
    if not is_terminal or env.get("TERM") == "dumb" or env.get("CI"):
        return False
    program = env.get("TERM_PROGRAM", "")
    if program in ("iTerm.app", "WezTerm", "vscode", "ghostty", "Hyper", "Tabby"):
        return True
    vte = env.get("VTE_VERSION", "")
    if vte.isdigit() and int(vte) >= 5000:  # GNOME Terminal, Tilix, Terminator…
        return True
    term = env.get("TERM", "")
    return any(
        (env.get("WT_SESSION"), env.get("KONSOLE_VERSION"), env.get("KITTY_WINDOW_ID"),
         term in ("xterm-kitty", "alacritty", "foot", "xterm-ghostty", "wezterm"))
    )  # fmt: skip


def url_text(url: str, hyperlinks: bool) -> Text:
    from rich.style import Style
    from rich.text import Text

    target = link_target(url) if hyperlinks else None
    style = Style(dim=True, underline=True, link=target) if target else "dim underline"
    return Text(safe(url), style=style)


@dataclass
class FeedSummary:
    """What the feed did not show, for the dim line under it."""

    statuses: tuple[str, ...]  # the statuses shown; () every status
    counts: dict[str, int]  # mentions that pass the filters, per status (status filter ignored)
    filtered: bool  # filters other than --status apply
    limit: int | None = None
    cap: int | None = None  # counts stopped here: a count equal to it means at least that


def feed_note(summary: FeedSummary, shown: int) -> str | None:
    """One line: nothing matched and why, how many more --limit held back, what is hidden."""
    chosen = summary.statuses or tuple(summary.counts)
    matching = sum(summary.counts.get(s, 0) for s in chosen)
    hidden = {s: n for s, n in summary.counts.items() if n and s not in chosen}
    hidden_part = ""
    if hidden:
        cap = summary.cap
        counts = " and ".join(
            f"{n}{'+' if cap and n >= cap else ''} {s}" for s, n in hidden.items()
        )
        verb = "" if shown else " is" if sum(hidden.values()) == 1 else " are"
        hidden_part = f"{counts}{verb} hidden: --status all"
    if shown == 0:
        which = " or ".join(summary.statuses) + " " if summary.statuses else ""
        if hidden_part:
            return f"no {which}mentions match; {hidden_part}"
        if summary.filtered:
            return f"no {which}mentions match these filters"
        return "no mentions yet: run 'mentionwatch poll' to fetch new ones"
    more = matching - shown
    capped = summary.cap is not None and any(n >= summary.cap for n in summary.counts.values())
    parts = [f"{more}{'+' if capped else ''} more: --limit 0 shows all"] if more > 0 else []
    if hidden_part:
        parts.append(hidden_part)
    return "; ".join(parts) or None


def print_feed(
    console: Console,
    mentions: Iterable[Mention],
    patterns: dict[str, list[AtomPattern]],
    summary: FeedSummary | None = None,
    hyperlinks: bool = False,
    echoes: dict[int, list[Mention]] | None = None,
) -> int:
    """One entry per mention, newest first, with who repeated it (`echoes` by entry id);
    returns how many were shown."""
    from rich.text import Text

    now = utcnow()
    terminal = console.is_terminal  # pipes and files get whole lines, terminals fitted ones
    width = console.width

    def block(text: Text) -> list[Text]:
        if not terminal:
            return [Text.assemble(" " * INDENT, text)]
        return fitted_lines(text, width)

    # An entry's lines go out in one print (rich joins them with the newlines separate
    # prints would write): each print costs rich ~40 µs before it draws anything.
    shown = 0
    for m in mentions:
        lines = [Text()] if shown else []  # a blank line between entries
        term_patterns = [p for t in m.terms for p in patterns.get(t, ())]
        lines.append(entry_header(m, now, width if terminal else None))
        if m.title:
            title = _highlighted(_shorten(m.title, 200), term_patterns, "bold yellow")
            # A comment's title is its thread's, shown as context rather than as its own.
            title.stylize("dim" if m.in_thread else "bold")
            lines += block(Text.assemble(("on: " if m.in_thread else "", "dim"), title))
        if m.text:
            lines += block(_highlighted(_shorten(m.text, FEED_TEXT_LIMIT), term_patterns,
                                        "bold yellow"))  # fmt: skip
        if m.url:
            lines += block(url_text(m.url, hyperlinks))
        if echoes and m.id in echoes:
            lines += block(echo_line(echoes[m.id]))
        console.print(*lines, sep="\n", soft_wrap=True)
        shown += 1
    note = feed_note(summary, shown) if summary else None
    if note:
        console.print(*([Text()] if shown else []), Text(note, style="dim"), sep="\n",
                      soft_wrap=True)  # fmt: skip
    return shown


def echo_line(group: Sequence[Mention], limit: int = 5) -> Text:
    """'↻ 3 echoes: bob (x), carol (bluesky), …' for a feed entry."""
    from rich.text import Text

    line = Text(f"↻ {len(group)} echo{'es' if len(group) != 1 else ''}: ", style="yellow")
    for i, e in enumerate(group[:limit]):
        line.append(", " if i else "")
        line.append(safe(e.author or "someone"), style="blue")
        line.append(f" ({e.source})", style="dim")
    if len(group) > limit:
        line.append(f", +{len(group) - limit} more (show {group[0].echo_of} lists them)")
    return line


_CONTEXT_KEYS = (
    ("kind", "kind"),
    ("story_id", "story"),
    ("parent_id", "parent"),
    ("link_title", "thread"),
    ("repo", "repository"),
    ("subreddit", "subreddit"),
    ("in_reply_to_id", "reply to"),
    ("conversation_id", "conversation"),
    ("link", "links to"),
)


def print_detail(
    console: Console,
    m: Mention,
    history: Sequence[Any],
    replies: Sequence[Any] = (),
    thread: Sequence[ThreadPost] = (),
    group: Sequence[Mention] = (),
) -> None:
    """One mention in full: fields, what it replies to, its text, its echo group (the
    original and every repeat of it, oldest first), replies sent, history."""
    from rich.text import Text

    wrap = not console.is_terminal

    def whole_words(text: Text) -> None:
        if wrap:
            console.print(text, soft_wrap=True)
            return
        for line in fitted_lines(text, console.width, indent=0):
            console.print(line, soft_wrap=True)

    def field(label: str, value: object) -> None:
        if value not in (None, ""):
            whole_words(Text(f"{label:>12}: ", style="bold") + Text(safe(value)))

    console.print(entry_header(m, utcnow(), None if wrap else console.width), soft_wrap=True)
    field("key", m.key)
    field("url", m.url)
    field("reply at", m.reply_url)
    field("created", iso(m.created_at))
    field("fetched", iso(m.fetched_at))
    field("polarity", f"{m.polarity:+.3f}" if m.polarity is not None else None)
    field("intents", ", ".join(m.intents))
    field("assigned to", m.assignee)
    if m.relevance is not None:
        verdict = "about your product" if about_product(m.relevance) else "probably another thing"
        field("relevance", f"{m.relevance:.2f} ({verdict})")
    field("in thread" if m.in_thread else "title", m.title)
    for key, label in _CONTEXT_KEYS:
        value = m.extra.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            field(label, value)
    for post in thread:
        console.print()
        label = "in reply to" if post.relation == "parent" else "thread started by"
        head = Text(f"{label} ", style="bold") + Text(safe(post.author or "someone"), "bold blue")
        if post.url:
            head.append(f"  {safe(post.url)}", style="dim")
        whole_words(head)
        whole_words(Text("  " + _shorten(safe(post.text), FEED_TEXT_LIMIT)))
    console.print()
    whole_words(Text(safe(m.text)))
    if len(group) > 1:
        console.print()
        others = [g for g in group if g.id != m.id]
        label = "echoes" if m.echo_of is None else f"repeats {m.echo_of}; its group"
        console.print(Text(f"{label} ({len(others)}):", style="bold"))
        for e in others:
            line = Text(f"  {e.id:>5} ")
            line.append("original " if e.echo_of is None else "", style="bold")
            line.append(safe(e.author or "someone"), style="bold blue")
            line.append(f" on {e.source}  {age(e.created_at)} ago  ")
            line.append(safe(e.url or ""), style="dim")
            whole_words(line)
    if replies:
        console.print()
        console.print(Text("replies:", style="bold"))
        for row in replies:
            where = row["url"] or row["remote_id"] or ""
            kind = "private " if row["kind"] == "private" else ""
            line = Text(f"  {row['attempted_at']}  {kind}{row['outcome']:<8} ")
            if row["actor"]:
                line.append(f"by {safe(row['actor'])}  ")
            line.append(safe(where), style="dim")
            console.print(line, soft_wrap=wrap)
            console.print(Text("    " + _shorten(safe(row["text"]), 200)), soft_wrap=wrap)
            if row["error"]:
                console.print(Text("    " + safe(row["error"]), style="red"), soft_wrap=wrap)
    if history:
        console.print()
        console.print(Text("status history:", style="bold"))
        for row in history:
            if row["assignee"] is None:
                what = row["status"]
            else:
                what = f"assigned to {safe(row['assignee'])}" if row["assignee"] else "unassigned"
            who = f"  by {safe(row['actor'])}" if row["actor"] else ""
            note = f"  ({safe(row['note'])})" if row["note"] else ""
            console.print(Text(f"  {row['at']}  {what}{who}{note}"), soft_wrap=wrap)


def print_mention_head(console: Console, m: Mention) -> None:
    """The mention a reply answers, before the reply itself."""
    from rich.text import Text

    console.print(entry_header(m, utcnow()), soft_wrap=True)
    console.print(Text("      " + _shorten(safe(m.text), FEED_TEXT_LIMIT)), soft_wrap=True)


def print_reply_text(
    console: Console, text: str, where: str, length: int, limit: int | None, private: bool
) -> None:
    """What is about to be sent, where, and the platform's length check."""
    from rich.text import Text

    console.print()
    counted = f"{length}/{limit}" if limit else str(length)
    head = f"Private message, as {where}" if private else f"Your reply, {where}"
    console.print(Text(f"{head} ({counted} characters):", style="bold"))
    for line in safe(text).splitlines() or [""]:
        console.print(Text("  > " + line, style="magenta" if private else "cyan"), soft_wrap=True)


def print_templates(console: Console, templates: Any) -> None:
    """Each [templates] entry: its public reply and its private follow-up."""
    from rich.text import Text

    if not templates:
        console.print("No templates: add them under [templates] in the config.")
        return
    for name, template in templates.items():
        parts = [("", template.public), ("private: ", template.private)]
        shown = [(label, text) for label, text in parts if text]
        line = Text(f"{name}: ", style="bold")
        for number, (label, text) in enumerate(shown):
            line.append(" · " if number else "")
            line.append(label, style="magenta")
            line.append(safe(text))
        console.print(line, soft_wrap=True)


# A record as JSON, as json.dumps(rec, ensure_ascii=False) writes it, without looking for
# reference cycles (a record is made fresh from a row or a Mention: it has none).
_RECORD_JSON = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


def write_jsonl(out: IO[str], mentions: Iterable[Mention | Mapping[str, Any]]) -> int:
    count = 0
    dumps = _RECORD_JSON
    write = out.write
    for rec in records(mentions):
        write(dumps(rec) + "\n")
        count += 1
    return count


def write_json(out: IO[str], mentions: Iterable[Mention | Mapping[str, Any]]) -> int:
    count = 0
    out.write("[")
    for rec in records(mentions):
        out.write(",\n" if count else "\n")
        out.write(_RECORD_JSON(rec))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula.

    Numbers (polarity, reach, id) stay numbers, `-0.4889` included: only text is neutralised,
    by a leading apostrophe when it starts with =, +, -, @, tab or CR (after any spaces,
    which spreadsheets skip).
    """
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    text = safe(value)
    return "'" + text if text.lstrip(" ").startswith(_FORMULA_START) else text


def write_csv(out: IO[str], mentions: Iterable[Mention | Mapping[str, Any]]) -> int:
    import csv

    writer = csv.writer(out)
    writer.writerow(RECORD_KEYS)
    count = 0
    for rec in records(mentions):
        writer.writerow([csv_cell(rec[k]) for k in RECORD_KEYS])
        count += 1
    return count


def write_ids(out: IO[str], mentions: Iterable[Mention]) -> int:
    count = 0
    for m in mentions:
        out.write(f"{m.id}\n")
        count += 1
    return count


def write_plain(out: IO[str], mentions: Iterable[Mention]) -> int:
    """One line per mention, tab-separated, for grep, cut and mail."""
    now = utcnow()
    count = 0
    for m in mentions:
        fields = [
            str(m.id), m.sentiment or "", m.source, age(m.created_at, now), safe(m.author),
            "" if m.reach is None else str(m.reach), m.status, ",".join(m.terms),
            _shorten(safe(m.title) + (" — " if m.title and m.text else "") + safe(m.text), 300),
            safe(m.url),
        ]  # fmt: skip
        out.write("\t".join(f.replace("\t", " ") for f in fields) + "\n")
        count += 1
    return count


# Each writes mentions (or export's stored rows, for jsonl/json/csv) and returns the count.
WRITERS: dict[str, Callable[[IO[str], Iterable[Any]], int]] = {
    "jsonl": write_jsonl,
    "json": write_json,
    "csv": write_csv,
    "ids": write_ids,
    "plain": write_plain,
}
FEED_FORMATS = ("rich", "plain", "jsonl", "json", "csv", "ids")  # rich: print_feed
EXPORT_FORMATS = ("jsonl", "json", "csv")
FORMAT_BY_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}


@contextmanager
def poll_progress(poller: Any, enabled: bool) -> Iterator[None]:
    """A progress bar on stderr while a poll runs (terminals only)."""
    if not enabled:
        yield
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    progress = Progress(
        TextColumn("polling"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
        console=Console(stderr=True), transient=True,
    )  # fmt: skip
    task = progress.add_task("", total=None)
    poller.on_jobs = lambda count: progress.update(task, total=count)
    poller.on_job_done = lambda result: progress.update(
        task, advance=1, description=safe(f"{result.source} {result.scope}")[:40]
    )
    with progress:
        yield


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (terminals only); yields advance(done, total)."""
    if not enabled:
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def print_summary(report: PollReport, quiet: bool, err: Callable[[str], None]) -> None:
    """Per source: new and fetched counts; then every failure on its own line (stderr)."""
    per_source: dict[str, list[JobResult]] = {}
    for result in report.results:
        per_source.setdefault(result.source, []).append(result)
    if not quiet:
        for source, results in per_source.items():
            ok = [r for r in results if not r.error]
            if not ok:
                continue
            notes = list(dict.fromkeys(n for r in ok for n in r.notes))
            reads = [r.reads for r in ok if r.reads is not None]
            if reads:
                notes.insert(0, f"read {sum(reads)} posts")
            stopped = sum(r.interrupted for r in ok)
            if stopped:
                notes.append(f"{stopped} interrupted")
            extra = f" ({'; '.join(notes)})" if notes else ""
            failed = len(results) - len(ok)
            failed_note = f", {failed} failed" if failed else ""
            print(safe(f"{source}: {sum(r.new for r in ok)} new of {sum(r.fetched for r in ok)} "
                       f"fetched, {len(ok)} job(s){failed_note}{extra}"))  # fmt: skip
    for result in report.failures:
        err(f"error: {safe(result.error)}")
    if not quiet or report.failures:
        failures = len(report.failures)
        line = f"{report.new} new mention(s); {failures} job(s) failed" if failures else (
            f"{report.new} new mention(s)")  # fmt: skip
        (err if failures else print)(line)


def print_deliveries(report: Any, quiet: bool, err: Callable[[str], None]) -> None:
    """What the alert channels answered: deliveries made, held by a cap, failed (stderr)."""
    if not report.channels:
        return
    if not quiet:
        channels = [c for c in report.channels if c.delivered]
        if channels:
            print(f"alerts: {report.delivered} delivered through {len(channels)} channel(s)")
        for c in report.channels:
            if c.elsewhere:
                print(f"alerts: {safe(c.alert)} → {safe(c.label)}: {c.pending} left to "
                      "another mentionwatch process, which is sending this channel's alerts "
                      "now")  # fmt: skip
            if c.held:
                print(f"alerts: {safe(c.alert)} → {safe(c.label)}: {c.held} held by "
                      "max_per_hour (sent grouped when the hour allows)")  # fmt: skip
    for c in report.failures:
        kept = f"; {c.pending} kept for the next try" if c.pending else ""
        err(f"error: alert {safe(c.alert)}: channel {safe(c.label)} failed: {safe(c.error)}{kept}")


def print_alert_rules(console: Console, rules: Sequence[Any]) -> None:
    """`alerts`: each rule, its filters, and each channel's last answer and queue."""
    from rich.text import Text

    if not rules:
        console.print("No alert rules: add [[alerts]] to the config (see config.example.toml).")
        return
    now = utcnow()
    for i, status in enumerate(rules):
        if i:
            console.print()
        summary = Text(f"  {safe(_rule_summary(status.rule))}", style="dim")
        console.print(Text(safe(status.rule.name), style="bold") + summary, soft_wrap=True)
        for ch in status.channels:
            line = Text(f"  {ch.kind:<8} ") + Text(safe(ch.label))
            if ch.last_at is None:
                line.append("  never used", style="dim")
            else:
                when = age(parse_iso(ch.last_at), now)
                test = " (test)" if ch.last_test else ""
                word, style = ("delivered", "green") if ch.last_ok else ("failed", "bold red")
                line.append(f"  {when} ago{test}: ")
                line.append(word, style=style)
                line.append(f" ({safe(ch.last_outcome)})")
            line.append(f"  {ch.sent} sent")
            if ch.pending:
                line.append(f", {ch.pending} pending", style="yellow")
            console.print(line, soft_wrap=True)


def _rule_summary(rule: Any) -> str:
    """A rule's filters and limits in one line, as the config writes them."""
    parts = [f"on {rule.on}"]
    for name, value in rule.filters.items():
        if isinstance(value, frozenset):
            parts.append(f"{name}: {', '.join(sorted(value))}")
        elif name == "query":
            parts.append(f"query: {' OR '.join(' '.join(a) for a in value.alternatives)}")
        else:
            parts.append(f"{name} {value:g}")
    if rule.on == "mention":
        parts.append(f"max_age {_duration(rule.max_age)}")
    elif rule.on == "spike":
        parts += [f"{name} {value:g}" for name, value in rule.spike.items()]
        parts.append("per term" + (" and sentiment" if "sentiment" in rule.filters else ""))
        if rule.follow_up:
            parts.append("says when it is over")
    else:
        parts.append(f"every {rule.every} ({_zone_label()})")
    if rule.max_per_hour:
        parts.append(f"at most {rule.max_per_hour} messages/hour")
    if rule.secret:
        parts.append("webhooks signed")
    return "; ".join(parts)


def _zone_label() -> str:
    from mentionwatch.trends import local_zone, zone_name

    return f"{zone_name(local_zone())} time"


# What one delivery of each kind of rule is about, for `alerts log`.
_DELIVERY_NOUN = {"mention": "mention", "spike": "pile-up", "digest": "digest"}


def print_alert_log(
    console: Console, rows: Sequence[Any], events: Mapping[str, str] | None = None
) -> None:
    """`alerts log`: recent messages, newest first; `events` maps rule names to what they
    fire on."""
    from rich.text import Text

    if not rows:
        console.print("Nothing sent yet.")
        return
    for row in rows:
        ok = bool(row["ok"])
        line = Text(f"{row['at']}  ")
        line.append("ok    " if ok else "FAIL  ", style="green" if ok else "bold red")
        line.append(f"{safe(row['alert'])} → {safe(row['label'])}")
        count = row["deliveries"]
        noun = _DELIVERY_NOUN.get((events or {}).get(row["alert"], ""), "delivery")
        what = "test" if row["test"] else f"{count} {noun}{'s' if count != 1 else ''}"
        line.append(f"  {what}: {safe(row['outcome'])}", style="dim")
        console.print(line, soft_wrap=True)


def print_test_results(console: Console, answers: Sequence[Any]) -> None:
    """`alerts test NAME`: what each channel answered."""
    from rich.text import Text

    for answer in answers:
        ok = answer.outcome.ok
        line = Text("ok    " if ok else "FAIL  ", style="green" if ok else "bold red")
        line.append(safe(answer.label), style="bold")
        line.append(f": {safe(answer.outcome.detail)}")
        console.print(line, soft_wrap=True)


class WatchView:
    """What `watch` shows: a live status on a terminal, else one log line per poll and per
    channel answer on stderr (text, or JSON objects for log shippers)."""

    def __init__(self, live: bool, fmt: str, err: Callable[[str], None]) -> None:
        self.live, self.fmt, self.err = live, fmt, err
        self.note_line: str | None = None

    def _log(self, text: str, **fields: Any) -> None:
        if self.live:
            return
        if self.fmt == "json":
            self.err(json.dumps({"at": iso(utcnow()), **fields}, ensure_ascii=False))
        else:
            self.err(f"{iso(utcnow())} {safe(text)}")

    def started(self, status: Any) -> None:
        every = ", ".join(
            f"{s.name} every {_duration(s.interval)}" for s in status.sources.values()
        )
        self._log(f"watching: {every}", event="start",
                  sources={s.name: s.interval for s in status.sources.values()})  # fmt: skip

    def stopped(self, status: Any) -> None:
        line = f"stopped after {status.polls} poll(s); {status.delivered} alert(s) delivered"
        if self.live:  # the live status has gone: say how it ended
            self.err(f"mentionwatch watch: {line}")
        self._log(line, event="stop", polls=status.polls, delivered=status.delivered)

    def polled(self, source: Any, report: Any) -> None:
        next_in = max(0.0, source.next_at - time.time())
        result = f"{report.new} new of {report.fetched} fetched"
        if source.errors:
            result += "; failed: " + "; ".join(source.errors)
        self._log(
            f"{source.name}: {result}; next poll in {_duration(next_in)}", event="poll",
            source=source.name, new=report.new, fetched=report.fetched,
            errors=[safe(e) for e in source.errors], next_poll_in=round(next_in, 1),
        )  # fmt: skip

    def delivered(self, channel: Any) -> None:
        if channel.error:
            what = f"failed: {channel.error}"
            if channel.pending:
                what += f"; {channel.pending} pending, retried with backoff"
        elif channel.held:
            what = f"{channel.held} held by max_per_hour"
        else:
            what = f"{channel.delivered} delivered"
        self._log(f"alert {channel.alert} → {channel.label}: {what}", event="delivery",
                  alert=channel.alert, channel=channel.label, delivered=channel.delivered,
                  pending=channel.pending, held=channel.held,
                  error=safe(channel.error) if channel.error else None)  # fmt: skip

    def note(self, message: str) -> None:
        self.note_line = message
        self._log(message, event="note", message=safe(message))

    @contextmanager
    def showing(self, status: Any) -> Iterator[None]:
        if not self.live:
            yield
            return
        from rich.console import Console
        from rich.live import Live

        console = Console(stderr=True)
        with Live(console=console, refresh_per_second=2, transient=True,
                  get_renderable=lambda: self._table(status)):  # fmt: skip
            yield

    def _table(self, status: Any) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        head = Text(f"watching · {status.polls} poll(s) · {status.delivered} alert(s) delivered"
                    " · Ctrl-C stops", style="bold")  # fmt: skip
        table = Table(box=None, show_header=False, pad_edge=False)
        now = utcnow()
        for s in status.sources.values():
            if s.polling:
                last = Text("polling…", style="cyan")
            elif s.last_at is None:
                last = Text("waiting", style="dim")
            elif s.errors:
                last = Text(f"{age(s.last_at, now)} ago: failed: {safe(s.errors[0])[:60]}", "red")
            else:
                last = Text(f"{age(s.last_at, now)} ago: {s.new} new of {s.fetched}")
            next_in = max(0.0, s.next_at - time.time())
            table.add_row(Text(s.name, style="magenta"), last,
                          Text(f"next in {_duration(next_in)}", style="dim"))  # fmt: skip
        parts: list[Any] = [head, table]
        for label, error in status.failing.items():
            parts.append(Text(f"! {safe(label)}: {safe(error)}", style="bold red"))
        if self.note_line:
            parts.append(Text(safe(self.note_line), style="yellow"))
        return Group(*parts)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if rest // 60 else f"{hours}h"


def print_sources(console: Console, rows: Sequence[Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for column in ("source", "state", "credentials", "last poll"):
        table.add_column(column, overflow="fold")
    styles = {"enabled": "green", "disabled": "yellow", "not configured": "dim"}
    now = utcnow()
    for row in rows:
        last = Text("never polled", style="dim")
        if row.last_poll:
            last = Text(f"{age(row.last_poll, now)} ago: {row.new} new of {row.fetched} fetched")
            if row.errors:
                last.append(f"; {len(row.errors)} failed: {safe(row.errors[0])}", style="red")
        table.add_row(row.name, Text(row.state, style=styles.get(row.state, "")),
                      Text(safe(row.credentials)), last)  # fmt: skip
    console.print(table)
    for row in rows:  # quotas and budgets the sources count (YouTube's units, Yelp's calls)
        if row.usage:
            console.print(Text(f"{row.name}: {safe(row.usage)}"), soft_wrap=True)


def print_leases(console: Console, leases: Sequence[Any]) -> None:
    """Which worker polls each job of a shared database now (team.job_leases)."""
    from rich.table import Table
    from rich.text import Text

    if not leases:
        return
    console.print()
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for column in ("job", "polled by", "lease"):
        table.add_column(column, overflow="fold")
    now = utcnow()
    for lease in leases:
        if lease.holder is None:
            table.add_row(Text(safe(lease.job)), Text("nobody now", style="dim"), Text(""))
        else:
            left = age(now, lease.until)  # how long the lease still runs
            table.add_row(Text(safe(lease.job)), Text(safe(lease.who)), Text(f"{left} left"))
    console.print(table)


def print_checks(console: Console, checks: Sequence[Any]) -> None:
    from rich.text import Text

    for check in checks:
        line = Text("ok    " if check.ok else "FAIL  ", style="green" if check.ok else "bold red")
        line.append(f"{check.name}: ", style="bold")
        line.append(safe(check.message).removeprefix(f"{check.name}: "))
        console.print(line, soft_wrap=True)
