"""The strategy registry: names -> strategy classes, loaded from entry points.

Built-in strategies register through the same entry-point group as plugins
(``[project.entry-points."ponder.strategies"]``), so adding one is one file
and one line in ``pyproject.toml``. A ``Registry`` is an ordinary object: the
engine owns one, tests build their own.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from ponder.errors import ConfigError
from ponder.strategies import compose
from ponder.strategies.base import Strategy

ENTRY_POINT_GROUP = "ponder.strategies"


@dataclass(frozen=True, slots=True)
class StrategyInfo:
    name: str
    cls: type[Strategy[Any]]
    source: str
    """The distribution that provides it ("ponder" for built-ins)."""

    def params(self) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(self.cls.Params)}


class Registry:
    """Strategy names to classes."""

    def __init__(self) -> None:
        self._items: dict[str, StrategyInfo] = {}

    @classmethod
    def from_entry_points(cls) -> Registry:
        registry = cls()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            source = ep.dist.name if ep.dist is not None else "?"
            try:
                loaded = ep.load()
            except Exception as exc:
                raise ConfigError(f"strategy plugin {ep.name!r} from {source!r} failed to "
                                  f"load: {exc}") from exc
            registry.register(loaded, name=ep.name, source=source)
        return registry

    def register(self, cls: type[Strategy[Any]], *, name: str | None = None,
                 source: str = "local") -> None:
        name = name or cls.name
        if name != cls.name:
            raise ConfigError(f"entry point {name!r} names a strategy called {cls.name!r}")
        self._items[name] = StrategyInfo(name, cls, source)

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)

    def get(self, name: str) -> StrategyInfo:
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown strategy {name!r}{hint} "
                              f"(available: {', '.join(sorted(self._items))})") from None

    def create(self, name: str, options: dict[str, Any] | None = None) -> Strategy[Any]:
        """A strategy by name, or by a composition spec such as "a(n=4)|b" (see ``compose``)."""
        if compose.is_spec(name):
            return compose.build(name, self, options)
        return self.get(name).cls.from_options(options or {})

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[StrategyInfo]:
        return iter(sorted(self._items.values(), key=lambda i: i.name))

    def names(self) -> list[str]:
        return sorted(self._items)
