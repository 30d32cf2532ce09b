"""Drawing trends: the `stats` chart and tables, its JSON/CSV rows, and the digest as rich
text, Markdown (chat), HTML and plain text (mail), and JSON (the webhook's `digest` object).

The chart is drawn with rich's own primitives (coloured block characters in `Text`), not
plotext: rich is already here, already follows NO_COLOR and the terminal's width, and keeps
hostile labels inert; a horizontal bar per period keeps every period's label readable at 80
columns. Mention text is hostile in every format: escaped for Markdown (no @everyone, no
links or formatting of its own), escaped for HTML, cleaned of control characters everywhere.
"""

from __future__ import annotations

import csv
import html
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from mentionwatch.models import Mention, iso, parse_iso
from mentionwatch.render import SENTIMENT_STYLE, csv_cell, record, safe

if TYPE_CHECKING:
    from rich.console import Console

    from mentionwatch.spikes import Spike
    from mentionwatch.trends import Digest, PeriodRow, ResponseRow, Stats

# Without colour each sentiment keeps its own character, so the bars still read.
BAR_CHARS = {"positive": "+", "neutral": "·", "negative": "-", "unscored": "?"}
MAX_BARS = 60  # more periods than this: the latest ones are drawn, all are in --format json


def write_json(out: IO[str], columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    table = [{c: row[c] for c in columns} for row in rows]
    out.write(json.dumps(table, ensure_ascii=False, indent=1) + "\n")


def write_csv(out: IO[str], columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """The table's own header (also when it has no rows), then its rows."""
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row[c]) for c in columns])


def period_label(moment: datetime, by: str) -> str:
    if by == "hour":
        return moment.strftime("%a %m-%d %H:%M")
    if by == "week":
        return moment.strftime("wk %Y-%m-%d")
    return moment.strftime("%a %Y-%m-%d")


