"""Labels a founder can trust: domain sentiment and intents, title + body, relevance that
learns from decisions, the optional LLM analyzer, --explain, rescore."""

from __future__ import annotations

import pytest
from conftest import HN_AND_RSS

from mentionwatch import sentiment as s


@pytest.fixture(scope="module")
def default() -> s.Analyzer:
    return s.get_analyzer()


# The everyday product mentions of issue 10, each mislabelled before domain training.
@pytest.mark.parametrize(
    ("text", "label", "intent"),
    [
        # Complaints said in neutral words: a complaint leaning negative. (Labelling every
        # such failure negative cost 0.5-1.2 points of macro-F1 on held-out GitHub and
        # Stack Overflow talk, where developers describe failures neutrally.)
        ("the new release broke my build", None, "complaint"),
        ("support hasn't answered my ticket in 3 days", None, "complaint"),
        ("acme is down again", "negative", "complaint"),
        ("the app keeps crashing when I open it", "negative", "complaint"),
        ("would love dark mode in acme", None, "request"),
        ("please add an export to CSV", None, "request"),
        ("How do I export my data?", None, "question"),
        ("Thanks, the new dashboard is great!", "positive", "praise"),
    ],
)
def test_everyday_product_mentions(default, text, label, intent):
    score = default.score(s.mask_terms(text, ["acme"]))
    if label:
        assert score.label == label, score
    assert intent in score.intents, score
    if intent == "complaint":
        assert score.label != "positive" and score.polarity < 0, score


def test_a_wish_is_a_request(default):
    # Cross-validation kept praise on positive wishes (app reviewers praise and ask at once).
    score = default.score("would love dark mode in acme")
    assert "request" in score.intents and "complaint" not in score.intents


def test_praise_said_with_a_negation_is_not_a_complaint(default):
    text = "Honestly xterm is the first hosted database that didn't make me read a pricing "
    score = default.score(text + "calculator before signing up.")
    assert score.label != "negative" and "complaint" not in score.intents


def test_plain_information_has_no_intent(default):
    assert (
        default.score("Pebblebase 1.4 is out: point-in-time restore and an EU region").intents == ()
    )


# Title + body, in the shapes platforms give them.
def post(title: str | None, text: str) -> s.Score:
    return s.score_post(s.get_analyzer(), s.Post(text=text, title=title))


def test_a_title_does_not_flip_the_body():
    # Stack Overflow: the demo's question whose title once made it positive.
    score = post(
        "xterm free tier keeps throttling my Node app",
        "The xterm free tier keeps returning 429 after a few hundred queries and the docs "
        "don't say what the limit is. This is really annoying for a hobby project.",
    )
    assert score.label == "negative" and "complaint" in score.intents
    # Reddit: a cheerful title over an unhappy body.
    score = post("Great news everyone!", "The update deleted all my notes. Support is ignoring me.")
    assert score.label == "negative"


def test_a_title_speaks_for_a_neutral_body():
    # GitHub issue: the complaint is in the title, the body is steps to reproduce.
    score = post("App crashes on startup since 2.3", "Steps: 1. install 2.3 2. open the app")
    assert score.label == "negative" and "complaint" in score.intents
    # Hacker News story: a title and no body.
    assert post("Ask HN: Is xterm worth it for a side project?", "").intents[0] == "question"
    # A title's question is still asked when the body explains it.
    assert "question" in post("How do I restore a backup?", "I deleted a table by mistake.").intents


def test_the_demo_mentions_are_labelled_for_what_their_authors_said(project):
    from mentionwatch.testing.demo import demo_config

    project.write_config(demo_config(project.web, project.db))
    assert project.run("poll").code == 0
    rows = {r["title"] or r["text"][:40]: r for r in project.run("export").jsonl()}
    throttling = rows["Pebblebase free tier keeps throttling my Node app"]
    assert throttling["sentiment"] == "negative" and "complaint" in throttling["intents"]
    calculator = next(r for r in rows.values() if "pricing calculator" in r["text"])
    assert calculator["sentiment"] != "negative" and "complaint" not in calculator["intents"]
    # The README's recipe closes positive mentions: none of them may be a complaint.
    positive = project.run("feed", "--sentiment", "positive", "--format", "jsonl").jsonl()
    assert positive and not any("complaint" in r["intents"] for r in positive)


