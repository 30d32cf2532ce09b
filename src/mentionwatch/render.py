"""Everything users see: the rich feed and detail view, and the JSON/JSONL/CSV/ids writers.

Mention text is hostile: it is cleaned of control characters and only ever handed to rich
as `Text` (never as markup), so it cannot recolour, clear or hyperlink the terminal.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from mentionwatch.models import JobResult, Mention, PollReport, ThreadPost, iso, utcnow
from mentionwatch.relevance import THRESHOLD as RELEVANT
from mentionwatch.text import strip_controls
from mentionwatch.triage import mention_priority

RECORD_KEYS = (
    "id", "key", "source", "url", "author", "author_name", "title", "text", "created_at",
    "fetched_at", "terms", "sentiment", "polarity", "status", "reach", "reply_url",
    "intents", "priority", "relevance",
)  # fmt: skip
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


def safe(value: object) -> str:
    return strip_controls(str(value)) if value is not None else ""


def record(m: Mention) -> dict[str, Any]:
    """The JSONL record of design.md: every key always present."""
    return {
        "id": m.id,
        "key": m.key,
        "source": m.source,
        "url": m.url,
        "author": m.author,
        "author_name": m.author_name,
        "title": m.title,
        "text": m.text,
        "created_at": iso(m.created_at),
        "fetched_at": iso(m.fetched_at),
        "terms": list(m.terms),
        "sentiment": m.sentiment,
        "polarity": m.polarity,
        "status": m.status,
        "reach": m.reach,
        "reply_url": m.reply_url,
        "intents": list(m.intents),
        "priority": round(mention_priority(m), 3),
        "relevance": m.relevance,
    }


def age(dt: datetime, now: datetime | None = None) -> str:
    """Compact age: 45s, 12m, 3h, 2d, 5w."""
    seconds = max(0, int(((now or utcnow()) - dt).total_seconds()))
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _highlighted(value: str, patterns: Sequence[re.Pattern[str]], style: str) -> Text:
    from rich.text import Text

    text = Text(safe(value))
    for pattern in patterns:
        text.highlight_regex(pattern, style)
    return text


def _shorten(value: str, limit: int) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def entry_header(m: Mention, now: datetime) -> Text:
    from rich.text import Text

    sentiment = m.sentiment or "neutral"
    header = Text()
    header.append(f"{m.id:>5} ", style="bold")
    header.append(f"[{SENTIMENT_TAG.get(sentiment, sentiment)}]", SENTIMENT_STYLE.get(sentiment))
    header.append(f" {m.source}", style="magenta")
    header.append(f"  {age(m.created_at, now)}", style="yellow")
    if m.author:
        header.append(f"  {safe(m.author)}", style="bold blue")
        if m.author_name and m.author_name != m.author:
            header.append(f" ({safe(m.author_name)})", style="blue")
    if m.reach is not None:
        header.append(f"  ▲{m.reach}")
    if m.intents:
        header.append("  " + " ".join(INTENT_TAG.get(i, i) for i in m.intents), style="yellow")
    if m.relevance is not None and m.relevance < RELEVANT:
        # Likely another thing of the same name: said in the header, as it changes what to do.
        header.append(f"  ~off-topic {m.relevance:.2f}", style="dim")
    header.append(f"  {m.status}", style=STATUS_STYLE.get(m.status))
    if m.terms:
        header.append("  " + ", ".join(safe(t) for t in m.terms), style="dim")
    return header


def print_feed(
    console: Console,
    mentions: Iterable[Mention],
    patterns: dict[str, list[re.Pattern[str]]],
    hidden: dict[str, int] | None = None,
) -> int:
    """One entry per mention, newest first; returns how many were shown."""
    from rich.padding import Padding
    from rich.text import Text

    now = utcnow()
    wrap = not console.is_terminal  # pipes and files get whole lines, terminals wrap

    def indented(text: Text) -> None:
        # On a terminal Padding keeps wrapped lines indented; a pipe gets plain spaces.
        console.print(text if wrap else Padding(text, (0, 0, 0, 6)), soft_wrap=wrap)

    shown = 0
    for m in mentions:
        if shown:
            console.print()
        term_patterns = [p for t in m.terms for p in patterns.get(t, ())]
        console.print(entry_header(m, now), soft_wrap=wrap)
        lead = "      " if wrap else ""
        if m.title:
            title = _highlighted(_shorten(m.title, 200), term_patterns, "bold yellow")
            # A comment's title is its thread's, shown as context rather than as its own.
            title.stylize("dim" if m.in_thread else "bold")
            indented(Text.assemble(lead, ("on: " if m.in_thread else "", "dim"), title))
        if m.text:
            body = _highlighted(_shorten(m.text, FEED_TEXT_LIMIT), term_patterns, "bold yellow")
            indented(Text.assemble(lead, body))
        if m.url:
            indented(Text.assemble(lead, (safe(m.url), "dim underline")))
        shown += 1
    if hidden:
        parts = [f"{count} {status}" for status, count in hidden.items() if count]
        if parts:
            note = f"({', '.join(parts)} hidden; --status all shows them)"
            console.print(Text(note, style="dim"), soft_wrap=True)
    if not shown and not hidden:
        console.print(Text("No mentions match. Run 'mentionwatch poll' to fetch new ones.",
                           style="dim"))  # fmt: skip
    return shown


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
) -> None:
    """One mention in full: fields, what it replies to, its text, replies sent, history."""
    from rich.text import Text

    wrap = not console.is_terminal

    def field(label: str, value: object) -> None:
        if value not in (None, ""):
            console.print(Text(f"{label:>12}: ", style="bold") + Text(safe(value)), soft_wrap=wrap)

    console.print(entry_header(m, utcnow()), soft_wrap=wrap)
    field("key", m.key)
    field("url", m.url)
    field("reply at", m.reply_url)
    field("created", iso(m.created_at))
    field("fetched", iso(m.fetched_at))
    field("polarity", f"{m.polarity:+.3f}" if m.polarity is not None else None)
    field("intents", ", ".join(m.intents))
    if m.relevance is not None:
        verdict = "about your product" if m.relevance >= RELEVANT else "probably another thing"
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
        console.print(head, soft_wrap=wrap)
        console.print(Text("  " + _shorten(safe(post.text), FEED_TEXT_LIMIT)), soft_wrap=wrap)
    console.print()
    console.print(Text(safe(m.text)), soft_wrap=wrap)
    if replies:
        console.print()
        console.print(Text("replies:", style="bold"))
        for row in replies:
            where = row["url"] or row["remote_id"] or ""
            line = Text(f"  {row['attempted_at']}  {row['outcome']:<8} ")
            line.append(safe(where), style="dim")
            console.print(line, soft_wrap=wrap)
            console.print(Text("    " + _shorten(safe(row["text"]), 200)), soft_wrap=wrap)
            if row["error"]:
                console.print(Text("    " + safe(row["error"]), style="red"), soft_wrap=wrap)
    if history:
        console.print()
        console.print(Text("status history:", style="bold"))
        for row in history:
            note = f"  ({safe(row['note'])})" if row["note"] else ""
            console.print(Text(f"  {row['at']}  {row['status']}{note}"), soft_wrap=wrap)


def print_reply_preview(
    console: Console, m: Mention, text: str, length: int, limit: int | None, by_hand: bool
) -> None:
    """What is about to be posted, and where, before the user confirms."""
    from rich.text import Text

    console.print(entry_header(m, utcnow()), soft_wrap=True)
    console.print(Text("      " + _shorten(safe(m.text), FEED_TEXT_LIMIT)), soft_wrap=True)
    console.print()
    where = "to paste on the reply page" if by_hand else f"reply on {m.source}"
    counted = f"{length}/{limit}" if limit else str(length)
    console.print(Text(f"Your {where} ({counted} characters):", style="bold"))
    for line in safe(text).splitlines() or [""]:
        console.print(Text("  > " + line, style="cyan"), soft_wrap=True)


def print_templates(console: Console, templates: dict[str, str] | Any) -> None:
    from rich.text import Text

    if not templates:
        console.print("No templates: add them under [templates] in the config.")
        return
    for name, text in templates.items():
        console.print(Text(f"{name}: ", style="bold") + Text(safe(text)), soft_wrap=True)


def write_jsonl(out: IO[str], mentions: Iterable[Mention]) -> int:
    count = 0
    for m in mentions:
        out.write(json.dumps(record(m), ensure_ascii=False) + "\n")
        count += 1
    return count


def write_json(out: IO[str], mentions: Iterable[Mention]) -> int:
    count = 0
    out.write("[")
    for m in mentions:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(record(m), ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    text = safe(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_csv(out: IO[str], mentions: Iterable[Mention]) -> int:
    writer = csv.writer(out)
    writer.writerow(RECORD_KEYS)
    count = 0
    for m in mentions:
        rec = record(m)
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


WRITERS = {
    "jsonl": write_jsonl,
    "json": write_json,
    "csv": write_csv,
    "ids": write_ids,
    "plain": write_plain,
}


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
            extra = f" ({'; '.join(notes)})" if notes else ""
            failed = len(results) - len(ok)
            failed_note = f", {failed} failed" if failed else ""
            print(f"{source}: {sum(r.new for r in ok)} new of {sum(r.fetched for r in ok)} "
                  f"fetched, {len(ok)} job(s){failed_note}{extra}")  # fmt: skip
    for result in report.failures:
        err(f"error: {safe(result.error)}")
    if not quiet or report.failures:
        failures = len(report.failures)
        line = f"{report.new} new mention(s); {failures} job(s) failed" if failures else (
            f"{report.new} new mention(s)")  # fmt: skip
        (err if failures else print)(line)


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
        table.add_row(row.name, Text(row.state, style=styles.get(row.state)),
                      Text(safe(row.credentials)), last)  # fmt: skip
    console.print(table)


def print_checks(console: Console, checks: Sequence[Any]) -> None:
    from rich.text import Text

    for check in checks:
        line = Text("ok    " if check.ok else "FAIL  ", style="green" if check.ok else "bold red")
        line.append(f"{check.name}: ", style="bold")
        line.append(safe(check.message).removeprefix(f"{check.name}: "))
        console.print(line, soft_wrap=True)