def duration(seconds: float | None) -> str:
    """45s, 12m, 3.5h, 2.1d: response times at a glance."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def change(value: float | None) -> str:
    return "" if value is None else f"{value:+.0%}"


# stats: rich and plain


def print_stats(console: Console, stats: Stats, chart: bool) -> None:
    """The chart (on a terminal), totals, top sources and authors, response figures."""
    from rich.text import Text

    groups = list(dict.fromkeys(r.group for r in stats.rows))
    for group in groups[:8]:
        rows = [r for r in stats.rows if r.group == group]
        if group is not None:
            console.print(Text(f"{stats.group} {safe(group)}", style="bold"), soft_wrap=True)
        if chart:
            _chart(console, rows, stats.by)
        else:
            _period_table(console, rows, stats.by)
        console.print()
    if len(groups) > 8:
        console.print(
            Text(f"({len(groups) - 8} more groups: --format json lists them)", style="dim")
        )
    whole = stats.totals()
    line = Text("total ", style="bold")
    line.append(f"{whole.total}")
    for label in ("positive", "neutral", "negative"):
        line.append(f"  {label} ", style=SENTIMENT_STYLE[label])
        line.append(str(getattr(whole, label)))
    line.append(f"  negative share {share(whole.negative_share)}")
    console.print(line, soft_wrap=True)
    last = stats.overall[-2:]
    if len(last) == 2:
        this, before = last[1], last[0]
        console.print(
            Text(
                f"this {stats.by} {this.total} vs {before.total} the {stats.by} "
                f"before {change(this.change)}".rstrip()
            ),
            soft_wrap=True,
        )
    _top_tables(console, stats)
    print_responses(console, stats.responses)


def _chart(console: Console, rows: Sequence[PeriodRow], by: str) -> None:
    from rich.text import Text

    if len(rows) > MAX_BARS:
        console.print(
            Text(
                f"(the last {MAX_BARS} of {len(rows)} {by}s; --since narrows, "
                "--format json lists all)",
                style="dim",
            )
        )
        rows = rows[-MAX_BARS:]
    label_width = max(len(period_label(r.period, by)) for r in rows)
    numbers = 16  # " 1234 -123 +100%"
    width = max(10, console.width - label_width - numbers - 2)
    top = max((r.total for r in rows), default=0) or 1
    plain = console.no_color
    for row in rows:
        line = Text(period_label(row.period, by).ljust(label_width) + " ", style="dim")
        cells = _segments(row, width * row.total / top)
        for label, size in cells:
            char = BAR_CHARS[label] if plain else "█"
            line.append(char * size, style=SENTIMENT_STYLE.get(label, "yellow"))
        used = sum(size for _, size in cells)
        line.append(" " * (width - used))
        line.append(f" {row.total:>5}")
        neg = f" -{row.negative}" if row.negative else ""
        line.append(f"{neg:>5}", style=SENTIMENT_STYLE["negative"])
        line.append(f" {change(row.change):>5}"[:6], style="dim")
        console.print(line, no_wrap=True, overflow="crop")
    legend = Text("  ")
    for label in ("positive", "neutral", "negative"):
        legend.append(
            ("█" if not plain else BAR_CHARS[label]) + f" {label}  ", style=SENTIMENT_STYLE[label]
        )
    console.print(legend, no_wrap=True, overflow="crop")


def _segments(row: PeriodRow, length: float) -> list[tuple[str, int]]:
    """Bar lengths per sentiment that add up to round(length); a non-zero count shows."""
    parts = [
        (label, getattr(row, label)) for label in ("negative", "neutral", "positive", "unscored")
    ]
    total = row.total
    if not total:
        return []
    target = max(1, round(length))
    sizes = [(label, count * target / total) for label, count in parts if count]
    whole = [(label, max(1, int(size))) for label, size in sizes]
    while sum(s for _, s in whole) > target and any(s > 1 for _, s in whole):
        i = max(range(len(whole)), key=lambda j: whole[j][1])
        whole[i] = (whole[i][0], whole[i][1] - 1)
    remainders = sorted(
        range(len(sizes)), key=lambda j: sizes[j][1] - int(sizes[j][1]), reverse=True
    )
    for j in remainders:
        if sum(s for _, s in whole) >= target:
            break
        whole[j] = (whole[j][0], whole[j][1] + 1)
    return whole


def _period_table(console: Console, rows: Sequence[PeriodRow], by: str) -> None:
    from rich.text import Text

    console.print(
        Text(f"{by:<16} {'total':>6} {'pos':>5} {'neu':>5} {'neg':>5} {'change':>7}", style="bold"),
        soft_wrap=True,
    )
    for r in rows:
        console.print(
            Text(
                f"{period_label(r.period, by):<16} {r.total:>6} {r.positive:>5} "
                f"{r.neutral:>5} {r.negative:>5} {change(r.change):>7}"
            ),
            soft_wrap=True,
        )


def _top_tables(console: Console, stats: Stats) -> None:
    from rich.text import Text

    if stats.sources:
        console.print()
        console.print(Text("top sources        mentions  negative  reach", style="bold"))
        for s in stats.sources:
            console.print(
                Text(
                    f"  {safe(s['source']):<17}{s['mentions']:>8}  "
                    f"{s['negative'] or 0:>8}  {s['reach']:>5}"
                ),
                soft_wrap=True,
            )
    if stats.authors:
        console.print()
        console.print(Text("top authors by reach", style="bold"))
        for a in stats.authors:
            who = Text(f"  {a['reach']:>7}  ")
            who.append(safe(a["author"])[:40], style="bold blue")
            who.append(f"  {a['source']}, {a['mentions']} mention(s)", style="dim")
            console.print(who, no_wrap=True, overflow="ellipsis")


def print_responses(console: Console, rows: Sequence[ResponseRow]) -> None:
    from rich.text import Text

    if not rows:
        return
    console.print()
    console.print(
        Text(
            f"{'responses':<18} {'answered/handled':>17}   {'first reply':>13}   {'handled':>13}",
            style="bold",
        ),
        no_wrap=True,
        overflow="crop",
    )
    console.print(
        Text(
            f"{'':<18} {'':>17}   {'median':>6} {'p90':>6}   {'median':>6} {'p90':>6}", style="dim"
        ),
        no_wrap=True,
        overflow="crop",
    )
    for r in rows:
        reply, handled = r.delays.get("reply", {}), r.delays.get("handled", {})
        text = (
            f"  {safe(r.source)[:16]:<16} {r.answered_or_handled:>5}/{r.mentions - r.ignored:<5} "
            f"{share(r.answered_or_handled_share):>5}   {duration(reply.get(0.5)):>6} "
            f"{duration(reply.get(0.9)):>6}   {duration(handled.get(0.5)):>6} "
            f"{duration(handled.get(0.9)):>6}"
        )
        console.print(
            Text(text, style="bold" if r.source == "all" else ""), no_wrap=True, overflow="crop"
        )


# Digests: rendered from the digest object (the webhook's), so `digest` prints exactly what a
# digest alert says.


def spike_dict(
    term: str, sentiment: str | None, spike: Spike, examples: Sequence[Mention], echoes: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """The webhook's `spike` object (design.md): one episode's start (or end)."""
    return {
        "term": term,
        "sentiment": sentiment,
        "kind": spike.kind,
        "window_start": iso(spike.window_start),
        "window_end": iso(spike.window_end),
        "count": spike.count,
        "baseline": round(spike.baseline, 3),
        "p_value": spike.p_value,
        "echoes": echoes,
        "examples": [record(m) for m in examples],
    }


def digest_dict(d: Digest) -> dict[str, Any]:
    """The webhook's `digest` object (design.md) and `digest --format json`."""
    from mentionwatch.trends import zone_name

    return {
        "since": iso(d.since),
        "until": iso(d.until),
        **d.current.as_dict(),
        "previous": {
            "since": iso(d.since - (d.until - d.since)),
            "until": iso(d.since),
            **d.previous.as_dict(),
        },
        "change": d.change,
        "zone": zone_name(d.zone),
        "top_open": [record(m) for m in d.top_open],
        "unanswered_negative": [record(m) for m in d.unanswered_negative],
        "spikes": [
            spike_dict(s.term, s.sentiment, s.spike, s.examples, s.echoes) for s in d.spikes
        ],
        "responses": [r.as_dict() for r in d.responses],
    }


