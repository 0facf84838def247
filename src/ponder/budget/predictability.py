"""Predictability as a difficulty signal, for questions about a context.

Sleep-time compute helps most where the question is predictable from the
context (arXiv 2504.13171): log p(question | context) under the model.
difficulty = 1 - exp(mean log-probability per question token), the model's
geometric-mean probability of the question's tokens, so 0 means "the model
saw it coming". Scoring is one prefill of the context and question (no
completion tokens); questions without a context get ``unknown``.
"""

from __future__ import annotations

import math

from ponder.budget.estimators import CalibrationTable, Estimate
from ponder.sleep.predictability import PredictabilityScorer
from ponder.strategies.base import Problem, RunContext

UNKNOWN = 0.5
"""The difficulty given when there is no context or the model cannot score it."""


def split_context(text: str) -> tuple[str, str]:
    """(context, question) of a stateful problem: the last paragraph is the question."""
    context, sep, question = text.strip().rpartition("\n\n")
    return (context.strip(), question.strip()) if sep else ("", text.strip())


class PredictabilityEstimator:
    """Difficulty = 1 - the model's per-token probability of the question given its context."""

    name = "predictability"

    def __init__(self, calibration: CalibrationTable,
                 scorer: PredictabilityScorer | None = None) -> None:
        self.calibration = calibration
        self.scorer = scorer if scorer is not None else PredictabilityScorer()

    async def difficulty(self, problem: Problem, ctx: RunContext) -> float:
        context, question = split_context(problem.question)
        if not context or not question:
            return UNKNOWN
        score = await self.scorer.score(ctx, context, question)
        if score is None or score.tokens == 0:
            return UNKNOWN
        return min(1.0, max(0.0, 1.0 - math.exp(score.per_token)))

    async def estimate(self, problem: Problem, ctx: RunContext) -> Estimate:
        difficulty = await self.difficulty(problem, ctx)
        return Estimate(difficulty, self.calibration.expected(difficulty))
