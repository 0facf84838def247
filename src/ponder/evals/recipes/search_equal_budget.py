"""Recipe 5: self-consistency vs best-of-N vs beam search at equal total token budgets.

Each request's whole completion spend (samples, verifier calls, search steps)
is capped by ``budget_mode="total"``, so the strategies compete at equal spend.
"""

from __future__ import annotations

from collections.abc import Mapping

from ponder.evals.metrics import summarize
from ponder.evals.recipes.base import Findings, Recipe, Rows
from ponder.evals.recipes.common import SEED, figure, pct, style
from ponder.evals.runner import CellSpec

DATASET = "gen,bins=1-3,per_bin=3"
QUICK_DATASET = "gen,bins=0,per_bin=2"
BUDGETS = (384, 768)
STRATEGIES = (("self-consistency", {"n": "4", "early_stop": "false"}),
              ("best-of-n", {"n": "4"}),
              ("beam-search", {"n": "4", "beam_width": "2"}))


def cells(quick: bool) -> list[CellSpec]:
    dataset, budgets = (QUICK_DATASET, (24,)) if quick else (DATASET, BUDGETS)
    return [CellSpec(dataset, s, tuple(p.items()), b, "total", SEED)
            for s, p in STRATEGIES for b in budgets]


def analyse(rows: Mapping[CellSpec, Rows]) -> Findings:
    table, series = [], {}
    for spec, got in rows.items():
        m = summarize(got)
        series.setdefault(spec.strategy, []).append((spec.budget, m.accuracy.value,
                                                     m.completion_tokens))
        table.append((spec.label, spec.budget, f"{m.accuracy.correct}/{m.accuracy.n}",
                      pct(m.accuracy.value), f"{pct(m.accuracy.low)}–{pct(m.accuracy.high)}",
                      f"{m.completion_tokens:.0f}", m.errors))
    fig, (ax,) = figure()
    for strategy, points in series.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=strategy)
    style(ax, "total completion-token budget per question", "accuracy",
          "search strategies at equal budgets")
    lines = []
    for budget in sorted({b for ps in series.values() for b, _, _ in ps}):
        at = sorted(((acc, s) for s, ps in series.items() for b, acc, _ in ps if b == budget),
                    reverse=True)
        lines.append(f"Budget {budget}: " + ", ".join(f"{s} {pct(a)}" for a, s in at) + ".")
    return Findings(("strategy", "budget", "correct", "accuracy", "95% CI",
                     "completion tok/q", "budget ran out"), table, lines, fig,
                    {"series": series})


RECIPE = Recipe(
    "search-equal-budget", "Self-consistency vs best-of-N vs beam search at equal budgets",
    "with a process reward model, beam search beats best-of-N at small budgets and on "
    "harder questions; best-of-N catches up at large budgets (arXiv 2408.03314, "
    "search-and-learn); self-consistency is the verifier-free baseline.", cells, analyse)
