"""config.example.toml documents every key, and every documented key is accepted."""

from __future__ import annotations

import re
from pathlib import Path

from mentionwatch import config
from mentionwatch.sources import registry

EXAMPLE = Path(__file__).parents[1] / "config.example.toml"


def uncommented() -> str:
    """The example with every commented-out `key = value` and [table] line switched on."""
    lines = []
    for line in EXAMPLE.read_text().splitlines():
        match = re.match(r"^# (\[.*\]|[a-z_]+ = .*)$", line)
        lines.append(match.group(1) if match else line)
    return "\n".join(lines)


def test_every_source_option_is_documented():
    text = uncommented()
    for name, source in registry().items():
        section = text.split(f"[sources.{name}]", 1)
        assert len(section) == 2, f"[sources.{name}] missing from config.example.toml"
        body = section[1].split("\n[", 1)[0]
        for key in ("base_url", *source.options) if source.default_base_url else source.options:
            assert re.search(rf"^{key} = ", body, re.M), f"sources.{name}.{key} undocumented"


def test_the_full_example_loads(tmp_path, monkeypatch):
    for var in set(re.findall(r"\$\{(\w+)\}", EXAMPLE.read_text())):
        monkeypatch.setenv(var, "value-of-" + var.lower())
    path = tmp_path / "config.toml"
    path.write_text(uncommented())
    cfg = config.load(path, tmp_path / "db.sqlite")
    assert set(cfg.sources) == set(registry())
    assert cfg.terms[0].name == "acme"
    assert cfg.sources["reddit"].get("client_secret") == "value-of-reddit_client_secret"
    assert "value-of-x_bearer_token" in cfg.secrets()
    assert cfg.templates["thanks"].public.startswith("Thanks {author}")
    pair = cfg.templates["sorry-then-dm"]
    assert pair.public.startswith("Sorry about") and pair.private.startswith("Hi {author}")
    assert cfg.poll.interval == 300


def test_every_alert_key_is_documented(tmp_path, monkeypatch):
    from mentionwatch.alerts import RULE_FILTERS
    from mentionwatch.config import _ALERT_KEYS

    for var in set(re.findall(r"\$\{(\w+)\}", EXAMPLE.read_text())):
        monkeypatch.setenv(var, "value-of-" + var.lower())
    body = uncommented().split("[[alerts]]", 1)[1]
    for key in (*_ALERT_KEYS, *RULE_FILTERS):
        assert re.search(rf"^{key} = ", body, re.M), f"alerts key {key} undocumented"
    path = tmp_path / "config.toml"
    path.write_text(uncommented())
    rule, spike, digest = config.load(path, tmp_path / "db.sqlite").alerts
    assert set(rule.filters) == set(RULE_FILTERS)
    assert rule.secret == "value-of-mentionwatch_hook_secret" and rule.max_per_hour == 10
    assert spike.on == "spike" and spike.follow_up and spike.spike["min_count"] == 10
    assert digest.on == "digest" and str(digest.every) == "daily 09:00"
