"""Recipe 4: where sleep-time compute helps, by quintile of log p(question | context).

Reuses the paired cells of recipes 1 and 3 (direct@16, sleep vs test-only): each
question's gain is sleep-correct minus test-only-correct, and its
predictability is the per-token log-probability the sleep cell measured.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ponder.evals.recipes import amortisation, common
from ponder.evals.recipes.base import Findings, Recipe, Rows, by_id
from ponder.evals.recipes.common import cell, figure, pct
from ponder.evals.runner import CellSpec

BINS = 5


def _pairs(quick: bool) -> list[tuple[CellSpec, CellSpec]]:
    if quick:
        return [(cell(common.QUICK_DATASET, "cot", 8),
                 cell(common.QUICK_DATASET, "cot", 8, sleep=common.QUICK_SLEEP)),
                (cell(amortisation.QUICK_DATASET, "cot", 8),
                 cell(amortisation.QUICK_DATASET, "cot", 8, sleep=common.QUICK_SLEEP))]
    strategy, params, budget = amortisation.SLEEP_LEVEL
    return [(cell(dataset, strategy, budget, params=params),
             cell(dataset, strategy, budget, params=params, sleep=common.SLEEP))
            for dataset in (common.DATASET, amortisation.DATASET)]


def cells(quick: bool) -> list[CellSpec]:
    return [spec for pair in _pairs(quick) for spec in pair]


def analyse(rows: Mapping[CellSpec, Rows]) -> Findings:
    items = []  # (predictability, test-only correct, sleep correct)
    specs = list(rows)
    for test_spec, sleep_spec in zip(specs[::2], specs[1::2], strict=True):
        test = by_id(rows[test_spec])
        for item_id, row in by_id(rows[sleep_spec]).items():
            score = row.get("predictability")
            if item_id in test and isinstance(score, int | float):
                items.append((float(score), bool(test[item_id]["correct"]),
                              bool(row["correct"])))
    items.sort()
    groups = [list(g) for g in np.array_split(np.arange(len(items)), BINS) if len(g)]
    table, gains, centres = [], [], []
    for index, group in enumerate(groups, start=1):
        chosen = [items[i] for i in group]
        test_acc = sum(c[1] for c in chosen) / len(chosen)
        sleep_acc = sum(c[2] for c in chosen) / len(chosen)
        gains.append(sleep_acc - test_acc)
        centres.append(index)
        table.append((f"Q{index}", f"{chosen[0][0]:.2f} to {chosen[-1][0]:.2f}", len(chosen),
                      pct(test_acc), pct(sleep_acc), f"{(sleep_acc - test_acc) * 100:+.0f}"))
    fig, (ax,) = figure()
    ax.bar(centres, [g * 100 for g in gains], color=["tab:green" if g >= 0 else "tab:red"
                                                      for g in gains])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(centres, [f"Q{c}" for c in centres])
    ax.set_xlabel("quintile of log p(question | context) per token (Q1 least predictable)")
    ax.set_ylabel("accuracy gain from sleep (points)")
    ax.grid(alpha=0.3, axis="y")
    ax.set_title("gain from sleep-time compute by predictability", fontsize=9)
    size = len(items) / max(len(groups), 1)
    lines = [f"{len(items)} questions paired (sleep vs test-only, same prompts and budget), "
             f"{len(groups)} quintiles of about {size:.0f} each: one question moves a "
             f"quintile's gain by about {100 / max(size, 1):.0f} points."]
    if len(gains) >= 2:
        lines.append(f"Gain in the most predictable quintile {gains[-1] * 100:+.0f} points vs "
                     f"least predictable {gains[0] * 100:+.0f} points.")
        if len(items) >= 3:
            rho = _spearman([i[0] for i in items], [int(i[2]) - int(i[1]) for i in items])
            lines.append(f"Spearman correlation of predictability with per-question gain: "
                         f"{rho:+.2f}.")
    return Findings(("quintile", "log p/token", "n", "acc test-only", "acc sleep",
                     "gain (points)"), table, lines, fig,
                    {"items": items, "gains": gains})


def _spearman(x: list[float], y: list[int]) -> float:
    from scipy.stats import spearmanr

    if len(set(y)) < 2 or len(set(x)) < 2:
        return 0.0
    return float(spearmanr(x, y).statistic)


RECIPE = Recipe(
    "predictability", "Sleep-time gain by predictability of the question",
    "the gain from sleep-time compute grows with how predictable the question is from the "
    "context, log p(q|c) by quintile (arXiv 2504.13171, Fig. 10).", cells, analyse)
