"""A backend on Hugging Face transformers (PyTorch): for trained checkpoints.

Why it exists: ``ponder train ibpo`` fine-tunes a model with PyTorch, and the
result is a transformers checkpoint that llama.cpp cannot read. This backend
serves such a checkpoint (or a GGUF file, which transformers dequantizes) so
that the eval harness grades the trained model exactly as it grades the
embedded one.

It needs the ``train`` extra (``pip install 'ponder[train]'``); torch and
transformers are imported only when a backend is built, so ponder works
without them. Generation is batched: every prompt of a call, times ``n``,
decodes together through ``model.generate`` (left-padded). Concurrent async
calls with the same sampling parameters (the seed does not matter when
decoding greedily) are coalesced into one batch, so the eval harness, which
runs items concurrently, decodes them together. There is no prefix cache:
each sample prefills its prompt, and the usage says so
(``cached_prompt_tokens`` is 0).

A GGUF model is converted once into a transformers checkpoint under
``$PONDER_HOME/hf/`` (SmolLM2-135M: ~25 s, then ~0.2 s per load).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ponder.backends.base import Backend, Completion, Message, Prompt, TokenLogprob
from ponder.errors import BackendError, ConfigError, ModelError
from ponder.ledger import Usage
from ponder.model_files import Progress, ponder_home, resolve_model
from ponder.params import SamplingParams

INSTALL_HINT = "install ponder[train] (pip install 'ponder[train]')"
_CONVERTED_STAMP = "ponder-source.json"


def import_torch() -> tuple[Any, Any]:
    """``(torch, transformers)``, or a ``ModelError`` that says which extra to install."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ModelError(f"{exc.name or 'torch/transformers'} is not installed: "
                         f"{INSTALL_HINT}") from exc
    return torch, transformers


def torch_threads(n_threads: int | None = None) -> int:
    """Threads for torch: the argument, else ``PONDER_THREADS``, else every core."""
    return n_threads or int(os.environ.get("PONDER_THREADS", 0) or 0) or os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A causal LM, its tokenizer and where they came from."""

    model: Any
    tokenizer: Any
    model_id: str
    path: Path
    """The transformers checkpoint directory the weights were read from."""
    source: str
    """What the user named: a known model, a .gguf file or a checkpoint directory."""


def is_checkpoint_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def checkpoint_dir(spec: str | None, progress: Progress | None = None) -> tuple[str, Path]:
    """``(model_id, transformers checkpoint dir)`` for a known name, a .gguf or a dir.

    A GGUF is dequantized by transformers' GGUF loader once and cached under
    ``$PONDER_HOME/hf/<id>``; the cache is keyed by the file's size and mtime.
    """
    if spec and is_checkpoint_dir(Path(spec).expanduser()):
        path = Path(spec).expanduser()
        return _checkpoint_id(path), path
    model_id, gguf = resolve_model(spec, progress)
    target = ponder_home() / "hf" / model_id
    stat = gguf.stat()
    stamp = {"gguf": str(gguf.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    stamp_file = target / _CONVERTED_STAMP
    if is_checkpoint_dir(target) and stamp_file.is_file():
        with contextlib.suppress(ValueError):
            if json.loads(stamp_file.read_text()) == stamp:
                return model_id, target
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _convert_gguf(gguf, tmp)
    (tmp / _CONVERTED_STAMP).write_text(json.dumps(stamp) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)  # whole or absent: a killed conversion leaves no half checkpoint
    return model_id, target


def _checkpoint_id(path: Path) -> str:
    """A checkpoint saved by ``ponder train`` names its model; others use the folder."""
    meta = path / "ponder-model.json"
    if meta.is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return str(json.loads(meta.read_text())["model_id"])
    return path.name


def _convert_gguf(gguf: Path, target: Path) -> None:
    _, transformers = import_torch()
    _quiet(transformers)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar ignores the log level
            tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent,
                                                                   gguf_file=gguf.name)
            model = transformers.AutoModelForCausalLM.from_pretrained(gguf.parent,
                                                                      gguf_file=gguf.name)
    except ImportError as exc:  # accelerate / gguf missing
        raise ModelError(f"transformers cannot read GGUF here ({exc}): {INSTALL_HINT}") from exc
    except Exception as exc:
        raise ModelError(f"transformers could not load {gguf}: {type(exc).__name__}: "
                         f"{exc}") from exc
    strip_quantizer(model)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def strip_quantizer(model: Any) -> None:
    """Forget the GGUF 'quantizer' of a model whose weights are already dequantized.

    transformers refuses to save a model loaded from GGUF, although its weights
    are plain float tensors; without the quantizer it saves like any other.
    """
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with contextlib.suppress(AttributeError):
        model.is_quantized = False


def load_model(spec: str | None, *, n_threads: int | None = None,
               progress: Progress | None = None) -> LoadedModel:
    """Load a known model name, a .gguf path or a checkpoint directory (float32, CPU)."""
    torch, transformers = import_torch()
    torch.set_num_threads(torch_threads(n_threads))
    _quiet(transformers)
    model_id, path = checkpoint_dir(spec, progress)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except Exception as exc:
        raise ModelError(f"transformers could not load {path}: {type(exc).__name__}: "
                         f"{exc}") from exc
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model, tokenizer, model_id, path, spec or model_id)


def _quiet(transformers: Any) -> None:
    """No tqdm bars or advisory logs from transformers on ponder's console."""
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


