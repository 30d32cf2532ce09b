"""The optional LLM analyzer, through `llm`, against a loopback OpenAI-compatible server."""

from __future__ import annotations

import json

import pytest
from conftest import HN_AND_RSS

from mentionwatch.testing.llm_server import MODEL_ID, label, mount, write_llm_config

pytest.importorskip("llm")

ABOUT = 'about = "hosted database for side projects"\n'


@pytest.fixture
def model(web, tmp_path):
    api = mount(web)
    write_llm_config(tmp_path / "llm-user", api.url)
    return api, {"LLM_USER_PATH": str(tmp_path / "llm-user")}


def config(**llm: object) -> str:
    settings = {"model": MODEL_ID, "requests_per_minute": 6000, **llm}
    lines = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in settings.items())
    terms = HN_AND_RSS.replace("[sources.hackernews]", ABOUT + "\n[sources.hackernews]")
    return terms + f'\n[sentiment]\nanalyzer = "llm"\n\n[sentiment.llm]\n{lines}\n'


def test_one_structured_call_per_batch_with_about_and_a_cache(project, model):
    server, env = model
    project.write_config(config(batch_size=4))
    result = project.run("poll", env=env)
    assert result.code == 0, result.err
    rows = project.run("export").jsonl()
    sent = server.mentions_seen()
    # Each page of a source is one batch (split at batch_size): fewer requests than mentions.
    assert len(sent) == len(rows) and len(server.bodies()) < len(rows)
    assert max(len(json.loads(b["messages"][-1]["content"]))
               for b in server.bodies()) <= 4  # fmt: skip
    assert all(item["about"] == "hosted database for side projects" for item in sent)
    assert all("pebblebase" not in item["text"].lower() for item in sent)  # the term is masked
    body = server.bodies()[0]
    assert body["model"] == MODEL_ID
    assert body["response_format"]["type"] == "json_schema"
    # The labels are the model's (the loopback's keyword rules), not the local analyzer's.
    for row in rows:
        expected = label({"text": row["text"]})
        assert (row["sentiment"], row["intents"]) == (expected["sentiment"], expected["intents"])
    assert {r["sentiment"] for r in rows} == {"positive", "neutral", "negative"}
    # The model's relevance leads the local one: no about words (for the model) -> low.
    about_words = ("hosted", "database", "side", "projects")
    off = [r for r in rows if not any(w in r["text"].lower() for w in about_words)]
    assert off and all(r["relevance"] < 0.5 for r in off)
    # Cached per mention: rescoring asks nothing again.
    asked = len(server.bodies())
    assert project.run("rescore", env=env).code == 0
    assert len(server.bodies()) == asked
    assert project.run("export").jsonl() == rows


def test_budget_per_run_and_the_local_fallback(project, model):
    server, env = model
    project.write_config(config(batch_size=2, max_per_run=3))
    result = project.run("poll", env=env)
    assert result.code == 0, result.err
    assert len(server.mentions_seen()) == 3
    assert "budget of 3 mentions per run is spent" in result.err
    rows = project.run("export").jsonl()
    assert all(r["sentiment"] in ("positive", "neutral", "negative") for r in rows)
    # The next run asks about the rest (cached ones are not sent again).
    project.run("rescore", env=env)
    assert len(server.mentions_seen()) == 6


def test_rate_limit_falls_back_without_losing_anything(project, model):
    server, env = model
    server.web.fail("/openai/", 429, times=20, headers={"Retry-After": "0"})
    project.write_config(config())
    result = project.run("poll", env=env)
    assert result.code == 0, result.err
    assert "rate limiting (HTTP 429)" in result.err and "local analyzer" in result.err
    rows = project.run("export").jsonl()
    assert rows and all(r["sentiment"] for r in rows)
    assert len(result.err.splitlines()) < 10  # said once, not per mention


def test_an_answer_that_is_not_the_json_asked_for(project, model):
    server, env = model
    server.garbage = True
    project.write_config(config())
    result = project.run("poll", env=env)
    assert result.code == 0
    assert "not the JSON asked for" in result.err
    assert all(r["sentiment"] for r in project.run("export").jsonl())


def test_sentiment_command_with_the_llm(project, model):
    _, env = model
    project.write_config(config())
    out = project.run("sentiment", "--analyzer", "llm", "the app is down again", env=env).out
    assert out.startswith("negative") and "complaint" in out


def test_unknown_model_is_one_line(project, model):
    _, env = model
    project.write_config(config(model="no-such-model"))
    result = project.run("sentiment", "hello", env=env)
    assert result.code == 0
    assert "unknown model 'no-such-model'" in result.err


def test_requests_are_paced_to_the_rate_limit(model, monkeypatch):
    from mentionwatch.config import LLMSettings
    from mentionwatch.llm_analyzer import LLMAnalyzer
    from mentionwatch.sentiment import Post

    api, env = model
    monkeypatch.setenv("LLM_USER_PATH", env["LLM_USER_PATH"])
    now, waits = [100.0], []
    analyzer = LLMAnalyzer(
        LLMSettings(model=MODEL_ID, batch_size=2, requests_per_minute=30),
        clock=lambda: now[0],
        sleep=lambda seconds: (waits.append(seconds), now.__setitem__(0, now[0] + seconds)),
    )
    scores = analyzer.score_posts([Post(f"it broke again #{i}") for i in range(5)])
    assert [s.label for s in scores] == ["negative"] * 5
    assert len(api.bodies()) == 3 and waits == [2.0, 2.0]  # 30 a minute: one every 2 s
    assert "3 request(s), 5 mention(s)" in analyzer.summary()