# --explain and calibration


def test_explain_shows_the_features_that_decided(project):
    project.write_config("")
    result = project.run("sentiment", "--explain", "the new release broke my build again")
    assert result.code == 0, result.err
    first, *features = result.out.splitlines()
    assert "complaint" in first
    assert features and any(line.split()[0] == "_fail" for line in features)
    rows = project.run("sentiment", "--explain", "--format", "jsonl", "I love it").jsonl()
    assert rows[0]["features"][0]["weights"]["positive"] > 0
    refused = project.run("sentiment", "--explain", "--analyzer", "textblob", "fine")
    assert refused.code == 2 and "--explain" in refused.err


def test_polarity_is_a_calibrated_probability_difference(default):
    strong, weak = default.score("I love it, amazing!"), default.score("it is ok I guess")
    assert 0.5 < strong.polarity <= 1.0 and abs(weak.polarity) < strong.polarity
    from pathlib import Path

    raw = (Path(s.__file__).parent / "sentiment_data" / "model.bin").read_bytes()
    header, _, _ = s.read_model(raw)
    assert 0.5 <= header["temperature"] <= 2.5


# Relevance: config, local score, learning from decisions, the feed filter

RELEVANCE = HN_AND_RSS.replace(
    "[sources.hackernews]",
    'about = "hosted database for side projects"\nnot_about = ["seed round"]\n\n'
    "[sources.hackernews]",
)


def test_relevance_from_the_config_and_the_feed_filter(project):
    project.write_config(RELEVANCE)
    assert project.run("poll").code == 0
    rows = project.run("export").jsonl()
    assert rows and all(isinstance(r["relevance"], float) for r in rows)
    funding = [r for r in rows if "seed round" in (r["title"] or "") + r["text"]]
    about = [r for r in rows if "side project" in r["text"].lower() and r not in funding]
    assert funding and about
    assert max(r["relevance"] for r in funding) < 0.5 <= min(r["relevance"] for r in about)
    relevant = {int(x) for x in project.run("feed", "--relevant", "--format", "ids").out.split()}
    assert relevant and not relevant & {r["id"] for r in funding}
    assert {r["id"] for r in about} <= relevant
    shown = project.run("show", "--offline", str(funding[0]["id"])).out
    assert "relevance" in shown and "probably another thing" in shown
    assert "~off-topic" in project.run("feed", "--status", "all").out


def test_relevance_learns_from_decisions_and_unlearns_exactly(project):
    project.write_config(HN_AND_RSS)
    project.run("poll")
    before = {r["id"]: r["relevance"] for r in project.run("export").jsonl()}
    assert set(before.values()) == {0.5}  # no about, no decisions: even odds
    rows = project.run("export").jsonl()
    show_hn = [r["id"] for r in rows if "Show HN" in (r["title"] or "")]
    others = [r["id"] for r in rows if r["id"] not in show_hn]
    assert len(show_hn) >= 3 and others
    assert project.run("ignore", *map(str, show_hn[:3])).code == 0
    assert project.run("handle", str(others[0])).code == 0
    after = {r["id"]: r["relevance"] for r in project.run("export").jsonl()}
    # The rest of that thread (same words, same source) now looks less relevant.
    assert all(after[i] < 0.5 for i in show_hn[3:])
    assert project.rows("SELECT sum(relevant), sum(irrelevant) FROM relevance_counts "
                        "WHERE feature = ''") == [(1, 3)]  # fmt: skip
    # Reopening takes the lessons back, exactly.
    assert project.run("reopen", *map(str, [*show_hn[:3], others[0]])).code == 0
    assert {r["id"]: r["relevance"] for r in project.run("export").jsonl()} == before
    assert project.rows(
        "SELECT count(*) FROM relevance_counts WHERE relevant != 0 OR irrelevant != 0"
    ) == [(0,)]


