"""Issue 11: one list of columns, set-based saving, index-served orders, import, echo
grouping that stays linear on templated texts, the analyzer's labels kept."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mentionwatch import echoes, render
from mentionwatch.models import MENTION_COLUMNS, RECORD_KEYS, Filters, Mention, utcnow
from mentionwatch.render import record, records
from mentionwatch.store import Store
from mentionwatch.triage import by_priority

CONFIG = """
[[terms]]
name = "pebblebase"
query = "pebblebase"
"""
LABELS = Path(__file__).with_name("data") / "analyzer_labels.jsonl"


def _seed(store: Store, count: int = 300) -> None:
    now = utcnow()
    labels = ["negative", "neutral", "positive"]
    intents = [(), ("complaint",), ("question",), ("praise", "request")]
    page = [
        Mention(source=("x", "reddit", "hackernews")[i % 3], native_id=str(i),
                text=f"pebblebase post {i} about feature {i * 7 % 13}",
                created_at=now - timedelta(hours=(i * 37) % 500), author=f"u{i % 17}",
                reach=(i * 31) % 1000 if i % 4 else None, terms=["pebblebase"],
                sentiment=labels[i % 3], polarity=((i % 9) - 4) / 4, intents=intents[i % 4])
        for i in range(count)
    ]  # fmt: skip
    for start in range(0, count, 50):
        store.save_page("x", "t", page[start : start + 50], None)
    store.set_status(list(range(1, count, 5)), "handled")


def test_every_column_is_declared_once_and_round_trips(tmp_path):
    store = Store(tmp_path / "m.db")
    stored = {r[1] for r in store.conn.execute("PRAGMA table_info(mentions)")}
    assert {name for name, _ in MENTION_COLUMNS} <= stored
    m = Mention(source="x", native_id="1", text="pebblebase é 😀", created_at=utcnow(),
                url="https://x.com/1", author="a", author_name="A", title="t", reach=5,
                reply_url="r", extra={"k": [1, "ü"]}, terms=["pebblebase"], sentiment="negative",
                polarity=-0.5, intents=("complaint",), status="ignored")  # fmt: skip
    store.save_page("x", "t", [m], "c")
    back = store.get(m.id)
    for name, _ in MENTION_COLUMNS:
        expected = getattr(m, name)
        if name in ("created_at", "fetched_at"):
            expected = expected.replace(microsecond=0)
        assert getattr(back, name) == expected, name
    assert tuple(record(back)) == RECORD_KEYS


def test_row_times_are_each_moments_own_text():
    # Rows reuse a time's text (a page shares its fetched_at): equal times that differ in
    # text (the fold of a zone's repeated hour, a fraction of a second) must not share it.
    from zoneinfo import ZoneInfo

    from mentionwatch.models import iso
    from mentionwatch.store import _INSERT_COLUMNS, _row

    zone = ZoneInfo("America/New_York")
    day = datetime(2026, 11, 1)
    times = [day.replace(hour=1, minute=30, tzinfo=zone),
             day.replace(hour=1, minute=30, fold=1, tzinfo=zone),
             day.replace(hour=5, minute=30, tzinfo=UTC),
             day.replace(hour=5, minute=30, microsecond=999, tzinfo=UTC),
             day.replace(hour=6, minute=30),
             day.replace(hour=6, minute=30, tzinfo=UTC)]  # fmt: skip
    for fetched in times * 2:
        for created in times:
            m = Mention(source="x", native_id="1", text="t", created_at=created, fetched_at=fetched)
            m.id = 1
            row = dict(zip(_INSERT_COLUMNS, _row(m), strict=False))
            assert (row["created_at"], row["fetched_at"]) == (iso(created), iso(fetched))


@pytest.mark.parametrize("decoded", [10_000, 1])
def test_export_rows_give_the_records_mentions_give(tmp_path, monkeypatch, decoded):
    # decoded=1: more distinct term lists than export keeps decoded (it once wrote [] then)
    monkeypatch.setattr(render, "DECODED_LISTS", decoded)
    store = Store(tmp_path / "m.db")
    _seed(store, 60)
    from_mentions = [record(m) for m in store.mentions(Filters(statuses=()), order="oldest")]
    from_rows = list(records(store.rows(Filters(statuses=()), order="oldest")))
    for a, b in zip(from_mentions, from_rows, strict=True):
        assert abs(a.pop("priority") - b.pop("priority")) < 0.002  # read a moment apart
        assert a == b


def test_priority_order_from_indexes_is_the_order_of_sorting_everything(tmp_path):
    store = Store(tmp_path / "m.db")
    _seed(store)
    for filters in (Filters(), Filters(statuses=()), Filters(sources=("x",)),
                    Filters(sentiments=("negative", "neutral"), statuses=("open", "handled")),
                    Filters(intents=("complaint",)), Filters(search="feature")):  # fmt: skip
        everything = by_priority(store.mentions(filters))
        assert [m.id for m in store.mentions(filters, order="priority")] == [
            m.id for m in everything
        ]
        top = [m.id for m in store.mentions(filters, limit=7, order="priority")]
        assert top == [m.id for m in everything[:7]]


def test_limited_reads_are_the_head_of_the_full_order_and_follow_status_changes(tmp_path):
    # A limited read is a union of index ranges (per status, term and intent); it must give
    # exactly what reading everything in order gives, and counts what the filters pass.
    store = Store(tmp_path / "m.db")
    _seed(store)
    store.save_page(
        "x",
        "t",
        [
            Mention(
                source="x",
                native_id=str(i),
                text=f"stonebase {i}",
                created_at=utcnow() - timedelta(hours=i),
                terms=["stonebase"],
            )
            for i in (3, 6, 400)
        ],
        None,
    )  # fmt: skip (3, 6: both terms)
    both = [
        r[0]
        for r in store.conn.execute(
            "SELECT mention_id FROM mention_terms GROUP BY mention_id HAVING count(*) = 2"
        )
    ]
    assert len(both) == 2
    store.set_status([*both, 10, 11], "ignored")  # mention_terms must follow status changes
    cases = (Filters(), Filters(statuses=()), Filters(statuses=("ignored", "open")),
             Filters(terms=("stonebase",)), Filters(terms=("stonebase", "pebblebase")),
             Filters(terms=("stonebase",), statuses=("ignored",)),
             Filters(terms=("pebblebase",), sources=("reddit",), statuses=()),
             Filters(intents=("complaint",)), Filters(intents=("praise", "question"), statuses=()),
             Filters(intents=("request",), terms=("pebblebase",), sentiments=("negative",)),
             Filters(search="feature", statuses=()), Filters(search="feature"),
             Filters(search="feature OR stonebase", statuses=("ignored", "open")),
             Filters(search="post", terms=("pebblebase",), sources=("x",)),
             Filters(search="author:u3", intents=("complaint",), statuses=()))  # fmt: skip
    for filters in cases:
        for order in ("newest", "oldest"):
            everything = [r["id"] for r in store.rows(filters, order=order)]
            assert everything, filters
            assert len(set(everything)) == len(everything)
            for limit in (1, 7, len(everything) + 5):
                assert [r["id"] for r in store.rows(filters, limit, order)] == everything[:limit]
        counts = store.count_by_status(filters)
        for status in ("open", "handled", "ignored"):
            wanted = replace(filters, statuses=(status,))
            assert counts.get(status, 0) == len(list(store.rows(wanted))), (filters, status)
    terms = store.conn.execute(
        "SELECT t.status, m.status, t.created_at, m.created_at FROM "
        "mention_terms t JOIN mentions m ON m.id = t.mention_id"
    ).fetchall()
    assert all(a == b and c == d for a, b, c, d in terms)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_search_reads_matches_in_time_order_and_ranks_the_newest(
    tmp_path, monkeypatch, request, engine
):
    # --search is read from FTS5 in time order (its rowid is the time key), so dates far
    # outside the usual range (placeholders of broken APIs) must still be stored and found.
    # PostgreSQL's full text (GIN, ts_rank) must answer the same: the same newest matches
    # ranked, per status.
    at = tmp_path / "m.db" if engine == "sqlite" else request.getfixturevalue("pg_url")
    store = Store(at)
    now = utcnow()
    texts = ["backup backup backup", "backup", "backup restore", "backup backup"]
    page = [Mention(source="x", native_id=str(i), text=t, created_at=now - timedelta(days=i))
            for i, t in enumerate(texts)]  # fmt: skip
    page += [Mention(source="x", native_id="far", text="backup far", created_at=when)
             for when in (now.replace(year=9999), now.replace(year=1900))]  # fmt: skip
    page[-1].native_id = "old"
    store.save_page("x", "t", page, None)
    newest = [m.text for m in store.mentions(Filters(search="backup"))]
    assert newest == ["backup far", *texts, "backup far"]
    assert [m.text for m in store.mentions(Filters(search="backup"), limit=2)] == newest[:2]
    ranked = [m.text for m in store.mentions(Filters(search="backup"), order="relevance")]
    assert ranked[0] == "backup backup backup"
    # Relevance ranks the newest store.RANKED matches that pass the filters.
    monkeypatch.setattr("mentionwatch.store.RANKED", 3)
    ranked = [m.text for m in store.mentions(Filters(search="backup"), order="relevance")]
    assert sorted(ranked) == sorted(newest[:3]) and ranked[0] == "backup backup backup"
    store.set_status([page[0].id], "handled")  # open matches only: the next one moves up
    ranked = [m.text for m in store.mentions(Filters(search="backup"), order="relevance")]
    assert sorted(ranked) == sorted(["backup far", "backup", "backup restore"])
    assert ranked[0] == "backup"


def test_dates_at_the_ends_of_the_calendar_save_and_group(tmp_path):
    # Placeholder dates of broken APIs (Go's zero time 0001-01-01, 9999-12-31): stored as
    # ISO 8601 text that reads back, and echo grouping looks 30 days either side of them.
    store = Store(tmp_path / "m.db")
    text = "pebblebase shipped offline sync for every plan today"
    ends = (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC))
    page = [Mention(source="x", native_id=f"{i}{copy}", text=("RT: " * copy) + text,
                    created_at=when, terms=["pebblebase"])
            for i, when in enumerate(ends) for copy in (0, 1)]  # fmt: skip
    assert store.save_page("x", "pebblebase", page, "c1") == 4
    stored = {m.native_id: m for m in store.mentions(Filters(statuses=()))}
    assert stored["01"].echo_of == stored["00"].id and stored["11"].echo_of == stored["10"].id
    assert store.get_cursor("x", "pebblebase") == "c1"
    assert sorted(m.created_at for m in stored.values()) == [ends[1]] * 2 + [ends[0]] * 2


def test_the_priority_order_reads_few_rows_of_a_large_table(tmp_path):
    store = Store(tmp_path / "m.db")
    _seed(store, 2000)
    read = 0
    original = store._ordered

    def counting(*args, **kwargs):
        nonlocal read
        for row in original(*args, **kwargs):
            read += 1
            yield row

    store._ordered = counting
    assert len(list(store.mentions(Filters(), limit=20, order="priority"))) == 20
    assert read < 600  # of 1,600 open mentions, read through two lists


def test_feed_sorts_by_relevance_and_counts_with_a_cap(project):
    project.write_config(CONFIG)
    store = Store(project.db)
    now = utcnow()
    texts = ["pebblebase backup backup backup restore", "pebblebase backup", "pebblebase other"]
    store.save_page("x", "t", [Mention(source="x", native_id=str(i), text=t,
                                       created_at=now - timedelta(hours=i), terms=["pebblebase"])
                               for i, t in enumerate(texts)], None)  # fmt: skip
    store.close()
    ranked = project.run("feed", "--search", "backup", "--sort", "relevance", "-f", "jsonl")
    assert [r["text"] for r in ranked.jsonl()] == texts[:2]
    lost = project.run("feed", "--sort", "relevance")
    assert lost.code == 2 and "--search" in lost.err
    assert project.run("feed", "--sort", "priority", "-f", "ids", "-n", "2").out.count("\n") == 2


def test_the_feed_note_counts_search_matches_to_a_smaller_cap(project):
    project.write_config(CONFIG)
    store = Store(project.db)
    now = utcnow()
    texts = ["pebblebase backup"] * 120 + ["pebblebase other"] * 5
    store.save_page("x", "t", [Mention(source="x", native_id=str(i), text=f"{t} {i}",
                                       created_at=now - timedelta(minutes=i), terms=["pebblebase"])
                               for i, t in enumerate(texts)], None)  # fmt: skip
    store.close()
    note = project.run("feed", "-n", "5").out.strip().splitlines()[-1]
    assert note == "120 more: --limit 0 shows all"  # under the feed's cap: exact
    note = project.run("feed", "--search", "backup", "-n", "5").out.strip().splitlines()[-1]
    assert note == "95+ more: --limit 0 shows all"  # 100 matches counted, "at least"


def test_import_round_trips_an_export_and_reads_twarc(project, tmp_path):
    project.write_config(CONFIG)
    store = Store(project.db)
    _seed(store, 40)
    store.close()
    exported = project.run("export").jsonl()
    for fmt in ("jsonl", "csv"):
        path = tmp_path / f"backup.{fmt}"
        assert project.run("export", "-o", str(path)).code == 0
        other = tmp_path / f"other-{fmt}.db"
        first = project.run("--db", str(other), "import", str(path))
        assert first.code == 0 and "imported 40 new mention(s) of 40 read" in first.err
        again = project.run("--db", str(other), "import", str(path))
        assert "imported 0 new mention(s) of 40 read" in again.err
        back = {r["key"]: r for r in project.run("--db", str(other), "export").jsonl()}
        for rec in exported:
            mine = back[rec["key"]]
            for key in RECORD_KEYS:
                if key not in ("id", "priority", "echo_of"):
                    assert mine[key] == rec[key], (fmt, key)
    page = {
        "data": [
            {
                "id": "123",
                "text": "pebblebase is down &amp; out",
                "created_at": "2026-03-01T10:00:00.000Z",
                "author_id": "9",
                "public_metrics": {"like_count": 3, "retweet_count": 1},
            },
            {
                "id": "125",
                "text": "nothing to see",
                "author_id": "9",
                "created_at": "2026-03-01T10:00:00.000Z",
            },
        ],
        "includes": {"users": [{"id": "9", "username": "lena", "name": "Lena"}]},
    }
    flat = {"id": "124", "text": "love pebblebase", "created_at": "2026-03-01T11:00:00Z",
            "author_id": "8", "author": {"id": "8", "username": "bo", "name": "Bo"}}  # fmt: skip
    twarc = tmp_path / "tweets.jsonl"
    twarc.write_text(json.dumps(page) + "\n{oops\n" + json.dumps(flat) + "\n")
    result = project.run("--db", str(tmp_path / "t.db"), "import", str(twarc))
    assert result.code == 1
    assert "error: " + str(twarc) + ":2: not JSON" in result.err
    assert "imported 2 new mention(s) of 3 read; 1 matched no configured term" in result.err
    rows = project.run("--db", str(tmp_path / "t.db"), "export").jsonl()
    assert {(r["key"], r["author"], r["text"], r["reach"]) for r in rows} == {
        ("x:123", "lena", "pebblebase is down & out", 4),
        ("x:124", "bo", "love pebblebase", 0),
    }
    assert all(r["sentiment"] for r in rows)  # tagged as a poll tags
    stdin = project.run("--db", str(tmp_path / "s.db"), "import", "-", "--term", "pebblebase",
                        input=json.dumps(page))  # fmt: skip
    assert "imported 2 new mention(s) of 2 read" in stdin.err
    unknown = project.run("import", str(tmp_path / "nope.csv"))
    assert unknown.code == 2 and "cannot read" in unknown.err


def test_import_names_values_of_the_wrong_type_and_keeps_the_records_types(project, tmp_path):
    project.write_config(CONFIG)
    good = {"source": "hackernews", "text": "pebblebase", "created_at": "2026-03-01T10:00:00Z"}
    lines = [
        {**good, "key": "hackernews:1", "reach": 3, "polarity": -0.5, "relevance": 0.75,
         "sentiment": "negative", "status": "handled", "intents": ["complaint"]},
        {**good, "key": "hackernews:2", "reach": "12"},
        {**good, "key": "hackernews:3", "status": "bogus"},
        {**good, "key": "hackernews:4", "polarity": 7},
        {**good, "key": "hackernews:5", "intents": "praise"},
        {**good, "key": "hackernews:6", "author": 5},
    ]  # fmt: skip
    path = tmp_path / "archive.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = project.run("import", str(path))
    assert result.code == 1  # the bad lines are named; the good one is saved
    assert result.err.splitlines() == [
        f'error: {path}:2: "reach" must be an integer, not "12"',
        f'error: {path}:3: "status" must be one of open, handled, ignored, not "bogus"',
        f'error: {path}:4: "polarity" must be between -1 and 1, not 7',
        f'error: {path}:5: "intents" must be a list of strings, not "praise"',
        f'error: {path}:6: "author" must be a string, not 5',
        "imported 1 new mention(s) of 1 read",
    ]
    (saved,) = project.run("export").jsonl()
    assert (saved["reach"], saved["polarity"], saved["relevance"]) == (3, -0.5, 0.75)
    # through CSV, where every cell is text, numbers come back as numbers
    csv_path = tmp_path / "archive.csv"
    assert project.run("export", "-o", str(csv_path)).code == 0
    other = tmp_path / "other.db"
    assert project.run("--db", str(other), "import", str(csv_path)).code == 0
    (back,) = project.run("--db", str(other), "export").jsonl()
    assert {k: back[k] for k in ("reach", "polarity", "relevance", "status", "intents")} == {
        "reach": 3, "polarity": -0.5, "relevance": 0.75, "status": "handled",
        "intents": ["complaint"],
    }  # fmt: skip


def test_echo_grouping_stays_linear_on_templated_texts(tmp_path):
    store = Store(tmp_path / "m.db")
    now = utcnow()
    page = [Mention(source="x", native_id=str(i), text=f"pebblebase note {i} " * 5,
                    created_at=now - timedelta(seconds=i), author=f"a{i}", terms=["p"])
            for i in range(600)]  # fmt: skip
    read = []
    original = echoes.Signature.loads
    echoes.Signature.loads = staticmethod(lambda v: read.append(1) or original(v))
    try:
        for start in range(0, 600, 100):
            store.save_page("x", "t", page[start : start + 100], None)
    finally:
        echoes.Signature.loads = staticmethod(original)
    assert len(read) <= 600 * 8  # at most the few best candidates per mention
    assert store.conn.execute("SELECT count(*) FROM mentions WHERE echo_of IS NOT NULL"
                              ).fetchone()[0] == 0  # fmt: skip
    copy = Mention(source="bluesky", native_id="c", text="pebblebase note 5 " * 5,
                   created_at=now, author="z", terms=["p"])  # fmt: skip
    store.save_page("bluesky", "t", [copy], None)
    assert store.get(copy.id).echo_of == store.resolve(["x:5"])[0]


def test_the_default_analyzer_keeps_its_labels_on_a_fixed_corpus():
    """Speed work in sentiment.py must not move a label (model changes regenerate the file)."""
    from mentionwatch.sentiment import get_analyzer

    analyzer = get_analyzer()
    for line in LABELS.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        score = analyzer.score(case["text"])
        assert (score.label, score.polarity, list(score.intents)) == (
            case["label"], case["polarity"], case["intents"]), case["text"]  # fmt: skip


def test_databases_from_before_the_search_order_are_searched_after_upgrading(tmp_path):
    from mentionwatch import store as store_module

    path = tmp_path / "m.db"
    before = [m for m in store_module.MIGRATIONS if m.__name__ != "m011_search_order"]
    saved = store_module.MIGRATIONS[:]
    store_module.MIGRATIONS[:] = before
    try:
        old = Store(path)
        old.conn.executemany(  # as the insert of a store before m011_search_order wrote it
            "INSERT INTO mentions (key, source, native_id, text, created_at, status) "
            "VALUES (?, 'x', ?, ?, ?, ?)",
            [(f"x:{i}", str(i), f"backup {i}", f"2026-0{i}-01T00:00:00Z", s)
             for i, s in ((1, "open"), (3, "handled"), (2, "open"))],
        )  # fmt: skip
        old.close()
    finally:
        store_module.MIGRATIONS[:] = saved
    store = Store(path)
    assert [m.text for m in store.mentions(Filters(search="backup"))] == ["backup 2", "backup 1"]
    store.save_page("x", "t", [Mention(source="x", native_id="9", text="backup 9",
                                       created_at=utcnow())], None)  # fmt: skip
    found = [m.text for m in store.mentions(Filters(search="backup", statuses=()), limit=3)]
    assert found == ["backup 9", "backup 3", "backup 2"]


@pytest.mark.both_engines
def test_terms_are_copied_onto_mentions_when_upgrading_and_kept_by_saving(project):
    """m014_terms_on_mentions fills mentions.terms from mention_terms, and save_page keeps
    it: a stored mention found again by another term has it on its row too."""
    from mentionwatch import store as store_module

    project.write_config(CONFIG)
    saved = store_module.MIGRATIONS[:]
    store_module.MIGRATIONS[:] = [m for m in saved if m.__name__ != "m014_terms_on_mentions"]
    try:
        old = Store(project.db)
        with old.transaction():  # as the saving of a store before m014 wrote them
            old.conn.executemany(
                "INSERT INTO mentions (id, key, source, native_id, text, created_at, "
                "priority_base) VALUES (?, ?, 'x', ?, ?, ?, 1.5)",
                [(i, f"x:{i}", str(i), f"pebblebase {i}", f"2026-0{i}-01T00:00:00Z")
                 for i in (1, 2, 3)],
            )  # fmt: skip
            old.conn.executemany(
                "INSERT INTO mention_terms (mention_id, status, created_at, term) "
                "VALUES (?, 'open', ?, ?)",
                [(1, "2026-01-01T00:00:00Z", "stonebase"), (1, "2026-01-01T00:00:00Z",
                  "pebblebase"), (2, "2026-02-01T00:00:00Z", "pebblebase")],
            )  # fmt: skip
        old.close()
    finally:
        store_module.MIGRATIONS[:] = saved
    store = Store(project.db)
    stored = [tuple(r) for r in store.conn.execute("SELECT id, terms FROM mentions ORDER BY id")]
    assert stored == [(1, '["pebblebase", "stonebase"]'), (2, '["pebblebase"]'), (3, "[]")]
    created = datetime(2026, 3, 1, tzinfo=UTC)
    for term in ("stonebase", "pebblebase", "stonebase"):  # found again; once more: no change
        store.save_page("x", term, [Mention(source="x", native_id="3", text="pebblebase 3",
                                            created_at=created, terms=[term])], None)  # fmt: skip
    store.close()
    exported = {r["id"]: r["terms"] for r in project.run("export").jsonl()}
    assert exported == {1: ["pebblebase", "stonebase"], 2: ["pebblebase"],
                        3: ["pebblebase", "stonebase"]}  # fmt: skip
    assert project.rows("SELECT terms FROM mentions WHERE id = 3") == [
        ('["pebblebase", "stonebase"]',)
    ]


@pytest.mark.sqlite_only
def test_an_analyzed_database_keeps_its_plans_after_the_priority_lists_grow(tmp_path):
    """m013_priority_lists replaces two indexes; a SQLite database with statistics gets
    them for the new ones too, or the planner reads the newest-first feed through a
    priority list (it covers created_at) and sorts every open mention."""
    from mentionwatch import store as store_module

    path = tmp_path / "m.db"
    saved = store_module.MIGRATIONS[:]
    store_module.MIGRATIONS[:] = [m for m in saved if m.__name__ != "m013_priority_lists"]
    try:
        old = Store(path)
        _seed(old)
        old.conn.execute("ANALYZE")
        old.close()
    finally:
        store_module.MIGRATIONS[:] = saved
    store = Store(path)
    sql = "SELECT id FROM mentions WHERE status = ? ORDER BY created_at DESC, id DESC LIMIT 20"
    plan = " ".join(r[3] for r in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}", ["open"]))
    assert "idx_mentions_status_created_at" in plan and "TEMP B-TREE" not in plan, plan
    top = list(store.mentions(Filters(), limit=5, order="priority"))
    assert [m.id for m in top] == [m.id for m in by_priority(store.mentions(Filters()), 5)]


def test_a_config_of_ten_thousand_terms_loads_and_its_errors_name_the_line(project):
    terms = "\n".join(
        f'[[terms]]\nname = "brand{i}"\nquery = \'brand{i} OR "brand {i} app" -jobs\'\n'
        for i in range(10_000)
    )
    project.config.write_text(terms)
    project.config.chmod(0o600)
    Store(project.db).close()
    listed = project.run("feed", "--term", "brand9999", "--format", "ids")
    assert listed.code == 0, listed.err
    # A big config is read by the compiled parser: a mistake is still one line with its place.
    project.config.write_text(terms + "\n[[terms]]\nname = \n")
    broken = project.run("feed")
    assert broken.code == 2
    assert f"{project.config}: invalid TOML: Invalid value (at line 40002, column 8)" in broken.err
    project.config.write_text(terms + '\n[[terms]]\nname = "x"\nquery = \'"unclosed\'\n')
    bad_query = project.run("feed")
    assert bad_query.code == 2 and f"{project.config}:40003: terms[10000].query" in bad_query.err
