"""`mentionwatch browse` opens the database in the real Datasette, on loopback, set up with
full-text search, column labels, facets and canned queries; asked through its JSON API."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import HN_AND_RSS

from mentionwatch.browse import datasette_installed

pytestmark = pytest.mark.skipif(not datasette_installed(), reason="needs the datasette extra")


def get(url: str) -> dict | list:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.sqlite_only
def test_browse_serves_the_database_ready_to_explore(project):
    project.write_config(HN_AND_RSS)
    assert project.run("poll").code == 0
    negatives = {r["id"] for r in project.run("export", "--sentiment", "negative").jsonl()}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [sys.executable, "-m", "mentionwatch", "--config", str(project.config), "--db",
            str(project.db), "browse", "--port", str(port), "--no-open"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/mentions"
    try:
        for _ in range(100):
            try:
                get(f"{base}.json")
                break
            except OSError:
                time.sleep(0.1)
        search = get(f"{base}/mentions.json?_search=pebblebase+OR+nothing&_shape=array"
                     "&_col=id")  # fmt: skip
        assert len(search) == len(project.run("export", "--search", "pebblebase").jsonl())
        table = get(f"{base}/mentions.json?_size=1&_facet=sentiment")
        assert {f["value"] for f in table["facet_results"]["sentiment"]["results"]} >= {"negative"}
        unanswered = get(f"{base}/unanswered_negatives.json?_shape=array")
        assert {r["id"] for r in unanswered} == negatives
        per_day = get(f"{base}/volume_per_day.json?_shape=array")
        assert sum(r["mentions"] for r in per_day) == len(project.run("export").jsonl())
        assert get(f"{base}/top_authors.json?_shape=array")[0]["mentions"] >= 1
        meta = get(f"http://127.0.0.1:{port}/-/metadata.json")
        columns = meta["databases"]["mentions"]["tables"]["mentions"]["columns"]
        assert "positive, neutral or negative" in columns["sentiment"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0  # stopped, not failed
    # Stopping mentionwatch stopped Datasette too: nothing answers on the port any more.
    with pytest.raises(OSError):
        get(f"{base}.json")


@pytest.mark.sqlite_only
def test_browse_without_datasette_or_database_is_one_line(project, monkeypatch):
    project.write_config(HN_AND_RSS)
    missing = project.run("browse", "--no-open")
    assert missing.code == 2 and "no database at" in missing.err
    project.run("poll")
    import mentionwatch.browse

    monkeypatch.setattr(mentionwatch.browse, "datasette_installed", lambda: False)
    result = project.run("browse", "--no-open")
    assert result.code == 2 and "pip install 'mentionwatch[datasette]'" in result.err


@pytest.mark.sqlite_only
def test_browse_on_a_busy_port_is_one_line(project):
    project.write_config(HN_AND_RSS)
    assert project.run("poll").code == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = project.run_process("browse", "--port", str(port), "--no-open")
    assert result.returncode == 2
    assert result.stderr == (
        f"mentionwatch: cannot serve Datasette on 127.0.0.1:{port}: Address already in use;"
        " stop what uses it, or pass --port N (0: any free one)\n"
    )
