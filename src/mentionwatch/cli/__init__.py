"""The command line, grouped by subject (like toot's cli/ package): each command parses its
options, calls a service module and a renderer; the work itself lives outside cli/."""

import importlib

from mentionwatch.cli.app import app, main, state

# Importing a module registers its commands; this order is the order of --help.
for _subject in (
    "polling",
    "importing",
    "mentions",
    "replying",
    "scoring",
    "alerting",
    "trends",
    "auth",
):
    importlib.import_module(f"{__name__}.{_subject}")

__all__ = ["app", "main", "state"]
