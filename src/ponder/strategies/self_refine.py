"""Self-Refine: generate, critique yourself, revise; stop when the critique finds nothing.

Madaan et al., "Self-Refine: Iterative Refinement with Self-Feedback"
(arXiv:2303.17651). One model plays all three roles in one growing
conversation, so each refinement sees every earlier draft and critique, as
in the paper (and the embedded backend's prefix cache serves that history
without prefilling it again). It stops after ``rounds`` revisions, or when a
critique contains the marker ``NO ISSUES``. Each version's score is 1 if its
critique found nothing, 0 if it found issues, None if it was not reviewed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.backends.base import Completion, Message
from ponder.errors import BudgetExceeded, ConfigError
from ponder.strategies import prompts
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy

NO_ISSUES = "NO ISSUES"
FEEDBACK = ("Review your solution above step by step. If it is correct and complete, reply "
            f"with exactly: {NO_ISSUES}. Otherwise, point out each error briefly.")
REFINE = ("Rewrite the solution, fixing the issues you found. End with the final answer on "
          "the last line in the form: Answer: <answer>")


def found_nothing(feedback: str) -> bool:
    """Whether a critique says there is nothing to fix (the upper-case marker)."""
    return NO_ISSUES in feedback


def check_rounds(rounds: object, owner: str) -> None:
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 0:
        raise ConfigError(f"{owner} rounds must be an integer >= 0, got {rounds!r}")


@dataclass(frozen=True, slots=True)
class SelfRefineParams:
    rounds: int = 2
    """Most critique-and-revise rounds, >= 0 (the paper's stopping iteration)."""
    temperature: float = 0.0
    max_tokens: int | None = None
    """Cap per call (draft, critique, revision); None uses the request's max_tokens."""

    def __post_init__(self) -> None:
        check_rounds(self.rounds, "self-refine")


class SelfRefine(Strategy[SelfRefineParams]):
    name = "self-refine"
    summary = "draft, self-critique, revise until the critique finds nothing"
    paper = "arXiv:2303.17651"
    Params = SelfRefineParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        chat = problem.chat(prompts.COT)
        draft = await self._call(chat, ctx)
        versions = [Candidate.from_completion(draft, problem.kind)]
        scores: list[float | None] = [None]
        feedbacks: list[str] = []
        stop = "rounds"
        try:
            for _ in range(self.params.rounds):
                chat = [*chat, {"role": "assistant", "content": versions[-1].text},
                        {"role": "user", "content": FEEDBACK}]
                feedback = (await self._call(chat, ctx)).text
                feedbacks.append(feedback)
                scores[-1] = 1.0 if found_nothing(feedback) else 0.0
                if found_nothing(feedback):
                    stop = "no issues"
                    break
                chat = [*chat, {"role": "assistant", "content": feedback},
                        {"role": "user", "content": REFINE}]
                versions.append(Candidate.from_completion(await self._call(chat, ctx),
                                                          problem.kind))
                scores.append(None)
        except BudgetExceeded:
            stop = "budget"
        return final_answer(self.name, versions, scores, ctx,
                            {"rounds": len(versions) - 1, "stop_reason": stop,
                             "feedback": feedbacks})

    async def _call(self, chat: list[Message], ctx: RunContext) -> Completion:
        params = self.sampling(ctx, temperature=self.params.temperature,
                               max_tokens=self.params.max_tokens, n=1)
        [[completion]] = await ctx.generate([chat], params, strategy=self.name)
        return completion


def final_answer(strategy: str, versions: list[Candidate], scores: list[float | None],
                 ctx: RunContext, info: dict[str, object]) -> Answer:
    """The last version that states an answer wins; every version is a scored candidate.

    (A revision cut short by the budget may state none; the version before it stands.)
    """
    candidates = [Candidate(v.text, v.answer, score, v.finish_reason, v.tokens)
                  for v, score in zip(versions, scores, strict=True)]
    last = next((c for c in reversed(candidates) if c.answer is not None), candidates[-1])
    return Answer(last.text, last.answer, strategy, candidates, confidence=last.score,
                  ledger=ctx.ledger, info=info)
