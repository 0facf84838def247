"""Direct answer: one greedy sample, no visible reasoning. The cheapest baseline."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ponder.strategies import prompts
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy


@dataclass(frozen=True, slots=True)
class DirectParams:
    temperature: float = 0.0
    max_tokens: int | None = 64
    """Per-answer cap; None uses the request's max_tokens."""


class Direct(Strategy[DirectParams]):
    name = "direct"
    summary = "one sample, answer only"
    Params = DirectParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        params = self.sampling(ctx, temperature=self.params.temperature,
                               max_tokens=self.params.max_tokens, n=1)
        [[completion]] = await ctx.generate([problem.chat(prompts.DIRECT)], params,
                                            strategy=self.name)
        candidate = Candidate.from_completion(completion, problem.kind)
        if candidate.answer is None and completion.text.strip():
            candidate = dataclasses.replace(candidate, answer=completion.text.strip())
        return Answer(completion.text, candidate.answer, self.name, [candidate],
                      ledger=ctx.ledger)
