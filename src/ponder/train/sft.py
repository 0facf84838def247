"""The IBPO loop on transformers: sample, score, select (ILP), weighted SFT; evaluate; save.

Semi-online, as in the paper: each iteration samples from the current model,
so later rounds see what earlier ones taught. Per prompt (a generated word
problem) we sample in two modes:

* **short**: "reply with only the final line" (capped at ``long_tokens``);
* **policy**: ponder's chain-of-thought prompt, the one the ``cot`` strategy
  sends, so these are the policy's own responses (capped at ``max_tokens``).

Every response is grouped by its *measured* length (``ibpo.is_long``), scored
by ponder's verifier (correct final answer; a response cut at the token cap
scores 0), and ``ibpo.select`` picks the training targets under the cap. All
targets are trained under the **policy prompt**: the model learns, for the
prompt it is evaluated with, when a one-line answer suffices and when to
reason, with at most a share ``cap`` of long targets. The loss is a weighted
mean over targets of each target's mean token NLL, completion tokens only
(the end-of-turn token included, so the model learns to stop).

Before and after training the same held-out problems go through ponder's
eval harness (``ponder.evals.runner``, strategy ``cot``, greedy) on a
``TransformersBackend``; "after" loads the saved checkpoint from disk.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ponder.backends.base import Completion
from ponder.backends.transformers import LoadedModel, TransformersBackend, import_torch, load_model
from ponder.engine import Engine
from ponder.errors import ConfigError
from ponder.evals.datasets import Dataset, DatasetSpec, EvalItem, load_dataset
from ponder.evals.runner import CellSpec, run_cell
from ponder.params import SamplingParams
from ponder.strategies import prompts
from ponder.train.ibpo import IBPOConfig, Sample, Selection, long_share, select
from ponder.verifiers.answers import answers_equal, extract_answer

SHORT_INSTRUCTION = "Reply with only the final line, in the form: Answer: <answer>"
POLICY_INSTRUCTION = prompts.COT
"""The trained prompt: what the ``cot`` strategy sends, so the harness evaluates it as is."""
EVAL_STRATEGY = "cot"
DEFAULT_DATASET = "gen,bins=0"
"""The generator's easiest bin: one person, one step, numbers up to 10."""
REPORT_FILE = "ibpo.json"
CHECKPOINT_DIR = "checkpoint"

ProgressFn = Callable[[str, int, int], None]
"""``(stage, done, total)``: what the loop is doing, for a progress bar."""


@dataclass(frozen=True, slots=True)
class EvalMetrics:
    """One evaluation of the policy prompt on the held-out problems."""

    items: int
    accuracy: float
    mean_tokens: float
    """Mean completion tokens per answer."""
    long_share: float
    """Share of answers longer than ``long_tokens``."""
    cap: float
    long_tokens: int
    seconds: float
    cell: str
    """The eval harness's cell folder (results.jsonl, summary.json)."""

    @property
    def within_cap(self) -> bool:
        return self.long_share <= self.cap + 1e-9


@dataclass
class IterationReport:
    """What one round of sample -> score -> select -> SFT saw and did."""

    iteration: int
    samples: int
    groups: dict[str, dict[str, float]]
    """Per length group: responses, correct, accuracy."""
    policy_long_share: float
    """Long share of the policy-mode samples: the policy's own behaviour this round."""
    selection: dict[str, float | int]
    sft_steps: int = 0
    mean_loss: float | None = None
    sample_seconds: float = 0.0
    sft_seconds: float = 0.0


@dataclass
class TrainReport:
    """Everything ``ibpo.json`` records."""

    model: str
    checkpoint: str
    dataset: str
    train_problems: int
    eval_problems: int
    config: IBPOConfig
    before: EvalMetrics | None = None
    after: EvalMetrics | None = None
    iterations: list[IterationReport] = field(default_factory=list)
    seconds: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("before", "after"):
            metrics = getattr(self, key)
            if metrics is not None:
                data[key]["within_cap"] = metrics.within_cap
        return data


@dataclass(frozen=True, slots=True)
class _Example:
    ids: tuple[int, ...]
    prompt_len: int
    weight: float


