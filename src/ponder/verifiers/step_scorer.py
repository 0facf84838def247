"""An LLM as a process reward model: the probability it says a step is correct.

For each step the scorer replays the step searches' chat with the solution up
to that step as the assistant's turn, asks "Is the last step of your solution
correct?" and reads one token. With logprobs (the embedded backend, most
OpenAI-compatible engines) a step's score is P(Yes) / (P(Yes) + P(No)) over
that token's top alternatives; without them it samples ``votes`` one-token
replies and scores the share of "Yes" (the same reading as ``LLMJudge``, whose
helpers it shares).

All questions of a batch go to the backend in one call, labelled with the
scorer's name in the ledger. A question depends only on the steps up to the
one it asks about, so beams that share a parent ask about the shared steps
once. Questions start with the same tokens as the searches' continuations,
and a candidate's questions come longest first, so the embedded backend's
prefix cache serves the chat and the steps instead of prefilling them again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, get_args

from ponder.backends.base import Backend, Message
from ponder.errors import ConfigError
from ponder.params import SamplingParams
from ponder.strategies.steps import STEP_INSTRUCTION, join_steps, split_steps
from ponder.verifiers.base import StepAggregation, aggregate_steps
from ponder.verifiers.llm_judge import yes_probability, yes_share

if TYPE_CHECKING:
    from ponder.strategies.base import Problem, RunContext

MEMO_SIZE = 4096
"""Step scores a scorer remembers (oldest forgotten first)."""
STEP_QUESTION = "Is the last step of your solution correct? Reply with Yes or No."


def step_messages(problem: Problem, steps: Sequence[str]) -> list[Message]:
    """The chat that asks whether the last of ``steps`` is a correct step for ``problem``.

    It is the step searches' own chat with the steps as the assistant's turn, so
    it starts with the same tokens as their continuations and shares their cache.
    """
    return [*problem.chat(STEP_INSTRUCTION),
            {"role": "assistant", "content": join_steps([s.strip() for s in steps])},
            {"role": "user", "content": STEP_QUESTION}]


class LLMStepScorer:
    """Scores every step of each candidate by the model's belief that it is correct.

    ``aggregation`` turns step scores into the outcome score of ``score``; with
    "last" only the last step is asked about. A scorer remembers the scores it
    has read, per (model, problem, steps): a search that scores whole paths at
    every depth asks about each step once.
    """

    name = "llm-step-scorer"

    def __init__(self, *, top_logprobs: int = 10, votes: int = 5,
                 aggregation: StepAggregation = "last", backend: Backend | None = None) -> None:
        if not isinstance(top_logprobs, int) or not 1 <= top_logprobs <= 20:
            raise ConfigError(f"{self.name} top_logprobs must be in [1, 20], "
                              f"got {top_logprobs!r}")
        if not isinstance(votes, int) or votes < 1:
            raise ConfigError(f"{self.name} votes must be an integer >= 1, got {votes!r}")
        if aggregation not in get_args(StepAggregation):
            raise ConfigError(f"{self.name} aggregation must be one of "
                              f"{', '.join(get_args(StepAggregation))}, got {aggregation!r}")
        self.top_logprobs = top_logprobs
        self.votes = votes
        self.aggregation = aggregation
        self.backend = backend
        self._memo: dict[tuple[str, str, tuple[str, ...]], float] = {}

    async def score_steps(self, problem: Problem, steps: Sequence[Sequence[str]],
                          ctx: RunContext) -> list[list[float]]:
        prefixes = [tuple(s[:i]) for s in steps for i in range(len(s), 0, -1)]
        scores = await self._ask(problem, prefixes, ctx)
        return [[scores[tuple(s[:i])] for i in range(1, len(s) + 1)] for s in steps]

    async def score(self, problem: Problem, candidates: Sequence[str],
                    ctx: RunContext) -> list[float]:
        steps = [split_steps(c) or [c] for c in candidates]
        if self.aggregation == "last":
            scores = await self._ask(problem, [tuple(s) for s in steps], ctx)
            return [scores[tuple(s)] for s in steps]
        return [aggregate_steps(s, self.aggregation)
                for s in await self.score_steps(problem, steps, ctx)]

    async def _ask(self, problem: Problem, prefixes: Sequence[tuple[str, ...]],
                   ctx: RunContext) -> dict[tuple[str, ...], float]:
        """Scores of the distinct prefixes; the ones not remembered are asked in one call."""
        run_ctx = ctx if self.backend is None else dataclasses.replace(ctx, backend=self.backend)
        context = (f"{run_ctx.backend.kind}:{run_ctx.backend.model}", repr(problem))
        scores: dict[tuple[str, ...], float] = {}
        todo: list[tuple[str, ...]] = []
        for prefix in dict.fromkeys(p for p in prefixes if p):
            known = self._memo.get((*context, prefix))
            if known is None:
                todo.append(prefix)
            else:
                scores[prefix] = known
        if todo:
            fresh = await self._call(problem, todo, run_ctx)
            scores.update(fresh)
            for prefix, score in fresh.items():
                self._memo[(*context, prefix)] = score
            for key in list(self._memo)[:max(0, len(self._memo) - MEMO_SIZE)]:
                del self._memo[key]
        return scores

    async def _call(self, problem: Problem, prefixes: Sequence[tuple[str, ...]],
                    ctx: RunContext) -> dict[tuple[str, ...], float]:
        """One backend call with a question per prefix; prefix -> score."""
        prompts = [step_messages(problem, p) for p in prefixes]
        if ctx.backend.supports_logprobs:
            params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=self.top_logprobs)
            groups = await ctx.generate(prompts, params, strategy=self.name)
            return {p: yes_probability(g[0]) for p, g in zip(prefixes, groups, strict=True)}
        params = SamplingParams(temperature=1.0, max_tokens=2, n=self.votes,
                                seed=ctx.sampling.seed)
        groups = await ctx.generate(prompts, params, strategy=self.name)
        return {p: yes_share(g) for p, g in zip(prefixes, groups, strict=True)}
