"""Settings the sleep-time recipes share, so their common cells run once.

The dataset is ponder's own multi-query generator in the bins where the 0.5B
model is neither always right nor always wrong (paper: Stateful GSM-Symbolic;
its instances may not be committed, and the 0.5B model scores ~0% on it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matplotlib.figure import Figure

from ponder.evals.runner import CellSpec

DATASET = "multi-query,bins=1-3,per_bin=2,queries=2"
"""6 contexts x 2 questions, generator bins 1-3."""
QUICK_DATASET = "multi-query,bins=0,per_bin=1,queries=2"
SLEEP = {"rounds": "1", "max_tokens": "384"}
"""One rethink round of at most 384 tokens: the sleep setting the recipes share."""
QUICK_SLEEP = {"rounds": "1", "max_tokens": "16"}
SEED = 0


def cell(dataset: str, strategy: str, budget: int, *, params: Mapping[str, str] | None = None,
         sleep: Mapping[str, str] | None = None) -> CellSpec:
    return CellSpec(dataset, strategy, tuple((params or {}).items()), budget, seed=SEED,
                    sleep=tuple(sleep.items()) if sleep is not None else None)


def figure(columns: int = 1) -> tuple[Figure, list[object]]:
    fig = Figure(figsize=(5.4 * columns, 3.9), dpi=110, layout="constrained")
    return fig, list(fig.subplots(1, columns, squeeze=False)[0])


def style(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    """Labels, grid, legend and title; accuracy axes run from 0 to 1."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylabel == "accuracy":
        ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)


def pct(value: float) -> str:
    return f"{value:.0%}"
