"""Where records come from: the slices shipped in the package, a path, or the Hub.

The Hub is used only when the user names it (``NAME:hub:REPO``) and has the
``datasets`` library installed; nothing is downloaded otherwise.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError
from ponder.evals.datasets.base import DatasetSpec, Options, read_jsonl


def shipped_path(relative: str) -> Path:
    """A data file shipped inside ``ponder/evals/datasets/data``."""
    return Path(str(resources.files("ponder.evals.datasets") / "data" / relative))


def from_source(spec: DatasetSpec, options: Options, *, shipped: str,
                hub_config: str | None) -> tuple[list[dict[str, Any]], str]:
    """Records and a description of their source, for a shipped/path/hub dataset spec."""
    if spec.source is None:
        path = shipped_path(shipped)
        return read_jsonl(path), f"shipped:{shipped}"
    if spec.source.startswith("hub:"):
        name = spec.source.removeprefix("hub:")
        split = options.text("split", "test") or "test"
        config = options.text("config", hub_config)
        return from_hub(name, config, split), f"hub:{name}/{config or '-'}/{split}"
    path = Path(spec.source).expanduser()
    return read_jsonl(path), str(path)


def from_hub(name: str, config: str | None, split: str) -> list[dict[str, Any]]:
    """Rows of a Hub dataset through the ``datasets`` library (an optional dependency)."""
    try:
        import datasets  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        raise ConfigError(f"loading {name!r} from the Hub needs the datasets library: "
                          "pip install datasets (or pass a local JSONL path)") from None
    try:
        rows = datasets.load_dataset(name, config, split=split)
    except Exception as exc:
        raise ConfigError(f"could not load {name!r} (config {config!r}, split {split!r}) "
                          f"from the Hub: {exc}") from exc
    return [dict(row) for row in rows]
