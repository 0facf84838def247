"""Chain of thought: one sample that reasons step by step, then answers.

Wei et al., "Chain-of-Thought Prompting Elicits Reasoning in Large Language
Models" (2022). Greedy by default, so it is the single-sample reference that
sampling strategies are compared with.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.strategies import prompts
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy


@dataclass(frozen=True, slots=True)
class ChainOfThoughtParams:
    temperature: float = 0.0
    max_tokens: int | None = None
    """Per-answer cap; None uses the request's max_tokens."""


class ChainOfThought(Strategy[ChainOfThoughtParams]):
    name = "cot"
    summary = "one step-by-step sample"
    paper = "arXiv:2201.11903"
    Params = ChainOfThoughtParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        params = self.sampling(ctx, temperature=self.params.temperature,
                               max_tokens=self.params.max_tokens, n=1)
        [[completion]] = await ctx.generate([problem.chat(prompts.COT)], params,
                                            strategy=self.name)
        candidate = Candidate.from_completion(completion, problem.kind)
        return Answer(completion.text, candidate.answer, self.name, [candidate],
                      ledger=ctx.ledger)
