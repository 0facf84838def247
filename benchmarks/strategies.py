"""Accuracy vs test-time tokens per strategy, at 2-3 budgets, on problems the model partly solves.

Problems come from ponder's own generator (``ponder.evals.generator``): stateful
arithmetic word problems in the difficulty bins where Qwen2.5-Coder-0.5B with
greedy chain of thought scores between 0% and 100% (bins 1-3 of
``difficulty_ladder()``; dataset spec ``gen,per_bin=K,bins=1-3``), seeded, with
exact integer answers. Each (strategy, budget) cell runs through the eval
runner, so rows land in ``--out`` and a killed run resumes. The budget is each
sample's ``max_tokens``.

Prints one table (accuracy with a 95% Wilson interval, completion tokens per
item) and writes a Pareto plot PNG (accuracy vs tokens).

    python benchmarks/strategies.py --per-bin 2 --budgets 128,256 --out runs/strategies
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from ponder import Engine
from ponder.backends.llamacpp import EmbeddedBackend
from ponder.evals.metrics import pareto_front
from ponder.evals.report import load_cells, make_plots
from ponder.evals.runner import CellSpec, run_cell

STRATEGIES: list[tuple[str, dict[str, str]]] = [
    ("direct", {}),
    ("chain-of-draft", {}),
    ("cot", {}),
    ("self-consistency", {"n": "4", "early_stop": "false"}),
    ("self-consistency", {"n": "4"}),
    ("weighted-best-of-n", {"n": "4", "verifier": "agreement"}),
    ("beam-search", {"n": "4", "beam_width": "2", "max_depth": "3"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--per-bin", type=int, default=2)
    parser.add_argument("--bins", default="1-3")
    parser.add_argument("--budgets", default="128,256")
    parser.add_argument("--only", default="", help="comma-separated strategy names to run")
    parser.add_argument("--out", type=Path, default=Path("runs/strategies"))
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    only = {s for s in args.only.split(",") if s}
    dataset = f"gen,per_bin={args.per_bin},bins={args.bins}"
    engine = Engine(EmbeddedBackend(args.model, n_ctx=8192))
    started = time.perf_counter()
    for name, params in STRATEGIES:
        if only and name not in only:
            continue
        for budget in budgets:
            spec = CellSpec(dataset, name, tuple(params.items()), budget)
            result = run_cell(engine, spec, args.out)
            print(f"  done {spec.label:55s} budget {budget:4d}: {len(result.rows)} items",
                  flush=True)
    engine.close()
    cells = load_cells([args.out])
    points = [(c.metrics.test_tokens, c.metrics.accuracy.value) for c in cells]
    front = set(pareto_front(points))
    print(f"\nmodel: {args.model}; hardware: {platform.machine()}, {os.cpu_count()} cores, "
          f"{os.environ.get('PONDER_THREADS', 'all')} llama.cpp threads; dataset: {dataset}; "
          f"{time.perf_counter() - started:.0f} s")
    print(f"{'strategy':55s} {'budget':>6s} {'accuracy':>9s} {'95% CI':>13s} "
          f"{'tokens/item':>11s}  pareto")
    for index in sorted(range(len(cells)), key=lambda i: (cells[i].spec.label,
                                                         cells[i].spec.budget)):
        cell, acc = cells[index], cells[index].metrics.accuracy
        mark = "*" if index in front else ""
        print(f"{cell.spec.label:55s} {cell.spec.budget:6d} {acc.value:9.0%} "
              f"{acc.wilson_low:6.0%}-{acc.wilson_high:5.0%} {cell.metrics.test_tokens:11.0f}"
              f"  {mark}")
    png_dir = args.out / "png"
    png_dir.mkdir(parents=True, exist_ok=True)
    for plot in make_plots(cells):
        (png_dir / f"{plot.name}.png").write_bytes(plot.png)
    print(f"plots: {png_dir}")


if __name__ == "__main__":
    main()
