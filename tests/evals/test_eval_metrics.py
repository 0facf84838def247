"""Metrics: intervals, token accounting from ledger summaries, Pareto fronts, paired tests."""

from __future__ import annotations

import pytest

from ponder.evals.metrics import (
    amortized_cost,
    bootstrap_interval,
    mcnemar_exact,
    paired_comparison,
    pareto_front,
    summarize,
    wilson_interval,
)


def row(i: int, correct: bool, *, test: int = 10, sleep: int = 0, difficulty: int | None = None,
        group: str | None = None) -> dict[str, object]:
    return {"id": f"i{i}", "correct": correct, "difficulty": difficulty, "group": group,
            "wall_seconds": 1.0, "error": None,
            "usage": {"completion_tokens": test + sleep, "prompt_tokens": 100,
                      "prefill_tokens": 40,
                      "phases": {"test": {"completion_tokens": test},
                                 "sleep": {"completion_tokens": sleep}}}}


def test_wilson_interval_matches_known_values() -> None:
    low, high = wilson_interval(0, 10)
    assert (low, high) == pytest.approx((0.0, 0.2775), abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_bootstrap_interval_is_seeded_and_brackets_the_mean() -> None:
    values = [1.0] * 30 + [0.0] * 20
    a = bootstrap_interval(values, seed=3)
    assert a == bootstrap_interval(values, seed=3)
    assert a[0] < 0.6 < a[1] and a[1] - a[0] < 0.35
    assert bootstrap_interval([1.0] * 5) == (1.0, 1.0)


def test_summarize_reads_ledgers_and_bins() -> None:
    rows = [row(0, True, difficulty=0), row(1, True, difficulty=0, test=30),
            row(2, False, difficulty=1, sleep=100), row(3, True, difficulty=1)]
    m = summarize(rows, test_time_weight=10)
    assert m.accuracy.value == 0.75 and m.accuracy.n == 4 and m.accuracy.correct == 3
    assert m.test_tokens == 15 and m.sleep_tokens == 25
    assert m.cost == pytest.approx(25 + 10 * 15)
    assert m.prefill_tokens == 40 and m.seconds == 1.0
    assert m.by_difficulty[0].value == 1.0 and m.by_difficulty[1].value == 0.5
    assert m.tokens_by_difficulty == {0: 20.0, 1: 10.0}


def test_amortized_cost_counts_sleep_once_per_context() -> None:
    rows = [row(i, True, test=5, sleep=200 if i % 2 == 0 else 0, group=f"c{i // 2}")
            for i in range(4)]  # two contexts, 200 sleep tokens each, two queries each
    assert amortized_cost(rows, 1, test_time_weight=10) == pytest.approx(200 + 50)
    assert amortized_cost(rows, 10, test_time_weight=10) == pytest.approx(20 + 50)
    with pytest.raises(ValueError, match="queries_per_context"):
        amortized_cost(rows, 0)


def test_pareto_front_keeps_only_undominated_points() -> None:
    points = [(100, 0.5), (50, 0.5), (200, 0.7), (150, 0.6), (300, 0.65), (20, 0.1)]
    assert pareto_front(points) == [5, 1, 3, 2]


def test_paired_comparison_and_mcnemar() -> None:
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(3, 3) == 1.0 and mcnemar_exact(0, 0) == 1.0
    a = {f"i{i}": row(i, i < 4) for i in range(10)}
    b = {f"i{i}": row(i, i < 9) for i in range(12)}
    result = paired_comparison(a, b)
    assert result.n == 10 and result.only_a == 0 and result.only_b == 5
    assert (result.accuracy_a, result.accuracy_b) == (0.4, 0.9)
    assert result.p_value == pytest.approx(2 / 32)
    assert result.difference_low > 0
