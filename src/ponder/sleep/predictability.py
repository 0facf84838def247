"""Predictability: log p(question | context) under the model, per token.

The paper finds sleep-time compute helps most where the question is
predictable from the context, so this is stored on every query and a policy
can use it to decide whether a context is worth sleeping on.

* Backends with a ``prompt_logprobs(prompt, continuation)`` method (the
  embedded one) score the question directly from the prompt's logits.
* OpenAI-compatible engines are asked ``/v1/completions`` with ``echo`` and
  ``logprobs`` (vLLM supports it); an engine that refuses gives None.
* Anything else gives None.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from ponder.errors import ConfigError
from ponder.ledger import Ledger, Usage
from ponder.strategies.base import RunContext

STRATEGY = "predictability"


@dataclass(frozen=True, slots=True)
class Predictability:
    logprob: float
    """Sum of the question tokens' logprobs."""
    tokens: int

    @property
    def per_token(self) -> float:
        return self.logprob / self.tokens if self.tokens else 0.0


def scoring_prompt(context: str) -> str:
    """The prefix the question is scored after: the raw context and a line break."""
    return f"{context.rstrip()}\n"


class PredictabilityScorer:
    """Scores questions against contexts; holds one HTTP client for remote engines."""

    def __init__(self, timeout: float = 60.0, client: httpx.Client | None = None) -> None:
        self.timeout = timeout
        self._client = client

    async def score(self, ctx: RunContext, context: str, question: str
                    ) -> Predictability | None:
        """log p(question | context), recorded in ``ctx.ledger`` as ``predictability``."""
        backend = ctx.backend
        with ctx.ledger.activate(), Ledger.scope(phase=ctx.phase, strategy=STRATEGY):
            scorer = getattr(backend, "prompt_logprobs", None)
            if callable(scorer):
                try:
                    logprobs = await asyncio.to_thread(scorer, scoring_prompt(context), question)
                except ConfigError:  # too long for the window: not measurable, not fatal
                    return None
                return Predictability(sum(t.logprob for t in logprobs), len(logprobs))
            if backend.kind == "openai":
                return await asyncio.to_thread(self._remote, ctx, backend, context, question)
        return None

    def _remote(self, ctx: RunContext, backend: Any, context: str,
                question: str) -> Predictability | None:
        prompt = scoring_prompt(context)
        body = {"model": backend.model, "prompt": prompt + question, "max_tokens": 1,
                "temperature": 0, "echo": True, "logprobs": 0}
        headers = {"Authorization": f"Bearer {getattr(backend, '_api_key', '')}"}
        started = time.perf_counter()
        try:
            response = self._http().post(f"{backend.base_url}/completions", json=body,
                                         headers=headers)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        data = response.json()
        _record(ctx, backend, data.get("usage") or {}, time.perf_counter() - started)
        return _from_echo(data, len(prompt), len(prompt) + len(question))

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _from_echo(data: dict[str, Any], start: int, end: int) -> Predictability | None:
    """Sum the echoed logprobs of the tokens that start inside the question's characters."""
    try:
        logprobs = data["choices"][0]["logprobs"]
        offsets, values = logprobs["text_offset"], logprobs["token_logprobs"]
    except (KeyError, IndexError, TypeError):
        return None
    picked = [v for off, v in zip(offsets, values, strict=False)
              if start <= off < end and v is not None]
    return Predictability(float(sum(picked)), len(picked)) if picked else None


def _record(ctx: RunContext, backend: Any, usage: dict[str, Any], seconds: float) -> None:
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    ctx.ledger.record(backend=backend.kind, model=backend.model,
                      usage=Usage(prompt, completion), seconds=seconds)
