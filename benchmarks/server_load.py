"""Server load: concurrent streaming clients against ``ponder serve``, and its overhead.

Three phases, one model process busy at a time (run with PONDER_THREADS=1 next to others):

1. **Library vs server, one client.** The same chat request (cot, greedy), answered
   in-process through ``Strategy.stream`` and through ``ponder serve`` (a subprocess on
   127.0.0.1, read with plain httpx), ``--rounds`` times each, interleaved. Overhead =
   server wall / library wall - 1, and the same for CPU seconds (the server process's,
   from /proc, against the benchmark process's own while it runs the library), which a
   shared, loaded machine disturbs much less than wall time; first-token overhead =
   server TTFT - library TTFT.
2. **Load.** ``--clients`` concurrent streaming clients (at most the server's
   concurrency cap), ``--requests`` each: throughput, p50/p99 latency, errors (should be
   0). Then ``2 x cap`` clients at once: everything beyond the cap must be a clean 429
   with Retry-After, nothing else.

Generations have a fixed length (end-of-generation tokens are banned with logit_bias),
so every path decodes exactly ``--max-tokens`` tokens.

    PONDER_THREADS=1 python benchmarks/server_load.py [--model smollm2-135m] [--clients 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx
import openai

from ponder import Engine, Problem, SamplingParams
from ponder.backends.llamacpp import EmbeddedBackend
from ponder.ledger import Ledger
from ponder.strategies.base import Answer, RunContext

QUESTION = "Tell me about the sea."
HOST = "127.0.0.1"

Target = tuple[str, str, int, dict[str, float]]
"""(base URL, served model, max_tokens, logit_bias) of the requests to send."""


@dataclass
class Timing:
    wall: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    """CPU seconds of the process doing the work (the library's, or the server's)."""
    tokens: int = 0


@dataclass
class Outcomes:
    ok: list[float] = field(default_factory=list)
    busy: int = 0
    busy_without_retry_after: int = 0
    errors: list[str] = field(default_factory=list)
    tokens: int = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=2, help="per client")
    parser.add_argument("--cap", type=int, default=4, help="the server's --max-concurrency")
    args = parser.parse_args()
    if args.clients > args.cap:
        parser.error("--clients must be <= --cap (the above-cap phase runs 2 x cap)")
    engine = Engine.create("embedded", model=args.model)  # built as `ponder serve` builds it
    backend = engine.backend
    assert isinstance(backend, EmbeddedBackend)
    no_eos = {t: -100.0 for t in sorted(backend._eog_set)}
    print(f"model {args.model}, {platform.machine()} x {os.cpu_count()} cores, "
          f"PONDER_THREADS={os.environ.get('PONDER_THREADS', '-')}, "
          f"max_tokens={args.max_tokens}")
    server = _server(args.model, args.cap)
    with server as (base_url, model):
        target = (base_url, model, args.max_tokens, {str(t): v for t, v in no_eos.items()})
        library, single, inside = Timing(), Timing(), []
        for _ in range(args.rounds):  # interleaved, so load from elsewhere hits both alike
            cpu = time.process_time()
            asyncio.run(_library(engine, args.max_tokens, no_eos, library))
            library.cpu.append(time.process_time() - cpu)
            before, cpu = _server_first_token(base_url), server.cpu_seconds()
            asyncio.run(_server_single(target, single))
            single.cpu.append(server.cpu_seconds() - cpu)
            inside.append(_server_first_token(base_url) - before)
        _report("library (Strategy.stream, in-process)", library)
        _report("server (one streaming client, httpx)", single)
        _overhead(library, single, inside)
        under = asyncio.run(_load(target, args.clients, args.requests))
        _report_load(f"{args.clients} concurrent clients x {args.requests} requests", under)
        over = asyncio.run(_load(target, 2 * args.cap, 1))
        _report_load(f"{2 * args.cap} concurrent clients (cap {args.cap})", over)
    backend.close()


async def _library(engine: Engine, max_tokens: int, no_eos: dict[int, float],
                   timing: Timing) -> None:
    """One run of the request in-process: cot's stream, timed to its first token and end."""
    sampling = SamplingParams(max_tokens=max_tokens, temperature=0, logit_bias=no_eos)
    problem = Problem(QUESTION, messages=({"role": "user", "content": QUESTION},))
    strategy = engine.registry.create("cot", {"temperature": 0, "max_tokens": max_tokens})
    ctx = RunContext(backend=engine.backend, ledger=Ledger(), sampling=sampling,
                     registry=engine.registry)
    started = time.perf_counter()
    first = 0.0
    async for item in strategy.stream(problem, ctx):
        if not first and isinstance(item, str) and item:
            first = time.perf_counter() - started
        if isinstance(item, Answer):
            timing.tokens += item.ledger.total().completion_tokens
    timing.wall.append(time.perf_counter() - started)
    timing.first.append(first)


