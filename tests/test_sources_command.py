"""`mentionwatch sources`: what is configured, what works, and never a secret."""

from __future__ import annotations

from mentionwatch.sources import registry
from mentionwatch.testing.demo import demo_config
from mentionwatch.testing.platforms import bluesky, reddit, x


def all_sources(project) -> None:
    project.write_config(demo_config(project.web, project.db))


def secrets_absent(text: str) -> bool:
    return not any(s in text for s in (reddit.CLIENT_SECRET, reddit.PASSWORD,
                                       bluesky.APP_PASSWORD, x.BEARER))  # fmt: skip


def test_sources_lists_every_source_and_its_last_poll(project):
    project.write_config(
        '[sources.hackernews]\nbase_url = "{web}/hackernews/api/v1"\n'
        '[sources.reddit]\nclient_id = "abc"\n'
        "[sources.github]\nenabled = false\n"
        "[[terms]]\nquery = 'pebblebase'\n"
    )
    before = project.run("sources")
    assert before.code == 0
    lines = {line.split()[0]: line for line in before.out.splitlines()[1:] if line.strip()}
    assert set(lines) == set(registry())
    assert "not configured" in lines["x"]
    assert "disabled" in lines["github"]
    assert "missing credentials: set sources.reddit.client_id and" in lines["reddit"]
    assert "never polled" in lines["hackernews"]

    project.run("poll")
    after = project.run("sources").out
    hn = next(line for line in after.splitlines() if line.startswith("hackernews"))
    assert "ago: 9 new of 10 fetched" in hn
    reddit_line = next(line for line in after.splitlines() if line.startswith("reddit"))
    assert "1 failed" in reddit_line


def test_check_calls_each_source_and_reports(project):
    all_sources(project)
    result = project.run("sources", "--check")
    assert result.code == 0, result.out + result.err
    checks = [line for line in result.out.splitlines() if line.startswith(("ok", "FAIL"))]
    assert len(checks) == len(registry()) and all(line.startswith("ok") for line in checks)
    assert any("authenticated as u/pebblebase_team" in line for line in checks)
    assert secrets_absent(result.out + result.err)


def test_check_failures_exit_1_and_name_the_problem(project):
    config = demo_config(project.web, project.db).replace(bluesky.APP_PASSWORD, "wrong-pass")
    project.write_config(config)
    project.web.fail("/hackernews/", 500, times=10)
    result = project.run("sources", "--check")
    assert result.code == 1
    failed = {line.split()[1].rstrip(":") for line in result.out.splitlines()
              if line.startswith("FAIL")}  # fmt: skip
    assert failed == {"bluesky", "hackernews"}
    assert "wrong-pass" not in result.out + result.err
    assert secrets_absent(result.out + result.err)


def test_every_source_module_is_named_after_its_source():
    """The registry lists names from module names and imports a module when its class is
    asked for; a module that is not a source is one of the helpers."""
    import importlib
    import pkgutil

    import mentionwatch.sources as package
    from mentionwatch.sources import HELPERS

    for module in pkgutil.iter_modules(package.__path__):
        source = getattr(importlib.import_module(f"mentionwatch.sources.{module.name}"),
                         "SOURCE", None)  # fmt: skip
        if module.name in HELPERS:
            assert source is None, module.name
        else:
            assert source is not None and source.name == module.name, module.name
    names = list(registry())
    assert names == sorted(names) and "x" in names and "base" not in names
    assert registry()["x"].name == "x" and registry().get("nowhere") is None


def test_a_config_loads_only_the_sources_it_sets_up(project):
    import subprocess
    import sys

    project.write_config('[sources.hackernews]\n[[terms]]\nquery = "pebblebase"\n')
    project.run("poll", "--no-alerts")
    code = (
        "import sys; sys.argv = ['mentionwatch', '--config', sys.argv[1], '--db', sys.argv[2],"
        " 'feed', '--source', 'x']\n"
        "from mentionwatch.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('mentionwatch.sources.')))"
    )
    run = subprocess.run([sys.executable, "-c", code, str(project.config), str(project.db)],
                         capture_output=True, text=True)  # fmt: skip
    loaded = eval(run.stdout.strip().splitlines()[-1])
    assert "mentionwatch.sources.hackernews" in loaded
    assert "mentionwatch.sources.reddit" not in loaded and "mentionwatch.sources.x" not in loaded
