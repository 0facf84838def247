"""The verifier protocol: score candidate responses, and optionally their steps.

Batch-first like search-and-learn's ``PRM.score(questions, outputs)``. A
verifier that calls a model does so through ``ctx`` (so its tokens land in
the request's ledger, labelled with the verifier's name) and never through
global state. A real PRM served elsewhere plugs in by implementing this
protocol (e.g. one HTTP call per batch) and registering under
``[project.entry-points."ponder.verifiers"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ponder.strategies.base import Problem, RunContext

StepAggregation = Literal["last", "min", "prod", "mean"]


@runtime_checkable
class Verifier(Protocol):
    """Scores in [0, 1], higher is better."""

    name: str

    async def score(self, problem: Problem, candidates: Sequence[str],
                    ctx: RunContext) -> list[float]:
        """One score per candidate response (outcome reward)."""
        ...


@runtime_checkable
class StepVerifier(Verifier, Protocol):
    """A process reward model: one score per reasoning step."""

    async def score_steps(self, problem: Problem, steps: Sequence[Sequence[str]],
                          ctx: RunContext) -> list[list[float]]:
        """For each candidate (a list of steps), one score per step."""
        ...


def aggregate_steps(scores: Sequence[float], how: StepAggregation) -> float:
    """Combine step scores into one, as search-and-learn does (last / min / prod)."""
    if not scores:
        return 0.0
    if how == "last":
        return float(scores[-1])
    if how == "min":
        return float(min(scores))
    if how == "prod":
        product = 1.0
        for s in scores:
            product *= s
        return product
    if how == "mean":
        return float(sum(scores) / len(scores))
    raise ValueError(f"step aggregation must be last, min, prod or mean, got {how!r}")
