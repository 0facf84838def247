"""Batched sampling: n=8 completions of 128 tokens from one prompt.

ponder's embedded backend (prefill once, fork the KV sequence, decode the 8
samples together in one llama_batch per step) against 8 sequential
generations through plain ``llama_cpp.Llama`` in the same process, on the same
GGUF, measured side by side in one run (rounds alternate the order).

Every sample is forced to exactly --tokens tokens (min_tokens on ponder's
side, llama-cpp-python's MinTokensLogitsProcessor on the baseline), so both
sides decode the same number of tokens.

    python benchmarks/batched_sampling.py [--model qwen2.5-coder-0.5b] [--rounds 2]

Note: on machines whose CPU reports AMX, llama.cpp's AMX weight repacking dies
with SIGILL on multi-token batches in some VMs. ponder turns repacking off
(``use_extra_bufts=False``); the baseline gets the same setting so the two
sides run the same kernels.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import llama_cpp
from llama_cpp.llama import LogitsProcessorList, MinTokensLogitsProcessor

from ponder.backends.llamacpp import EmbeddedBackend
from ponder.ledger import Ledger
from ponder.model_files import resolve_model
from ponder.params import SamplingParams

PROMPT = [{"role": "user", "content": "A pen costs 3 dollars. How much do 4 pens cost? "
                                      "Explain step by step."}]


def _no_repack_params() -> None:
    original = llama_cpp.llama_model_default_params

    def patched() -> llama_cpp.llama_model_params:
        params = original()
        params.use_extra_bufts = False
        return params

    llama_cpp.llama_model_default_params = patched
    llama_cpp.llama_cpp.llama_model_default_params = patched


def run_ponder(backend: EmbeddedBackend, n: int, tokens: int, seed: int) -> tuple[float, Ledger]:
    ledger = Ledger()
    params = SamplingParams(n=n, max_tokens=tokens, min_tokens=tokens, temperature=0.7,
                            seed=seed)
    backend.reset_cache()  # a cold prompt, like the baseline's first call
    started = time.perf_counter()
    with ledger.activate():
        [completions] = backend.generate([PROMPT], params)
    elapsed = time.perf_counter() - started
    assert all(c.usage.completion_tokens == tokens for c in completions)
    return elapsed, ledger


def run_baseline(llm: llama_cpp.Llama, n: int, tokens: int, seed: int) -> tuple[float, int]:
    llm.reset()
    processors = LogitsProcessorList([MinTokensLogitsProcessor(tokens, llm.token_eos())])
    started = time.perf_counter()
    produced = 0
    for i in range(n):
        out = llm.create_chat_completion(PROMPT, max_tokens=tokens, temperature=0.7,
                                         seed=seed + i, logits_processor=processors)
        produced += out["usage"]["completion_tokens"]
    return time.perf_counter() - started, produced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    _no_repack_params()
    _, path = resolve_model(args.model)
    threads = os.cpu_count() or 1
    backend = EmbeddedBackend(str(path), n_ctx=4096, n_threads=threads)
    llm = llama_cpp.Llama(str(path), n_ctx=4096, n_threads=threads, n_threads_batch=threads,
                          flash_attn=False, verbose=False)  # same kernels as ponder
    ours, base, ledgers = [], [], []
    for r in range(args.rounds):
        order = ("ponder", "baseline") if r % 2 == 0 else ("baseline", "ponder")
        for side in order:
            if side == "ponder":
                seconds, ledger = run_ponder(backend, args.n, args.tokens, seed=r)
                ours.append(seconds)
                ledgers.append(ledger)
            else:
                seconds, produced = run_baseline(llm, args.n, args.tokens, seed=r)
                assert produced == args.n * args.tokens, produced
                base.append(seconds)
    total = ledgers[-1].total()
    tokens = args.n * args.tokens
    ratio = statistics.median(base) / statistics.median(ours)
    print(f"model: {args.model} ({path.name}), llama-cpp-python {llama_cpp.__version__}")
    print(f"hardware: {platform.machine()}, {threads} threads, {platform.processor() or '-'}")
    print(f"task: n={args.n} samples x {args.tokens} tokens, {args.rounds} rounds (median)")
    print(f"ponder batched   : {statistics.median(ours):6.2f} s  "
          f"{tokens / statistics.median(ours):6.1f} tok/s")
    print(f"plain Llama x{args.n}  : {statistics.median(base):6.2f} s  "
          f"{tokens / statistics.median(base):6.1f} tok/s")
    print(f"speed-up         : {ratio:.2f}x less wall time")
    print(f"prompt           : {total.prompt_tokens // args.n} tokens, prefilled "
          f"{total.prefill_tokens} time(s) the prompt length -> "
          f"{total.prefill_tokens / (total.prompt_tokens // args.n):.0f}x, "
          f"cached {total.cached_prompt_tokens}")


if __name__ == "__main__":
    main()