Piece = tuple[str, str]  # (kind, text): "text" (ours), "user" (hostile), "link" (a URL)


def _digest_lines(data: Mapping[str, Any]) -> dict[str, Any]:
    """The digest's sentences, format-neutral: a title, a summary, and sections of
    (heading, [items]) where each item is a list of pieces."""
    from mentionwatch.trends import zone_from_name

    zone = zone_from_name(data.get("zone"))
    since, until = (parse_iso(data[k]).astimezone(zone) for k in ("since", "until"))
    title = f"mentionwatch digest {since:%Y-%m-%d %H:%M} – {until:%Y-%m-%d %H:%M}"
    before, moved = data.get("previous") or {}, data.get("change")
    summary = (
        f"{data['total']} mentions ({data['positive']} positive, {data['neutral']} neutral, "
        f"{data['negative']} negative), {data['open']} open; {before.get('total', 0)} the "
        f"period before{' (' + change(moved) + ')' if moved is not None else ''}"
    )
    sections: list[tuple[str, list[list[Piece]]]] = []
    if data.get("spikes"):
        sections.append(("Spikes", [spike_item(s, zone) for s in data["spikes"]]))
    if data.get("unanswered_negative"):
        unanswered = [_mention_item(r) for r in data["unanswered_negative"]]
        sections.append(("Unanswered negative", unanswered))
    if data.get("top_open"):
        sections.append(("Answer first", [_mention_item(r) for r in data["top_open"]]))
    if data.get("responses"):
        sections.append(("Response times", [_response_item(r) for r in data["responses"]]))
    return {"title": title, "summary": summary, "sections": sections}


def _mention_item(rec: Mapping[str, Any]) -> list[Piece]:
    item = [
        ("text", f"#{rec.get('id')} {rec.get('sentiment') or 'neutral'} on "),
        ("user", str(rec.get("source") or "")),
        ("text", " by "),
        ("user", str(rec.get("author") or "someone")),
        ("text", ": "),
        ("user", _one_line(rec.get("text") or rec.get("title") or "", 160)),
    ]
    if rec.get("url"):
        item += [("text", " "), ("link", str(rec["url"]))]
    return item


def spike_item(spike: Mapping[str, Any], zone: Any) -> list[Piece]:
    """One line about a spike: `term pebblebase (negative): 25 mentions from Tue 14:05, 0.4
    expected, 18 of them echoes`."""
    started = parse_iso(spike["window_start"]).astimezone(zone)
    echoes = spike.get("echoes") or 0
    return [
        ("text", "term "),
        ("user", str(spike["term"])),
        ("text", f"{' (' + spike['sentiment'] + ')' if spike.get('sentiment') else ''}: "
                 f"{spike['count']} mentions from {started:%a %H:%M}, {spike['baseline']:.1f} "
                 f"expected{f', {echoes} of them echoes' if echoes else ''}"),
    ]  # fmt: skip


