"""A batch under one global budget: scripted (exact) and the real tiny model (mechanics)."""

from __future__ import annotations

import asyncio

import pytest

from ponder.backends.base import Prompt
from ponder.backends.scripted import ScriptedBackend
from ponder.budget.allocate import BudgetLevel
from ponder.budget.batch import answer_batch
from ponder.budget.estimators import (
    CalibrationTable,
    Estimate,
    ProbeAgreement,
    ProbeAgreementParams,
)
from ponder.engine import Engine
from ponder.errors import BudgetExceeded
from ponder.params import SamplingParams
from ponder.strategies.base import Problem, RunContext

LEVELS = [BudgetLevel("short", "cot", expected_tokens=20, max_tokens=20),
          BudgetLevel("long", "self-consistency", {"n": "3", "early_stop": "false"},
                      expected_tokens=60, max_tokens=20)]
# Easy questions gain little from the long level, hard ones a lot.
TABLE = CalibrationTable((0.3,), ((0.9, 0.92), (0.2, 0.7)))
PROBE = ProbeAgreementParams(k=3, max_tokens=4)


def _reply(prompt: Prompt, params: SamplingParams) -> list[str]:
    text = str(prompt)
    if params.max_tokens == PROBE.max_tokens and "hard" in text:
        return ["Answer: 1", "Answer: 2", "Answer: 3"]
    if params.max_tokens == PROBE.max_tokens:
        return ["Answer: 7"] * params.n
    return [" ".join(["step"] * 10) + " Answer: 7"] * params.n


def test_scripted_batch_spends_long_levels_on_hard_queries_within_the_budget() -> None:
    engine = Engine(ScriptedBackend(_reply))
    problems = [Problem(f"{kind} question {i}") for i, kind in
                enumerate(["easy", "hard", "easy", "hard"])]
    result = asyncio.run(answer_batch(engine, problems, LEVELS, ProbeAgreement(TABLE, PROBE),
                                      total_tokens=4 * 6 + 2 * 60 + 2 * 20, top_share=0.5))
    assert result.allocation.levels == (0, 1, 0, 1)
    assert [a.strategy for a in result.answers] == ["cot", "self-consistency"] * 2
    assert result.completion_tokens <= 4 * 6 + 2 * 60 + 2 * 20
    assert all(a.answer == "7" for a in result.answers)


class _Fixed:
    """An estimator that knows the answer already (no calls, no tokens)."""

    def __init__(self, accuracy: tuple[float, ...]) -> None:
        self.accuracy = accuracy

    async def estimate(self, problem: Problem, ctx: RunContext) -> Estimate:
        return Estimate(0.0, self.accuracy)


def _twelve_words(prompt: Prompt, params: SamplingParams) -> list[str]:
    return [" ".join(["step"] * 10) + " Answer: 7"] * params.n


@pytest.mark.parametrize(("cap_tokens", "spent", "answer"),
                         [(None, 5, None), (50, 12, "7"), (3, 3, None)])
def test_hard_cap_is_cap_tokens_not_the_planning_cost(cap_tokens: int | None, spent: int,
                                                      answer: str | None) -> None:
    # The plan costs 5 tokens a query either way; only the cap decides what a query may spend.
    level = BudgetLevel("cot", "cot", expected_tokens=5, max_tokens=20, cap_tokens=cap_tokens)
    result = asyncio.run(answer_batch(Engine(ScriptedBackend(_twelve_words)),
                                      [Problem("q1"), Problem("q2")], [level], _Fixed((0.5,)),
                                      total_tokens=10))
    assert result.allocation.expected_tokens == pytest.approx(10)
    assert [a.ledger.total().completion_tokens for a in result.answers] == [spent, spent]
    assert [a.answer for a in result.answers] == [answer, answer]


def test_allocator_plans_with_expected_tokens_when_caps_are_higher() -> None:
    # Planned at 5 tokens, "long" fits both queries in 10; with its cap (12) as the cost
    # it would not fit, so the cap must not leak into the plan.
    levels = [BudgetLevel("short", "direct", {"max_tokens": "1"}, expected_tokens=1,
                          max_tokens=1),
              BudgetLevel("long", "cot", expected_tokens=5, max_tokens=20, cap_tokens=12)]
    result = asyncio.run(answer_batch(Engine(ScriptedBackend(_twelve_words)),
                                      [Problem("q1"), Problem("q2")], levels,
                                      _Fixed((0.1, 0.9)), total_tokens=10))
    assert result.allocation.levels == (1, 1)
    assert result.completion_tokens == 24  # over the planned 10: caps, not the budget, bind
    assert [a.answer for a in result.answers] == ["7", "7"]


def test_probes_alone_over_budget_is_an_error() -> None:
    engine = Engine(ScriptedBackend(_reply))
    with pytest.raises(BudgetExceeded, match="probes"):
        asyncio.run(answer_batch(engine, [Problem("easy")], LEVELS,
                                 ProbeAgreement(TABLE, PROBE), total_tokens=5))


def test_tiny_model_batch_stays_within_the_global_budget(tiny_backend: object) -> None:
    engine = Engine(tiny_backend)  # type: ignore[arg-type]
    problems = [Problem(q) for q in ("What is 2 + 3?", "What is the capital of France?",
                                     "What is 17 * 23?", "Name a prime number above 50.",
                                     "What is 9 - 4?")]
    probe = ProbeAgreement(TABLE, ProbeAgreementParams(k=3, max_tokens=8))
    budget = 5 * 24 + 2 * 60 + 3 * 20
    result = asyncio.run(answer_batch(engine, problems, LEVELS, probe, total_tokens=budget,
                                      top_share=0.4, sampling=SamplingParams(seed=1)))
    spent = sum(e.usage.completion_tokens for a in result.answers for e in a.ledger.entries)
    assert 0 < spent <= budget
    assert sum(lv == 1 for lv in result.allocation.levels) <= 2
    assert all(0 <= e.difficulty <= 1 for e in result.estimates)
    for answer, level in zip(result.answers, result.allocation.levels, strict=True):
        strategies = {e.strategy for e in answer.ledger.entries}
        assert "probe" in strategies
        assert LEVELS[level].strategy in strategies
