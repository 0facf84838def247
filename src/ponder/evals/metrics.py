"""Accuracy with confidence intervals, compute per item, difficulty bins, Pareto fronts.

Small samples are the norm on a CPU, so every accuracy comes with an
interval: a percentile bootstrap over items (what the report shows) and the
Wilson score interval (closed form, sane at 0% and 100%). Token counts come
from each row's ledger summary: completion tokens split into test-time and
sleep-time, and the cost that prices a test-time token at ``test_time_weight``
sleep-time tokens (10 in the sleep-time compute paper).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ponder.ledger import DEFAULT_TEST_TIME_WEIGHT

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Accuracy:
    n: int
    correct: int
    low: float
    """Lower end of the 95% bootstrap interval."""
    high: float
    wilson_low: float
    wilson_high: float

    @property
    def value(self) -> float:
        return self.correct / self.n if self.n else 0.0


@dataclass(frozen=True, slots=True)
class CellMetrics:
    """What one cell (dataset x strategy x budget) measured, averaged per item."""

    accuracy: Accuracy
    completion_tokens: float
    test_tokens: float
    """Test-time completion tokens per item."""
    sleep_tokens: float
    prompt_tokens: float
    prefill_tokens: float
    seconds: float
    cost: float
    """sleep tokens + test_time_weight x test tokens, per item (completion tokens)."""
    errors: int
    by_difficulty: Mapping[int, Accuracy] = field(default_factory=dict)
    tokens_by_difficulty: Mapping[int, float] = field(default_factory=dict)


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_interval(values: Sequence[float], *, confidence: float = 0.95,
                       resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (seeded, so reports repeat)."""
    if not values:
        return 0.0, 1.0
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def accuracy(rows: Sequence[Row], *, seed: int = 0) -> Accuracy:
    outcomes = [1.0 if row.get("correct") else 0.0 for row in rows]
    correct = int(sum(outcomes))
    low, high = bootstrap_interval(outcomes, seed=seed)
    wilson = wilson_interval(correct, len(rows))
    return Accuracy(len(rows), correct, low, high, *wilson)


def summarize(rows: Iterable[Row], *, test_time_weight: float = DEFAULT_TEST_TIME_WEIGHT,
              seed: int = 0) -> CellMetrics:
    """Metrics of one cell's rows."""
    rows = list(rows)
    test = [phase_tokens(row, "test") for row in rows]
    sleep = [phase_tokens(row, "sleep") for row in rows]
    bins: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        if row.get("difficulty") is not None:
            bins[int(row["difficulty"])].append(row)
    return CellMetrics(
        accuracy=accuracy(rows, seed=seed),
        completion_tokens=_mean(usage(row, "completion_tokens") for row in rows),
        test_tokens=_mean(test),
        sleep_tokens=_mean(sleep),
        prompt_tokens=_mean(usage(row, "prompt_tokens") for row in rows),
        prefill_tokens=_mean(usage(row, "prefill_tokens") for row in rows),
        seconds=_mean(float(row.get("wall_seconds") or 0.0) for row in rows),
        cost=_mean(s + test_time_weight * t for s, t in zip(sleep, test, strict=True)),
        errors=sum(1 for row in rows if row.get("error")),
        by_difficulty={b: accuracy(bins[b], seed=seed) for b in sorted(bins)},
        tokens_by_difficulty={b: _mean(phase_tokens(r, "test") for r in bins[b])
                              for b in sorted(bins)},
    )


def usage(row: Row, key: str) -> float:
    return float((row.get("usage") or {}).get(key, 0) or 0)


def phase_tokens(row: Row, phase: str) -> float:
    """Completion tokens a row spent in ``phase`` ("test" or "sleep")."""
    phases = (row.get("usage") or {}).get("phases") or {}
    return float((phases.get(phase) or {}).get("completion_tokens", 0) or 0)


def amortized_cost(rows: Sequence[Row], queries_per_context: int, *,
                   test_time_weight: float = DEFAULT_TEST_TIME_WEIGHT) -> float:
    """Cost per query when one context's sleep-time work serves ``queries_per_context``.

    Sleep tokens are summed per context (``group``, else the item itself), so
    they count once however the strategy recorded them; test tokens are per query.
    """
    if queries_per_context < 1:
        raise ValueError(f"queries_per_context must be >= 1, got {queries_per_context}")
    sleep_per_context: dict[str, float] = defaultdict(float)
    for row in rows:
        sleep_per_context[str(row.get("group") or row["id"])] += phase_tokens(row, "sleep")
    sleep = _mean(sleep_per_context.values())
    test = _mean(phase_tokens(row, "test") for row in rows)
    return sleep / queries_per_context + test_time_weight * test


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (cost, accuracy) that no other point beats on both, by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """Two runs on the same items: accuracies, discordant pairs and McNemar's exact test."""

    n: int
    accuracy_a: float
    accuracy_b: float
    only_a: int
    """Items A got right and B wrong."""
    only_b: int
    p_value: float
    difference_low: float
    """95% bootstrap interval of accuracy(B) - accuracy(A)."""
    difference_high: float


def paired_comparison(rows_a: Mapping[str, Row], rows_b: Mapping[str, Row], *,
                      seed: int = 0) -> PairedComparison:
    """Compare two cells on the items both answered (by item id)."""
    ids = sorted(set(rows_a) & set(rows_b))
    a = [bool(rows_a[i].get("correct")) for i in ids]
    b = [bool(rows_b[i].get("correct")) for i in ids]
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    low, high = bootstrap_interval([float(y) - float(x) for x, y in zip(a, b, strict=True)],
                                   seed=seed)
    n = len(ids)
    return PairedComparison(n, sum(a) / n if n else 0.0, sum(b) / n if n else 0.0,
                            only_a, only_b, mcnemar_exact(only_a, only_b), low, high)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: a binomial(n, 1/2) test on the discordant pairs."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def _mean(values: Iterable[float]) -> float:
    data = list(values)
    return sum(data) / len(data) if data else 0.0


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)
