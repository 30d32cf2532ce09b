"""The registry of sources: every module in this package that defines SOURCE.

Adding a platform is adding one module here (and one fixture folder under testing/platforms);
nothing else changes. A source module is named after its source (`x.py` defines the source
"x"), so the registry knows every name without importing a module, and imports a source's
module only when its class is asked for: reading a config that sets up three sources, or
listing the names, does not load all twenty (that was a third of `feed`'s start-up).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mentionwatch.sources.base import Source

# The modules here that are not sources: what the sources share.
HELPERS = frozenset({"base", "common", "graph"})


class Registry(Mapping[str, "type[Source]"]):
    """Every source class by name, in name order; a source's module is imported on first use."""

    def __init__(self) -> None:
        names = (m.name for m in pkgutil.iter_modules(__path__) if m.name not in HELPERS)
        self._names = sorted(names)
        self._loaded: dict[str, type[Source]] = {}

    def __getitem__(self, name: str) -> type[Source]:
        if name not in self._loaded:
            if name not in self._names:
                raise KeyError(name)
            module = importlib.import_module(f"{__name__}.{name}")
            self._loaded[name] = module.SOURCE
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@cache
def registry() -> Registry:
    return Registry()
