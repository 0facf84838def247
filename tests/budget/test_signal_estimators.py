"""Verifier-confidence and predictability estimators: exact logic on the scripted
backend, and the real signal on the tiny model through the embedded backend."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.budget.confidence import VerifierConfidence, VerifierConfidenceParams
from ponder.budget.estimators import CalibrationTable, DifficultyEstimator
from ponder.budget.predictability import UNKNOWN, PredictabilityEstimator, split_context
from ponder.errors import ConfigError
from ponder.ledger import Ledger
from ponder.strategies.base import Problem, RunContext
from ponder.verifiers.llm_judge import LLMJudge

TABLE = CalibrationTable((0.4,), ((0.9, 0.95), (0.2, 0.6)))


class FixedVerifier:
    """Scores every candidate the same, and remembers what it was shown."""

    name = "fixed"

    def __init__(self, score: float) -> None:
        self.value = score
        self.seen: list[str] = []

    async def score(self, problem: Problem, candidates: Sequence[str],
                    ctx: RunContext) -> list[float]:
        self.seen.extend(candidates)
        return [self.value] * len(candidates)


@pytest.mark.parametrize(("score", "difficulty", "accuracy"), [
    (0.9, 0.1, (0.9, 0.95)), (0.25, 0.75, (0.2, 0.6)), (1.7, 0.0, (0.9, 0.95))])
def test_verifier_confidence_is_one_minus_the_score_of_a_greedy_draft(
        score: float, difficulty: float, accuracy: tuple[float, ...]) -> None:
    verifier = FixedVerifier(score)
    ledger = Ledger()
    ctx = RunContext(backend=ScriptedBackend(["Answer: 4"]), ledger=ledger)
    estimator = VerifierConfidence(TABLE, verifier, VerifierConfidenceParams(max_tokens=8))
    estimate = asyncio.run(estimator.estimate(Problem("What is 2+2?"), ctx))
    assert estimate.difficulty == pytest.approx(difficulty)
    assert estimate.accuracy == accuracy
    assert verifier.seen == ["Answer: 4"]
    [entry] = ledger.snapshot()
    assert entry.strategy == "verifier-confidence" and entry.usage.completion_tokens == 2
    assert isinstance(estimator, DifficultyEstimator)
    with pytest.raises(ConfigError, match="max_tokens"):
        VerifierConfidenceParams(max_tokens=0)


def test_split_context_takes_the_last_paragraph_as_the_question() -> None:
    assert split_context("Ava has 3 apples.\n\nShe buys 2.\n\nHow many now?") == (
        "Ava has 3 apples.\n\nShe buys 2.", "How many now?")
    assert split_context("What is 2+2?") == ("", "What is 2+2?")


def test_predictability_without_a_context_is_unknown() -> None:
    ctx = RunContext(backend=ScriptedBackend(["x"]), ledger=Ledger())
    estimate = asyncio.run(PredictabilityEstimator(TABLE).estimate(Problem("What is 2+2?"), ctx))
    assert estimate.difficulty == UNKNOWN and estimate.accuracy == (0.2, 0.6)


def test_predictability_on_the_tiny_model_ranks_an_on_topic_question_easier(
        tiny_backend: object) -> None:
    context = "Ava has 12 apples. Ben has 5 more apples than Ava. Then Ava eats 2 apples."
    on_topic = Problem(f"{context}\n\nHow many apples does Ben have?")
    off_topic = Problem(f"{context}\n\nWhich violin concerto did Sibelius revise in 1905?")
    ledger = Ledger()
    ctx = RunContext(backend=tiny_backend, ledger=ledger)  # type: ignore[arg-type]
    estimator = PredictabilityEstimator(TABLE)
    easy = asyncio.run(estimator.difficulty(on_topic, ctx))
    hard = asyncio.run(estimator.difficulty(off_topic, ctx))
    assert 0.0 < easy < hard < 1.0
    entries = ledger.snapshot()
    assert len(entries) == 2 and all(e.strategy == "predictability" for e in entries)
    assert all(e.usage.completion_tokens == 0 and e.usage.prompt_tokens > 0 for e in entries)


def test_verifier_confidence_on_the_tiny_model_bills_draft_and_judge(
        tiny_backend: object) -> None:
    ledger = Ledger()
    ctx = RunContext(backend=tiny_backend, ledger=ledger)  # type: ignore[arg-type]
    estimator = VerifierConfidence(TABLE, LLMJudge(), VerifierConfidenceParams(max_tokens=8))
    estimate = asyncio.run(estimator.estimate(Problem("What is 2+2?"), ctx))
    assert 0.0 <= estimate.difficulty <= 1.0
    assert estimate.accuracy == TABLE.expected(estimate.difficulty)
    assert [e.strategy for e in ledger.snapshot()] == ["verifier-confidence", "llm-judge"]
    assert 0 < ledger.snapshot()[0].usage.completion_tokens <= 8
