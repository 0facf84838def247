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
BUDGET = 128
QUERIES = (1, 2, 5, 10)


def cells(quick: bool) -> list[CellSpec]:
    if quick:
        return [cell(QUICK_DATASET, "cot", 8, sleep=z) for z in (None, QUICK_SLEEP)]
    return [cell(DATASET, "cot", BUDGET, sleep=z) for z in (None, SLEEP)]


def first_queries(rows: Rows, q: int) -> tuple[Rows, int]:
    """The first ``q`` questions of every context (dataset order), and the contexts."""
    by_context: dict[str, Rows] = defaultdict(list)
    for row in rows:
        by_context[str(row.get("group") or row["id"])].append(row)
    return [r for group in by_context.values() for r in group[:q]], len(by_context)


def analyse(rows: Mapping[CellSpec, Rows]) -> Findings:
    test_rows = next(r for s, r in rows.items() if s.sleep is None)
    sleep_rows = next(r for s, r in rows.items() if s.sleep is not None)
    sleep_total = sum(phase_tokens(r, "sleep") for r in sleep_rows)
    weight = DEFAULT_TEST_TIME_WEIGHT
    available = max(len(first_queries(sleep_rows, 10**6)[0]) // max(
        first_queries(sleep_rows, 1)[1], 1), 1)
    table, curve = [], []
    for q in [q for q in QUERIES if q <= available]:
        t_rows, _ = first_queries(test_rows, q)
        s_rows, contexts = first_queries(sleep_rows, q)
        t_test = sum(phase_tokens(r, "test") for r in t_rows) / len(t_rows)
        s_test = sum(phase_tokens(r, "test") for r in s_rows) / len(s_rows)
        t_cost = weight * t_test
        s_cost = sleep_total / contexts / q + weight * s_test
        curve.append((q, t_cost, s_cost, accuracy_of(t_rows), accuracy_of(s_rows)))
        table.append((q, len(s_rows), pct(accuracy_of(t_rows)), pct(accuracy_of(s_rows)),
                      f"{t_cost:.0f}", f"{s_cost:.0f}", f"{t_cost / s_cost:.2f}x"))
    fig, (ax,) = figure()
    ax.plot([c[0] for c in curve], [c[1] for c in curve], "o-", label="test-time only")
    ax.plot([c[0] for c in curve], [c[2] for c in curve], "s-", label="sleep-time")
    ax.set_xscale("log")
    ax.set_xticks([c[0] for c in curve], [str(c[0]) for c in curve])
    style(ax, "queries per context", f"cost per query (sleep tok + {weight:g} x test tok)",
          f"amortisation (cot@{BUDGET}; {weight:g}x test-token price)")
    contexts = first_queries(sleep_rows, 1)[1]
    lines = [f"Sleep-time tokens per context: {sleep_total / max(contexts, 1):.0f}; "
             f"a test-time token is priced at {weight:g} sleep-time tokens (the paper's model)."]
    if curve:
        last = curve[-1]
        lines.append(f"At {last[0]} queries per context the cost per query is "
                     f"{last[1]:.0f} (test-only) vs {last[2]:.0f} (sleep): "
                     f"{last[1] / last[2]:.2f}x; accuracy {pct(last[3])} vs {pct(last[4])}.")
    return Findings(("queries/context", "questions", "acc test-only", "acc sleep",
                     "cost/q test-only", "cost/q sleep", "test-only / sleep"), table, lines,
                    fig, {"curve": curve, "sleep_tokens_total": sleep_total})


RECIPE = Recipe(
    "amortisation", "Amortising sleep-time compute across queries about one context",
    "with 10 queries per context, the average cost per query falls by about 2.5x on "
    "Multi-Query GSM-Symbolic (arXiv 2504.13171, Fig. 9; test tokens priced at 10x).",
    cells, analyse)
