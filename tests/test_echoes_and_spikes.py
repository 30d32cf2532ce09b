"""Echoes grouped (feed, show, handle, reply) and the spike detector on synthetic series."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from mentionwatch import echoes, spikes, trends
from mentionwatch.models import Mention, utcnow
from mentionwatch.store import Store

# Every test here also runs on PostgreSQL (see conftest.py).
pytestmark = pytest.mark.both_engines

CONFIG = """
[[terms]]
name = "pebblebase"
query = "pebblebase"
"""
COMPLAINT = "Pebblebase charged me twice for the annual plan and support has ignored 3 emails"


def save(project, *posts: tuple[str, str, str, float]) -> list[int]:
    """Save (source, author, text, hours ago) posts one at a time, as polls do; their ids."""
    project.write_config(CONFIG)
    store = Store(project.db)
    now = utcnow()
    ids = []
    try:
        for i, (source, author, text, hours) in enumerate(posts):
            m = Mention(
                source=source,
                native_id=f"p{i}",
                text=text,
                author=author,
                created_at=now - timedelta(hours=hours),
                terms=["pebblebase"],
                sentiment="negative",
                polarity=-0.5,
                url=f"https://{source}.example/{i}",
            )
            store.save_page(source, "t", [m], None)
            ids.append(store.resolve([f"{source}:p{i}"])[0])
    finally:
        store.close()
    return ids


def test_retweets_quotes_and_cross_posts_are_one_feed_entry(project):
    ids = save(
        project,
        ("x", "lena_k", f"{COMPLAINT}. Not ok @pebblebase https://t.co/abc", 5),
        ("x", "nora_b", f"RT @lena_k: {COMPLAINT}. Not ok @pebblebase https://t.co/abc", 4),
        ("x", "jtran", f"Same here!! RT @lena_k: {COMPLAINT}. Not ok @pebblebase", 3),
        ("mastodon", "lena@social.coop", f"{COMPLAINT}. Not ok. #pebblebase", 2),
        ("x", "pat_s", "Pebblebase charged me for the monthly plan after I cancelled", 1),
        ("x", "other", "pebblebase is down", 0.5),
        ("x", "someone", "pebblebase is down", 0.4),  # said independently: not an echo
    )
    rows = dict(project.rows("SELECT id, echo_of FROM mentions"))
    assert [rows[i] for i in ids] == [None, ids[0], ids[0], ids[0], None, None, None]

    feed = project.run("feed")
    assert feed.code == 0, feed.err
    assert feed.out.count("charged me twice") == 1  # one entry for the four posts
    assert "↻ 3 echoes: nora_b (x), jtran (x), lena@social.coop (mastodon)" in feed.out
    assert feed.out.count("pebblebase is down") == 2
    # The machine formats still list every mention, each saying what it repeats.
    records = project.run("feed", "--format", "jsonl").jsonl()
    assert len(records) == 7
    assert {r["id"]: r["echo_of"] for r in records}[ids[3]] == ids[0]

    shown = project.run("show", str(ids[0]), "--offline")
    assert "echoes (3):" in shown.out and "lena@social.coop on mastodon" in shown.out
    echo = project.run("show", str(ids[1]), "--offline")
    assert f"repeats {ids[0]}; its group (3):" in echo.out and "original lena_k" in echo.out

    reply = project.run("reply", str(ids[2]), "thanks", "--dry-run")
    assert f"{ids[2]} repeats {ids[0]} by lena_k on x" in reply.err
    assert f"mentionwatch reply {ids[0]}" in reply.err

    handled = project.run("handle", str(ids[0]))
    assert "4 of 4 mention(s) marked handled (with 3 echo(es))" in handled.err
    statuses = dict(project.rows("SELECT id, status FROM mentions"))
    assert {statuses[i] for i in ids[:4]} == {"handled"} and statuses[ids[4]] == "open"


def test_an_echo_found_before_its_original_is_regrouped_under_the_original(project):
    ids = save(
        project,
        ("x", "nora_b", f"RT @lena_k: {COMPLAINT}", 1),
        ("bluesky", "fan.bsky.social", f"{COMPLAINT} (via @lena_k)", 0.5),
        ("x", "lena_k", COMPLAINT, 3),  # found last, posted first: the original
    )
    rows = dict(project.rows("SELECT id, echo_of FROM mentions"))
    assert [rows[i] for i in ids] == [ids[2], ids[2], None]


def test_existing_databases_are_grouped_by_the_migration(project):
    # As a database from before m005 looked (so also before m007, which files and groups).
    save(project, ("x", "a", COMPLAINT, 2), ("x", "b", f"RT @a: {COMPLAINT}", 1))
    indexes = ("source_status", "sentiment_status", "priority_base", "priority_key")
    project.execute(
        "UPDATE mentions SET echo_of = NULL",
        "DELETE FROM echo_keys",
        "DELETE FROM _migrations WHERE name IN ('m005_trends', 'm007_scale')",
        "DROP TABLE echo_keys",
        "DROP TABLE echo_sigs",
        *(f"DROP INDEX idx_mentions_{index}" for index in indexes),
        "ALTER TABLE mentions DROP COLUMN priority_base",
        "ALTER TABLE mentions DROP COLUMN priority_key",
        "DROP TABLE spike_state",
        "DROP INDEX idx_mentions_echo_of",
        "ALTER TABLE mentions DROP COLUMN echo_of",
    )
    assert project.run("feed").code == 0
    assert project.rows("SELECT echo_of FROM mentions ORDER BY id") == [(None,), (1,)]


def test_normalising_sets_aside_links_handles_and_markers():
    sig = echoes.signature("RT @Alice: Pebblebase is DOWN again!!! https://t.co/x #outage @bob…")
    assert sig.repeats == "alice" and sig.truncated
    assert sig.words == ("pebblebase", "is", "down", "again", "outage")
    same = echoes.signature("pebblebase is down again outage")
    assert echoes.is_echo(sig, same, "bob", "alice") == 1.0
    assert echoes.is_echo(sig, same, "bob", "carol") == 0.0  # RT @alice is alice's post
    release = echoes.signature(
        "Release v1.8.2 of pebblebase-python: fixes the pool leak on timeout"
    )
    other = echoes.signature("Release v1.8.3 of pebblebase-python: fixes the pool leak on timeout")
    assert echoes.resemblance(release, other) == 0.0
    thai = echoes.signature("เพบเบิลเบสล่มอีกแล้ววันนี้ใช้งานไม่ได้เลย")
    assert len(thai.words) > 10 and echoes.band_keys([thai])[0]


# Spikes

ZONE = UTC
START = datetime(2026, 3, 2, tzinfo=UTC)


def noise(per_day: float, days: int = 15, seed: int = 1) -> dict[int, int]:
    rng = random.Random(seed)
    per_bin = per_day / 288
    first = int(START.timestamp()) // spikes.BIN_SECONDS
    counts = {}
    for i in range(days * 288):
        c, p, limit = 0, rng.random(), 2.718281828**-per_bin
        while p > limit:
            c, p = c + 1, p * rng.random()
        if c:
            counts[first + i] = c
    return counts


def add(counts: dict[int, int], at: datetime, n: int, minutes: int = 60) -> None:
    for i in range(n):
        b = int((at + timedelta(minutes=minutes * i / n)).timestamp()) // spikes.BIN_SECONDS
        counts[b] = counts.get(b, 0) + 1


def poll(counts, start: datetime, hours: float, episode=None, every=5, history_start=None):
    """Poll every `every` minutes for `hours`: the spikes announced and the final state."""
    episode = episode or spikes.Episode()
    found = []
    for step in range(int(hours * 60 / every)):
        now = start + timedelta(minutes=every * (step + 1))
        episode, spike = spikes.check(counts, now, episode, ZONE, history_start=history_start)
        if spike:
            found.append(spike)
    return found, episode


def test_quiet_brand_five_is_not_a_storm_twenty_five_is():
    at = START + timedelta(days=14, hours=10)
    five = noise(2)
    add(five, at, 5)
    assert poll(five, at, 3)[0] == []
    storm = noise(2)
    add(storm, at, 25)
    found, episode = poll(storm, at, 3)
    assert [s.kind for s in found] == ["start"]  # once per episode, not once per poll
    start = found[0]
    assert start.count >= 7 and start.baseline < 1 and start.window_end - at < timedelta(hours=1)
    assert episode.active
    # A day later the pile-up is over: the optional follow-up says so, once.
    later, episode = poll(storm, at + timedelta(hours=3), 30, episode, every=15)
    assert [s.kind for s in later] == ["end"] and not episode.active
    assert later[0].count >= 25


def test_busy_brand_ignores_wobble_and_catches_a_fivefold_hour():
    at = START + timedelta(days=14, hours=15)
    busy = noise(1000)
    add(busy, at, 21)  # +50% for an hour: significant perhaps, but no storm
    assert poll(busy, at, 2)[0] == []
    storm = noise(1000)
    add(storm, at, 4 * 1000 // 24)
    found, _ = poll(storm, at, 2)
    assert found and found[0].kind == "start"
    assert found[0].window_end - at <= timedelta(minutes=30)
    assert found[0].ratio >= 3


def test_no_judgement_without_a_day_of_history_and_state_survives_a_restart(project):
    counts = {}
    add(counts, START, 40)
    assert poll(counts, START, 2, history_start=START)[0] == []  # nothing to compare with yet
    assert poll(counts, START, 2)[0]  # two silent weeks, then 40 in an hour: that is news
    at = START + timedelta(days=14, hours=9)
    series = noise(10)
    add(series, at, 30, minutes=20)
    found, episode = poll(series, at, 1)
    assert len(found) == 1
    restored = spikes.Episode.loads(episode.dumps())
    assert restored == episode
    assert poll(series, at + timedelta(hours=1), 1, restored)[0] == []  # still the same episode
    assert spikes.Episode.loads("{not json") == spikes.Episode()


def test_check_spike_reads_the_store_and_the_rule_state(project):
    now = utcnow()
    posts = [
        ("x", f"u{i}", f"baseline post {i} about pebblebase today", 24 * 13 - i * 8)
        for i in range(39)
    ]
    posts += [
        ("x", f"angry{i}", f"pebblebase lost my data number {i} seriously", 0.3 - i / 100)
        for i in range(20)
    ]
    save(project, *posts)
    store = Store(project.db)
    try:
        episode, spike = trends.check_spike(
            store, "complaints", "pebblebase", "negative", ZONE, now=now
        )
        assert spike is not None and spike.kind == "start" and spike.count >= 10
        examples = trends.spike_examples(store, "pebblebase", "negative", spike)
        assert len(examples) == 3 and all("lost my data" in m.text for m in examples)
        store.set_spike_state("complaints", "pebblebase", "negative", episode.dumps())
        again, second = trends.check_spike(
            store, "complaints", "pebblebase", "negative", ZONE, now=now + timedelta(minutes=5)
        )
        assert second is None and again.active
        assert store.spike_state("complaints", "pebblebase", None) is None
    finally:
        store.close()


def test_tail_probabilities():
    assert spikes.tail(0, 3.0) == 1.0
    assert abs(spikes.tail(10, 2.0) - 4.6498e-05) < 1e-8  # Poisson, by direct summation
    assert spikes.tail(10, 2.0, 0.3) > spikes.tail(10, 2.0)  # bursty history: less surprising
    assert spikes.tail(5, 0.0) == 0.0


def test_repeat_and_credit_marks_however_they_are_spaced_or_spelt():
    # What the patterns match (re.I folds "ı" and "İ" into i; \s is any Unicode space),
    # the shortcut that skips them for texts without a marker before an "@" must not miss.
    marks = {"RT\u3000@bob: acme is down": ("bob", None), "so true rt@dan: acme": ("dan", None),
             "RT\n@Eve acme": ("eve", None), "Great news vıa @alice": (None, "alice"),
             "Great news VİA @alice": (None, "alice"), "acme is down h/t  @carol": (None, "carol"),
             "mail me@x.com re acme": (None, None), "@ops acme is down": (None, None)}  # fmt: skip
    for text, (repeats, credits) in marks.items():
        sig = echoes.signature(text)
        assert (sig.repeats, sig.credits) == (repeats, credits), text
    assert echoes.signature("a_b _ __ c").words == ("a_b", "__", "c")


def test_trailing_markers_are_whole_last_words():
    # The trailing pattern runs only when the last word is a marker: one that merely ends
    # like one ("that", "x.cc") stays, and a marker behind other spaces or signs still goes.
    words = {"acme is down via": ("acme", "is", "down"), "acme is down\tH/T!!": ("acme", "is",
             "down"), "acme is down cc by": ("acme", "is", "down"), "so what about that":
             ("so", "what", "about", "that"), "acme down at x.cc": ("acme", "down", "at", "x",
             "cc"), "acme down\u2003vıa": ("acme", "down"), "via": ("via",)}  # fmt: skip
    for text, expected in words.items():
        assert echoes.signature(text).words == expected, text


def test_links_are_set_aside_wherever_they_stand():
    # Links are taken out word by word: what is left around them (a marker that becomes
    # the first or last word, other whitespace) must read as it did with the whole text.
    words = {
        "https://x.io/a via": (),
        "h/t @bob via https://pebblebase.io/x": (),
        "pebblebase.io/docs\nsays\tthe pool leaks www.Example.com cc": (
            "says",
            "the",
            "pool",
            "leaks",
        ),
        "see (pebblebase.io/pricing), then x.co/y…": ("see", "then"),
        "RT @bob: https://t.co/x pebblebase is down via": ("pebblebase", "is", "down"),
    }
    for text, expected in words.items():
        assert echoes.signature(text).words == expected, text


def _blake2b_32(word: str) -> int:
    """A word's hash as the stored keys were computed with it."""
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest()) or 1


