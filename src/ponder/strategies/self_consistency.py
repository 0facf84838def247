"""Self-consistency: sample n chains of thought, majority-vote their answers.

Wang et al., "Self-Consistency Improves Chain of Thought Reasoning in
Language Models" (2022). The n samples go to the backend in one call, so the
embedded backend prefills the prompt once and decodes the n samples together.
Vote shares are reported as the confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.errors import ConfigError
from ponder.strategies import prompts
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy
from ponder.verifiers.voting import vote


@dataclass(frozen=True, slots=True)
class SelfConsistencyParams:
    n: int = 8
    """Number of sampled chains, >= 1."""
    temperature: float = 0.7
    """Sampling temperature; > 0 or all samples are the same."""
    max_tokens: int | None = None
    """Per-sample cap; None uses the request's max_tokens."""

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n < 1:
            raise ConfigError(f"self-consistency n must be an integer >= 1, got {self.n!r}")


class SelfConsistency(Strategy[SelfConsistencyParams]):
    name = "self-consistency"
    summary = "n sampled chains of thought, majority vote"
    paper = "arXiv:2203.11171"
    Params = SelfConsistencyParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        params = self.sampling(ctx, n=self.params.n, temperature=self.params.temperature,
                               max_tokens=self.params.max_tokens)
        [completions] = await ctx.generate([problem.chat(prompts.COT)], params,
                                           strategy=self.name)
        candidates = [Candidate.from_completion(c, problem.kind) for c in completions]
        result = vote([c.answer for c in candidates], problem.kind)
        chosen = candidates[result.winner_index] if result.winner_index is not None \
            else candidates[0]
        return Answer(
            text=chosen.text, answer=result.winner, strategy=self.name,
            candidates=candidates, votes={k: int(v) for k, v in result.tally.items()},
            confidence=result.share, ledger=ctx.ledger,
            info={"samples": len(candidates),
                  "unanswered": sum(c.answer is None for c in candidates)},
        )
