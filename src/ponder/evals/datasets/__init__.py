"""Evaluation datasets, by name: ``load_dataset("gsm8k")``, ``load_dataset("gen,bins=0-2")``.

Loaders register under the ``ponder.datasets`` entry-point group, built-ins
included, so a plugin adds a dataset with one line in its ``pyproject.toml``.
A loader is ``load(spec: DatasetSpec, seed: int) -> Dataset``; its module may
define ``SUMMARY`` (a string, or a mapping by name) and ``LICENCE`` for
``ponder eval datasets``. Nothing is
downloaded at run time: built-ins read files shipped in the package, a path
the user gives, or the Hub when the user names it and has ``datasets``.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from ponder.errors import ConfigError
from ponder.evals.datasets.base import Dataset, DatasetSpec, EvalItem

ENTRY_POINT_GROUP = "ponder.datasets"
Loader = Callable[[DatasetSpec, int], Dataset]

__all__ = [
    "Dataset",
    "DatasetInfo",
    "DatasetSpec",
    "EvalItem",
    "available_datasets",
    "load_dataset",
]


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    name: str
    source: str
    """The distribution that provides the loader."""
    summary: str
    licence: str


def available_datasets() -> list[DatasetInfo]:
    """Every registered dataset name with its provider, one-line summary and licence."""
    infos = []
    for ep in _entry_points().values():
        module = importlib.import_module(ep.module)
        summary = getattr(module, "SUMMARY", None)
        if isinstance(summary, Mapping):
            summary = summary.get(ep.name)
        if not summary:
            summary = ((module.__doc__ or "").strip().splitlines() or [""])[0]
        infos.append(DatasetInfo(ep.name, ep.dist.name if ep.dist else "?", str(summary),
                                 str(getattr(module, "LICENCE", ""))))
    return sorted(infos, key=lambda i: i.name)


def load_dataset(spec: str | DatasetSpec, seed: int = 0) -> Dataset:
    """Load a dataset from a spec such as ``gsm8k:data/test.jsonl`` or ``gen,per_bin=5``."""
    parsed = DatasetSpec.parse(spec) if isinstance(spec, str) else spec
    points = _entry_points()
    if parsed.name not in points:
        close = difflib.get_close_matches(parsed.name, points, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown dataset {parsed.name!r}{hint} "
                          f"(available: {', '.join(sorted(points))})")
    try:
        loader: Loader = points[parsed.name].load()
    except Exception as exc:
        raise ConfigError(f"dataset plugin {parsed.name!r} failed to load: {exc}") from exc
    return loader(parsed, seed)


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
