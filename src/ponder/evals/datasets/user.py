"""Your own dataset: a JSONL file and a field mapping.

``jsonl:PATH[,question=FIELD][,answer=FIELD][,id=FIELD][,context=FIELD][,difficulty=FIELD]
[,kind=math|text][,answer_format=raw|gsm8k]``. Fields may be dotted paths into
nested objects (``answer=meta.gold``). Items with the same ``context`` share a
group, so a file with several questions per context is a multi-query dataset.
``answer_format=gsm8k`` reads the final answer after ``####``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError
from ponder.evals.datasets.base import Dataset, DatasetSpec, EvalItem, Options, read_jsonl
from ponder.evals.datasets.gsm8k import final_answer

SUMMARY = "your JSONL file with a field mapping (question=, answer=, context=, ...)"
LICENCE = "yours"
_MISSING = object()


def load(spec: DatasetSpec, seed: int = 0) -> Dataset:
    if spec.source is None:
        raise ConfigError("dataset 'jsonl' needs a path: jsonl:PATH,question=FIELD,answer=FIELD")
    options = Options(spec)
    fields = {key: options.text(key, default) for key, default in (
        ("question", "question"), ("answer", "answer"), ("id", None), ("context", None),
        ("difficulty", None))}
    kind = options.choice("kind", "math", ("math", "text"))
    answer_format = options.choice("answer_format", "raw", ("raw", "gsm8k"))
    options.done()
    path = Path(spec.source).expanduser()
    items = tuple(_item(record, index, fields, kind, answer_format, f"{path}:{index + 1}")
                  for index, record in enumerate(read_jsonl(path)))
    grouped = sum(item.context is not None for item in items)
    return Dataset(spec.name, items, source=f"{path} ({grouped} items with a context)",
                   licence=LICENCE)


def _item(record: Mapping[str, Any], index: int, fields: Mapping[str, str | None], kind: str,
          answer_format: str, where: str) -> EvalItem:
    question = _field(record, fields["question"], where, required=True)
    answer = str(_field(record, fields["answer"], where, required=True))
    if answer_format == "gsm8k":
        answer = final_answer(answer)
    item_id = _field(record, fields["id"], where)
    context = _field(record, fields["context"], where)
    difficulty = _field(record, fields["difficulty"], where)
    if difficulty is not None and not isinstance(difficulty, int):
        raise ConfigError(f"{where}: difficulty field must hold an integer, got {difficulty!r}")
    group = None
    if context is not None:
        group = "ctx-" + hashlib.sha256(str(context).encode()).hexdigest()[:12]
    return EvalItem(id=str(item_id) if item_id is not None else f"item-{index}",
                    question=str(question), answer=answer, kind=kind,  # type: ignore[arg-type]
                    context=str(context) if context is not None else None, group=group,
                    difficulty=difficulty)


def _field(record: Mapping[str, Any], path: str | None, where: str, *,
           required: bool = False) -> Any:
    if path is None:
        return None
    value: Any = record
    for part in path.split("."):
        value = value.get(part, _MISSING) if isinstance(value, Mapping) else _MISSING
        if value is _MISSING:
            if required:
                raise ConfigError(f"{where}: no field {path!r} (map it, e.g. "
                                  f"question=problem,answer=gold)")
            return None
    return value
