"""Sleep-time scaling: pick or merge the memory blocks of k parallel sleep agents.

``SelfCheck`` is a ``Verifier``: the model reads the context and one set of
notes and says whether the calculations hold. The score is P(Yes) from the
first answer token's logprobs where the backend returns them, else 1/0 from a
greedy reply. Any other ``Verifier`` can be passed to the sleep agent instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ponder.backends.base import Completion
from ponder.params import SamplingParams
from ponder.sleep import prompts
from ponder.sleep.protocols import cap_memory
from ponder.strategies.base import Problem, RunContext

_TOP_LOGPROBS = 10


class SelfCheck:
    """Scores notes by the model's own yes/no check of their calculations."""

    name = "self-check"

    async def score(self, problem: Problem, candidates: Sequence[str],
                    ctx: RunContext) -> list[float]:
        prompts_ = [[{"role": "user", "content": prompts.SELF_CHECK.format(
            context=problem.question, notes=notes)}] for notes in candidates]
        logprobs = _TOP_LOGPROBS if ctx.backend.supports_logprobs else None
        params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=logprobs, seed=0)
        groups = await ctx.generate(prompts_, params, strategy=self.name)
        return [_p_yes(group[0]) for group in groups]


def _p_yes(completion: Completion) -> float:
    """P(yes) / (P(yes) + P(no)) over the first token's alternatives."""
    if completion.logprobs:
        first = completion.logprobs[0]
        alternatives = first.top or ((first.token, first.logprob),)
        yes = sum(math.exp(lp) for tok, lp in alternatives if _word(tok) == "yes")
        no = sum(math.exp(lp) for tok, lp in alternatives if _word(tok) == "no")
        if yes + no > 0:
            return yes / (yes + no)
    return 1.0 if _word(completion.text) == "yes" else 0.0


def _word(token: str) -> str:
    return token.strip().strip(".,!").lower()


async def merge(context: str, memories: Sequence[str], ctx: RunContext, *,
                max_tokens: int, max_chars: int, strategy: str) -> str:
    """One model call that merges k memory blocks into one (capped like any block)."""
    notes = "\n\n".join(f"Notes {i}:\n{m}" for i, m in enumerate(memories, start=1))
    prompt = [{"role": "system", "content": prompts.SLEEP_SYSTEM},
              {"role": "user", "content": prompts.MERGE.format(context=context, notes=notes)}]
    [[completion]] = await ctx.generate([prompt], SamplingParams(temperature=0.0,
                                                                max_tokens=max_tokens, seed=0),
                                        strategy=strategy)
    merged, _ = cap_memory(completion.text, max_chars)
    return merged or max(memories, key=len)
