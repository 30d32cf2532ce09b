"""The command line, grouped by subject (like toot's cli/ package): each command parses its
options, calls a service module and a renderer; the work itself lives outside cli/.

Each subject module registers its commands when imported (`app.SUBJECTS` lists them in
--help's order); running the app imports only the invoked command's module.
"""

from mentionwatch.cli.app import app, main, state

__all__ = ["app", "main", "state"]
