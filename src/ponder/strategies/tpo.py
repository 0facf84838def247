"""Test-time preference optimisation: textual feedback from the best vs the worst sample.

Li et al., "Test-Time Preference Optimization: On-the-Fly Alignment via
Iterative Textual Feedback" (arXiv:2501.12895). Each round:

1. take the best- and worst-scored responses so far (the chosen and rejected),
2. ask the model why the chosen one is better and how to improve it (the
   paper's textual loss and textual gradient, here in one call),
3. sample ``n`` new responses that follow those suggestions (the update),
4. score them with the verifier and add them to the pool.

The answer is the best-scored response of the pool. Round 0 is plain
sampling, so ``rounds=0`` is best-of-n.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.backends.base import Message
from ponder.errors import BudgetExceeded
from ponder.strategies import prompts
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy
from ponder.strategies.best_of_n import VerifierName, check_n, make_verifier, sample, score
from ponder.strategies.self_refine import check_rounds
from ponder.verifiers.base import Verifier

CRITIQUE = ("Problem:\n{question}\n\nResponse A (preferred, score {best:.2f}):\n{chosen}\n\n"
            "Response B (rejected, score {worst:.2f}):\n{rejected}\n\n"
            "Explain briefly why Response A is better than Response B. Then list concrete "
            "suggestions to make Response A even better.")
UPDATE = ("Here is feedback on this response:\n{critique}\n\nWrite an improved solution that "
          "follows the suggestions. End with the final answer on the last line in the form: "
          "Answer: <answer>")


@dataclass(frozen=True, slots=True)
class TPOParams:
    n: int = 4
    """Responses sampled per round, >= 2 (a chosen and a rejected one are needed)."""
    rounds: int = 2
    """Feedback-and-resample rounds after the first sampling, >= 0."""
    temperature: float = 0.7
    max_tokens: int | None = None
    """Cap per call; None uses the request's max_tokens."""
    verifier: VerifierName = "llm-judge"
    """Scorer when the request brings none: llm-judge or agreement."""

    def __post_init__(self) -> None:
        check_n(self.n, "tpo", minimum=2)
        check_rounds(self.rounds, "tpo")


def ranked(pool: list[Candidate]) -> list[Candidate]:
    """Best score first; on ties, the earlier response first."""
    order = sorted(range(len(pool)), key=lambda i: (-(pool[i].score or 0.0), i))
    return [pool[i] for i in order]


class TPO(Strategy[TPOParams]):
    name = "tpo"
    summary = "resample from textual feedback on the best vs the worst response"
    paper = "arXiv:2501.12895"
    Params = TPOParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        verifier = ctx.verifier or make_verifier(self.params.verifier)
        chat = problem.chat(prompts.COT)
        rounds = self.params.rounds
        pool, scored_by = await self._round(chat, problem, verifier, ctx, rounds + 1)
        critiques: list[str] = []
        stop = "rounds"
        try:
            for left in range(rounds, 0, -1):
                order = ranked(pool)
                critique = await self._critique(problem, order[0], order[-1], ctx, left)
                critiques.append(critique)
                update = [*chat, {"role": "assistant", "content": order[0].text},
                          {"role": "user", "content": UPDATE.format(critique=critique.strip())}]
                fresh, scored_by = await self._round(update, problem, verifier, ctx, left)
                pool += fresh
        except BudgetExceeded:
            stop = "budget"
        best = ranked(pool)[0]
        return Answer(best.text, best.answer, self.name, pool, confidence=best.score,
                      ledger=ctx.ledger,
                      info={"rounds": len(critiques), "stop_reason": stop,
                            "scored_by": scored_by, "critiques": critiques})

    async def _round(self, chat: list[Message], problem: Problem, verifier: Verifier,
                     ctx: RunContext, rounds_left: int) -> tuple[list[Candidate], str]:
        p = self.params
        fresh = await sample(self, chat, problem, ctx, n=p.n, temperature=p.temperature,
                             max_tokens=self._cap(ctx, rounds_left))
        return await score(verifier, problem, fresh, ctx)

    def _cap(self, ctx: RunContext, rounds_left: int) -> int | None:
        """Per-call cap that leaves later rounds (n samples + a critique each) their share."""
        remaining = ctx.remaining_tokens()
        if remaining is None:
            return self.params.max_tokens
        share = max(1, remaining // (rounds_left * (self.params.n + 1)))
        return min(self.params.max_tokens or ctx.sampling.max_tokens, share)

    async def _critique(self, problem: Problem, chosen: Candidate, rejected: Candidate,
                        ctx: RunContext, rounds_left: int) -> str:
        content = CRITIQUE.format(question=problem.question, chosen=chosen.text.strip(),
                                  rejected=rejected.text.strip(), best=chosen.score or 0.0,
                                  worst=rejected.score or 0.0)
        params = self.sampling(ctx, temperature=0.0, max_tokens=self._cap(ctx, rounds_left),
                               n=1)
        [[completion]] = await ctx.generate([[{"role": "user", "content": content}]], params,
                                            strategy=self.name)
        return completion.text
