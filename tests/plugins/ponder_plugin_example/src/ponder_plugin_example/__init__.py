"""A third-party ponder strategy: one greedy sample, shouted.

The whole plugin is this class and one entry point in ``pyproject.toml``::

    [project.entry-points."ponder.strategies"]
    shout = "ponder_plugin_example:Shout"
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder import Answer, Candidate, Problem, RunContext, Strategy


@dataclass(frozen=True, slots=True)
class ShoutParams:
    exclamations: int = 1
    """How many "!" to append."""


class Shout(Strategy[ShoutParams]):
    name = "shout"
    summary = "one greedy sample, in capitals"
    Params = ShoutParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        params = self.sampling(ctx, temperature=0.0, n=1)
        [[completion]] = await ctx.generate([problem.chat()], params, strategy=self.name)
        text = completion.text.upper() + "!" * self.params.exclamations
        candidate = Candidate.from_completion(completion, problem.kind)
        return Answer(text, candidate.answer, self.name, [candidate], ledger=ctx.ledger)
