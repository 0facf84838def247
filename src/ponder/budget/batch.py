"""Answer a batch of queries under one global token budget.

Each query is probed (the estimator's calls are billed to that query's ledger),
the probes' spend is taken off the budget, the rest is split by ``allocate``,
and each query then runs its level's strategy under the level's hard cap
(``BudgetLevel.hard_cap``, via ``RunContext.max_total_tokens``). The allocator
plans with ``expected_tokens``; when no level sets ``cap_tokens`` the cap is that
same number, so the completion tokens in all the ledgers together never exceed
``total_tokens``. A level whose ``cap_tokens`` is above its ``expected_tokens``
(planning with the mean) makes ``total_tokens`` a planning target, not a bound:
the spend is then bounded only by the probes plus the chosen levels' caps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from ponder.budget.allocate import Allocation, BudgetLevel, Method, allocate
from ponder.budget.estimators import DifficultyEstimator, Estimate
from ponder.engine import Engine
from ponder.errors import BudgetExceeded, ConfigError
from ponder.ledger import Ledger
from ponder.params import SamplingParams
from ponder.strategies.base import Answer, Problem, RunContext


@dataclass
class BatchResult:
    answers: list[Answer]
    estimates: list[Estimate]
    allocation: Allocation
    levels: list[BudgetLevel]

    @property
    def completion_tokens(self) -> int:
        """Completion tokens of every call made for the batch (probes included)."""
        return sum(a.ledger.total().completion_tokens for a in self.answers)


async def answer_batch(engine: Engine, problems: Sequence[Problem],
                       levels: Sequence[BudgetLevel], estimator: DifficultyEstimator,
                       total_tokens: int, *, top_share: float = 1.0,
                       sampling: SamplingParams | None = None,
                       method: Method = "auto") -> BatchResult:
    """Probe, allocate and answer ``problems`` within ``total_tokens`` completion tokens."""
    if not problems or not levels:
        raise ConfigError("answer_batch needs at least one problem and one level")
    sampling = sampling or SamplingParams()
    ledgers = [Ledger() for _ in problems]
    estimates = [await estimator.estimate(p, _ctx(engine, ledger, sampling, None))
                 for p, ledger in zip(problems, ledgers, strict=True)]
    if any(len(e.accuracy) != len(levels) for e in estimates):
        raise ConfigError(f"the estimator's calibration has a different number of levels "
                          f"than the {len(levels)} given")
    left = total_tokens - sum(ledger.total().completion_tokens for ledger in ledgers)
    if left <= 0:
        raise BudgetExceeded(f"total_tokens={total_tokens} was spent on the probes alone")
    plan = allocate([e.accuracy for e in estimates], [lv.expected_tokens for lv in levels],
                    left, top_share=top_share, method=method)
    answers = await asyncio.gather(*(
        _run(engine, problem, levels[index], ledger, sampling)
        for problem, index, ledger in zip(problems, plan.levels, ledgers, strict=True)))
    return BatchResult(list(answers), estimates, plan, list(levels))


async def _run(engine: Engine, problem: Problem, level: BudgetLevel, ledger: Ledger,
               sampling: SamplingParams) -> Answer:
    strategy = engine.registry.create(level.strategy, dict(level.params))
    cap = level.hard_cap + ledger.total().completion_tokens
    if level.max_tokens is not None:
        sampling = sampling.with_(max_tokens=level.max_tokens)
    try:
        return await strategy.run(problem, _ctx(engine, ledger, sampling, cap))
    except BudgetExceeded:
        return Answer("", None, level.strategy, ledger=ledger)


def _ctx(engine: Engine, ledger: Ledger, sampling: SamplingParams,
         cap: int | None) -> RunContext:
    return RunContext(backend=engine.backend, ledger=ledger, sampling=sampling,
                      max_total_tokens=cap, registry=engine.registry)
