"""The embedded backend: llama.cpp in-process, no server, no download.

Built on llama-cpp-python's low-level API, because the high-level
``Llama.__call__`` generates one sequence at a time. Here:

* **Shared-prefix parallel sampling.** A prompt is prefilled once into one
  KV sequence, that sequence is forked (``llama_memory_seq_cp``; with a
  unified KV cache this shares cells instead of copying them) to ``n``
  sequences, and all of them decode together, one ``llama_batch`` per step.
  Several prompts in one call decode together too, and share their common
  prefix with the first prompt.
* **Prefix reuse across calls.** Sequence 0 keeps its tokens (prompt plus the
  first sample) in the KV cache after a call. The next call prefills only
  what follows the longest common prefix, so budget forcing, step search and
  multi-turn chats do not pay for their history again.
* **Sampling in numpy**, per sequence, with its own seeded generator, so
  logits processors, ``logit_bias``, ``min_tokens`` and logprobs are exact.

Thread-safety: one llama.cpp context serves one call at a time. Concurrent
callers are serialized by a lock (``agenerate`` runs the call in a worker
thread, so the event loop stays free).
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ponder.backends.base import (
    Backend,
    Completion,
    Message,
    Prompt,
    StreamChunk,
    TokenLogprob,
)
from ponder.errors import BackendError, ConfigError, ModelError
from ponder.ledger import Usage
from ponder.model_files import Progress, resolve_model
from ponder.params import SamplingParams

_TOP_P_CANDIDATES = 512


def _import_llama_cpp() -> tuple[Any, Any, Any]:
    try:
        import llama_cpp
        from llama_cpp import _internals, _logger
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ModelError("llama-cpp-python is not installed: pip install llama-cpp-python") from exc
    return llama_cpp, _internals, (_logger, Jinja2ChatFormatter)


@dataclass
class _Seq:
    """One sample being decoded: its KV sequence id, tokens and sampler state."""

    seq_id: int
    prompt_index: int
    sample_index: int
    kv_tokens: list[int]
    """Tokens whose KV is in the cache for this sequence."""
    rng: np.random.Generator
    generated: list[int] = field(default_factory=list)
    text_bytes: bytearray = field(default_factory=bytearray)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None
    text: str | None = None
    cached_prompt: int = 0
    """Prompt tokens this sample did not prefill (prefix cache or a forked sibling)."""
    on_text: Callable[[str], bool] | None = None
    """Streaming sink for new text; returning False cancels the sample."""
    emitted: int = 0


class EmbeddedBackend(Backend):
    """A GGUF model run in-process by llama.cpp (the default backend)."""

    kind = "embedded"
    supports_raw_completion = True
    supports_logits_processor = True
    supports_prefix_cache = True
    supports_logprobs = True

    def __init__(self, model: str | None = None, *, n_ctx: int = 8192, n_seq_max: int = 16,
                 n_batch: int = 512, n_threads: int | None = None, flash_attn: bool = False,
                 repack_weights: bool = False, verbose: bool = False,
                 progress: Progress | None = None) -> None:
        """Load ``model`` (a known name, a .gguf path or a Hub repo; default: Qwen 0.5B).

        ``n_ctx`` is the KV cache shared by all sequences of a call; ``n_seq_max``
        caps the samples decoded together (more run in waves). Flash attention
        measured ~10% slower for batched decoding on 2 CPU cores, so it is off.
        ``repack_weights`` enables llama.cpp's extra buffer types (weight
        repacking); it is off because its AMX path dies with SIGILL on
        multi-token batches in some VMs, and on our 2-core x86 machine it was
        not faster.
        """
        super().__init__()
        if n_seq_max < 1 or n_ctx < 64 or n_batch < 1:
            raise ConfigError("n_seq_max >= 1, n_ctx >= 64 and n_batch >= 1 are required")
        llama_cpp, internals, (logger_mod, formatter_cls) = _import_llama_cpp()
        self._ll = llama_cpp
        self.model, path = resolve_model(model, progress)
        self.model_path = path
        logger_mod.set_verbose(verbose)
        llama_cpp.llama_backend_init()
        model_params = llama_cpp.llama_model_default_params()
        model_params.use_extra_bufts = repack_weights
        try:
            self._model = internals.LlamaModel(path_model=str(path), params=model_params,
                                               verbose=verbose)
        except Exception as exc:
            raise ModelError(f"llama.cpp could not load {path}: {exc}") from exc
        threads = n_threads or int(os.environ.get("PONDER_THREADS", 0)) or os.cpu_count() or 1
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = n_seq_max
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.kv_unified = True
        cparams.flash_attn_type = 1 if flash_attn else 0
        try:
            self._ctx = internals.LlamaContext(model=self._model, params=cparams, verbose=verbose)
        except Exception as exc:
            raise ModelError(f"llama.cpp could not create a context for {path}: {exc}") from exc
        self._mem = self._ctx.memory
        self._vocab = llama_cpp.llama_model_get_vocab(self._model.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self.n_ctx = int(self._ctx.n_ctx())
        self.n_seq_max = n_seq_max
        self.n_batch = n_batch
        self.n_threads = threads
        self._batch = llama_cpp.llama_batch_init(max(n_batch, n_seq_max), 0, 1)
        self._eog_set = frozenset(t for t in range(self.n_vocab)
                                  if llama_cpp.llama_vocab_is_eog(self._vocab, t))
        self._eog = np.array(sorted(self._eog_set), dtype=np.int64)
        self._piece_buf = ctypes.create_string_buffer(256)
        self._cached: list[int] = []
        self._lock = threading.Lock()
        self._chat = self._make_chat_formatters(formatter_cls)

    # -- public helpers -----------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        return self._model.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def detokenize(self, token_ids: Sequence[int]) -> str:
        return b"".join(self._piece(t) for t in token_ids).decode("utf-8", errors="replace")

    def render_chat(self, messages: Sequence[Message], *, add_generation_prompt: bool = True
                    ) -> str:
        if self._chat is None:
            raise ModelError(f"model {self.model!r} has no chat template in its GGUF metadata")
        formatter = self._chat[add_generation_prompt]
        try:
            return formatter(messages=list(messages)).prompt
        except Exception as exc:
            raise ConfigError(f"chat template failed on these messages: {exc}") from exc

    def reset_cache(self) -> None:
        """Forget the cached prefix (the next call prefills from scratch)."""
        with self._lock:
            self._ll.llama_memory_seq_rm(self._mem, -1, -1, -1)
            self._cached = []

    def prompt_logprobs(self, prompt: str, continuation: str) -> list[TokenLogprob]:
        """Per-token logprobs of ``continuation`` after the raw ``prompt``, without sampling.

        For predictability, log p(question | context). The prompt reuses the
        cached prefix; the continuation is decoded in one pass with logits on.
        Holds the backend lock; the ledger gets one row of prompt tokens only.
        """
        head, tail = self._encode(prompt), self.tokenize(continuation)
        if not tail:
            raise ConfigError("the continuation to score is empty")
        tokens = head + tail
        if len(tokens) > self.n_ctx:
            raise ConfigError(f"prompt + continuation ({len(tokens)} tokens) exceeds the "
                              f"context window of {self.n_ctx} tokens")
        started = time.perf_counter()
        with self._lock:
            if self._batch is None:
                raise BackendError("the embedded backend is closed")
            common = min(_common_prefix(self._cached, tokens), len(head) - 1)
            self._ll.llama_memory_seq_rm(self._mem, 0, common, -1)
            self._cached = tokens[:common]
            scores = self._score(tokens, common, len(head))
            self._cached = list(tokens)
        usage = Usage(prompt_tokens=len(tokens), cached_prompt_tokens=common)
        self._record([[Completion("", "stop", usage)]], time.perf_counter() - started)
        return scores

    def _score(self, tokens: list[int], start: int, first: int) -> list[TokenLogprob]:
        """Decode ``tokens[start:]`` into sequence 0; logprobs of ``tokens[first:]``."""
        out: list[TokenLogprob] = []
        for begin in range(start, len(tokens), self.n_batch):
            chunk = tokens[begin:begin + self.n_batch]
            self._batch_clear()
            for k, tok in enumerate(chunk):
                self._batch_add(tok, begin + k, 0, want_logits=first - 1 <= begin + k
                                < len(tokens) - 1)
            self._decode()
            out.extend(self._logprob(tokens[begin + k + 1], self._logits(k), 0)
                       for k in range(len(chunk)) if first - 1 <= begin + k < len(tokens) - 1)
        return out

    @property
    def cached_tokens(self) -> int:
        """How many tokens of sequence 0 are in the KV cache (for tests and stats)."""
        return len(self._cached)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": str(self.model_path), "n_ctx": self.n_ctx,
                "n_seq_max": self.n_seq_max, "threads": self.n_threads}

    def close(self) -> None:
        super().close()
        with self._lock:
            if self._batch is not None:
                self._ll.llama_batch_free(self._batch)
                self._batch = None
            self._ctx.close()
            self._model.close()

    # -- generation ---------------------------------------------------------

    async def _astream(self, prompt: Prompt, params: SamplingParams
                       ) -> AsyncIterator[StreamChunk]:
        """Decode in a worker thread; text deltas cross to the event loop through a queue."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | Completion | BaseException] = asyncio.Queue()
        cancelled = threading.Event()

        def on_text(delta: str) -> bool:
            loop.call_soon_threadsafe(queue.put_nowait, delta)
            return not cancelled.is_set()

        def work() -> None:
            try:
                [[done]] = self._generate([prompt], params, on_text=on_text)
                loop.call_soon_threadsafe(queue.put_nowait, done)
            except BaseException as exc:  # re-raised in the consumer
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        worker = loop.run_in_executor(None, contextvars.copy_context().run, work)
        sent = 0
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, Completion):
                    yield StreamChunk(item.text[sent:], item)
                    return
                sent += len(item)
                yield StreamChunk(item)
        finally:
            cancelled.set()
            await asyncio.shield(worker)

    def _generate(self, prompts: list[Prompt], params: SamplingParams, *,
                  on_text: Callable[[str], bool] | None = None) -> list[list[Completion]]:
        encoded = [self._encode(p) for p in prompts]
        for tokens in encoded:
            if len(tokens) + params.max_tokens > self.n_ctx:
                raise ConfigError(
                    f"prompt ({len(tokens)} tokens) + max_tokens ({params.max_tokens}) exceeds "
                    f"the context window of {self.n_ctx} tokens")
        results: list[list[Completion | None]] = [[None] * params.n for _ in prompts]
        with self._lock:
            if self._batch is None:
                raise BackendError("the embedded backend is closed")
            for wave in self._plan_waves(encoded, params):
                for seq in self._run_wave(wave, encoded, params, on_text):
                    results[seq.prompt_index][seq.sample_index] = self._completion(
                        seq, encoded, params)
        return [[c for c in group if c is not None] for group in results]

    def _plan_waves(self, encoded: list[list[int]], params: SamplingParams
                    ) -> list[list[tuple[int, int]]]:
        """Split (prompt, sample) pairs into waves that fit the sequences and the KV cache."""
        waves: list[list[tuple[int, int]]] = []
        current: list[tuple[int, int]] = []
        prompts_in_wave: set[int] = set()
        used = 0
        for p, tokens in enumerate(encoded):
            for j in range(params.n):
                extra = params.max_tokens + (len(tokens) if p not in prompts_in_wave else 0)
                if current and (len(current) >= self.n_seq_max or used + extra > self.n_ctx):
                    waves.append(current)
                    current, prompts_in_wave, used = [], set(), 0
                    extra = params.max_tokens + len(tokens)
                current.append((p, j))
                prompts_in_wave.add(p)
                used += extra
        if current:
            waves.append(current)
        return waves

    def _run_wave(self, wave: list[tuple[int, int]], encoded: list[list[int]],
                  params: SamplingParams, on_text: Callable[[str], bool] | None = None
                  ) -> list[_Seq]:
        ll = self._ll
        for s in range(1, self.n_seq_max):
            ll.llama_memory_seq_rm(self._mem, s, -1, -1)
        seqs: list[_Seq] = []
        bases: dict[int, _Seq] = {}
        first_logits: dict[int, np.ndarray] = {}
        for seq_id, (p, j) in enumerate(wave):
            tokens = encoded[p]
            seq = _Seq(seq_id, p, j, [], _rng(params.seed, p, j), on_text=on_text)
            if p not in bases:
                seq.cached_prompt, first_logits[p] = self._prefill(
                    seq, tokens, base=seqs[0] if seqs else None)
                bases[p] = seq
            else:
                ll.llama_memory_seq_cp(self._mem, bases[p].seq_id, seq_id, -1, -1)
                seq.kv_tokens = list(bases[p].kv_tokens)
                seq.cached_prompt = len(tokens)
            seqs.append(seq)
        for seq in seqs:
            raw = first_logits[seq.prompt_index]
            self._accept(seq, self._sample(seq, raw.copy(), params), raw, params)
        self._decode_loop(seqs, params)
        self._cached = list(seqs[0].kv_tokens)
        for seq in seqs[1:]:
            ll.llama_memory_seq_rm(self._mem, seq.seq_id, -1, -1)
        return seqs

    def _prefill(self, seq: _Seq, tokens: list[int], base: _Seq | None) -> tuple[int, np.ndarray]:
        """Fill ``seq`` with ``tokens``, reusing the longest cached prefix. Returns
        (reused token count, logits after the last prompt token)."""
        ll = self._ll
        source = self._cached if base is None else base.kv_tokens
        common = _common_prefix(source, tokens)
        common = min(common, len(tokens) - 1)  # the last token must be decoded for its logits
        if base is None:
            ll.llama_memory_seq_rm(self._mem, 0, common, -1)
        else:
            ll.llama_memory_seq_cp(self._mem, base.seq_id, seq.seq_id, 0, common)
        seq.kv_tokens = list(tokens[:common])
        rest = tokens[common:]
        logits: np.ndarray | None = None
        for start in range(0, len(rest), self.n_batch):
            chunk = rest[start:start + self.n_batch]
            last = start + len(chunk) == len(rest)
            self._batch_clear()
            for k, tok in enumerate(chunk):
                self._batch_add(tok, len(seq.kv_tokens) + k, seq.seq_id,
                                want_logits=last and k == len(chunk) - 1)
            self._decode()
            seq.kv_tokens.extend(chunk)
            if last:
                logits = self._logits(len(chunk) - 1).copy()
        assert logits is not None
        if base is None:
            self._cached = list(seq.kv_tokens)
        return common, logits

    def _decode_loop(self, seqs: list[_Seq], params: SamplingParams) -> None:
        while True:
            active = [s for s in seqs if s.finish_reason is None]
            if not active:
                return
            self._batch_clear()
            for seq in active:
                self._batch_add(seq.generated[-1], len(seq.kv_tokens), seq.seq_id, True)
            self._decode()
            for i, seq in enumerate(active):
                seq.kv_tokens.append(seq.generated[-1])
                raw = self._logits(i)
                self._accept(seq, self._sample(seq, raw.copy(), params), raw, params)

    def _sample(self, seq: _Seq, logits: np.ndarray, params: SamplingParams) -> int:
        for processor in params.logits_processors:
            logits = processor(seq.generated, logits)
        for token, bias in params.logit_bias.items():
            if token < self.n_vocab:
                logits[token] += bias
        if len(seq.generated) < params.min_tokens:
            logits[self._eog] = -np.inf
        if params.temperature < 1e-5:  # greedy; 1/T would overflow (vLLM does the same)
            return int(np.argmax(logits))
        z = logits - logits.max()
        z *= 1.0 / params.temperature
        probs = np.exp(z, out=z)
        if params.top_p < 1.0:
            return _sample_top_p(probs / probs.sum(), params.top_p, seq.rng)
        cdf = np.cumsum(probs, dtype=np.float64)
        return int(min(np.searchsorted(cdf, seq.rng.random() * cdf[-1]), self.n_vocab - 1))

    def _accept(self, seq: _Seq, token: int, raw_logits: np.ndarray,
                params: SamplingParams) -> None:
        """Append a sampled token and decide whether the sequence is finished."""
        seq.generated.append(token)
        if params.logprobs is not None:
            seq.logprobs.append(self._logprob(token, raw_logits, params.logprobs))
        if token in self._eog_set:
            seq.finish_reason = "stop"
            return
        piece = self._piece(token)
        seq.text_bytes.extend(piece)
        if params.stop and len(seq.generated) >= params.min_tokens:
            text = seq.text_bytes.decode("utf-8", errors="ignore")
            window = max(len(s) for s in params.stop) + len(piece) + 4
            tail_start = max(0, len(text) - window)
            hits = [i for s in params.stop if (i := text.find(s, tail_start)) >= 0]
            if hits:
                seq.text = text[:min(hits)]
                seq.finish_reason = "stop"
                return
        if len(seq.generated) >= params.max_tokens:
            seq.finish_reason = "length"
        elif seq.on_text is not None and not self._emit(seq, params):
            seq.finish_reason = "cancelled"

    def _emit(self, seq: _Seq, params: SamplingParams) -> bool:
        """Send decoded text to the stream, holding back what may start a stop string."""
        assert seq.on_text is not None
        text = seq.text_bytes.decode("utf-8", errors="ignore")
        hold = max((len(s) for s in params.stop), default=1) - 1
        upto = len(text) - hold
        if upto <= seq.emitted:
            return True
        delta, seq.emitted = text[seq.emitted:upto], upto
        return seq.on_text(delta)

    def _completion(self, seq: _Seq, encoded: list[list[int]],
                    params: SamplingParams) -> Completion:
        usage = Usage(prompt_tokens=len(encoded[seq.prompt_index]),
                      completion_tokens=len(seq.generated), cached_prompt_tokens=seq.cached_prompt)
        text = seq.text if seq.text is not None else seq.text_bytes.decode("utf-8", "replace")
        return Completion(text=text, finish_reason=seq.finish_reason or "length", usage=usage,
                          token_ids=tuple(seq.generated),
                          logprobs=tuple(seq.logprobs) if params.logprobs is not None else None)

    # -- low level ----------------------------------------------------------

    def _encode(self, prompt: Prompt) -> list[int]:
        text = prompt if isinstance(prompt, str) else self.render_chat(prompt)
        add_bos = bool(self._model.add_bos_token())
        bos = self._model.token_bos()
        if add_bos and bos >= 0 and text.startswith(self._piece(bos).decode("utf-8", "ignore")
                                                    or "\0"):
            add_bos = False
        tokens = self._model.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        if not tokens:
            raise ConfigError("the prompt is empty")
        return tokens

    def _piece(self, token: int) -> bytes:
        n = self._ll.llama_token_to_piece(self._vocab, token, self._piece_buf,
                                          len(self._piece_buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._ll.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            return bytes(buf[:n])
        return bytes(self._piece_buf[:n])

    def _logprob(self, token: int, raw: np.ndarray, top: int) -> TokenLogprob:
        z = raw.astype(np.float64)
        logz = z.max() + np.log(np.exp(z - z.max()).sum())
        alternatives: tuple[tuple[str, float], ...] = ()
        if top:
            idx = np.argpartition(-z, top)[:top]
            idx = idx[np.argsort(-z[idx])]
            alternatives = tuple((self._piece(int(t)).decode("utf-8", "replace"),
                                  float(z[t] - logz)) for t in idx)
        return TokenLogprob(token, self._piece(token).decode("utf-8", "replace"),
                            float(z[token] - logz), alternatives)

    def _batch_clear(self) -> None:
        self._batch.n_tokens = 0

    def _batch_add(self, token: int, pos: int, seq_id: int, want_logits: bool) -> None:
        b = self._batch
        i = b.n_tokens
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq_id
        b.logits[i] = want_logits
        b.n_tokens = i + 1

    def _decode(self) -> None:
        rc = self._ll.llama_decode(self._ctx.ctx, self._batch)
        if rc != 0:
            raise BackendError(f"llama_decode failed with code {rc} "
                               "(1 means the KV cache is full: lower n or max_tokens)")

    def _logits(self, batch_index: int) -> np.ndarray:
        ptr = self._ll.llama_get_logits_ith(self._ctx.ctx, batch_index)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _make_chat_formatters(self, formatter_cls: Any) -> dict[bool, Any] | None:
        meta = self._model.metadata()
        template = meta.get("tokenizer.chat_template")
        if not template:
            return None
        eos = self._piece_special(self._model.token_eos())
        bos = self._piece_special(self._model.token_bos())
        return {flag: formatter_cls(template=template, eos_token=eos, bos_token=bos,
                                    add_generation_prompt=flag) for flag in (True, False)}

    def _piece_special(self, token: int) -> str:
        if token < 0:
            return ""
        buf = ctypes.create_string_buffer(256)
        n = self._ll.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, True)
        return bytes(buf[:max(n, 0)]).decode("utf-8", "replace")


def _rng(seed: int | None, prompt_index: int, sample_index: int) -> np.random.Generator:
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([seed, prompt_index, sample_index])


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _sample_top_p(probs: np.ndarray, top_p: float, rng: np.random.Generator) -> int:
    """Nucleus sampling without sorting the whole vocabulary when the head suffices."""
    k = min(_TOP_P_CANDIDATES, probs.size - 1)
    head = np.argpartition(-probs, k)[:k]
    head = head[np.argsort(-probs[head])]
    mass = np.cumsum(probs[head])
    if mass[-1] < top_p:
        head = np.argsort(-probs)
        mass = np.cumsum(probs[head])
    cut = int(np.searchsorted(mass, top_p)) + 1
    kept = head[:cut]
    p = probs[kept] / probs[kept].sum()
    return int(kept[min(np.searchsorted(np.cumsum(p), rng.random()), len(kept) - 1)])
