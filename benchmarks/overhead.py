"""Framework overhead: self-consistency n=8 end to end vs the time of its backend calls.

Overhead = (wall time of ``Engine.ask``) - (seconds the ledger recorded inside
backend calls), as a share of the wall time. It covers strategy setup, chat
templating, answer extraction, voting and the sync-to-async hop.

    python benchmarks/overhead.py [--model qwen2.5-coder-0.5b] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from ponder import Engine, SamplingParams
from ponder.backends.llamacpp import EmbeddedBackend
from ponder.model_files import resolve_model

QUESTIONS = [
    "A pen costs 3 dollars. How much do 4 pens cost?",
    "Tom has 12 apples and gives 5 to Ann. How many apples does Tom have left?",
    "A box holds 6 eggs. How many eggs are in 7 boxes?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    _, path = resolve_model(args.model)
    backend = EmbeddedBackend(str(path), n_ctx=4096)
    decode_seconds = _time_llama_decode(backend)
    engine = Engine(backend)
    shares, walls, tokens = [], [], 0
    for r in range(args.rounds):
        for question in QUESTIONS:
            started = time.perf_counter()
            answer = engine.ask(question, strategy="self-consistency", params={"n": args.n},
                                sampling=SamplingParams(max_tokens=args.max_tokens, seed=r))
            wall = time.perf_counter() - started
            backend_seconds = answer.ledger.seconds()
            shares.append((wall - backend_seconds) / wall)
            walls.append(wall)
            tokens += answer.ledger.total().completion_tokens
            overhead_ms = (wall - backend_seconds) * 1000
            print(f"  {question[:40]:40s} -> {answer.answer!s:6s} wall {wall:6.2f}s "
                  f"backend {backend_seconds:6.2f}s overhead {overhead_ms:6.1f} ms")
    engine.close()
    print(f"model: {args.model}, hardware: {platform.machine()} x {os.cpu_count()} cores")
    print(f"self-consistency n={args.n}: {len(walls)} runs, {tokens} completion tokens, "
          f"{tokens / sum(walls):.1f} tok/s end to end")
    print(f"framework overhead: median {statistics.median(shares):.2%}, "
          f"max {max(shares):.2%} of wall time")
    inside = 1 - decode_seconds[0] / sum(walls)
    print(f"(inside backend calls, ponder's own Python sampling loop took {inside:.1%} of wall "
          f"time; llama_decode the rest)")


def _time_llama_decode(backend: EmbeddedBackend) -> list[float]:
    """Wrap the backend's llama_decode call to add up the seconds spent in llama.cpp."""
    total = [0.0]
    decode = backend._decode

    def timed() -> None:
        started = time.perf_counter()
        decode()
        total[0] += time.perf_counter() - started

    backend._decode = timed  # type: ignore[method-assign]
    return total


if __name__ == "__main__":
    main()
