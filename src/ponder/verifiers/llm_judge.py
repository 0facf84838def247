"""LLM-as-a-judge outcome scorer: the probability that the model says "Yes".

The judge asks "Is this answer correct?" and reads one token. With logprobs
(the embedded backend, most OpenAI-compatible engines) the score is
P(Yes) / (P(Yes) + P(No)) over the top alternatives of that token, one greedy
token per candidate, all candidates in one batched call. Without logprobs it
samples ``votes`` one-token replies per candidate and scores the share of
"Yes" votes. The judge's calls go through ``ctx`` and are labelled with its
name (``llm-judge``) in the ledger. Pass ``backend`` to judge with another model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ponder.backends.base import Backend, Completion, Message
from ponder.errors import ConfigError
from ponder.params import SamplingParams

if TYPE_CHECKING:
    from ponder.strategies.base import Problem, RunContext

JUDGE_SYSTEM = ("You are a careful grader. You check whether a proposed solution to a problem "
                "is correct.")
JUDGE_QUESTION = "Is this answer correct? Reply with Yes or No."
NO_SIGNAL = 0.5
"""The score when neither "Yes" nor "No" is among the top alternatives."""


def judge_messages(problem: Problem, candidate: str) -> list[Message]:
    """The chat that asks whether ``candidate`` answers ``problem`` correctly."""
    return [{"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": f"Problem:\n{problem.question}\n\n"
                                        f"Proposed solution:\n{candidate.strip()}\n\n"
                                        f"{JUDGE_QUESTION}"}]


def yes_probability(completion: Completion) -> float:
    """P(Yes) / (P(Yes) + P(No)) from the first token's top alternatives."""
    if not completion.logprobs:
        return NO_SIGNAL
    first = completion.logprobs[0]
    mass = {"yes": 0.0, "no": 0.0}
    seen: set[str] = set()
    for token, logprob in ((first.token, first.logprob), *first.top):
        word = token.strip().lower()
        if word in mass and token not in seen:
            seen.add(token)
            mass[word] += math.exp(logprob)
    total = mass["yes"] + mass["no"]
    return mass["yes"] / total if total > 0 else NO_SIGNAL


def yes_share(completions: Sequence[Completion]) -> float:
    """The share of sampled replies that start with "yes"."""
    if not completions:
        return NO_SIGNAL
    return sum(c.text.strip().lower().startswith("yes") for c in completions) / len(completions)


class LLMJudge:
    """Scores each candidate by the judge model's belief that it is correct."""

    name = "llm-judge"

    def __init__(self, *, top_logprobs: int = 10, votes: int = 5,
                 backend: Backend | None = None) -> None:
        if not isinstance(top_logprobs, int) or not 1 <= top_logprobs <= 20:
            raise ConfigError(f"llm-judge top_logprobs must be in [1, 20], got {top_logprobs!r}")
        if not isinstance(votes, int) or votes < 1:
            raise ConfigError(f"llm-judge votes must be an integer >= 1, got {votes!r}")
        self.top_logprobs = top_logprobs
        self.votes = votes
        self.backend = backend

    async def score(self, problem: Problem, candidates: Sequence[str],
                    ctx: RunContext) -> list[float]:
        if not candidates:
            return []
        judge_ctx = ctx if self.backend is None else dataclasses.replace(ctx, backend=self.backend)
        prompts = [judge_messages(problem, c) for c in candidates]
        if judge_ctx.backend.supports_logprobs:
            params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=self.top_logprobs)
            groups = await judge_ctx.generate(prompts, params, strategy=self.name)
            return [yes_probability(group[0]) for group in groups]
        params = SamplingParams(temperature=1.0, max_tokens=2, n=self.votes,
                                seed=judge_ctx.sampling.seed)
        groups = await judge_ctx.generate(prompts, params, strategy=self.name)
        return [yes_share(group) for group in groups]