def test_a_reply_teaches_relevance(project):
    from mentionwatch.store import Store

    project.write_config(HN_AND_RSS)
    project.run("poll")
    store = Store(project.db)
    store.add_reply(1, "thanks!", "posted")  # as `reply` records a posted reply
    assert store.relevance_events()[-1][1:] == (1, "replied")
    store.close()
    project.run("poll")  # a poll learns what happened since the last one
    assert project.rows("SELECT relevant FROM relevance_lessons WHERE mention_id = 1") == [(1,)]


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("about = 3", "terms[0].about: expected a description of the product"),
        ('not_about = "seed"', "terms[0].not_about: expected a list of words or phrases"),
        ('not_about = [""]', "terms[0].not_about: expected a list of non-empty strings"),
        ('colour = "red"', "terms[0].colour: unknown key"),
    ],
)
def test_bad_relevance_config_is_one_line(project, snippet, message):
    project.write_config(f'[[terms]]\nname = "acme"\n{snippet}\n')
    result = project.run("feed")
    assert result.code == 2
    assert message in result.err and f"{project.config}:" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_bad_analyzer_config_is_one_line(project):
    project.write_config('[sentiment]\nanalyzer = "gpt"\n')
    result = project.run("feed")
    assert result.code == 2 and "sentiment.analyzer: unknown analyzer 'gpt'" in result.err
    project.write_config("[sentiment.llm]\nbatch_size = 0\n")
    result = project.run("feed")
    assert result.code == 2 and "sentiment.llm.batch_size" in result.err


def test_threshold_is_one_definition(monkeypatch):
    from mentionwatch import relevance, render
    from mentionwatch.models import Filters

    assert relevance.THRESHOLD == 0.5
    assert render.about_product(0.5) and not render.about_product(0.49)
    monkeypatch.setattr(relevance, "THRESHOLD", 0.8)
    assert not render.about_product(0.5)  # the feed reads relevance's threshold, not a copy
    assert Filters().min_relevance is None


def test_relevance_precision_improves_over_a_simulated_month():
    """A short version of benchmarks/relevance_month.py: decisions make --relevant precise."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "relevance_month.py"
    spec = importlib.util.spec_from_file_location("relevance_month", path)
    month = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["relevance_month"] = month  # dataclasses look their module up
    spec.loader.exec_module(month)
    weeks = month.simulate(days=21, per_day=20, seed=3)
    assert weeks[-1].precision > weeks[0].precision + 0.1
    assert weeks[-1].recall >= 0.8


def test_poll_says_when_stored_mentions_need_a_rescore(project):
    project.write_config(HN_AND_RSS)
    assert "rescore" not in project.run("poll").err  # a new database just records the model
    project.execute(
        "UPDATE source_state SET value = 'mentionwatch:old' WHERE source = 'tagging'",
        "DELETE FROM mention_terms WHERE mention_id = 1",  # so the next poll tags one again
        "DELETE FROM echo_keys WHERE mention_id = 1",
        "DELETE FROM echo_sigs WHERE mention_id = 1",
        "DELETE FROM mentions WHERE id = 1",
        "DELETE FROM cursors",
    )
    err = project.run("poll").err
    assert "tagged by mentionwatch:old" in err and "mentionwatch rescore" in err
    assert project.run("rescore").code == 0
    assert "rescore" not in project.run("poll").err


def test_alert_rules_push_only_relevant_mentions_with_min_relevance(project):
    from mentionwatch.testing.receivers import Receivers

    with Receivers() as rx:
        project.write_config(
            RELEVANCE + f'\n[[alerts]]\nname = "on-topic"\nmin_relevance = 0.5\n'
            f'max_age = "30d"\ngroup = false\nto = ["{rx.url("/hooks/r")}"]\n'
        )
        assert project.run("poll").code == 0
        pushed = {r.json()["mention"]["key"] for r in rx.seen("/hooks/r")}
    rows = project.run("export").jsonl()
    assert pushed and pushed == {r["key"] for r in rows if r["relevance"] >= 0.5}
    assert any(r["relevance"] < 0.5 for r in rows)


def test_min_relevance_is_a_share(project):
    project.write_config(
        RELEVANCE + '\n[[alerts]]\nname = "x"\nmin_relevance = 5\nto = ["https://h.example/x"]\n'
    )
    result = project.run("feed")
    assert result.code == 2
    assert "alerts[0].min_relevance: expected a number from 0 to 1 (relevance), got 5" in result.err