def test_word_hashes_are_each_words_own():
    # Lengths around the table's 8- and 16-byte limbs (in bytes: "é" is two), prefixes of
    # each other, non-ASCII, a word with a NUL (no page separator then), repeats.
    words = ["a", "ab", "abcdefg", "abcdefgh", "abcdefghi", "abcdefgé", "abcdefghijklmnop",
             "abcdefghijklmnoé", "abcdefghijklmnopq", "x" * 40, "straße", "日本語", "😀", "ß",
             "a", "ab"]  # fmt: skip
    for page in (words, [*words, "a\0b"], words[:1], []):
        for _ in range(2):  # first sight, then from the table
            assert echoes._word_hashes(page).tolist() == [_blake2b_32(w) for w in page]
    shared = [f"abcdefgh{i}" for i in range(5000)]  # one first limb: the second tells them apart
    for _ in range(2):
        assert echoes._word_hashes(shared).tolist() == [_blake2b_32(w) for w in shared]
    rng = random.Random(3)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789_éß日"
    for _ in range(30):  # the table grows, collides, and is emptied past 100,000 words
        page = ["".join(rng.choices(letters, k=rng.randint(1, 20)))
                for _ in range(rng.randint(1, 8000))]  # fmt: skip
        assert echoes._word_hashes(page).tolist() == [_blake2b_32(w) for w in page]
    # A page of huge posts is hashed in pieces (its arrays stay small): the same hashes.
    page = [*(["pebblebase"] * 30_000), *(f"w{i % 7_000}" for i in range(25_000)), "é" * 9]
    assert echoes._word_hashes(page).tolist() == [_blake2b_32(w) for w in page]


