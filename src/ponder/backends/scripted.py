"""A scripted backend that returns canned completions. For tests only.

Like ``httpx.MockTransport``: it lets strategy logic (voting, extraction,
budgets) be tested exactly, without a model. It is never a default.

Usage is scripted too: a reply's completion tokens are its whitespace-separated
words, and the prompt counts ``prompt_tokens`` (default 10), unless a reply is
given as a ``Completion`` with its own usage.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from ponder.backends.base import Backend, Completion, Prompt
from ponder.ledger import Usage
from ponder.params import SamplingParams

Reply = str | Completion
Responder = Callable[[Prompt, SamplingParams], Iterable[Reply]]


class ScriptedBackend(Backend):
    """Serves replies from a queue, or from a function of (prompt, params)."""

    kind = "scripted"
    supports_raw_completion = True
    supports_logprobs = False

    def __init__(self, replies: Iterable[Reply] | Responder = (), *, model: str = "scripted",
                 prompt_tokens: int = 10) -> None:
        super().__init__()
        self.model = model
        self.prompt_tokens = prompt_tokens
        self._responder = replies if callable(replies) else None
        self._queue: deque[Reply] = deque() if callable(replies) else deque(replies)
        self.calls: list[tuple[list[Prompt], SamplingParams]] = []

    def _generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        self.calls.append((prompts, params))
        return [self._for_prompt(prompt, params) for prompt in prompts]

    def _for_prompt(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        if self._responder is not None:
            replies = list(self._responder(prompt, params))
        else:
            if len(self._queue) < params.n:
                raise AssertionError(f"scripted backend ran out of replies "
                                     f"(wanted {params.n}, has {len(self._queue)})")
            replies = [self._queue.popleft() for _ in range(params.n)]
        return [self._completion(r, params, first=i == 0) for i, r in enumerate(replies)]

    def _completion(self, reply: Reply, params: SamplingParams, *, first: bool) -> Completion:
        if isinstance(reply, Completion):
            return reply
        words = reply.split()
        truncated = len(words) > params.max_tokens
        text = " ".join(words[:params.max_tokens]) if truncated else reply
        usage = Usage(self.prompt_tokens, min(len(words), params.max_tokens),
                      0 if first else self.prompt_tokens)
        return Completion(text, "length" if truncated else "stop", usage)
