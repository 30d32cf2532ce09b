"""mentionwatch: a command-line mention monitor."""

__version__ = "0.1.0"
