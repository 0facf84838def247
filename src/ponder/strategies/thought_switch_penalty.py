"""Thought-switching penalty (TIP): discourage abandoning a thought too early.

Wang et al., "Thoughts Are All Over the Place: On the Underthinking of
o1-Like LLMs" (arXiv:2501.18585). Reasoning models often switch to a new
idea ("Alternatively, ...") before following the current one through. TIP
subtracts ``alpha`` from the logits of the thought-switching tokens during
the first ``beta`` tokens of each thought; a thought starts at the beginning
and again at each switch token.

The switch tokens are found for the active model: the first token of each
switch word, in its plain, lower-case and capitalised forms, with and
without a leading space. On a backend that runs logits processors this is
exact. Elsewhere it is approximated with ``logit_bias`` on a first segment of
``beta`` tokens (the first thought) and a raw continuation without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ponder.backends.base import Backend, Completion, Message
from ponder.errors import BudgetExceeded, ConfigError
from ponder.params import SamplingParams
from ponder.strategies import prompts
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy
from ponder.verifiers.answers import extract_answer


@dataclass(frozen=True, slots=True)
class ThoughtSwitchPenaltyParams:
    alpha: float = 3.0
    """Penalty subtracted from a switch token's logit, >= 0 (the paper's alpha)."""
    beta: int = 600
    """Tokens from the start of a thought during which the penalty applies, >= 1."""
    switch_words: str = "Alternatively,Wait,Another approach,Hmm"
    """Comma-separated words that open a new thought."""
    temperature: float = 0.0
    max_tokens: int | None = None
    """Per-answer cap; None uses the request's max_tokens."""

    def __post_init__(self) -> None:
        if not isinstance(self.alpha, int | float) or not 0 <= self.alpha <= 100:
            raise ConfigError(f"thought-switch-penalty alpha must be in [0, 100], "
                              f"got {self.alpha!r}")
        if not isinstance(self.beta, int) or isinstance(self.beta, bool) or self.beta < 1:
            raise ConfigError(f"thought-switch-penalty beta must be an integer >= 1, "
                              f"got {self.beta!r}")
        if not self.words():
            raise ConfigError("thought-switch-penalty switch_words must name at least one word")

    def words(self) -> list[str]:
        return [w.strip() for w in self.switch_words.split(",") if w.strip()]


def switch_token_ids(backend: Backend, words: Sequence[str]) -> tuple[int, ...]:
    """First token of each switch word's variants, in the active model's vocabulary.

    A first token that covers only a space or the first letter is skipped: "hmm"
    splits as "h" + "mm" in some vocabularies, and banning "h" would ban far
    more than a thought switch.
    """
    ids: set[int] = set()
    for word in words:
        for form in {word, word.lower(), word[:1].upper() + word[1:]}:
            for variant in (form, " " + form):
                tokens = backend.tokenize(variant)
                too_short = set(backend.tokenize(variant[:len(variant) - len(form) + 1]))
                if tokens and tokens[0] not in too_short | set(backend.tokenize(" ")):
                    ids.add(tokens[0])
    return tuple(sorted(ids))


class SwitchPenalty:
    """The logits processor: ``logits[switch] -= alpha`` within ``beta`` tokens of a thought."""

    def __init__(self, token_ids: Sequence[int], alpha: float, beta: int) -> None:
        self.token_ids = np.asarray(token_ids, dtype=np.int64)
        self._set = frozenset(int(t) for t in token_ids)
        self.alpha = float(alpha)
        self.beta = beta

    def active(self, generated: Sequence[int]) -> bool:
        """Whether the next token is within ``beta`` tokens of the current thought's start."""
        n = len(generated)
        if n < self.beta:
            return True
        return any(t in self._set for t in generated[n - self.beta + 1:])

    def __call__(self, generated: Sequence[int], logits: np.ndarray) -> np.ndarray:
        if self.token_ids.size and self.active(generated):
            logits[self.token_ids] -= self.alpha
        return logits


def count_switches(completion: Completion, token_ids: Sequence[int], words: Sequence[str]
                   ) -> int:
    """Switch tokens in a completion (by token id when the backend returns them)."""
    if completion.token_ids is not None:
        banned = set(token_ids)
        return sum(t in banned for t in completion.token_ids)
    text = completion.text.lower()
    return sum(text.count(w.lower()) for w in words)


class ThoughtSwitchPenalty(Strategy[ThoughtSwitchPenaltyParams]):
    name = "thought-switch-penalty"
    summary = "TIP: penalise 'Alternatively'/'Wait' early in each thought"
    paper = "arXiv:2501.18585"
    Params = ThoughtSwitchPenaltyParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        p = self.params
        ids = switch_token_ids(ctx.backend, p.words())
        params = self.sampling(ctx, temperature=p.temperature, max_tokens=p.max_tokens, n=1)
        chat = problem.chat(prompts.COT)
        if ctx.backend.supports_logits_processor:
            processor = SwitchPenalty(ids, p.alpha, p.beta)
            [[out]] = await ctx.generate(
                [chat], params.with_(logits_processors=(*params.logits_processors, processor)),
                strategy=self.name)
            text, tokens, switches, mode = out.text, out.usage.completion_tokens, \
                count_switches(out, ids, p.words()), "logits_processor"
        else:
            text, tokens, switches, mode = await self._with_logit_bias(chat, params, ids, ctx)
        candidate = Candidate(text, extract_answer(text, problem.kind), tokens=tokens)
        return Answer(text, candidate.answer, self.name, [candidate], ledger=ctx.ledger,
                      info={"mode": mode, "switch_tokens": switches,
                            "penalised_token_ids": list(ids)})

    async def _with_logit_bias(self, chat: list[Message], params: SamplingParams,
                               ids: Sequence[int], ctx: RunContext
                               ) -> tuple[str, int, int, str]:
        """First ``beta`` tokens with a negative bias, then an unbiased raw continuation."""
        p = self.params
        bias = {**params.logit_bias, **{t: -p.alpha for t in ids}}
        whole = not ctx.backend.supports_raw_completion
        first_cap = params.max_tokens if whole else min(p.beta, params.max_tokens)
        first_params = params.with_(logit_bias=bias, max_tokens=first_cap,
                                    min_tokens=min(params.min_tokens, first_cap))
        [[first]] = await ctx.generate([chat], first_params, strategy=self.name)
        switches = count_switches(first, ids, p.words())
        rest = params.max_tokens - first.usage.completion_tokens
        if whole or first.finish_reason != "length" or rest < 1:
            return first.text, first.usage.completion_tokens, switches, \
                "logit_bias" if whole else "logit_bias+continuation"
        prompt = ctx.render(chat) + first.text
        try:
            [[second]] = await ctx.generate(
                [prompt], params.with_(max_tokens=rest, min_tokens=min(params.min_tokens, rest)),
                strategy=self.name)
        except BudgetExceeded:
            return first.text, first.usage.completion_tokens, switches, "logit_bias (budget)"
        tokens = first.usage.completion_tokens + second.usage.completion_tokens
        return first.text + second.text, tokens, switches + count_switches(
            second, ids, p.words()), "logit_bias+continuation"