class TransformersBackend(Backend):
    """A causal LM run by transformers on CPU, batched across prompts and samples."""

    kind = "transformers"
    supports_raw_completion = True
    supports_logits_processor = True
    supports_prefix_cache = False
    supports_logprobs = True

    def __init__(self, model: str | LoadedModel | None = None, *, n_threads: int | None = None,
                 max_batch: int = 32, progress: Progress | None = None) -> None:
        """Load ``model`` (a known name, a .gguf path, a checkpoint dir), or wrap a loaded one.

        ``max_batch`` caps the sequences (prompts x n) decoded together; more run
        in waves.
        """
        super().__init__()
        if max_batch < 1:
            raise ConfigError(f"max_batch must be an integer >= 1, got {max_batch!r}")
        loaded = model if isinstance(model, LoadedModel) else \
            load_model(model, n_threads=n_threads, progress=progress)
        self._torch, self._transformers = import_torch()
        self.loaded = loaded
        self.model = loaded.model_id
        self.max_batch = max_batch
        self.n_threads = self._torch.get_num_threads()
        self._lock = threading.Lock()
        tok = loaded.tokenizer
        eos = loaded.model.generation_config.eos_token_id
        eos_ids = eos if isinstance(eos, list) else [eos]
        self._eos = frozenset(int(t) for t in [*eos_ids, tok.eos_token_id] if t is not None)
        self._pad = int(tok.pad_token_id)
        self._queue: list[_Request] = []
        self._drainer: asyncio.Future[None] | None = None

    # -- public helpers -----------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        return list(self.loaded.tokenizer.encode(text, add_special_tokens=False))

    def render_chat(self, messages: Sequence[Message], *, add_generation_prompt: bool = True
                    ) -> str:
        tok = self.loaded.tokenizer
        if not tok.chat_template:
            raise ModelError(f"model {self.model!r} has no chat template")
        try:
            return str(tok.apply_chat_template(list(messages), tokenize=False,
                                               add_generation_prompt=add_generation_prompt))
        except Exception as exc:
            raise ConfigError(f"chat template failed on these messages: {exc}") from exc

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids the model sees for ``prompt`` (chat prompts: rendered template)."""
        tok = self.loaded.tokenizer
        if isinstance(prompt, str):
            bos = tok.bos_token
            special = not (bos and prompt.startswith(bos))
            ids = tok.encode(prompt, add_special_tokens=special)
        else:
            ids = tok.encode(self.render_chat(prompt), add_special_tokens=False)
        if not ids:
            raise ConfigError("the prompt is empty after tokenization")
        return list(ids)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": str(self.loaded.path), "threads": self.n_threads,
                "max_batch": self.max_batch}

    # -- generation ---------------------------------------------------------

    async def _agenerate(self, prompts: list[Prompt],
                         params: SamplingParams) -> list[list[Completion]]:
        """Queue the call; calls queued in the same loop turn decode as one batch."""
        future: asyncio.Future[list[list[Completion]]] = \
            asyncio.get_running_loop().create_future()
        self._queue.append(_Request(prompts, params, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # one loop turn: concurrent callers join this batch
        while self._queue:
            key = _batch_key(self._queue[0].params)
            batch = [r for r in self._queue if _batch_key(r.params) == key]
            self._queue = [r for r in self._queue if _batch_key(r.params) != key]
            flat = [p for r in batch for p in r.prompts]
            try:
                result = await asyncio.to_thread(self._generate, flat, batch[0].params)
            except Exception as exc:
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(exc)
                continue
            start = 0
            for r in batch:
                if not r.future.done():
                    r.future.set_result(result[start:start + len(r.prompts)])
                start += len(r.prompts)

    def _generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        encoded = [self.encode(p) for p in prompts]
        out: list[list[Completion]] = []
        per_wave = max(1, self.max_batch // params.n)
        with self._lock:
            for start in range(0, len(encoded), per_wave):
                wave = encoded[start:start + per_wave]
                out.extend(self._wave(wave, params, start))
        return out

    def _wave(self, encoded: list[list[int]], params: SamplingParams,
              offset: int) -> list[list[Completion]]:
        torch = self._torch
        width = max(len(ids) for ids in encoded)
        ids = torch.full((len(encoded), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, prompt_ids in enumerate(encoded):
            ids[row, width - len(prompt_ids):] = torch.tensor(prompt_ids)
            mask[row, width - len(prompt_ids):] = 1
        with _seeded(torch, params.seed, offset), torch.inference_mode():
            try:
                result = self.loaded.model.generate(
                    input_ids=ids, attention_mask=mask, **self._generate_kwargs(params, width))
            except Exception as exc:
                raise BackendError(f"transformers generate failed: {type(exc).__name__}: "
                                   f"{exc}") from exc
        sequences = result.sequences[:, width:]
        logits = result.logits if params.logprobs is not None else None
        completions = [self._completion(sequences[row], encoded[row // params.n], params,
                                        logits, row) for row in range(sequences.shape[0])]
        return [completions[i * params.n:(i + 1) * params.n] for i in range(len(encoded))]

    def _generate_kwargs(self, params: SamplingParams, width: int) -> dict[str, Any]:
        transformers = self._transformers
        config = transformers.GenerationConfig(
            max_new_tokens=params.max_tokens, min_new_tokens=params.min_tokens,
            do_sample=params.temperature >= 1e-5, num_return_sequences=params.n,
            pad_token_id=self._pad, eos_token_id=sorted(self._eos),
            bos_token_id=self.loaded.model.generation_config.bos_token_id,
            return_dict_in_generate=True, output_logits=params.logprobs is not None)
        if config.do_sample:
            config.temperature = params.temperature
            config.top_p = params.top_p
            config.top_k = 0
        else:  # no sampling knobs on a greedy config: transformers warns about them
            config.temperature = config.top_p = config.top_k = None
        if params.stop and not params.min_tokens:
            config.stop_strings = list(params.stop)
        processors = transformers.LogitsProcessorList()
        if params.logit_bias:
            processors.append(_LogitBias(self._torch, params.logit_bias))
        if params.logits_processors:
            processors.append(_PerSequence(self._torch, params.logits_processors, width))
        kwargs: dict[str, Any] = {"generation_config": config, "logits_processor": processors}
        if params.stop and not params.min_tokens:
            kwargs["tokenizer"] = self.loaded.tokenizer
        return kwargs

    def _completion(self, generated: Any, prompt_ids: list[int], params: SamplingParams,
                    logits: Any, row: int) -> Completion:
        tokens = [int(t) for t in generated]
        eos_at = next((i for i, t in enumerate(tokens) if t in self._eos), None)
        if eos_at is not None:
            tokens = tokens[:eos_at + 1]
            text_ids = tokens[:-1]
        else:  # a row a stop string ended early is padded up to the longest row
            while tokens and tokens[-1] == self._pad:
                tokens.pop()
            text_ids = tokens
        text = self.loaded.tokenizer.decode(text_ids, skip_special_tokens=True)
        text, stopped = _cut_at_stop(text, params, self.loaded.tokenizer, text_ids)
        finish = "stop" if eos_at is not None or stopped or len(tokens) < params.max_tokens \
            else "length"
        usage = Usage(prompt_tokens=len(prompt_ids), completion_tokens=len(tokens))
        return Completion(text=text, finish_reason=finish, usage=usage, token_ids=tuple(tokens),
                          logprobs=self._logprobs(logits, row, tokens, params.logprobs)
                          if logits is not None and params.logprobs is not None else None)

    def _logprobs(self, logits: Any, row: int, tokens: list[int], top: int
                  ) -> tuple[TokenLogprob, ...]:
        torch = self._torch
        tok = self.loaded.tokenizer
        out = []
        for step, token in enumerate(tokens):
            logp = torch.log_softmax(logits[step][row].float(), dim=-1)
            alts: tuple[tuple[str, float], ...] = ()
            if top:
                values, indices = torch.topk(logp, top)
                alts = tuple((tok.decode([int(i)]), float(v))
                             for v, i in zip(values, indices, strict=True))
            out.append(TokenLogprob(token, tok.decode([token]), float(logp[token]), alts))
        return tuple(out)


@dataclass
class _Request:
    prompts: list[Prompt]
    params: SamplingParams
    future: asyncio.Future[list[list[Completion]]] = field(repr=False)


def _batch_key(params: SamplingParams) -> SamplingParams:
    """Calls with equal keys may share a batch: greedy decoding ignores the seed."""
    return params.with_(seed=None) if params.temperature < 1e-5 else params


def _cut_at_stop(text: str, params: SamplingParams, tokenizer: Any,
                 token_ids: list[int]) -> tuple[str, bool]:
    """Cut ``text`` at the first stop string (outside the first ``min_tokens`` tokens)."""
    if not params.stop:
        return text, False
    floor = len(tokenizer.decode(token_ids[:params.min_tokens], skip_special_tokens=True)) \
        if params.min_tokens else 0
    hits = [i for s in params.stop if (i := text.find(s, floor)) >= 0]
    return (text[:min(hits)], True) if hits else (text, False)


@contextlib.contextmanager
def _seeded(torch: Any, seed: int | None, offset: int) -> Iterator[None]:
    """Seed torch's sampler for one call without touching the caller's RNG state."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed * 1_000_003 + offset)
        yield


class _LogitBias:
    """``SamplingParams.logit_bias`` as a transformers logits processor."""

    def __init__(self, torch: Any, bias: Any) -> None:
        self._ids = torch.tensor(list(bias), dtype=torch.long)
        self._values = torch.tensor(list(bias.values()), dtype=torch.float32)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        scores[:, self._ids] += self._values.to(scores.dtype)
        return scores


class _PerSequence:
    """ponder's per-sequence numpy hooks, run on each row's own generated tokens."""

    def __init__(self, torch: Any, hooks: Sequence[Any], width: int) -> None:
        self._torch = torch
        self._hooks = tuple(hooks)
        self._width = width

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        for row in range(scores.shape[0]):
            generated = [int(t) for t in input_ids[row, self._width:]]
            logits = scores[row].float().numpy().copy()
            for hook in self._hooks:
                logits = hook(generated, logits)
            scores[row] = self._torch.from_numpy(logits).to(scores.dtype)
        return scores
