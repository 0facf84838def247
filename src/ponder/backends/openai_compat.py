"""The openai backend: any engine that speaks the OpenAI API.

vLLM, SGLang, llama.cpp's server and Ollama all serve ``/v1/chat/completions``
and most serve ``/v1/completions``. Chat prompts go to the first with their
messages kept whole; raw string prompts go to the second, continued verbatim.

* **n samples.** ``n`` is passed through. Engines that ignore it (llama.cpp's
  server answers with one choice) get the missing samples as concurrent
  single-sample requests, with seeds ``seed + i`` when a seed is given.
* **Usage.** Usage is per response, not per choice. When one response carries
  several choices, its whole usage goes on the first ``Completion`` and the
  others get ``Usage()``, so ledger totals are exactly what the engine billed.
  Prefix caching is the engine's business; its ``cached_tokens`` are reported.
  Engines do not return token ids: ``Completion.token_ids`` is None and
  ``TokenLogprob.token_id`` is -1 (unless vLLM spells tokens ``token_id:N``).
* **Event loops.** An ``AsyncOpenAI`` client (its connection pool) and the
  concurrency semaphore belong to one event loop. They are created lazily for
  each loop the backend is used from: the private loop thread behind the sync
  ``generate``, and the loop of each async caller (so ``max_concurrency`` is
  per loop). A long-lived caller loop
  keeps its client; async callers may ``await aclose()`` before their loop ends.
* **Errors.** Retries with backoff on 429, 5xx and connection errors are the
  SDK's (``max_retries``). Whatever fails at last becomes a ``RemoteError``
  whose message names the URL and the status.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import openai
from openai import AsyncOpenAI

from ponder.backends.base import Backend, Completion, Prompt, TokenLogprob
from ponder.errors import BackendError, CapabilityError, ConfigError, RemoteError
from ponder.ledger import Usage
from ponder.params import SamplingParams

T = TypeVar("T")

_TOKEN_ID_PREFIX = "token_id:"
"""vLLM's ``return_tokens_as_token_ids`` spells tokens as ``token_id:123``."""


@dataclass(frozen=True, slots=True)
class _LoopState:
    """The client and the concurrency gate that belong to one event loop."""

    loop: asyncio.AbstractEventLoop
    client: AsyncOpenAI
    gate: asyncio.Semaphore


