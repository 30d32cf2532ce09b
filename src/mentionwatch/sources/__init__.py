"""The registry of sources: every module in this package that defines SOURCE.

Adding a platform is adding one module here (and one fixture folder under testing/platforms);
nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from mentionwatch.sources.base import Source


@cache
def registry() -> dict[str, type[Source]]:
    found: dict[str, type[Source]] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name == "base":
            continue
        source = getattr(importlib.import_module(f"{__name__}.{module.name}"), "SOURCE", None)
        if source is not None:
            found[source.name] = source
    return found
