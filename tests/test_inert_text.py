"""What `inert` removes and what it keeps, the scrubber's rules, CSV cells, and terms in
scripts with and without spaces between words."""

from __future__ import annotations

import time

import pytest

from mentionwatch import scrub
from mentionwatch.query import parse
from mentionwatch.render import csv_cell
from mentionwatch.testing.hostile import HOSTILE, forbidden
from mentionwatch.text import clean, inert


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\x1b[31mb\x07c\x00d\x7f\x9be", "a[31mbcde"),  # C0, DEL and C1 controls
        ("tab\tand\nnewline", "tab\tand\nnewline"),  # kept
        ("a\r\nb\rc\x85d\u2028e\u2029f\x0bg\x0ch", "a\nb\nc\nd\ne\nf\ng\nh"),  # line breaks
        ("\u202egnp.exe\u202c \u2066x\u2069 \u200e\u200f\u061c", "gnp.exe x "),  # bidi
        ("pe\u200bbble\u2060ba\ufeffse\u00ad\u2062", "pebblebase"),  # invisible format chars
        ("\u3164\uffa0name", "name"),  # Hangul fillers used as "blank" names
        ("hidden\U000e0069\U000e0067\U000e006e", "hidden"),  # tag characters (smuggling)
        ("lone \ud800 surrogate", "lone  surrogate"),
        ("x\ufe0f\ufe0f\ufe0f\U000e0100\U000e0101y", "x\ufe0fy"),  # a run of selectors
        ("\ufe0fstart", "start"),  # a selector with nothing to select
        ("la\u200dtin a\u200cb", "latin ab"),  # joiners between Latin letters hide nothing
    ],
)
def test_inert_removes(raw, expected):
    assert inert(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "👩\u200d💻 👨\u200d👩\u200d👧 ❤\ufe0f\u200d🔥 🏳\ufe0f\u200d🌈",  # ZWJ emoji sequences
        "می\u200cخواهم",  # Persian needs ZWNJ
        "क्\u200dष",  # Devanagari with ZWJ
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # flag of Scotland
        "葛\U000e0100城",  # an ideographic variation selector
        "\u0600\u0661\u0662 \u06dd",  # visible Arabic format characters
        "东京 Ελληνικά עברית العربية हिन्दी ไทย 한국어",
    ],
)
def test_inert_keeps_what_real_text_needs(text):
    assert inert(text) == text


def test_every_hostile_sample_becomes_inert():
    for name, text in HOSTILE.items():
        assert forbidden(inert(text)) == [], name


def test_inert_is_fast_on_a_megabyte():
    text = "pebblebase is nice " * 50_000 + "\x07\u202e" * 50_000
    anchor = time.perf_counter()
    text.lower()  # a linear pass over the same text, for scale
    scale = time.perf_counter() - anchor
    started = time.perf_counter()
    assert forbidden(clean(text)) == []
    assert time.perf_counter() - started < max(2.0, 400 * scale)


def test_scrubber_masks_secrets_their_encodings_and_what_is_left_of_a_cut_one():
    scrub.register("hunter2 correct+horse/", "s3cr", None, "ab")
    assert scrub.scrub("pw=hunter2 correct+horse/!") == "pw=***!"
    assert scrub.scrub("hunter2%20correct%2Bhorse%2F") == "***"  # URL-encoded
    assert scrub.scrub("hunter2+correct%2Bhorse%2F") == "***"  # form-encoded
    assert scrub.scrub("echo: hunter2 correct+h") == "echo: ***"  # cut short
    assert scrub.scrub("s3cr s3c ab") == "*** s3c ab"  # too short to scrub: "ab"
    scrub.register_headers({"authorization": "Basic dXNlcjpwYXNzLXdvcmQtMTIz"})
    assert scrub.scrub("pass-word-123 / dXNlcjpwYXNzLXdvcmQtMTIz") == "*** / ***"
    scrub.register_headers({"cookie": "session=abcdef123456; lang=en"})
    assert scrub.scrub("session=abcdef123456 lang=en") == "session=*** lang=en"


def test_errors_are_inert_and_scrubbed_where_they_are_made():
    from mentionwatch.errors import SourceError

    scrub.register("tok-123456789")
    error = SourceError("x: HTTP 401: \x1b]8;;u\x07bad tok-123456789\x00")
    assert str(error) == "x: HTTP 401: ]8;;ubad ***"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (-0.4889, "-0.4889"),  # numbers stay numbers
        (12, "12"),
        (0.0, "0.0"),
        ("-0.4889", "'-0.4889"),  # text that looks like a formula is neutralised
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=x", "'\t=x"),
        ("  =x", "'  =x"),  # spreadsheets skip the spaces
        ("plain", "plain"),
        (["a", "b"], "a, b"),
        (None, ""),
        (True, "True"),
    ],
)
def test_csv_cells(value, cell):
    assert csv_cell(value) == cell


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("東京", "我在東京工作", True),  # Chinese: no spaces between words
        ("東京 タワー", "東京タワーへ行きました", True),  # a phrase needs no space in Japanese
        ("ソニー", "私はソニーのテレビが好きです", True),
        ("อาหาร", "ฉันชอบกินอาหารไทยมาก", True),  # Thai
        ("ສະບາຍ", "ສະບາຍດີ", True),  # Lao
        ("ខ្មែរ", "ភាសាខ្មែរ", True),  # Khmer
        ("မြန်မာ", "မြန်မာနိုင်ငံ", True),  # Myanmar
        ("카카오", "카카오가 좋아요", True),  # Korean particles attach to names
        ("acme", "我用Acme的产品", True),  # a Latin name inside CJK text
        ("acme", "acmeville", False),  # Latin keeps its word boundaries
        ("яндекс", "я люблю Яндекс!", True),  # Cyrillic, whole word
        ("яндекс", "яндексом", False),
        ("شركة", "هذه شركة جيدة", True),  # Arabic, whole word
        ("شركة", "الشركة", False),
        ("Ελλάδα", "στην Ελλάδα σήμερα", True),
        ("東京 -大阪", "東京と大阪", False),  # exclusions work the same way
    ],
)
def test_terms_match_by_the_rules_of_their_script(query, text, expected):
    assert parse(query).matches(text) is expected


def test_text_stored_by_an_older_version_is_cleaned_once(tmp_path):
    from mentionwatch.models import Filters, Mention, utcnow
    from mentionwatch.store import Store

    db = tmp_path / "old.db"
    store = Store(db)
    store.save_page("hackernews", "t", [Mention("hackernews", "1", "ok", utcnow(), terms=["t"])],
                    None)  # fmt: skip
    # What an older version stored: controls and overrides straight from the platform.
    store.conn.execute(
        "UPDATE mentions SET text = ?, author = ?, extra = ?",
        ("pebble\x07base \u202eevil\u202c", "mal\x1b[2Jlory", '{"link_title": "t\\u0007"}'),
    )
    store.conn.execute("INSERT INTO polls (run, source, error) VALUES ('r', 'x', ?)", ("bad\x00",))
    store.conn.execute("DELETE FROM _migrations WHERE name = 'm006_inert_text'")
    store.close()

    store = Store(db)
    (m,) = store.mentions(Filters(statuses=()))
    assert (m.text, m.author, m.extra) == ("pebblebase evil", "mal[2Jlory", {"link_title": "t"})
    assert store.conn.execute("SELECT error FROM polls").fetchone()[0] == "bad"
    assert [x.id for x in store.mentions(Filters(statuses=(), search="pebblebase"))] == [m.id]
