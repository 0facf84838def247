"""Weighted best-of-N: sum the verifier's scores per distinct answer, pick the top answer.

As search-and-learn's weighted selection (``find_answer_with_largest_sum``):
equivalent answers pool their scores, so an answer many good samples agree on
beats a lone high scorer. The response shown is the best-scored sample that
gave the winning answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ponder.strategies import prompts
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy
from ponder.strategies.best_of_n import BestOfNParams, make_verifier, sample, score
from ponder.verifiers.answers import answers_equal, normalize_answer
from ponder.verifiers.voting import vote


@dataclass(frozen=True, slots=True)
class WeightedBestOfNParams(BestOfNParams):
    """Best-of-n's knobs (n, temperature, max_tokens, verifier)."""

    owner: ClassVar[str] = "weighted-best-of-n"


class WeightedBestOfN(Strategy[WeightedBestOfNParams]):
    name = "weighted-best-of-n"
    summary = "n samples, verifier scores summed per distinct answer"
    paper = "arXiv:2408.03314"
    Params = WeightedBestOfNParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        p = self.params
        candidates = await sample(self, problem.chat(prompts.COT), problem, ctx, n=p.n,
                                  temperature=p.temperature, max_tokens=p.max_tokens)
        verifier = ctx.verifier or make_verifier(p.verifier)
        candidates, scored_by = await score(verifier, problem, candidates, ctx)
        answers = [c.answer for c in candidates]
        weighted = vote(answers, problem.kind, weights=[c.score or 0.0 for c in candidates])
        counts = vote(answers, problem.kind)
        chosen = self._representative(candidates, weighted.winner, problem)
        return Answer(
            chosen.text, weighted.winner, self.name, candidates,
            votes={k: int(v) for k, v in counts.tally.items()}, confidence=weighted.share,
            ledger=ctx.ledger,
            info={"samples": len(candidates), "scored_by": scored_by,
                  "answer_scores": {k: round(v, 6) for k, v in weighted.tally.items()}})

    @staticmethod
    def _representative(candidates: list[Candidate], winner: str | None,
                        problem: Problem) -> Candidate:
        """The best-scored candidate with the winning answer (any candidate if none won)."""
        key = normalize_answer(winner, problem.kind)
        pool = [c for c in candidates if winner is not None and c.answer is not None and (
            normalize_answer(c.answer, problem.kind) == key
            or answers_equal(c.answer, winner, problem.kind))] or candidates
        return max(pool, key=lambda c: c.score or 0.0)
