"""Chain of thought: one sample that reasons step by step, then answers.

Wei et al., "Chain-of-Thought Prompting Elicits Reasoning in Large Language
Models" (2022). Greedy by default, so it is the single-sample reference that
sampling strategies are compared with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from ponder.strategies import prompts
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, StreamingStrategy


@dataclass(frozen=True, slots=True)
class ChainOfThoughtParams:
    temperature: float = 0.0
    max_tokens: int | None = None
    """Per-answer cap; None uses the request's max_tokens."""


class ChainOfThought(StreamingStrategy[ChainOfThoughtParams]):
    name = "cot"
    summary = "one step-by-step sample"
    paper = "arXiv:2201.11903"
    Params = ChainOfThoughtParams

    async def stream(self, problem: Problem, ctx: RunContext) -> AsyncIterator[str | Answer]:
        params = self.sampling(ctx, temperature=self.params.temperature,
                               max_tokens=self.params.max_tokens, n=1)
        async for chunk in ctx.stream(problem.chat(prompts.COT), params, strategy=self.name):
            if chunk.text:
                yield chunk.text
            if chunk.completion is not None:
                candidate = Candidate.from_completion(chunk.completion, problem.kind)
                yield Answer(chunk.completion.text, candidate.answer, self.name, [candidate],
                             ledger=ctx.ledger)
