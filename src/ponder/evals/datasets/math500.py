"""MATH-500 (Lightman et al., 2023, from Hendrycks et al.'s MATH; MIT): competition math.

A 100-problem slice (20 per level) ships in ``data/math500`` with both
licences. Answers are LaTeX and graded with math-verify; ``difficulty`` is the
MATH level (1-5), so reports show accuracy per level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ponder.evals.datasets.base import Dataset, DatasetSpec, EvalItem, Options, require
from ponder.evals.datasets.files import from_source

SUMMARY = "MATH-500 competition math (100 items shipped, 20 per level; any file; Hub)"
LICENCE = ("MIT (c) 2023 OpenAI (PRM800K) and MIT (c) 2021 Dan Hendrycks (MATH); "
           "see ponder/evals/datasets/data/math500/")
SHIPPED = "math500/test-100.jsonl"


def items(records: Iterable[Mapping[str, Any]]) -> tuple[EvalItem, ...]:
    out = []
    for index, record in enumerate(records):
        where = f"math500 record {index}"
        uid = str(record.get("unique_id") or index)
        level = record.get("level")
        out.append(EvalItem(
            id=f"math500-{uid}",
            question=require(record, "problem", where),
            answer=str(require(record, "answer", where)),
            difficulty=int(level) if isinstance(level, int | str) and str(level).isdigit()
            else None,
            meta={"subject": record.get("subject"), "unique_id": uid},
        ))
    return tuple(out)


def load(spec: DatasetSpec, seed: int = 0) -> Dataset:
    """``math500`` (shipped slice), ``math500:PATH`` or ``math500:hub:HuggingFaceH4/MATH-500``."""
    options = Options(spec)
    records, source = from_source(spec, options, shipped=SHIPPED, hub_config=None)
    options.done()
    return Dataset(spec.name, items(records), source=source, licence=LICENCE)
