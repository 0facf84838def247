"""The backend protocol: one batch-first method, declared capabilities.

A backend turns prompts into completions. It is batch-first, like
search-and-learn's use of vLLM: ``generate(prompts, params)`` receives every
prompt at once and returns, for each prompt, ``params.n`` completions, so an
engine can share one prefill across the samples of a prompt.

A prompt is either a raw string, continued verbatim (needs
``supports_raw_completion``), or a list of OpenAI-style chat messages, which
the backend renders with the model's own chat template. Messages are kept
whole (roles, tool calls); nothing is flattened.

The core is async (``agenerate``); ``generate`` is the thin sync facade.
Every call records one row in the current request's ledger.
"""

from __future__ import annotations

import abc
import asyncio
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from ponder.errors import BackendError, CapabilityError, ConfigError
from ponder.ledger import Usage, current_ledger
from ponder.params import SamplingParams

Message = dict[str, Any]
"""An OpenAI chat message: ``{"role": ..., "content": ..., ...}``, kept whole."""

Prompt = str | Sequence[Message]
"""A raw prompt string (continued verbatim) or a list of chat messages."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """The logprob of one generated token, and of the top alternatives if asked."""

    token_id: int
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Completion:
    """One sampled continuation of one prompt."""

    text: str
    finish_reason: str
    """"stop" (end of generation or a stop string), "length" (max_tokens) or "tool_calls"."""
    usage: Usage = field(default_factory=Usage)
    token_ids: tuple[int, ...] | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    tool_calls: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """A piece of a streamed completion. The last chunk carries the whole ``Completion``."""

    text: str
    completion: Completion | None = None


def is_chat(prompt: Prompt) -> bool:
    return not isinstance(prompt, str)


class Backend(abc.ABC):  # noqa: B024 - one of two hooks must be overridden
    """Base class of every backend. Subclasses implement ``_agenerate`` or ``_generate``.

    Capabilities are declared as class attributes; strategies check the flag,
    never the type.
    """

    kind: ClassVar[str] = "backend"
    supports_raw_completion: ClassVar[bool] = False
    """Can continue a raw prompt string verbatim (budget forcing, step search)."""
    supports_logits_processor: ClassVar[bool] = False
    """Runs ``SamplingParams.logits_processors`` on every token."""
    supports_prefix_cache: ClassVar[bool] = False
    """Does not prefill again a prefix it has already seen."""
    supports_logprobs: ClassVar[bool] = False
    """Returns token logprobs when ``SamplingParams.logprobs`` is set."""

    model: str = "unknown"
    """The model id reported in the ledger and by ``ponder models``."""

    def __init__(self) -> None:
        self._portal: _LoopThread | None = None
        self._portal_lock = threading.Lock()
        self._closed = False

    # -- the protocol -------------------------------------------------------

    async def agenerate(self, prompts: Sequence[Prompt],
                        params: SamplingParams) -> list[list[Completion]]:
        """``params.n`` completions for each prompt, in prompt order."""
        self._validate(prompts, params)
        started = time.perf_counter()
        result = await self._agenerate(list(prompts), params)
        self._record(result, time.perf_counter() - started)
        return result

    def generate(self, prompts: Sequence[Prompt],
                 params: SamplingParams) -> list[list[Completion]]:
        """Sync facade of ``agenerate`` (do not call it from a running event loop)."""
        if type(self)._generate is not Backend._generate:
            self._validate(prompts, params)
            started = time.perf_counter()
            result = self._generate(list(prompts), params)
            self._record(result, time.perf_counter() - started)
            return result
        return self.run_sync(self.agenerate(prompts, params))

    async def astream(self, prompt: Prompt, params: SamplingParams
                      ) -> AsyncIterator[StreamChunk]:
        """Text deltas of one completion as they are decoded, then a final chunk with it.

        Backends without real streaming yield the whole text at once. The call is
        recorded in the ledger before the final chunk is yielded.
        """
        if params.n != 1:
            raise ConfigError("streaming returns one completion: n must be 1")
        self._validate([prompt], params)
        started = time.perf_counter()
        async for chunk in self._astream(prompt, params):
            if chunk.completion is not None:  # book it before the consumer sees the end
                self._record([[chunk.completion]], time.perf_counter() - started)
            yield chunk

    async def acomplete(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        """Convenience: the completions of a single prompt."""
        return (await self.agenerate([prompt], params))[0]

    def complete(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        return self.generate([prompt], params)[0]

    def render_chat(self, messages: Sequence[Message], *, add_generation_prompt: bool = True
                    ) -> str:
        """The raw prompt the model would see for ``messages`` (for raw continuation)."""
        raise CapabilityError(f"the {self.kind} backend cannot render a chat template")

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` in this model's vocabulary (no special tokens added)."""
        raise CapabilityError(f"the {self.kind} backend does not expose its tokenizer")

    def close(self) -> None:
        """Release the model or connections. The backend is unusable afterwards."""
        with self._portal_lock:
            self._closed = True
            if self._portal is not None:
                self._portal.stop()
                self._portal = None

    def describe(self) -> dict[str, Any]:
        """What ``ponder models`` prints about this backend."""
        return {
            "backend": self.kind,
            "model": self.model,
            "raw_completion": self.supports_raw_completion,
            "logits_processor": self.supports_logits_processor,
            "prefix_cache": self.supports_prefix_cache,
            "logprobs": self.supports_logprobs,
        }

    # -- for subclasses -----------------------------------------------------

    async def _agenerate(self, prompts: list[Prompt],
                         params: SamplingParams) -> list[list[Completion]]:
        if type(self)._generate is Backend._generate:
            raise NotImplementedError(f"{type(self).__name__} implements neither generate path")
        return await asyncio.to_thread(self._generate, prompts, params)

    def _generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        raise NotImplementedError  # pragma: no cover - sentinel, see generate()

    async def _astream(self, prompt: Prompt, params: SamplingParams
                       ) -> AsyncIterator[StreamChunk]:
        [[completion]] = await self._agenerate([prompt], params)
        yield StreamChunk(completion.text, completion)

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this backend's private event loop thread.

        A private loop (not ``asyncio.run``) keeps async HTTP clients bound to
        one loop across many sync calls.
        """
        with self._portal_lock:
            if self._closed:
                coro.close()
                raise BackendError(f"the {self.kind} backend is closed")
            if self._portal is None:
                self._portal = _LoopThread(f"ponder-{self.kind}")
            portal = self._portal
        return portal.run(coro)

    # -- internals ----------------------------------------------------------

    def _validate(self, prompts: Sequence[Prompt], params: SamplingParams) -> None:
        if isinstance(prompts, str):
            raise ConfigError("prompts must be a list of prompts, not a single string")
        if params.logits_processors and not self.supports_logits_processor:
            raise CapabilityError(f"the {self.kind} backend does not run logits processors")
        if params.logprobs is not None and not self.supports_logprobs:
            raise CapabilityError(f"the {self.kind} backend does not return logprobs")
        for prompt in prompts:
            if isinstance(prompt, str):
                if not self.supports_raw_completion:
                    raise CapabilityError(
                        f"the {self.kind} backend cannot continue a raw prompt; send chat messages")
            elif not prompt:
                raise ConfigError("a chat prompt needs at least one message")

    def _record(self, result: list[list[Completion]], seconds: float) -> None:
        ledger = current_ledger()
        if ledger is None:
            return
        flat = [c for group in result for c in group]
        ledger.record(backend=self.kind, model=self.model,
                      usage=Usage.sum(c.usage for c in flat), seconds=seconds,
                      completions=len(flat))


class _LoopThread:
    """An event loop running in a daemon thread, for sync facades."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            if asyncio.get_running_loop() is self._loop:
                coro.close()
                raise RuntimeError("sync backend call from its own event loop; await it instead")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