class OpenAICompatBackend(Backend):
    """A model served by an OpenAI-compatible engine (vLLM, SGLang, llama.cpp, Ollama)."""

    kind = "openai"
    supports_raw_completion = True
    supports_logits_processor = False
    supports_prefix_cache = False
    supports_logprobs = True

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None, *,
                 timeout: float = 120.0, max_retries: int = 3, max_concurrency: int = 8,
                 raw_completion: bool = True, honours_n: bool | None = None) -> None:
        super().__init__()
        if not timeout > 0 or max_retries < 0 or max_concurrency < 1:
            raise ConfigError("timeout > 0, max_retries >= 0 and max_concurrency >= 1 are "
                              f"required, got {timeout=}, {max_retries=}, {max_concurrency=}")
        self.base_url = normalise_base_url(base_url)
        self._model_id = model or os.environ.get("PONDER_MODEL") or None
        self.model = self._model_id or "unknown"
        self._api_key = api_key or os.environ.get("PONDER_API_KEY") or "not-needed"
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.max_concurrency = max_concurrency
        self.supports_raw_completion = raw_completion  # type: ignore[misc]  # per instance
        self.honours_n = honours_n
        """Whether the engine returns ``n`` choices per request; None until seen."""
        self._states: dict[int, _LoopState] = {}
        self._states_lock = threading.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    # -- public helpers -----------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Token ids from the engine's tokenize endpoint, where it has one.

        Engines disagree on the route: vLLM and llama.cpp's server answer
        ``POST /tokenize`` at the server root, llama-cpp-python's server
        ``POST /extras/tokenize``.
        """
        root = self.base_url.rsplit("/v1", 1)[0]
        attempts = [
            (f"{root}/tokenize", {"model": self.model, "prompt": text,
                                  "add_special_tokens": False}),
            (f"{root}/tokenize", {"content": text, "add_special": False}),
            (f"{root}/extras/tokenize", {"input": text, "model": self.model}),
        ]
        headers = {"Authorization": f"Bearer {self._api_key}"}
        with httpx.Client(timeout=self.timeout) as client:
            for url, body in attempts:
                try:
                    reply = client.post(url, json=body, headers=headers)
                except httpx.HTTPError as exc:
                    raise RemoteError(f"POST {url} failed: {exc}", url=url) from exc
                if reply.status_code != 200:
                    continue
                try:
                    tokens = reply.json().get("tokens")
                except ValueError:
                    continue
                if isinstance(tokens, list):
                    return [int(t) for t in tokens]
        raise CapabilityError(f"the engine at {self.base_url} has no tokenize endpoint "
                              "(tried vLLM's and llama.cpp's)")

    async def list_models(self) -> list[str]:
        """Model ids the engine serves (GET /models); sync: ``run_sync(list_models())``."""
        state = self._state()
        page = await self._call(state, "GET", "/models", lambda: state.client.models.list())
        return [m.id for m in (getattr(page, "data", None) or [])]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "base_url": self.base_url, "honours_n": self.honours_n}

    async def aclose(self) -> None:
        """Close the client of the running loop (call it before an async caller's loop ends)."""
        loop = asyncio.get_running_loop()
        with self._states_lock:
            state = self._states.pop(id(loop), None)
        if state is not None and state.loop is loop:
            await state.client.close()

    def close(self) -> None:
        """Close each loop's client on that loop (skipping loops already closed)."""
        with self._states_lock:
            states, self._states = list(self._states.values()), {}
        for state in states:
            self._close_state(state)
        super().close()

    # -- generation ---------------------------------------------------------

    async def _agenerate(self, prompts: list[Prompt],
                         params: SamplingParams) -> list[list[Completion]]:
        model = await self._resolve_model()
        state = self._state()
        groups = await asyncio.gather(*(self._sample(state, model, p, params) for p in prompts))
        return list(groups)

    async def _sample(self, state: _LoopState, model: str, prompt: Prompt,
                      params: SamplingParams) -> list[Completion]:
        """``params.n`` completions of one prompt, fanning out if the engine ignores n."""
        got: list[Completion] = []
        if params.n == 1 or self.honours_n is not False:
            got = await self._request(state, model, prompt, params, params.n, params.seed)
            if params.n > 1 and self.honours_n is None:
                self.honours_n = len(got) >= params.n
        missing = range(len(got), params.n)
        rest = await asyncio.gather(*(self._request(state, model, prompt, params, 1,
                                                    _nth_seed(params.seed, i)) for i in missing))
        return [*got, *(c for group in rest for c in group)][:params.n]

    async def _request(self, state: _LoopState, model: str, prompt: Prompt,
                       params: SamplingParams, n: int, seed: int | None) -> list[Completion]:
        """One HTTP request for ``n`` samples of ``prompt``."""
        args = _sampling_args(params, n, seed)
        k = params.logprobs
        if isinstance(prompt, str):
            if k is not None:
                args["logprobs"] = k
            response = await self._call(state, "POST", "/completions", lambda: (
                state.client.completions.create(model=model, prompt=prompt, **args)))
            return _split(response, self._url("/completions"), _text_completion, k)
        if k is not None:
            args.update(logprobs=True, top_logprobs=k)
        response = await self._call(state, "POST", "/chat/completions", lambda: (
            state.client.chat.completions.create(model=model, messages=list(prompt), **args)))
        return _split(response, self._url("/chat/completions"), _chat_completion, k)

    # -- plumbing -----------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _state(self) -> _LoopState:
        """The client and gate of the running loop, created on first use there."""
        loop = asyncio.get_running_loop()
        with self._states_lock:
            if self._closed:
                raise BackendError("the openai backend is closed")
            for key in [k for k, s in self._states.items() if s.loop.is_closed()]:
                del self._states[key]  # too late to close its client; GC reclaims the sockets
            state = self._states.get(id(loop))
            if state is None or state.loop is not loop:
                client = AsyncOpenAI(base_url=self.base_url, api_key=self._api_key,
                                     timeout=self.timeout, max_retries=self.max_retries)
                state = _LoopState(loop, client, asyncio.Semaphore(self.max_concurrency))
                self._states[id(loop)] = state
            return state

    def _close_state(self, state: _LoopState) -> None:
        """Close a client on its own loop, wherever that loop runs."""
        loop = state.loop
        if loop.is_closed():
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is running:
            task = loop.create_task(state.client.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        elif loop.is_running():
            asyncio.run_coroutine_threadsafe(state.client.close(), loop).result(timeout=10)

    async def _resolve_model(self) -> str:
        """The model id: the constructor's, $PONDER_MODEL, or the engine's first model."""
        if self._model_id is None:
            ids = await self.list_models()
            if not ids:
                url = self._url("/models")
                raise RemoteError(f"{url} lists no models; pass a model name", url=url)
            self._model_id = self.model = ids[0]
        return self._model_id

    async def _call(self, state: _LoopState, method: str, path: str,
                    make: Callable[[], Awaitable[T]]) -> T:
        """Run one SDK request under the concurrency gate; SDK errors become RemoteError."""
        async with state.gate:
            try:
                return await make()
            except openai.APIError as exc:
                raise _remote_error(exc, method, self._url(path), self.timeout) from exc


def normalise_base_url(url: str) -> str:
    """``http://host:port`` and ``http://host:port/v1`` both mean ``.../v1``."""
    url = (url or "").strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"the base URL must look like http://host:port/v1, got {url!r}")
    return url + "/v1" if not parts.path else url


def _nth_seed(seed: int | None, i: int) -> int | None:
    return None if seed is None else seed + i


def _sampling_args(params: SamplingParams, n: int, seed: int | None) -> dict[str, Any]:
    """The request fields both endpoints share."""
    args: dict[str, Any] = {"temperature": params.temperature, "top_p": params.top_p,
                            "max_tokens": params.max_tokens, "n": n}
    if params.stop:
        args["stop"] = list(params.stop)
    if seed is not None:
        args["seed"] = seed
    if params.logit_bias:
        args["logit_bias"] = {str(token): bias for token, bias in params.logit_bias.items()}
    if params.min_tokens > 0:
        args["extra_body"] = {"min_tokens": params.min_tokens}  # vLLM honours it
    return args


def _split(response: Any, url: str, parse: Callable[[Any, Usage, int | None], Completion],
           k: int | None) -> list[Completion]:
    """Completions of one response; its whole usage goes on the first (see module doc)."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise RemoteError(f"{url} returned no choices: {str(response)[:200]}", url=url)
    usage = _usage(getattr(response, "usage", None))
    ordered = sorted(choices, key=lambda c: getattr(c, "index", 0) or 0)
    return [parse(c, usage if i == 0 else Usage(), k) for i, c in enumerate(ordered)]


def _usage(raw: Any) -> Usage:
    """Usage of one response; engines may omit any field."""
    if raw is None:
        return Usage()
    prompt = getattr(raw, "prompt_tokens", None) or 0
    completion = getattr(raw, "completion_tokens", None) or 0
    details = getattr(raw, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Usage(prompt, completion, min(cached, prompt))


def _chat_completion(choice: Any, usage: Usage, k: int | None) -> Completion:
    message = choice.message
    calls = getattr(message, "tool_calls", None)
    content = getattr(choice.logprobs, "content", None) if choice.logprobs else None
    return Completion(
        text=message.content or "", finish_reason=choice.finish_reason or "stop", usage=usage,
        tool_calls=tuple(c.model_dump() for c in calls) if calls else None,
        logprobs=None if k is None else tuple(
            TokenLogprob(_token_id(t.token), t.token, t.logprob,
                         tuple((a.token, a.logprob) for a in (t.top_logprobs or [])[:k]))
            for t in content or ()))


def _text_completion(choice: Any, usage: Usage, k: int | None) -> Completion:
    logprobs = None if k is None else _text_logprobs(choice.logprobs, k)
    return Completion(text=choice.text or "", finish_reason=choice.finish_reason or "stop",
                      usage=usage, logprobs=logprobs)


def _text_logprobs(raw: Any, k: int) -> tuple[TokenLogprob, ...]:
    """Legacy completions logprobs: parallel lists, top alternatives as dicts."""
    if raw is None:
        return ()
    tokens: Sequence[str] = raw.tokens or []
    values: Sequence[float | None] = raw.token_logprobs or []
    tops: Sequence[dict[str, float] | None] = raw.top_logprobs or [None] * len(tokens)
    return tuple(
        TokenLogprob(_token_id(tok), tok, lp if lp is not None else float("-inf"),
                     tuple(sorted((top or {}).items(), key=lambda kv: -kv[1])[:k]))
        for tok, lp, top in zip(tokens, values, tops, strict=False))


def _token_id(token: str) -> int:
    """The id if the engine spelled the token as ``token_id:N``, else -1 (not reported)."""
    if token.startswith(_TOKEN_ID_PREFIX) and token[len(_TOKEN_ID_PREFIX):].isdigit():
        return int(token[len(_TOKEN_ID_PREFIX):])
    return -1


def _remote_error(exc: openai.APIError, method: str, fallback_url: str,
                  timeout: float) -> RemoteError:
    """One clear line: which URL, which status, what the engine said."""
    request = getattr(exc, "request", None)
    url = str(request.url) if request is not None else fallback_url
    if isinstance(exc, openai.APITimeoutError):
        return RemoteError(f"{method} {url} timed out after {timeout:g} s", url=url)
    if isinstance(exc, openai.APIConnectionError):
        return RemoteError(f"{method} {url} failed: {_connection_reason(exc)} "
                           "(is the engine running?)", url=url)
    status = getattr(exc, "status_code", None)
    if status is not None:
        return RemoteError(f"{url} returned {status}: {_detail(exc)}", url=url, status=status)
    return RemoteError(f"{method} {url} failed: {exc.message}", url=url)


def _connection_reason(exc: BaseException) -> str:
    """The root cause of a connection error, in a few words."""
    seen: BaseException | None = exc
    last = str(exc)
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return f"cannot resolve the host ({seen.strerror})"
        last = str(seen) or last
        seen = seen.__cause__ or seen.__context__
    return last


def _detail(exc: openai.APIError) -> str:
    """The engine's own error text: OpenAI's ``error.message``, FastAPI's ``detail``, ..."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("error", "detail", "message"):
            if body.get(key):
                return str(body[key])
    if body:
        return str(body)[:300]
    response = getattr(exc, "response", None)
    text = getattr(response, "text", "") if response is not None else ""
    return text[:300] or exc.message