async def _server_single(target: Target, timing: Timing) -> None:
    """One run through the server, read with plain httpx (no SDK parsing on the clock)."""
    base_url, model, max_tokens, bias = target
    body = {"model": f"cot/{model}", "messages": [{"role": "user", "content": QUESTION}],
            "max_tokens": max_tokens, "temperature": 0, "logit_bias": bias, "stream": True,
            "stream_options": {"include_usage": True}}
    async with httpx.AsyncClient(timeout=600) as client:
        started = time.perf_counter()
        first = 0.0
        async with client.stream("POST", f"{base_url}/chat/completions", json=body) as reply:
            async for line in reply.aiter_lines():
                if not first and '"content":"' in line and '"content":""' not in line:
                    first = time.perf_counter() - started
                if '"usage":{' in line and '"choices":[]' in line:
                    timing.tokens += json.loads(line[6:])["usage"]["completion_tokens"]
        timing.wall.append(time.perf_counter() - started)
        timing.first.append(first)


async def _stream_once(client: openai.AsyncOpenAI, model: str, max_tokens: int,
                       bias: dict[str, float]) -> tuple[float, float, int]:
    started = time.perf_counter()
    first = 0.0
    tokens = 0
    stream = await client.chat.completions.create(
        model=f"cot/{model}", messages=[{"role": "user", "content": QUESTION}],
        max_tokens=max_tokens, temperature=0, logit_bias=bias, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True})
    async for chunk in stream:
        if not first and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return time.perf_counter() - started, first, tokens


async def _load(target: Target, clients: int, requests: int) -> tuple[Outcomes, float]:
    base_url, model, max_tokens, bias = target
    client = openai.AsyncOpenAI(base_url=base_url, api_key="-", max_retries=0, timeout=600)
    outcomes = Outcomes()

    async def one_client() -> None:
        for _ in range(requests):
            try:
                wall, _, tokens = await _stream_once(client, model, max_tokens, bias)
            except openai.RateLimitError as exc:
                outcomes.busy += 1
                if "retry-after" not in exc.response.headers:
                    outcomes.busy_without_retry_after += 1
                continue
            except openai.APIError as exc:
                outcomes.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            outcomes.ok.append(wall)
            outcomes.tokens += tokens

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    await client.close()
    return outcomes, elapsed


class _server:
    """``ponder serve`` in a subprocess on a free loopback port, until /health answers."""

    def __init__(self, model: str, cap: int) -> None:
        self.model, self.cap = model, cap
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> tuple[str, str]:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "PONDER_API_KEY": ""}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ponder.cli", "serve", "--host", HOST, "--port", str(port),
             "--model", self.model, "--max-concurrency", str(self.cap), "--no-sleep-worker"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        root = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 300
        while True:
            try:
                health = httpx.get(f"{root}/health", timeout=1).json()
                return f"{root}/v1", str(health["model"])
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("ponder serve did not start") from None
                time.sleep(0.2)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (Linux /proc)."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _report(name: str, timing: Timing) -> None:
    print(f"{name}: wall median {statistics.median(timing.wall):.3f}s, CPU median "
          f"{statistics.median(timing.cpu):.2f}s, first token median "
          f"{statistics.median(timing.first) * 1000:.1f} ms ({len(timing.wall)} runs)")


def _server_first_token(base_url: str) -> float:
    """Total time to first token the server has measured (handler start to first delta)."""
    text = httpx.get(f"{base_url.removesuffix('/v1')}/metrics").text
    values = {}
    for line in text.splitlines():
        if line.startswith("ponder_time_to_first_token_seconds_") and \
                'endpoint="/v1/chat/completions"' in line:
            name = line.split("{")[0].rsplit("_", 1)[-1]
            values[name] = float(line.split()[-1])
    return values.get("sum", 0.0)


def _overhead(library: Timing, server: Timing, inside: list[float]) -> None:
    wall = statistics.median(server.wall) / statistics.median(library.wall) - 1
    cpu = sum(server.cpu) / sum(library.cpu) - 1
    first = (statistics.median(server.first) - statistics.median(library.first)) * 1000
    at_server = (statistics.median(inside) - statistics.median(library.first)) * 1000
    print(f"server overhead vs library: {wall:+.2%} wall (median), {cpu:+.2%} CPU (total), "
          f"{first:+.1f} ms to first token at the client, {at_server:+.1f} ms as the server "
          "measures it (medians)")
    print("  first token, ms: library " + " ".join(f"{t * 1000:.0f}" for t in library.first)
          + " | server (client) " + " ".join(f"{t * 1000:.0f}" for t in server.first)
          + " | server (inside) " + " ".join(f"{t * 1000:.0f}" for t in inside))


def _report_load(name: str, result: tuple[Outcomes, float]) -> None:
    outcomes, elapsed = result
    ok = outcomes.ok
    line = (f"{name}: {len(ok)} ok, {outcomes.busy} x 429 "
            f"({outcomes.busy_without_retry_after} without Retry-After), "
            f"{len(outcomes.errors)} other errors, {elapsed:.1f}s")
    if ok:
        line += (f"; {len(ok) / elapsed:.2f} req/s, {outcomes.tokens / elapsed:.1f} tok/s, "
                 f"latency p50 {_pct(ok, 0.5):.2f}s p99 {_pct(ok, 0.99):.2f}s")
    print(line)
    for error in outcomes.errors[:3]:
        print(f"  {error}")


if __name__ == "__main__":
    main()
