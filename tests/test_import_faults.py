"""`import` of hostile and broken archives, through the real CLI: every bad line is named by
its number, the rest is saved, nothing crashes, and a huge line is never held whole."""

from __future__ import annotations

import json

import pytest

from mentionwatch import importing

MAX_LINE = 2**20  # the tests' limit (importing's own is 8 MB: the tests stay small)

CONFIG = """
[[terms]]
name = "pebblebase"
query = "pebblebase"
"""


@pytest.fixture(autouse=True)
def _small_limit(monkeypatch):
    monkeypatch.setattr(importing, "MAX_LINE", MAX_LINE)


def record(n: int, text: str = "pebblebase works") -> str:
    return json.dumps({"key": f"hackernews:{n}", "source": "hackernews", "text": text,
                       "created_at": "2026-11-01T10:00:00Z"})  # fmt: skip


def test_a_hostile_jsonl_archive_names_each_bad_line_and_saves_the_rest(project, tmp_path):
    project.write_config(CONFIG)
    lines = [
        b"\xef\xbb\xbf" + record(1).encode(),  # a BOM (Windows tools write one)
        record(2, "pebblebase \x00 works").encode().replace(b"works", b"\xff\xfe works"),
        b"[" * 100_000 + b"]" * 100_000,  # nested past the parser's recursion limit
        record(3, "pebblebase " + "x" * MAX_LINE).encode(),
        b'{"key": "hackernews:4", "key": "hackernews:5", "source": "hackernews", '
        b'"text": "pebblebase twice", "created_at": "2026-11-01T10:00:00Z"}',
        record(6).encode(),
    ]
    path = tmp_path / "archive.jsonl"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    column = lines[1].index(b"\xff") + 1
    result = project.run("import", str(path))
    assert result.code == 1
    assert result.err.splitlines() == [
        f"error: {path}:2: not UTF-8 (byte 0xff at column {column})",
        f"error: {path}:3: nested too deeply",
        f"error: {path}:4: longer than 1 MB",
        "imported 3 new mention(s) of 3 read",
    ]
    keys = sorted(r["key"] for r in project.run("export").jsonl())
    assert keys == ["hackernews:1", "hackernews:5", "hackernews:6"]  # a repeated key: the last


def test_a_hostile_csv_archive_names_each_bad_record_and_saves_the_rest(project, tmp_path):
    project.write_config(CONFIG)
    rows = [
        "key,text,created_at",
        'hackernews:1,"pebblebase over\r\ntwo lines",2026-11-01T10:00:00Z',
        "hackernews:2,pebblebase \xff,2026-11-01T10:00:00Z",
        f"hackernews:3,pebblebase {'y' * (MAX_LINE // 2)},2026-11-01T10:00:00Z",
        f'hackernews:4,"pebblebase {"z" * (MAX_LINE // 2)}\r\n{"z" * (MAX_LINE // 2)}\r\n'
        f'{"z" * (MAX_LINE // 2)}\r\n{"z" * (MAX_LINE // 2)}\r\n{"z" * (MAX_LINE // 2)}",'
        "2026-11-01T10:00:00Z",
        "hackernews:5,pebblebase,2026-11-01T10:00:00Z",
    ]
    path = tmp_path / "archive.csv"
    raw = "\r\n".join(rows).encode("utf-8").replace("\xff".encode(), b"\xff")
    path.write_bytes(b"\xef\xbb\xbf" + raw + b"\r\n")
    result = project.run("import", str(path))
    assert result.code == 1
    assert result.err.splitlines()[:2] == [
        f"error: {path}:4: not UTF-8 (byte 0xff at column 25)",
        f"error: {path}:6: field larger than field limit ({MAX_LINE})",
    ]
    saved = {r["key"]: r["text"] for r in project.run("export").jsonl()}
    assert saved["hackernews:1"] == "pebblebase over\ntwo lines"
    assert len(saved["hackernews:3"]) > MAX_LINE // 2  # a long cell, within the limit
    assert "hackernews:5" in saved and "hackernews:2" not in saved


def test_a_record_without_a_readable_time_is_named_with_its_column(project, tmp_path):
    project.write_config(CONFIG)
    rows = ["key,text,created_at,fetched_at",
            "hackernews:1,pebblebase,,",
            "hackernews:2,pebblebase,yesterday,",
            "hackernews:3,pebblebase,2026-11-01T10:00:00Z,soon",
            "hackernews:4,pebblebase,2026-11-01T10:00:00Z,"]  # fmt: skip
    path = tmp_path / "archive.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = project.run("import", str(path))
    assert result.code == 1
    expected = "must be an ISO 8601 time such as 2026-11-01T09:30:00Z, not"
    assert result.err.splitlines() == [
        f'error: {path}:2: "created_at" {expected} empty',
        f'error: {path}:3: "created_at" {expected} "yesterday"',
        f'error: {path}:4: "fetched_at" {expected} "soon"',
        "imported 1 new mention(s) of 1 read",
    ]
    assert [r["key"] for r in project.run("export").jsonl()] == ["hackernews:4"]
