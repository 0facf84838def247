"""Recipe 1: sleep-time compute vs test-time compute only, accuracy vs test-time tokens."""

from __future__ import annotations

from collections.abc import Mapping

from ponder.evals.metrics import phase_tokens, summarize
from ponder.evals.recipes.base import Findings, Recipe, Rows
from ponder.evals.recipes.common import (
    DATASET,
    QUICK_DATASET,
    QUICK_SLEEP,
    SLEEP,
    cell,
    figure,
    pct,
    style,
)
from ponder.evals.runner import CellSpec

LEVELS = (("direct", {"max_tokens": "16"}, 16), ("cot", {}, 64), ("cot", {}, 128),
          ("cot", {}, 256))
QUICK_LEVELS = (("direct", {"max_tokens": "4"}, 4), ("cot", {}, 8))


def cells(quick: bool) -> list[CellSpec]:
    dataset, sleep = (QUICK_DATASET, QUICK_SLEEP) if quick else (DATASET, SLEEP)
    return [cell(dataset, s, b, params=p, sleep=z)
            for z in (None, sleep) for s, p, b in (QUICK_LEVELS if quick else LEVELS)]


def analyse(rows: Mapping[CellSpec, Rows]) -> Findings:
    points: dict[str, list[tuple[float, float, CellSpec]]] = {"test-only": [], "sleep": []}
    table = []
    for spec, got in rows.items():
        m = summarize(got)
        condition = "test-only" if spec.sleep is None else "sleep"
        points[condition].append((m.test_tokens, m.accuracy.value, spec))
        contexts = {r.get("group") or r["id"] for r in got}
        sleep_per_context = sum(phase_tokens(r, "sleep") for r in got) / max(len(contexts), 1)
        table.append((condition, spec.strategy, spec.budget, f"{m.accuracy.correct}/{m.accuracy.n}",
                      pct(m.accuracy.value), f"{pct(m.accuracy.low)}–{pct(m.accuracy.high)}",
                      f"{m.test_tokens:.0f}", f"{sleep_per_context:.0f}"))
    fig, (ax,) = figure()
    for condition, marker in (("test-only", "o-"), ("sleep", "s-")):
        ordered = sorted(points[condition], key=lambda p: p[0])
        ax.plot([p[0] for p in ordered], [p[1] for p in ordered], marker, label=condition)
        for x, y, spec in ordered:
            ax.annotate(f"{spec.strategy}@{spec.budget}", (x, y), fontsize=6,
                        textcoords="offset points", xytext=(3, 3))
    style(ax, "test-time completion tokens per question", "accuracy",
          "sleep-time vs test-time only")
    lines, ratios = _equal_accuracy(points["test-only"], points["sleep"])
    best = {c: min(ps, key=lambda p: (-p[1], p[0])) for c, ps in points.items() if ps}
    if len(best) == 2:
        s, t = best["sleep"], best["test-only"]
        lines.append(f"Best of each: sleep {pct(s[1])} at {s[0]:.0f} test tok/q "
                     f"({s[2].strategy}@{s[2].budget}) vs test-only {pct(t[1])} at "
                     f"{t[0]:.0f} test tok/q ({t[2].strategy}@{t[2].budget})"
                     + (f": {t[0] / s[0]:.0f}x fewer test-time tokens with sleep."
                        if s[1] >= t[1] and s[0] > 0 else "."))
    return Findings(("condition", "strategy", "budget", "correct", "accuracy", "95% CI",
                     "test tok/q", "sleep tok/context"), table, lines, fig,
                    {"points": {c: [(x, y, s.label, s.budget) for x, y, s in ps]
                                for c, ps in points.items()}, "token_ratios": ratios})


def _equal_accuracy(test_only: list[tuple[float, float, CellSpec]],
                    sleep: list[tuple[float, float, CellSpec]]) -> tuple[list[str], list[float]]:
    """For each sleep point: the fewest test-only tokens that reach its accuracy."""
    lines, ratios = [], []
    for tokens, acc, spec in sorted(sleep, key=lambda p: p[0]):
        reach = [t for t, a, _ in test_only if a >= acc]
        if not reach:
            lines.append(f"sleep {spec.strategy}@{spec.budget} ({pct(acc)} at {tokens:.0f} "
                         "test tok/q): no test-only setting reached this accuracy.")
        elif tokens > 0:
            ratio = min(reach) / tokens
            ratios.append(ratio)
            lines.append(f"sleep {spec.strategy}@{spec.budget} ({pct(acc)} at {tokens:.0f} "
                         f"test tok/q): test-only needs {min(reach):.0f} tok/q for that "
                         f"accuracy, {ratio:.2f}x the test-time tokens.")
    return lines, ratios


RECIPE = Recipe(
    "sleep-pareto", "Sleep-time vs test-time compute: accuracy vs test-time tokens",
    "on Stateful GSM-Symbolic, sleep-time compute reaches the same accuracy with about 5x "
    "fewer test-time tokens (arXiv 2504.13171, Fig. 3).", cells, analyse)
