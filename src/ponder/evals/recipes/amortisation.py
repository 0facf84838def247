"""Recipe 3: amortising sleep-time compute over 1, 2, 5 and 10 queries per context."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from ponder.evals.metrics import phase_tokens
from ponder.evals.recipes.base import Findings, Recipe, Rows, accuracy_of
from ponder.evals.recipes.common import QUICK_SLEEP, SLEEP, cell, figure, pct, style
from ponder.evals.runner import CellSpec
from ponder.ledger import DEFAULT_TEST_TIME_WEIGHT

DATASET = "multi-query,entities=4,steps=2,number_max=20,per_bin=3,queries=10"
"""3 contexts with 10 questions each (four people, two changes: enough facts for 10)."""
QUICK_DATASET = "multi-query,bins=0,per_bin=1,queries=3"
QUERIES = (1, 2, 5, 10)
SLEEP_LEVEL = ("direct", {"max_tokens": "16"}, 16)
"""Answer from the learned context directly (recipe 1's best sleep setting)."""
TEST_LEVELS = (SLEEP_LEVEL, ("cot", {}, 256))
"""Test-time only: the same cheap level, and the best test-only level of recipe 1."""


def cells(quick: bool) -> list[CellSpec]:
    if quick:
        return [cell(QUICK_DATASET, "cot", 8, sleep=z) for z in (None, QUICK_SLEEP)]
    return [*(cell(DATASET, s, b, params=p) for s, p, b in TEST_LEVELS),
            cell(DATASET, SLEEP_LEVEL[0], SLEEP_LEVEL[2], params=SLEEP_LEVEL[1], sleep=SLEEP)]


def first_queries(rows: Rows, q: int) -> tuple[Rows, int]:
    """The first ``q`` questions of every context (dataset order), and the contexts."""
    by_context: dict[str, Rows] = defaultdict(list)
    for row in rows:
        by_context[str(row.get("group") or row["id"])].append(row)
    return [r for group in by_context.values() for r in group[:q]], len(by_context)


def cost_per_query(rows: Rows, q: int, weight: float) -> tuple[float, float, int]:
    """(cost per query, accuracy, questions) over the first ``q`` questions per context:
    the contexts' sleep tokens shared by their q questions, plus weight x test tokens."""
    chosen, contexts = first_queries(rows, q)
    sleep = sum(phase_tokens(r, "sleep") for r in rows) / max(contexts, 1)
    test = sum(phase_tokens(r, "test") for r in chosen) / max(len(chosen), 1)
    return sleep / q + weight * test, accuracy_of(chosen), len(chosen)


def analyse(rows: Mapping[CellSpec, Rows]) -> Findings:
    weight = DEFAULT_TEST_TIME_WEIGHT
    sleep_spec = next(s for s in rows if s.sleep is not None)
    sleep_rows = rows[sleep_spec]
    per_context = max(len(sleep_rows) // max(first_queries(sleep_rows, 1)[1], 1), 1)
    qs = [q for q in QUERIES if q <= per_context]
    curves: dict[str, list[tuple[int, float, float]]] = {}
    table = []
    for spec, got in rows.items():
        name = f"{'sleep + ' if spec.sleep is not None else 'test-only '}" \
               f"{spec.strategy}@{spec.budget}"
        curves[name] = []
        for q in qs:
            cost, acc, n = cost_per_query(got, q, weight)
            curves[name].append((q, cost, acc))
            table.append((name, q, n, pct(acc), f"{cost:.0f}"))
    fig, (ax,) = figure()
    for name, curve in curves.items():
        ax.plot([c[0] for c in curve], [c[1] for c in curve], "o-", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(qs, [str(q) for q in qs])
    style(ax, "queries per context", f"cost per query (sleep tok + {weight:g} x test tok)",
          f"amortisation ({weight:g}x test-token price)")
    sleep_name = next(n for n in curves if n.startswith("sleep"))
    sleep_curve = curves[sleep_name]
    contexts = first_queries(sleep_rows, 1)[1]
    sleep_total = sum(phase_tokens(r, "sleep") for r in sleep_rows)
    lines = [f"Sleep-time tokens per context: {sleep_total / max(contexts, 1):.0f}; a test-time "
             f"token is priced at {weight:g} sleep-time tokens (the paper's cost model)."]
    if len(sleep_curve) >= 2:
        lines.append(f"{sleep_name}: cost per query {sleep_curve[0][1]:.0f} at "
                     f"{sleep_curve[0][0]} query per context -> {sleep_curve[-1][1]:.0f} at "
                     f"{sleep_curve[-1][0]} ({sleep_curve[0][1] / sleep_curve[-1][1]:.2f}x "
                     f"lower from amortisation alone).")
    for name, curve in curves.items():
        if name != sleep_name and curve:
            q, cost, acc = curve[-1]
            s_cost, s_acc = sleep_curve[-1][1], sleep_curve[-1][2]
            lines.append(f"At {q} queries per context: {name} costs {cost:.0f}/query at "
                         f"{pct(acc)} accuracy vs {sleep_name} {s_cost:.0f}/query at "
                         f"{pct(s_acc)} ({cost / s_cost:.1f}x).")
    return Findings(("setting", "queries/context", "questions", "accuracy", "cost/query"),
                    table, lines, fig, {"curves": curves, "sleep_tokens_total": sleep_total})


RECIPE = Recipe(
    "amortisation", "Amortising sleep-time compute across queries about one context",
    "with 10 queries per context, the average cost per query falls by about 2.5x on "
    "Multi-Query GSM-Symbolic (arXiv 2504.13171, Fig. 9; test tokens priced at 10x).",
    cells, analyse)
