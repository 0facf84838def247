"""GSM8K (Cobbe et al., 2021; MIT): grade-school word problems with integer answers.

A 200-item slice of the train split ships in ``data/gsm8k`` with its licence,
for development runs. Any file in the GSM8K format loads from a path
(``gsm8k:path/to/test.jsonl``), and the Hub copy loads through the
``datasets`` library when it is installed (``gsm8k:hub:openai/gsm8k``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ponder.errors import ConfigError
from ponder.evals.datasets.base import Dataset, DatasetSpec, EvalItem, Options, require
from ponder.evals.datasets.files import from_source

SUMMARY = "GSM8K grade-school math (200 train items shipped; any GSM8K-format file; Hub)"
LICENCE = "MIT (c) 2021 OpenAI; see ponder/evals/datasets/data/gsm8k/LICENSE"
SHIPPED = "gsm8k/train-200.jsonl"

_CALCULATOR = re.compile(r"<<[^>]*>>")


def final_answer(solution: str) -> str:
    """The text after the last ``####`` of a GSM8K-style solution, without thousands commas."""
    _, sep, tail = solution.rpartition("####")
    if not sep:
        raise ConfigError("a GSM8K answer must end with '#### <final answer>'")
    answer = tail.strip().splitlines()[0].strip() if tail.strip() else ""
    if not answer:
        raise ConfigError("a GSM8K answer has nothing after '####'")
    return re.sub(r"(?<=\d),(?=\d{3})", "", answer)


def strip_calculator(solution: str) -> str:
    """The worked solution without its ``<<48/2=24>>`` calculator annotations."""
    return _CALCULATOR.sub("", solution)


def items(records: Iterable[Mapping[str, Any]], prefix: str) -> tuple[EvalItem, ...]:
    out = []
    for index, record in enumerate(records):
        where = f"{prefix} record {index}"
        question = require(record, "question", where)
        try:
            answer = final_answer(require(record, "answer", where))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        out.append(EvalItem(f"{prefix}-{index}", question, answer, meta={"index": index}))
    return tuple(out)


def load(spec: DatasetSpec, seed: int = 0) -> Dataset:
    """``gsm8k`` (shipped slice), ``gsm8k:PATH`` or ``gsm8k:hub:NAME[,split=,config=]``."""
    options = Options(spec)
    records, source = from_source(spec, options, shipped=SHIPPED, hub_config="main")
    options.done()
    return Dataset(spec.name, items(records, "gsm8k"), source=source, licence=LICENCE)
