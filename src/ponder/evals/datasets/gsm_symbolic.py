"""GSM-Symbolic (Mirzadeh et al., 2024, arXiv:2410.05229) and its stateful variant.

Licence: Apple's data is CC BY-NC-ND 4.0 (non-commercial; no redistribution of
adapted material). ponder therefore ships none of it and writes none of it:
the user points the loader at their own copy, and every derived form (sampled
instances, the stateful split, multi-query groups) is built in memory at load
time. Result rows store item ids and model output, not the questions.

Two formats are read:

* **templates** (``templates/<variant>/NNNN.json``): instances are sampled with
  our sampler (``symbolic_template``), ``instances`` per template, seeded;
* **generated JSONL** (``GSM_symbolic.jsonl``, ``GSM_p1.jsonl``...): one record
  per line with ``id``, ``instance``, ``question`` and ``answer`` ("... #### 32.5").

**Stateful GSM-Symbolic** (sleep-time compute, arXiv:2504.13171): context = all
sentences but the last, question = the last. ``split=sentences`` (default)
splits on real sentence ends; ``split=naive`` is the reference's split on every
"." (it breaks "$0.7" and "Mrs."), for faithful reproductions.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError
from ponder.evals.datasets.base import (
    Dataset,
    DatasetSpec,
    EvalItem,
    Options,
    read_jsonl,
    require,
)
from ponder.evals.datasets.gsm8k import final_answer
from ponder.evals.datasets.sentences import SplitMethod, stateful_split
from ponder.evals.datasets.symbolic_template import (
    TemplateError,
    parse_template,
    sample_instance,
)

SUMMARY = {
    "gsm-symbolic": "GSM-Symbolic from your copy: templates (sampled) or generated JSONL",
    "stateful-gsm-symbolic": "GSM-Symbolic split into context (all but the last sentence) "
                             "and question",
}
LICENCE = ("CC BY-NC-ND 4.0 (Apple, GSM-Symbolic): non-commercial use; do not redistribute "
           "the data or anything derived from it")
VARIANT_LEVEL = {"symbolic": 0, "p1": 1, "p2": 2}
"""Difficulty bins: the base variant, then one (P1) or two (P2) extra clauses."""


def load(spec: DatasetSpec, seed: int = 0) -> Dataset:
    """``gsm-symbolic:PATH[,instances=1][,variant=p1][,templates=N][,stateful=true]``.

    PATH is a template file, a folder of templates (searched recursively), or a
    generated JSONL file. ``stateful-gsm-symbolic`` is the same with stateful=true.
    """
    if spec.source is None:
        raise ConfigError(f"dataset {spec.name!r} needs the path of your GSM-Symbolic copy "
                          f"(it is CC BY-NC-ND 4.0 and not shipped): {spec.name}:PATH")
    options = Options(spec)
    stateful = options.flag("stateful", spec.name.startswith("stateful"))
    split: SplitMethod = options.choice("split", "sentences", ("sentences", "naive"))  # type: ignore[assignment]
    instances = options.integer("instances", 1, minimum=1)
    max_templates = options.integer("templates", 0)
    variant = options.text("variant")
    seed = options.integer("seed", seed)
    options.done()
    path = Path(spec.source).expanduser()
    if path.suffix == ".jsonl":
        items = generated_items(read_jsonl(path), _variant_of(path))
        notes: list[str] = []
    else:
        items, notes = template_items(path, instances=instances, seed=seed, variant=variant,
                                      limit=max_templates or None)
    if stateful:
        items = [make_stateful(item, split) for item in items]
    source = f"{path} ({'stateful, split=' + split if stateful else 'plain'})"
    if notes:
        source += f"; skipped {len(notes)} templates: " + "; ".join(notes)
    return Dataset(spec.name, tuple(items), source=source, licence=LICENCE)


def template_items(path: Path, *, instances: int, seed: int, variant: str | None = None,
                   limit: int | None = None) -> tuple[list[EvalItem], list[str]]:
    """Items sampled from the templates under ``path``, and notes on templates skipped."""
    files = template_files(path, variant)[:limit]
    items: list[EvalItem] = []
    notes: list[str] = []
    for file in files:
        name = file.parent.name
        try:
            template = parse_template(json.loads(file.read_text(encoding="utf-8")), name)
            for k in range(instances):
                rng = random.Random(f"{seed}:{name}:{template.id}:{k}")
                instance = sample_instance(template, rng)
                items.append(EvalItem(
                    id=f"gsm-symbolic-{name}-{template.id}-{k}", question=instance.question,
                    answer=instance.answer, difficulty=VARIANT_LEVEL.get(name),
                    meta={"template": template.id, "instance": k, "variant": name,
                          "original_id": template.original_id}))
        except (TemplateError, json.JSONDecodeError) as exc:
            notes.append(f"{file.name}: {exc}")
    if not items:
        raise ConfigError(f"no usable GSM-Symbolic templates under {path}"
                          + (f" ({notes[0]})" if notes else ""))
    return items, notes


def template_files(path: Path, variant: str | None = None) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ConfigError(f"GSM-Symbolic path not found: {path}")
    files = sorted(p for p in path.rglob("*.json") if p.stem.isdigit())
    if variant is not None:
        files = [p for p in files if p.parent.name == variant]
    if not files:
        raise ConfigError(f"no GSM-Symbolic templates (NNNN.json) under {path}"
                          + (f" for variant {variant!r}" if variant else ""))
    return files


def generated_items(records: Iterable[Mapping[str, Any]], variant: str) -> list[EvalItem]:
    """Items from Apple's generated records (``id``, ``instance``, ``question``, ``answer``)."""
    items = []
    for index, record in enumerate(records):
        where = f"GSM-Symbolic record {index}"
        question = require(record, "question", where)
        try:
            answer = final_answer(require(record, "answer", where))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        template, instance = record.get("id", index), record.get("instance", 0)
        items.append(EvalItem(
            id=f"gsm-symbolic-{variant}-{template}-{instance}", question=question, answer=answer,
            difficulty=VARIANT_LEVEL.get(variant),
            meta={"template": template, "instance": instance, "variant": variant,
                  "original_id": record.get("original_id")}))
    return items


def make_stateful(item: EvalItem, split: SplitMethod = "sentences") -> EvalItem:
    """The stateful form of ``item``: its last sentence is the question, the rest context."""
    context, question = stateful_split(item.question, split)
    return EvalItem(id=item.id, question=question, answer=item.answer, kind=item.kind,
                    context=context or None, group=item.group, difficulty=item.difficulty,
                    meta={**item.meta, "split": split})


def _variant_of(path: Path) -> str:
    stem = path.stem.lower()
    for name in ("p2", "p1"):
        if stem.endswith(name):
            return name
    return "symbolic"
