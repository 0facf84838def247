"""Verifier confidence as a difficulty signal: draft one cheap answer, ask a verifier.

The verifier's score for a short greedy draft says how sure the model is that
it can answer; difficulty = 1 - that score, and a ``CalibrationTable`` turns it
into expected accuracy per budget level. With the default ``LLMJudge`` the
score is P("Yes") from one token's logprobs, so the probe costs one short draft
plus one judged token, all billed through ``ctx`` like any other call.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.budget.estimators import CalibrationTable, Estimate
from ponder.errors import ConfigError
from ponder.strategies import prompts
from ponder.strategies.base import Problem, RunContext
from ponder.verifiers.base import Verifier


@dataclass(frozen=True, slots=True)
class VerifierConfidenceParams:
    max_tokens: int = 64
    """Cap on the draft: the signal is meant to be cheap."""
    instruction: str = prompts.DIRECT

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ConfigError(f"verifier-confidence max_tokens must be an integer >= 1, "
                              f"got {self.max_tokens!r}")


class VerifierConfidence:
    """Difficulty = 1 - the verifier's score of one greedy draft answer."""

    name = "verifier-confidence"

    def __init__(self, calibration: CalibrationTable, verifier: Verifier | None = None,
                 params: VerifierConfidenceParams | None = None) -> None:
        if verifier is None:
            from ponder.verifiers.llm_judge import LLMJudge

            verifier = LLMJudge()
        self.calibration = calibration
        self.verifier = verifier
        self.params = params if params is not None else VerifierConfidenceParams()

    async def difficulty(self, problem: Problem, ctx: RunContext) -> float:
        sampling = ctx.sampling.with_(n=1, max_tokens=self.params.max_tokens, min_tokens=0,
                                      temperature=0.0)
        [[draft]] = await ctx.generate([problem.chat(self.params.instruction)], sampling,
                                       strategy=self.name)
        [score] = await self.verifier.score(problem, [draft.text], ctx)
        return min(1.0, max(0.0, 1.0 - float(score)))

    async def estimate(self, problem: Problem, ctx: RunContext) -> Estimate:
        difficulty = await self.difficulty(problem, ctx)
        return Estimate(difficulty, self.calibration.expected(difficulty))
