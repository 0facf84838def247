"""Sleep-time compute vs test-time only: accuracy vs test-time tokens, and amortised cost.

Stateful, multi-query word problems from ponder's own generator
(``ponder.evals.generator``; context = every sentence but the question, several
questions per context), sized to the embedded 0.5B model. Each context goes
into a real SQLite store, the sleep agent rewrites it once (S(c) -> c′), and
every question is answered at several test-time budgets twice: with the
learned context (sleep-time compute) and with the raw context only. All
tokens come from the ledger.

Printed: accuracy and mean test-time completion tokens per budget, the test
token ratio at equal accuracy, and the amortised cost per query
(sleep tokens / queries + 10 x test tokens) at 1, 2, 5 and 10 queries per
context. Saved: a Pareto plot PNG and the numbers as JSON in
benchmarks/results/sleep_time_seed<SEED>.{png,json}.

    PONDER_THREADS=1 python benchmarks/sleep_time.py [--contexts 3] [--queries 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ponder.backends.llamacpp import EmbeddedBackend
from ponder.evals.generator import Difficulty, StatefulProblem, generate
from ponder.ledger import DEFAULT_TEST_TIME_WEIGHT
from ponder.params import SamplingParams
from ponder.sleep import SleepParams, SleepService
from ponder.verifiers.answers import answers_equal

RESULTS = Path(__file__).resolve().parent / "results"
LEVELS = "direct:16,cot:128,cot:320"
"""Test-time budgets: strategy:completion-token cap per question, cheapest first."""
QUERIES_PER_CONTEXT = (1, 2, 5, 10)


@dataclass
class Point:
    condition: str
    strategy: str
    budget: int
    correct: int = 0
    total: int = 0
    tokens: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def mean_tokens(self) -> float:
        return self.tokens / self.total if self.total else 0.0


def main() -> None:
    args = _parse_args()
    if args.plot_only:
        report = json.loads(Path(args.plot_only).read_text())
        _print(report)
        _plot(report, Path(args.plot_only).with_suffix(".png"))
        return
    backend = EmbeddedBackend(args.model, n_ctx=4096)
    difficulty = Difficulty(entities=2, steps=args.steps, number_max=20)
    problems = generate(args.contexts, difficulty, queries=args.queries, seed=args.seed)
    points = {(c, s, b): Point(c, s, b) for c in ("test-only", "sleep") for s, b in args.levels}
    sleep_tokens: list[int] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, \
            SleepService.open(f"sqlite:///{tmp}/bench.db", backend=backend) as service:
        params = SleepParams(rounds=args.rounds, max_tokens=args.sleep_tokens)
        for index, problem in enumerate(problems, start=1):
            sleep_tokens.append(_run_context(service, problem, params, points, args.levels,
                                             args.show_notes))
            print(f"[{time.perf_counter() - started:6.0f} s] context {index}/{len(problems)}: "
                  f"sleep {sleep_tokens[-1]} tokens; " + _progress(points), flush=True)
    backend.close()
    report = _report(points, sleep_tokens, args, backend.model, time.perf_counter() - started)
    _print(report)
    out = RESULTS / f"sleep_time_seed{args.seed}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    _plot(report, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--contexts", type=int, default=3)
    parser.add_argument("--queries", type=int, default=2, help="questions per context")
    parser.add_argument("--show-notes", action="store_true", help="print each learned context")
    parser.add_argument("--steps", type=int, default=1, help="generator reasoning steps")
    parser.add_argument("--rounds", type=int, default=2, help="sleep rethink rounds")
    parser.add_argument("--sleep-tokens", type=int, default=192,
                        help="completion tokens per rethink round")
    parser.add_argument("--levels", default=LEVELS,
                        help="test-time budgets, strategy:max_tokens, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot-only", metavar="JSON",
                        help="print and plot a saved result instead of running")
    args = parser.parse_args()
    args.levels = [(name, int(cap)) for name, _, cap in
                   (item.strip().partition(":") for item in args.levels.split(","))]
    return args


def _run_context(service: SleepService, problem: StatefulProblem, params: SleepParams,
                 points: dict[tuple[str, str, int], Point], levels: list[tuple[str, int]],
                 show_notes: bool) -> int:
    """Sleep on one context, then answer each question at each budget, both ways."""
    raw = service.add_context(problem.context, triggers="none")
    report = service.sleep_now(raw.id, params=params)
    if show_notes and report.learned is not None:
        print(f"context: {problem.context}\nnotes:\n{report.learned.text}\n")
    bare = service.add_context(problem.context, triggers="none")  # never slept on
    # in this order consecutive prompts share their prefix (the KV cache reuses it)
    for condition, context_id in (("sleep", raw.id), ("test-only", bare.id)):
        for strategy, budget in levels:
            for query in problem.queries:
                answer = service.ask(query.question, context_id, strategy=strategy,
                                     budget=budget, predictability=False,
                                     sampling=SamplingParams(max_tokens=budget, seed=0),
                                     params={"max_tokens": budget})
                point = points[(condition, strategy, budget)]
                point.total += 1
                point.correct += answers_equal(answer.answer, str(query.answer))
                point.tokens += answer.ledger.total("test").completion_tokens
    return report.ledger.total("sleep").completion_tokens


def _progress(points: dict[tuple[str, str, int], Point]) -> str:
    return ", ".join(f"{p.condition}/{p.strategy}@{p.budget} {p.correct}/{p.total}"
                     for p in points.values())


def _report(points: dict[tuple[str, str, int], Point], sleep_tokens: list[int],
            args: argparse.Namespace, model: str, seconds: float) -> dict[str, Any]:
    sleep = [points[("sleep", s, b)] for s, b in args.levels]
    test = [points[("test-only", s, b)] for s, b in args.levels]
    mean_sleep = statistics.mean(sleep_tokens)
    # equal accuracy: the cheapest sleep point vs the cheapest test-only point that matches it
    best_sleep = min(sleep, key=lambda p: (-p.accuracy, p.mean_tokens))
    cheapest_sleep = min((p for p in sleep if p.accuracy >= best_sleep.accuracy),
                         key=lambda p: p.mean_tokens)
    matched = [p for p in test if p.accuracy >= cheapest_sleep.accuracy]
    reference = min(matched, key=lambda p: p.mean_tokens) if matched else \
        max(test, key=lambda p: (p.accuracy, -p.mean_tokens))
    w = DEFAULT_TEST_TIME_WEIGHT
    amortised = [{
        "queries_per_context": q,
        "sleep_cost": mean_sleep / q + w * cheapest_sleep.mean_tokens,
        "test_only_cost": w * reference.mean_tokens,
    } for q in QUERIES_PER_CONTEXT]
    for row in amortised:
        row["ratio"] = row["test_only_cost"] / row["sleep_cost"]
    return {
        "model": model, "hardware": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"PONDER_THREADS={os.environ.get('PONDER_THREADS', 'all')}",
        "config": {k: v for k, v in vars(args).items()}, "seconds": round(seconds, 1),
        "levels": [asdict(p) | {"accuracy": p.accuracy, "mean_tokens": p.mean_tokens}
                   for p in [*test, *sleep]],
        "sleep_tokens_per_context": sleep_tokens,
        "equal_accuracy": {
            "sleep_point": f"{cheapest_sleep.strategy}@{cheapest_sleep.budget}",
            "sleep_accuracy": cheapest_sleep.accuracy,
            "sleep_tokens": cheapest_sleep.mean_tokens,
            "test_only_point": f"{reference.strategy}@{reference.budget}",
            "test_only_accuracy": reference.accuracy,
            "test_only_tokens": reference.mean_tokens,
            "reached": bool(matched),
            "token_ratio": reference.mean_tokens / max(cheapest_sleep.mean_tokens, 1e-9),
        },
        "amortised": amortised,
    }


def _print(report: dict[str, Any]) -> None:
    print(f"\nmodel {report['model']} ({report['hardware']}), {report['seconds']} s")
    print(f"{'condition':<10} {'level':<12} {'accuracy':>9} {'test tokens':>12}")
    for p in report["levels"]:
        print(f"{p['condition']:<10} {p['strategy'] + '@' + str(p['budget']):<12} "
              f"{p['correct']:>3}/{p['total']:<3}{p['accuracy']:>5.0%} {p['mean_tokens']:>9.1f}")
    eq = report["equal_accuracy"]
    verb = "matches" if eq["reached"] else "is the best test-only point and does not reach"
    print(f"\nsleep {eq['sleep_point']} ({eq['sleep_accuracy']:.0%}, "
          f"{eq['sleep_tokens']:.1f} test tokens); test-only {eq['test_only_point']} "
          f"({eq['test_only_accuracy']:.0%}, {eq['test_only_tokens']:.1f} tokens) {verb} it: "
          f"{eq['token_ratio']:.1f}x the test-time tokens")
    print(f"sleep tokens per context: mean "
          f"{statistics.mean(report['sleep_tokens_per_context']):.0f}")
    print(f"{'queries/context':>16} {'sleep cost':>11} {'test-only cost':>15} {'ratio':>6}")
    for row in report["amortised"]:
        print(f"{row['queries_per_context']:>16} {row['sleep_cost']:>11.1f} "
              f"{row['test_only_cost']:>15.1f} {row['ratio']:>5.2f}x")


def _plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for condition, style, colour in (("test-only", "o--", "C0"), ("sleep", "s-", "C1")):
        rows = sorted((p for p in report["levels"] if p["condition"] == condition),
                      key=lambda p: p["mean_tokens"])
        left.plot([p["mean_tokens"] for p in rows], [100 * p["accuracy"] for p in rows], style,
                  color=colour,
                  label="sleep-time + test-time" if condition == "sleep" else "test-time only")
        for p in rows:
            left.annotate(f"{p['strategy']}@{p['budget']}", (p["mean_tokens"],
                                                             100 * p["accuracy"]),
                          fontsize=7, xytext=(3, 3), textcoords="offset points")
    left.set(xlabel="test-time completion tokens per question", ylabel="accuracy (%)",
             title="accuracy vs test-time tokens", ylim=(-5, 105))
    left.legend()
    queries = [r["queries_per_context"] for r in report["amortised"]]
    right.plot(queries, [r["test_only_cost"] for r in report["amortised"]], "o--", color="C0",
               label="test-time only")
    right.plot(queries, [r["sleep_cost"] for r in report["amortised"]], "s-", color="C1",
               label="sleep-time + test-time")
    right.set(xlabel="queries per context", ylabel="amortised cost per query (tokens, w=10)",
              title="amortisation", xscale="log", xticks=queries)
    right.set_xticklabels([str(q) for q in queries])
    right.legend()
    fig.suptitle(f"sleep-time compute on {report['model']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
