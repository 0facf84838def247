"""Value objects that describe how to sample.

``SamplingParams`` follows vLLM's: one docstring per field, checks in
``__post_init__`` that name the parameter and the allowed range. It is frozen;
make variants with ``dataclasses.replace`` (or ``SamplingParams.with_``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ponder.errors import ConfigError

LogitsProcessor = Callable[[Sequence[int], np.ndarray], np.ndarray]
"""``(generated_token_ids, logits) -> logits``, called once per token per sequence.

It may modify ``logits`` in place and return it. Only backends with
``supports_logits_processor`` accept it.
"""


def _check(ok: bool, name: str, rule: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {rule}, got {value!r}")


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How one backend call samples its completions."""

    temperature: float = 0.7
    """Softmax temperature, >= 0. 0 means greedy decoding. Default 0.7."""

    top_p: float = 1.0
    """Nucleus sampling mass, in (0, 1]. Default 1.0 (off)."""

    max_tokens: int = 512
    """Maximum completion tokens per sample, >= 1. Default 512."""

    min_tokens: int = 0
    """End-of-generation and stop strings are suppressed until this many tokens, >= 0."""

    stop: tuple[str, ...] = ()
    """Strings that end a sample; the stop string is not part of the text."""

    n: int = 1
    """Completions per prompt, >= 1. Backends share the prompt's prefill across them."""

    seed: int | None = None
    """Seed for reproducible sampling; None draws fresh entropy."""

    logprobs: int | None = None
    """None: no logprobs. k >= 0: the chosen token's logprob plus the top k alternatives."""

    logit_bias: Mapping[int, float] = field(default_factory=dict)
    """Token id -> additive bias on its logit (OpenAI semantics, -100..100)."""

    logits_processors: tuple[LogitsProcessor, ...] = ()
    """Per-token hooks; need a backend with ``supports_logits_processor``."""

    def __post_init__(self) -> None:
        _check(isinstance(self.temperature, int | float) and math.isfinite(self.temperature)
               and self.temperature >= 0, "temperature", ">= 0", self.temperature)
        _check(isinstance(self.top_p, int | float) and 0 < self.top_p <= 1,
               "top_p", "in (0, 1]", self.top_p)
        _check(isinstance(self.max_tokens, int) and self.max_tokens >= 1,
               "max_tokens", "an integer >= 1", self.max_tokens)
        _check(isinstance(self.min_tokens, int) and 0 <= self.min_tokens <= self.max_tokens,
               "min_tokens", f"an integer in [0, max_tokens={self.max_tokens}]", self.min_tokens)
        _check(isinstance(self.n, int) and self.n >= 1, "n", "an integer >= 1", self.n)
        _check(self.seed is None or isinstance(self.seed, int), "seed", "an integer or None",
               self.seed)
        _check(self.logprobs is None
               or (isinstance(self.logprobs, int) and 0 <= self.logprobs <= 20), "logprobs",
               "None or an integer in [0, 20]", self.logprobs)
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        elif not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))
        _check(all(isinstance(s, str) and s for s in self.stop), "stop",
               "a list of non-empty strings", self.stop)
        for token, bias in self.logit_bias.items():
            _check(isinstance(token, int) and token >= 0 and -100 <= bias <= 100,
                   "logit_bias", "a map of token id -> bias in [-100, 100]", {token: bias})
        object.__setattr__(self, "logits_processors", tuple(self.logits_processors))

    def with_(self, **changes: Any) -> SamplingParams:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)