def train_ibpo(model: str | None, out: Path, config: IBPOConfig, *,
               dataset: str = DEFAULT_DATASET, problems: int = 32, eval_problems: int = 32,
               n_threads: int | None = None, max_batch: int = 32,
               on_progress: ProgressFn | None = None) -> TrainReport:
    """Run the recipe; writes ``out/checkpoint`` and ``out/ibpo.json``."""
    if problems < 1 or eval_problems < 1:
        raise ConfigError("problems and eval_problems must be >= 1")
    started = time.perf_counter()
    progress = on_progress or (lambda stage, done, total: None)
    data, train_items, eval_items = load_items(dataset, problems, eval_problems, config.seed)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "eval", ignore_errors=True)
    progress("loading model", 0, 1)
    loaded = load_model(model, n_threads=n_threads)
    progress("loading model", 1, 1)
    torch, _ = import_torch()
    torch.manual_seed(config.seed)
    backend = TransformersBackend(loaded, max_batch=max_batch)
    report = TrainReport(loaded.model_id, str(out / CHECKPOINT_DIR), dataset, len(train_items),
                         len(eval_items), config, environment=environment(torch))
    optimizer = torch.optim.AdamW(loaded.model.parameters(), lr=config.lr, weight_decay=0.0)
    try:
        report.before = evaluate(backend, data, eval_items, config, out / "eval" / "before",
                                 progress, "eval before")
        for iteration in range(1, config.iterations + 1):
            report.iterations.append(run_iteration(backend, optimizer, data, train_items,
                                                   config, iteration, progress))
        save_checkpoint(loaded, out / CHECKPOINT_DIR)
    finally:
        backend.close()
    del loaded, backend, optimizer  # free the weights before the checkpoint reloads
    progress("reloading checkpoint", 0, 1)
    trained = TransformersBackend(str(out / CHECKPOINT_DIR), n_threads=n_threads,
                                  max_batch=max_batch)
    progress("reloading checkpoint", 1, 1)
    try:
        report.after = evaluate(trained, data, eval_items, config, out / "eval" / "after",
                                progress, "eval after")
    finally:
        trained.close()
    report.seconds = round(time.perf_counter() - started, 2)
    (out / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report


def load_items(spec: str, problems: int, eval_problems: int, seed: int
               ) -> tuple[Dataset, list[EvalItem], list[EvalItem]]:
    """The first ``problems`` items train; the next ``eval_problems`` are held out."""
    parsed = DatasetSpec.parse(spec)
    if parsed.name in ("gen", "multi-query") and "per_bin" not in parsed.options:
        parsed = dataclasses.replace(parsed, options={**parsed.options,
                                                      "per_bin": str(problems + eval_problems)})
    data = load_dataset(parsed, seed)
    if len(data.items) < problems + eval_problems:
        raise ConfigError(f"dataset {spec!r} has {len(data.items)} items; "
                          f"{problems} to train and {eval_problems} to evaluate need more")
    items = list(data.items)
    return data, items[:problems], items[problems:problems + eval_problems]


def run_iteration(backend: TransformersBackend, optimizer: Any, data: Dataset,
                  items: Sequence[EvalItem], config: IBPOConfig, iteration: int,
                  progress: ProgressFn) -> IterationReport:
    """One semi-online round on the current weights."""
    started = time.perf_counter()
    drawn = sample(backend, data, items, config, iteration, progress)
    samples = [Sample.of(index, c.usage.completion_tokens, reward(items[index], c),
                         config.long_tokens) for index, _, c in drawn]
    selection = select(samples, config.cap)
    report = IterationReport(iteration, len(samples), group_stats(samples),
                             long_share([c.usage.completion_tokens for _, mode, c in drawn
                                         if mode == "policy"], config.long_tokens),
                             selection.summary(),
                             sample_seconds=round(time.perf_counter() - started, 2))
    examples = build_examples(backend, data, items, drawn, selection)
    started = time.perf_counter()
    losses = sft(backend.loaded, optimizer, examples, config, iteration, progress)
    report.sft_steps = len(losses)
    report.mean_loss = round(sum(losses) / len(losses), 4) if losses else None
    report.sft_seconds = round(time.perf_counter() - started, 2)
    return report


def sample(backend: TransformersBackend, data: Dataset, items: Sequence[EvalItem],
           config: IBPOConfig, iteration: int, progress: ProgressFn
           ) -> list[tuple[int, str, Completion]]:
    """``(item index, mode, completion)`` for every response drawn this round."""
    modes = [("short", SHORT_INSTRUCTION, config.samples_short, config.long_tokens),
             ("policy", POLICY_INSTRUCTION, config.samples_policy, config.max_tokens)]
    modes = [m for m in modes if m[2] > 0]
    chunk = max(1, backend.max_batch // max(m[2] for m in modes))
    total = len(modes) * len(items)
    drawn: list[tuple[int, str, Completion]] = []
    stage = f"iteration {iteration}: sampling"
    progress(stage, 0, total)
    for step, (mode, instruction, n, max_tokens) in enumerate(modes):
        params = SamplingParams(temperature=config.temperature, max_tokens=max_tokens, n=n,
                                seed=config.seed * 1000 + iteration * 10 + step)
        for start in range(0, len(items), chunk):
            part = items[start:start + chunk]
            chats = [data.problem(item).chat(instruction) for item in part]
            for offset, group in enumerate(backend.generate(chats, params)):
                drawn.extend((start + offset, mode, c) for c in group)
            progress(stage, step * len(items) + start + len(part), total)
    return drawn


def reward(item: EvalItem, completion: Completion) -> float:
    """1 for a finished response whose final answer is right, else 0."""
    if completion.finish_reason != "stop":
        return 0.0
    return float(answers_equal(item.answer, extract_answer(completion.text, item.kind),
                               item.kind))


def group_stats(samples: Sequence[Sample]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for group in ("short", "long"):
        members = [s for s in samples if s.group == group]
        correct = sum(s.reward for s in members)
        out[group] = {"responses": len(members), "correct": correct,
                      "accuracy": round(correct / len(members), 4) if members else 0.0}
    return out


def build_examples(backend: TransformersBackend, data: Dataset, items: Sequence[EvalItem],
                   drawn: Sequence[tuple[int, str, Completion]], selection: Selection
                   ) -> list[_Example]:
    """Selected responses as (policy prompt + response) token sequences with weights."""
    examples = []
    for (index, _, completion), weight in zip(drawn, selection.weights, strict=True):
        if weight <= 0 or not completion.token_ids:
            continue
        prompt_ids = backend.encode(data.problem(items[index]).chat(POLICY_INSTRUCTION))
        examples.append(_Example((*prompt_ids, *completion.token_ids), len(prompt_ids), weight))
    return examples


def sft(loaded: LoadedModel, optimizer: Any, examples: Sequence[_Example],
        config: IBPOConfig, iteration: int, progress: ProgressFn) -> list[float]:
    """Weighted SFT: ``epochs`` passes in shuffled mini-batches; the loss per step."""
    if not examples:
        return []
    rng = random.Random(f"{config.seed}:{iteration}")
    batches = []
    for _ in range(config.epochs):
        order = list(examples)
        rng.shuffle(order)
        batches.extend(order[i:i + config.batch_size]
                       for i in range(0, len(order), config.batch_size))
    stage = f"iteration {iteration}: SFT"
    progress(stage, 0, len(batches))
    loaded.model.train()
    losses = []
    try:
        for done, batch in enumerate(batches, 1):
            loss = weighted_loss(loaded, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            progress(stage, done, len(batches))
    finally:
        loaded.model.eval()
    return losses


def weighted_loss(loaded: LoadedModel, batch: Sequence[_Example]) -> Any:
    """sum_e w_e * mean NLL of e's completion tokens / sum_e w_e (prompt tokens masked)."""
    torch, _ = import_torch()
    width = max(len(e.ids) for e in batch)
    pad = int(loaded.tokenizer.pad_token_id)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    for row, e in enumerate(batch):
        ids[row, :len(e.ids)] = torch.tensor(e.ids)
        mask[row, :len(e.ids)] = 1
        labels[row, e.prompt_len:len(e.ids)] = ids[row, e.prompt_len:len(e.ids)]
    logits = loaded.model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    target = labels[:, 1:]
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2).float(), target,
                                            ignore_index=-100, reduction="none")
    per_example = nll.sum(1) / (target != -100).sum(1).clamp(min=1)
    weights = torch.tensor([e.weight for e in batch], dtype=per_example.dtype)
    return (weights * per_example).sum() / weights.sum()


def evaluate(backend: TransformersBackend, data: Dataset, items: Sequence[EvalItem],
             config: IBPOConfig, out: Path, progress: ProgressFn, stage: str) -> EvalMetrics:
    """Greedy ``cot`` on ``items`` through the eval harness; accuracy, length, long share."""
    started = time.perf_counter()
    subset = Dataset(f"{data.name}-heldout", tuple(items), data.source, data.licence)
    spec = CellSpec(subset.name, EVAL_STRATEGY, budget=config.max_tokens, seed=config.seed)
    done = 0
    progress(stage, 0, len(items))

    def on_row(_: CellSpec, __: Any) -> None:
        nonlocal done
        done += 1
        progress(stage, done, len(items))

    engine = Engine(backend)
    result = run_cell(engine, spec, out, dataset=subset, concurrency=len(items), on_row=on_row)
    rows = [result.rows[item.id] for item in items]
    tokens = [int(row["usage"]["completion_tokens"]) for row in rows]
    return EvalMetrics(
        items=len(rows), accuracy=round(sum(bool(r["correct"]) for r in rows) / len(rows), 4),
        mean_tokens=round(sum(tokens) / len(tokens), 2),
        long_share=round(long_share(tokens, config.long_tokens), 4), cap=config.cap,
        long_tokens=config.long_tokens, seconds=round(time.perf_counter() - started, 2),
        cell=str(result.directory))


def save_checkpoint(loaded: LoadedModel, target: Path) -> None:
    """A transformers checkpoint the ``transformers`` backend (and transformers) can load."""
    target.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(target)
    loaded.tokenizer.save_pretrained(target)
    meta = {"model_id": f"{loaded.model_id}+ibpo", "base": loaded.source, "recipe": "ibpo",
            "paper": "arXiv:2501.17974"}
    (target / "ponder-model.json").write_text(json.dumps(meta, indent=2) + "\n")


def environment(torch: Any) -> dict[str, Any]:
    import transformers

    return {"python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": transformers.__version__, "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "machine": platform.machine(),
            "platform": platform.platform(terse=True)}


__all__ = ["DEFAULT_DATASET", "EvalMetrics", "IterationReport", "TrainReport", "evaluate",
           "train_ibpo"]
