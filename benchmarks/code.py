"""Code: HumanEval pass@1 against test-time tokens: direct, best-of-n (execution), s-star.

Each strategy returns one program per problem; pass@1 is the share of
problems whose program passes HumanEval's hidden ``check`` (run in the
sandbox). Strategies see only the docstring examples as public tests.

* direct: one greedy sample (the ``direct`` strategy, code instruction).
* best-of-n: n samples, the one passing most public tests (``best-of-n`` with
  the ``code-execution`` verifier).
* s-star: n samples, up to r debugging rounds, selection by distinguishing
  inputs judged by the same model.

    PONDER_THREADS=1 python benchmarks/code.py [--problems 6] [--n 3] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any

from ponder.backends.llamacpp import EmbeddedBackend
from ponder.evals.humaneval import HumanEvalTask, grade, load_humaneval
from ponder.ledger import Ledger
from ponder.model_files import resolve_model
from ponder.params import SamplingParams
from ponder.sandbox import Sandbox
from ponder.strategies.base import RunContext, Strategy
from ponder.strategies.registry import Registry
from ponder.strategies.s_star import SStar, SStarParams
from ponder.verifiers.code import extract_code
from ponder.verifiers.code_execution import CodeExecutionVerifier


@dataclass
class Tally:
    solved: int = 0
    completion: int = 0
    prefill: int = 0
    seconds: float = 0.0
    per_problem: list[str] = field(default_factory=list)


def strategies(registry: Registry, args: argparse.Namespace, sandbox: Sandbox
               ) -> dict[str, Strategy[Any]]:
    s_star = SStar(SStarParams(n=args.n, debug_rounds=args.rounds, max_tokens=args.max_tokens),
                   sandbox=sandbox)
    return {
        "direct": registry.create("direct", {"max_tokens": args.max_tokens}),
        f"best-of-n (n={args.n}, exec)": registry.create(
            "best-of-n", {"n": args.n, "max_tokens": args.max_tokens}),
        f"s-star (n={args.n}, r={args.rounds})": s_star,
    }


async def solve(strategy: Strategy[Any], task: HumanEvalTask, backend: EmbeddedBackend,
                sandbox: Sandbox, seed: int) -> tuple[bool, Ledger, float]:
    ctx = RunContext(backend=backend, ledger=Ledger(), verifier=CodeExecutionVerifier(sandbox),
                     sampling=SamplingParams(max_tokens=512, seed=seed))
    started = time.perf_counter()
    answer = await strategy.run(task.problem, ctx)
    seconds = time.perf_counter() - started
    program = answer.answer if strategy.name == "s-star" else task.problem.program(
        extract_code(answer.text, task.problem.entry_point))
    report = await grade(task, str(program), sandbox)
    return report.all_passed, ctx.ledger, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--problems", type=int, default=6, help="the first K HumanEval tasks")
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    _, path = resolve_model(args.model)
    backend = EmbeddedBackend(str(path), n_ctx=4096)
    sandbox = Sandbox(concurrency=2)
    tasks = [t for t in load_humaneval() if t.problem.tests][:args.problems]
    runners = strategies(Registry.from_entry_points(), args, sandbox)
    tallies = {name: Tally() for name in runners}
    started = time.perf_counter()
    for task in tasks:
        for name, strategy in runners.items():
            ok, ledger, seconds = asyncio.run(solve(strategy, task, backend, sandbox, args.seed))
            tally = tallies[name]
            tally.solved += ok
            tally.completion += ledger.total().completion_tokens
            tally.prefill += ledger.total().prefill_tokens
            tally.seconds += seconds
            tally.per_problem.append("✓" if ok else "·")
            print(f"  {task.task_id:14s} {name:24s} {'pass' if ok else 'fail'}  "
                  f"{ledger.total().completion_tokens:5d} tok  {seconds:6.1f} s", flush=True)
    backend.close()
    report(args, path.name, tasks, tallies, time.perf_counter() - started, sandbox)


def report(args: argparse.Namespace, model_file: str, tasks: list[HumanEvalTask],
           tallies: dict[str, Tally], wall: float, sandbox: Sandbox) -> None:
    k = len(tasks)
    threads = os.environ.get("PONDER_THREADS", str(os.cpu_count()))
    print(f"\nmodel: {args.model} ({model_file}); hardware: {platform.machine()}, "
          f"{os.cpu_count()} cores, {threads} llama.cpp thread(s); seed {args.seed}")
    print(f"HumanEval slice: {', '.join(t.task_id for t in tasks)} "
          f"({k} problems); max_tokens {args.max_tokens}; sandbox: "
          f"{sandbox.isolation.describe()}")
    print("\n| strategy | pass@1 | completion tokens / problem | prefill tokens / problem "
          "| seconds / problem | per problem |\n|---|---|---|---|---|---|")
    for name, t in tallies.items():
        print(f"| {name} | {t.solved}/{k} = {t.solved / k:.2f} | {t.completion / k:.0f} "
              f"| {t.prefill / k:.0f} | {t.seconds / k:.1f} | {''.join(t.per_problem)} |")
    print(f"\ntotal wall time {wall:.0f} s")


if __name__ == "__main__":
    main()