def _response_item(row: Mapping[str, Any]) -> list[Piece]:
    wanted = row["mentions"] - row["ignored"]
    return [
        ("user" if row["source"] != "all" else "text", str(row["source"])),
        ("text", f": {row['answered_or_handled']} of {wanted} answered or handled "
                 f"({share(row['answered_or_handled_share'])}); first reply median "
                 f"{duration(row['reply_median_seconds'])}, p90 "
                 f"{duration(row['reply_p90_seconds'])}; handled median "
                 f"{duration(row['handled_median_seconds'])}"),
    ]  # fmt: skip


def _one_line(text: str, limit: int) -> str:
    text = " ".join(safe(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _flat(text: str) -> str:
    """One line, spacing kept at the edges (pieces of a sentence are joined as they are)."""
    return re.sub(r"\s+", " ", safe(text))


# CommonMark's inline specials (Apprise turns CommonMark into each chat service's dialect).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def markdown_text(value: str, untrusted: bool = True) -> str:
    """Text made inert for chat Markdown: untrusted text first loses everything a chat
    service acts on (pings such as @everyone, <!channel>, links, markup: `channels.inert`),
    then every piece of text has Markdown's specials escaped."""
    if untrusted:
        from mentionwatch.channels import inert

        value = inert(value)
    return _MD_SPECIAL.sub(r"\\\1", _flat(value))


def digest_markdown(data: Mapping[str, Any]) -> str:
    parts = _digest_lines(data)
    out = [f"**{markdown_text(parts['title'], False)}**", ""]
    out.append(markdown_text(parts["summary"], False))
    for heading, items in parts["sections"]:
        out += ["", f"**{heading}**"]
        out += [f"- {markdown_pieces(item)}" for item in items]
    return "\n".join(out) + "\n"


def markdown_pieces(item: Sequence[Piece]) -> str:
    """One line of Markdown from pieces: links as autolinks, everything else escaped."""
    from mentionwatch.channels import safe_link

    line = []
    for kind, text in item:
        link = safe_link(text) if kind == "link" else None
        line.append(f"<{link}>" if link else markdown_text(text, kind != "text"))
    return "".join(line)


def digest_text(data: Mapping[str, Any], defused: bool = False) -> str:
    """Plain text for mail: no markup at all. `defused` (alerts): untrusted pieces lose
    pings, disguised links and markup (`channels.inert`), as in every message of an alert."""

    parts = _digest_lines(data)
    out = [parts["title"], "", parts["summary"]]
    for heading, items in parts["sections"]:
        out += ["", heading + ":"]
        out += ["  - " + "".join(_plain(k, t, defused) for k, t in item) for item in items]
    return "\n".join(out) + "\n"


def _plain(kind: str, text: str, defused: bool) -> str:
    if defused and kind == "user":
        from mentionwatch.channels import inert

        return inert(text)
    return _flat(text)


def digest_html(data: Mapping[str, Any], defused: bool = False) -> str:
    """A self-contained HTML part for mail; every piece of text escaped (and with `defused`,
    untrusted text also loses pings and disguised links, as the plain part made from it
    would otherwise carry them)."""
    parts = _digest_lines(data)
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{esc(parts['title'])}</title></head><body>",
        f"<h2>{esc(parts['title'])}</h2>",
        f"<p>{esc(parts['summary'])}</p>",
    ]
    for heading, items in parts["sections"]:
        out.append(f"<h3>{esc(heading)}</h3><ul>")
        for item in items:
            pieces = []
            for kind, text in item:
                if kind == "link" and _is_web(text):
                    # The address as the link's text: mail's plain part (made from this
                    # HTML) keeps it, and nobody clicks a link whose target they cannot see.
                    pieces.append(f'<a href="{esc(text, quote=True)}">{esc(text)}</a>')
                else:
                    pieces.append(esc(_plain(kind, text, defused)))
            out.append(f"<li>{''.join(pieces)}</li>")
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _is_web(url: str) -> bool:
    return bool(re.match(r"https?://[^\s<>\"']+$", url))


def print_digest(console: Console, data: Mapping[str, Any]) -> None:
    from rich.text import Text

    parts = _digest_lines(data)
    console.print(Text(parts["title"], style="bold"), soft_wrap=True)
    console.print(Text(parts["summary"]), soft_wrap=True)
    styles = {"text": None, "user": "bold", "link": "dim underline"}
    for heading, items in parts["sections"]:
        console.print()
        console.print(Text(heading, style="bold"))
        for item in items:
            line = Text("  • ")
            for kind, text in item:
                line.append(_flat(text), style=styles[kind])
            console.print(line, soft_wrap=not console.is_terminal)
