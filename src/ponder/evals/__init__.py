"""Evaluation: datasets, the seeded generator, the resumable runner, metrics and reports.

``ponder eval run`` runs every dataset x strategy x budget *cell* and streams
one JSON row per item to ``runs/NAME/<cell>/results.jsonl`` (resumable);
``ponder eval report`` turns run folders into one self-contained HTML page.
The same code runs on the embedded model and on any OpenAI-compatible engine.

* ``datasets/`` — loaders by name (``load_dataset("gsm8k")``), shipped slices, specs
* ``generator.py`` — difficulty-controlled stateful word problems (multi-query)
* ``runner.py`` — cells, budgets, concurrency, durable rows; ``ray_sweep.py`` — Ray
* ``metrics.py`` — accuracy intervals, tokens, Pareto fronts, paired tests
* ``report.py`` — PNG plots (matplotlib, Agg) inlined into an HTML report
"""

from ponder.evals.datasets import Dataset, DatasetSpec, EvalItem, load_dataset
from ponder.evals.runner import CellSpec, arun_cell, run_cell, sweep

__all__ = ["CellSpec", "Dataset", "DatasetSpec", "EvalItem", "arun_cell", "load_dataset",
           "run_cell", "sweep"]
