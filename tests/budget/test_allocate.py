"""The allocator: hand-computed instances, constraints, and optimality (brute force, greedy)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.budget.allocate import BudgetLevel, allocate
from ponder.errors import BudgetExceeded, ConfigError


def test_hand_computed_instance_spends_on_the_query_that_gains_most() -> None:
    # Query 0 is easy (0.9 already), query 1 gains 0.5 from the long level.
    acc = [[0.9, 0.95], [0.2, 0.7]]
    plan = allocate(acc, [10, 100], 110)
    assert plan.levels == (0, 1)
    assert plan.expected_correct == pytest.approx(1.6)
    assert plan.expected_tokens == pytest.approx(110)
    assert plan.method == "milp"


def test_top_share_cap_limits_the_long_level() -> None:
    acc = [[0.1, 0.9]] * 4
    plan = allocate(acc, [1, 10], 1000, top_share=0.5)
    assert sum(lv == 1 for lv in plan.levels) == 2
    assert plan.expected_correct == pytest.approx(2 * 0.9 + 2 * 0.1)


def test_infeasible_budget_raises_budget_exceeded_naming_the_parameter() -> None:
    with pytest.raises(BudgetExceeded, match="total_tokens"):
        allocate([[0.5, 0.6]] * 3, [10, 20], 29)


@pytest.mark.parametrize("kwargs", [dict(accuracy=[[1.5]], tokens=[1]),
                                    dict(accuracy=[[0.5]], tokens=[0]),
                                    dict(accuracy=[[0.5]], tokens=[1], top_share=2.0),
                                    dict(accuracy=[[0.5]], tokens=[1], method="simplex")])
def test_bad_input_is_a_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        allocate(total_tokens=10, **kwargs)


def test_budget_level_checks_expected_tokens() -> None:
    with pytest.raises(ConfigError, match="expected_tokens"):
        BudgetLevel("x", "cot", expected_tokens=0)


def test_budget_level_hard_cap_defaults_to_expected_tokens_and_may_differ() -> None:
    assert BudgetLevel("x", "cot", expected_tokens=120.7).hard_cap == 120
    assert BudgetLevel("x", "cot", expected_tokens=120.7, cap_tokens=256).hard_cap == 256
    assert BudgetLevel("x", "cot", expected_tokens=120.7, cap_tokens=64).hard_cap == 64


@pytest.mark.parametrize("cap", [0, -5, 12.5, True, "256"])
def test_budget_level_checks_cap_tokens(cap: object) -> None:
    with pytest.raises(ConfigError, match="cap_tokens"):
        BudgetLevel("x", "cot", expected_tokens=10, cap_tokens=cap)  # type: ignore[arg-type]


def _brute_force(acc: np.ndarray, cost: np.ndarray, budget: float, cap: int) -> float | None:
    best = None
    for levels in itertools.product(range(acc.shape[1]), repeat=acc.shape[0]):
        rows = range(acc.shape[0])
        if sum(cost[q, lv] for q, lv in zip(rows, levels, strict=True)) > budget + 1e-9:
            continue
        if acc.shape[1] > 1 and sum(lv == acc.shape[1] - 1 for lv in levels) > cap:
            continue
        value = sum(acc[q, lv] for q, lv in zip(rows, levels, strict=True))
        best = value if best is None else max(best, value)
    return best


@st.composite
def instances(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, float, float]:
    n_q = draw(st.integers(1, 4))
    n_l = draw(st.integers(1, 3))
    acc = np.array([[draw(st.floats(0, 1)) for _ in range(n_l)] for _ in range(n_q)])
    steps = [draw(st.integers(1, 50)) for _ in range(n_l)]
    cost = np.cumsum(steps).astype(float)
    budget = float(draw(st.integers(int(cost[0]) * n_q, int(cost[-1]) * n_q + 1)))
    share = draw(st.sampled_from([0.0, 0.25, 0.5, 1.0]))
    return acc, cost, budget, share


@settings(max_examples=150, deadline=None)
@given(instances())
def test_milp_is_optimal_never_worse_than_greedy_and_respects_constraints(
        case: tuple[np.ndarray, np.ndarray, float, float]) -> None:
    acc, cost, budget, share = case
    milp = allocate(acc, cost, budget, top_share=share, method="milp")
    greedy = allocate(acc, cost, budget, top_share=share, method="greedy")
    cap = acc.shape[0] if acc.shape[1] == 1 else int(share * acc.shape[0] + 1e-9)
    for plan in (milp, greedy):
        assert plan.expected_tokens <= budget + 1e-6
        if acc.shape[1] > 1:
            assert sum(lv == acc.shape[1] - 1 for lv in plan.levels) <= cap
    assert milp.expected_correct >= greedy.expected_correct - 1e-6
    best = _brute_force(acc, np.broadcast_to(cost, acc.shape), budget, cap)
    assert milp.expected_correct == pytest.approx(best, abs=1e-6)


def test_without_scipy_auto_falls_back_to_greedy(monkeypatch: pytest.MonkeyPatch) -> None:
    import ponder.budget.allocate as module

    monkeypatch.setattr(module, "_has_scipy", lambda: False)
    plan = allocate([[0.9, 0.95], [0.2, 0.7]], [10, 100], 110)
    assert plan.method == "greedy" and plan.levels == (0, 1)
