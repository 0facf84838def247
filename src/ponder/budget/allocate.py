"""Global allocation: one budget level per query, maximising the expected number correct.

The inference-time form of IBPO (arXiv:2501.17974): each query q gets exactly one
level l, the expected tokens of the chosen levels stay within the total budget B,
and at most ``top_share`` of the queries get the top (most expensive) level::

    max  sum_q,l acc[q,l] x[q,l]
    s.t. sum_l x[q,l] = 1                     (one level per query)
         sum_q,l tokens[q,l] x[q,l] <= B      (total budget)
         sum_q x[q,top] <= floor(top_share Q) (IBPO cap on long responses)
         x binary

It is solved with ``scipy.optimize.milp`` (install the ``budget`` extra); without
scipy, or with ``method="greedy"``, a greedy pass upgrades the query with the best
marginal gain per token until nothing fits. A budget below the cheapest level for
every query is infeasible and raises ``BudgetExceeded`` (no silent fallback).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ponder.errors import BudgetExceeded, ConfigError

Method = Literal["auto", "milp", "greedy"]
METHODS: tuple[Method, ...] = ("auto", "milp", "greedy")


@dataclass(frozen=True, slots=True)
class BudgetLevel:
    """One way to spend on a query: a strategy, its params and what it is expected to cost.

    ``expected_tokens`` is what the allocator plans with; ``cap_tokens`` is the hard
    per-query cap ``answer_batch`` enforces. They differ on purpose when a level
    usually spends far less than its cap (plan with the mean, cap at the maximum).

    Example: ``BudgetLevel("sc4", "self-consistency", {"n": "4"}, expected_tokens=700,
    cap_tokens=1024)``.
    """

    name: str
    strategy: str
    params: Mapping[str, Any] = field(default_factory=dict)
    expected_tokens: float = 0.0
    """Expected completion tokens of one query at this level, > 0 (the planning cost)."""
    max_tokens: int | None = None
    """Per-sample cap for the request (None: the caller's default)."""
    cap_tokens: int | None = None
    """Hard cap on one query's completion tokens at this level, an int >= 1 (None: the cap
    is ``int(expected_tokens)``, so a plan never spends more than its budget). It may be
    above or below ``expected_tokens``; above it, a plan's spend can exceed its budget."""

    def __post_init__(self) -> None:
        if not self.name or not self.strategy:
            raise ConfigError("a budget level needs a name and a strategy")
        if not (isinstance(self.expected_tokens, int | float) and self.expected_tokens > 0):
            raise ConfigError(f"level {self.name!r}: expected_tokens must be > 0, "
                              f"got {self.expected_tokens!r}")
        if self.cap_tokens is not None and not (
                isinstance(self.cap_tokens, int) and not isinstance(self.cap_tokens, bool)
                and self.cap_tokens >= 1):
            raise ConfigError(f"level {self.name!r}: cap_tokens must be an int >= 1 or None, "
                              f"got {self.cap_tokens!r}")

    @property
    def hard_cap(self) -> int:
        """The completion tokens one query at this level may spend."""
        return self.cap_tokens if self.cap_tokens is not None else int(self.expected_tokens)


@dataclass(frozen=True, slots=True)
class Allocation:
    """The chosen level index per query, and what the plan expects."""

    levels: tuple[int, ...]
    expected_correct: float
    expected_tokens: float
    method: str
    """"milp" or "greedy" (what actually solved it)."""


def allocate(accuracy: Sequence[Sequence[float]] | np.ndarray,
             tokens: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
             total_tokens: float, *, top_share: float = 1.0,
             method: Method = "auto") -> Allocation:
    """Choose one level per query (see the module docstring).

    ``accuracy`` is Q x L (expected accuracy of query q at level l); ``tokens`` is the
    expected cost per level (length L) or per query and level (Q x L). Levels are
    ordered by cost; the last one is the "top" level the cap applies to.
    """
    acc, cost = _check(accuracy, tokens, total_tokens, top_share, method)
    cap = _cap(top_share, acc.shape)
    cheapest = cost.min(axis=1).sum()
    if cheapest > total_tokens:
        raise BudgetExceeded(f"total_tokens={total_tokens:g} is below the cheapest plan "
                             f"({cheapest:g} expected tokens for {acc.shape[0]} queries)")
    if method == "greedy" or (method == "auto" and not _has_scipy()):
        return greedy(acc, cost, total_tokens, cap)
    return _milp(acc, cost, total_tokens, cap)


def greedy(acc: np.ndarray, cost: np.ndarray, total_tokens: float, cap: int) -> Allocation:
    """Start every query at its cheapest level; take the best gain-per-token upgrade
    that still fits the budget and the cap, until none improves."""
    levels = [int(np.argmin(row)) for row in cost]
    top = acc.shape[1] - 1
    spent = float(sum(cost[q, lv] for q, lv in enumerate(levels)))
    at_top = sum(lv == top for lv in levels)
    while True:
        best: tuple[float, int, int] | None = None
        for q, current in enumerate(levels):
            for lv in range(acc.shape[1]):
                gain = acc[q, lv] - acc[q, current]
                extra = cost[q, lv] - cost[q, current]
                top_after = at_top + (lv == top) - (current == top)
                if gain <= 0 or spent + extra > total_tokens + 1e-9 or top_after > cap:
                    continue
                ratio = gain / extra if extra > 0 else math.inf
                if best is None or ratio > best[0]:
                    best = (ratio, q, lv)
        if best is None:
            return _result(acc, cost, levels, "greedy")
        _, q, lv = best
        spent += cost[q, lv] - cost[q, levels[q]]
        at_top += (lv == top) - (levels[q] == top)
        levels[q] = lv


def _milp(acc: np.ndarray, cost: np.ndarray, total_tokens: float, cap: int) -> Allocation:
    from scipy.optimize import Bounds, LinearConstraint, milp

    n_q, n_l = acc.shape
    one_each = np.kron(np.eye(n_q), np.ones(n_l))
    top = np.zeros((n_q, n_l))
    top[:, -1] = 1.0
    constraints = [LinearConstraint(one_each, 1, 1),
                   LinearConstraint(cost.reshape(1, -1), -np.inf, total_tokens),
                   LinearConstraint(top.reshape(1, -1), -np.inf, cap)]
    res = milp(-acc.ravel(), constraints=constraints, integrality=np.ones(acc.size),
               bounds=Bounds(0, 1))
    if not res.success or res.x is None:
        raise BudgetExceeded(f"no allocation fits total_tokens={total_tokens:g} with "
                             f"top_share cap {cap}: {res.message}")
    levels = [int(np.argmax(row)) for row in res.x.reshape(n_q, n_l)]
    return _result(acc, cost, levels, "milp")


def _result(acc: np.ndarray, cost: np.ndarray, levels: list[int], method: str) -> Allocation:
    rows = range(len(levels))
    return Allocation(tuple(levels), float(sum(acc[q, levels[q]] for q in rows)),
                      float(sum(cost[q, levels[q]] for q in rows)), method)


def _cap(top_share: float, shape: tuple[int, ...]) -> int:
    """How many queries may take the top level (all, when there is only one level)."""
    n_q, n_l = shape
    return n_q if n_l == 1 else math.floor(top_share * n_q + 1e-9)


def _check(accuracy: Any, tokens: Any, total_tokens: float, top_share: float,
           method: str) -> tuple[np.ndarray, np.ndarray]:
    acc = np.asarray(accuracy, dtype=float)
    if acc.ndim != 2 or acc.shape[0] < 1 or acc.shape[1] < 1:
        raise ConfigError(f"accuracy must be a non-empty queries x levels table, "
                          f"got shape {acc.shape}")
    if not np.all(np.isfinite(acc)) or acc.min() < 0 or acc.max() > 1:
        raise ConfigError("accuracy must hold probabilities in [0, 1]")
    cost = np.asarray(tokens, dtype=float)
    cost = np.broadcast_to(cost, acc.shape).copy() if cost.ndim == 1 else cost
    if cost.shape != acc.shape or not np.all(np.isfinite(cost)) or cost.min() <= 0:
        raise ConfigError(f"tokens must be > 0, per level ({acc.shape[1]}) or per query and "
                          f"level {acc.shape}, got shape {cost.shape}")
    if not (isinstance(total_tokens, int | float) and total_tokens > 0):
        raise ConfigError(f"total_tokens must be > 0, got {total_tokens!r}")
    if not 0 <= top_share <= 1:
        raise ConfigError(f"top_share must be in [0, 1], got {top_share!r}")
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return acc, cost


def _has_scipy() -> bool:
    try:
        import scipy.optimize  # noqa: F401
    except ImportError:
        return False
    return True