def _band_keys_before(words: tuple[str, ...]) -> list[int]:
    """The band keys as saving computed them one text at a time in Python ints, before
    numpy: the keys stored in existing databases, which band_keys must reproduce bit for bit."""
    if not words:
        return []
    hashes = [_blake2b_32(w) for w in words]
    pairs = [a ^ (b * 0x5BD1E995) for a, b in pairwise(hashes)] or hashes
    smallest: dict[int, int] = {}
    for p in pairs:
        smallest[p % 20] = min(p, smallest.get(p % 20, p))
    mins = [smallest.get(i, -1) for i in range(20)]
    for i in range(20):
        if mins[i] == -1:
            step = next(d for d in range(1, 20) if (i + d) % 20 in smallest)
            mins[i] = -(smallest[(i + step) % 20] * 20 + step)
    return [((mins[i] * 0x9E3779B97F4A7C15) ^ (mins[i + 1] * 0xC2B2AE3D27D4EB4F) ^ i) % 2**64
            - 2**63 for i in range(0, 20, 2)]  # fmt: skip


def test_band_keys_are_the_stored_ones():
    rng = random.Random(11)
    vocab = ["the", "a", "to", "of", "is", "and", "pebblebase", "v1.8.2", "100", "naïve", "straße",
             "日本語", "ล่ม", "😀", "x" * 40, *(f"w{i}" for i in range(3000))]  # fmt: skip
    texts = ["", "   ", "!!!", "a", "pebblebase", "a a", "a b", "the the the the the",
             "Pebblebase est en panne, encore une fois… merci", "เพบเบิลเบสล่มอีกแล้ววันนี้",
             "RT @alice: acme is down https://t.co/x #outage", "日本語のテキストです"]  # fmt: skip
    for _ in range(3000):
        n = rng.choice([1, 2, 3, 5, 8, 20, 50, 60, 120, 400])
        pool = vocab[: rng.choice([3, 30, len(vocab)])]  # few distinct words: many empty bins
        texts.append(" ".join(rng.choices(pool, k=n)))
    sigs = [echoes.signature(t) for t in texts]
    expected = [_band_keys_before(s.words) for s in sigs]
    assert echoes.band_keys(sigs) == expected
    at = 0
    while at < len(sigs):  # and in pages of any size, a text's keys are its own
        size = rng.choice([1, 2, 7, 100])
        assert echoes.band_keys(sigs[at : at + size]) == expected[at : at + size]
        at += size
    assert echoes.band_keys([]) == []
    # Two of them written out, as a database holds them.
    assert echoes.band_keys([echoes.signature("pebblebase is down again")])[0][:2] == [
        -7195553484699825757, 6761833518557796977]  # fmt: skip


def test_echo_windows_by_the_day_are_those_of_the_moment():
    from mentionwatch.store import _echo_window

    rng = random.Random(5)
    start = datetime(1, 1, 1, tzinfo=UTC)
    times = ["0001-01-31T00:00:01Z", "0002-01-01T00:00:00Z", "2024-02-29T12:00:00Z",
             "9998-12-31T23:59:59Z", "9999-12-01T23:59:58Z", "9999-12-31T23:59:59Z"]  # fmt: skip
    times += [(start + timedelta(seconds=rng.randrange(315537897599))).isoformat()[:-6] + "Z"
              for _ in range(3000)]  # fmt: skip
    for t in times:  # "+00:00" is the same moment, worked out from the datetime
        assert _echo_window(t) == _echo_window(t.replace("Z", "+00:00")), t
