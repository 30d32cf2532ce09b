"""Team storage when things go wrong, through the real CLI: the server away, a password in
the URL (never shown, wherever libpq reads it from)."""

from __future__ import annotations

import pytest

CONFIG = """
[[terms]]
name = "pebblebase"
query = "pebblebase"
"""


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://team@127.0.0.1:1/mentions?password=Qp7-secret-pw&sslmode=disable",
        "postgresql://team:Qp7-secret-pw@127.0.0.1:1/mentions?schema=acme",
    ],
)
def test_a_password_in_the_database_url_is_never_shown(project, url):
    project.write_config(CONFIG)
    for args in (["feed"], ["poll"], ["--debug", "feed"]):
        result = project.run("--db", url, *args)
        assert result.code == 1
        assert "cannot connect to the database postgresql://team" in result.err
        assert "Qp7-secret-pw" not in result.out + result.err
    project.write_config(CONFIG + f'\n[storage]\nurl = "{url}"\n')
    result = project.run("feed")
    assert "Qp7-secret-pw" not in result.out + result.err
