"""Feedback-and-edit: a separate critic call, then a separate edit call, per round.

The "feedback + edit" family of the test-time scaling surveys (e.g. Welleck
et al., "Generating Sequences by Learning to Self-Correct", arXiv:2211.00053,
and the critic/editor split of CRITIC and Self-Refine). Unlike ``self-refine``
no call sees a conversation history: the critic sees the problem and the
current draft; the editor sees the problem, the draft and the feedback. So
the critic can be another model: pass ``feedback_backend`` (its calls still go
to this request's ledger and budget). It stops after ``rounds`` edits or when
the feedback contains ``NO ISSUES``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ponder.backends.base import Backend, Completion, Message
from ponder.errors import BudgetExceeded
from ponder.strategies import prompts
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy
from ponder.strategies.self_refine import NO_ISSUES, check_rounds, final_answer, found_nothing

CRITIC = ("You are a careful reviewer. Check the draft solution step by step. If it is correct "
          f"and complete, reply with exactly: {NO_ISSUES}. Otherwise list each error briefly "
          "and say how to fix it. Do not write a new solution.")
EDITOR = ("Edit the draft solution so that it addresses the feedback. Write the full corrected "
          "solution and end with the final answer on the last line in the form: Answer: <answer>")


@dataclass(frozen=True, slots=True)
class FeedbackEditParams:
    rounds: int = 1
    """Most feedback-and-edit rounds, >= 0."""
    temperature: float = 0.0
    max_tokens: int | None = None
    """Cap per call; None uses the request's max_tokens."""

    def __post_init__(self) -> None:
        check_rounds(self.rounds, "feedback-edit")


def critic_messages(problem: Problem, draft: str) -> list[Message]:
    return [{"role": "system", "content": CRITIC},
            {"role": "user", "content": f"Problem:\n{problem.question}\n\n"
                                        f"Draft solution:\n{draft.strip()}"}]


def editor_messages(problem: Problem, draft: str, feedback: str) -> list[Message]:
    return [{"role": "system", "content": EDITOR},
            {"role": "user", "content": f"Problem:\n{problem.question}\n\nDraft solution:\n"
                                        f"{draft.strip()}\n\nFeedback:\n{feedback.strip()}"}]


class FeedbackEdit(Strategy[FeedbackEditParams]):
    name = "feedback-edit"
    summary = "draft, then separate feedback and edit calls (critic may be another model)"
    paper = "arXiv:2211.00053"
    Params = FeedbackEditParams

    def __init__(self, params: FeedbackEditParams | None = None, *,
                 feedback_backend: Backend | None = None) -> None:
        super().__init__(params)
        self.feedback_backend = feedback_backend

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        critic_ctx = ctx if self.feedback_backend is None \
            else dataclasses.replace(ctx, backend=self.feedback_backend)
        draft = await self._call(problem.chat(prompts.COT), ctx)
        versions = [Candidate.from_completion(draft, problem.kind)]
        scores: list[float | None] = [None]
        feedbacks: list[str] = []
        stop = "rounds"
        try:
            for _ in range(self.params.rounds):
                feedback = (await self._call(critic_messages(problem, versions[-1].text),
                                             critic_ctx)).text
                feedbacks.append(feedback)
                scores[-1] = 1.0 if found_nothing(feedback) else 0.0
                if found_nothing(feedback):
                    stop = "no issues"
                    break
                edited = await self._call(editor_messages(problem, versions[-1].text, feedback),
                                          ctx)
                versions.append(Candidate.from_completion(edited, problem.kind))
                scores.append(None)
        except BudgetExceeded:
            stop = "budget"
        return final_answer(self.name, versions, scores, ctx, {
            "rounds": len(versions) - 1, "stop_reason": stop, "feedback": feedbacks,
            "feedback_model": critic_ctx.backend.model})

    async def _call(self, chat: list[Message], ctx: RunContext) -> Completion:
        params = self.sampling(ctx, temperature=self.params.temperature,
                               max_tokens=self.params.max_tokens, n=1)
        [[completion]] = await ctx.generate([chat], params, strategy=self.name)
        return completion
