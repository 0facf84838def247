"""Compute-optimal strategy selection (Snell et al., arXiv:2408.03314): per difficulty
bin, the (strategy, params, budget) with the best accuracy for its token cost.

``fit_policy`` reads eval run folders (``ponder eval run`` output: one cell folder
per (dataset, strategy, budget) with ``spec.json`` and ``results.jsonl``), computes
accuracy and mean completion tokens by bin x cell, and keeps per bin the cell
maximising ``accuracy - token_cost * tokens``. At run time ``arun_with_policy``
probes the question, maps its disagreement onto the bins (the bins are the
dataset's difficulty levels, so difficulty d in [0, 1] picks the bin at rank
d x bins: an uncalibrated mapping), and runs the chosen strategy.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ponder.budget.estimators import ProbeAgreementParams, probe_difficulty
from ponder.engine import Engine
from ponder.errors import ConfigError
from ponder.evals.results import RESULTS_FILE, SPEC_FILE, read_rows
from ponder.ledger import Ledger
from ponder.params import SamplingParams
from ponder.strategies.base import Answer, Problem, RunContext

DEFAULT_TOKEN_COST = 0.0005
"""Accuracy traded per completion token: 2,000 tokens are worth one correct answer."""


@dataclass(frozen=True, slots=True)
class Choice:
    """One (strategy, params, budget) cell, measured on one difficulty bin."""

    strategy: str
    params: dict[str, str]
    budget: int
    budget_mode: str
    accuracy: float
    tokens: float
    """Mean completion tokens per item."""
    items: int

    def score(self, token_cost: float) -> float:
        return self.accuracy - token_cost * self.tokens


@dataclass(frozen=True, slots=True)
class Policy:
    """The best choice per difficulty bin, and every measured cell behind it."""

    token_cost: float
    bins: dict[int, Choice]
    cells: dict[int, list[Choice]] = field(default_factory=dict)
    probe: ProbeAgreementParams = field(default_factory=ProbeAgreementParams)

    def choose(self, bin_index: int) -> Choice:
        """The choice for ``bin_index``, or for the nearest fitted bin."""
        nearest = min(self.bins, key=lambda b: (abs(b - bin_index), b))
        return self.bins[nearest]

    def bin_for(self, difficulty: float) -> int:
        """Probe difficulty in [0, 1] -> the fitted bin at the same rank."""
        keys = sorted(self.bins)
        return keys[min(len(keys) - 1, int(difficulty * len(keys)))]

    def save(self, path: Path) -> None:
        data = {"token_cost": self.token_cost,
                "probe": {"k": self.probe.k, "max_tokens": self.probe.max_tokens,
                          "temperature": self.probe.temperature},
                "bins": {str(b): asdict(c) for b, c in sorted(self.bins.items())},
                "cells": {str(b): [asdict(c) for c in cs] for b, cs in sorted(self.cells.items())}}
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Policy:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            bins = {int(b): Choice(**c) for b, c in data["bins"].items()}
            cells = {int(b): [Choice(**c) for c in cs] for b, cs in data.get("cells", {}).items()}
            probe = ProbeAgreementParams(**data.get("probe", {}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"policy file {path} cannot be read: {exc}") from exc
        if not bins:
            raise ConfigError(f"policy file {path} has no bins")
        return cls(float(data["token_cost"]), bins, cells, probe)


def fit_policy(runs: Sequence[Path], *, token_cost: float = DEFAULT_TOKEN_COST) -> Policy:
    """Read every cell under ``runs`` and pick the best cell per difficulty bin."""
    if token_cost < 0:
        raise ConfigError(f"token_cost must be >= 0, got {token_cost!r}")
    cells: dict[int, list[Choice]] = defaultdict(list)
    for spec, rows in _cells(runs):
        for bin_index, bin_rows in _by_bin(rows).items():
            cells[bin_index].append(_choice(spec, bin_rows))
    if not cells:
        raise ConfigError(f"no eval cells with results under {', '.join(map(str, runs))}")
    best = {b: max(cs, key=lambda c: (c.score(token_cost), -c.tokens)) for b, cs in cells.items()}
    return Policy(token_cost, best, dict(cells))


async def arun_with_policy(engine: Engine, problem: Problem, policy: Policy, *,
                           sampling: SamplingParams | None = None,
                           max_total_tokens: int | None = None) -> Answer:
    """Probe ``problem``, pick the bin's strategy and budget, and run it (one ledger)."""
    sampling = sampling or SamplingParams()
    ledger = Ledger()
    probe_ctx = RunContext(backend=engine.backend, ledger=ledger, sampling=sampling,
                           max_total_tokens=max_total_tokens, registry=engine.registry)
    difficulty = await probe_difficulty(problem, probe_ctx, policy.probe)
    bin_index = policy.bin_for(difficulty)
    choice = policy.choose(bin_index)
    cap = max_total_tokens
    if choice.budget_mode == "total":
        spent = ledger.total().completion_tokens
        cap = min(cap, choice.budget + spent) if cap is not None else choice.budget + spent
    else:
        sampling = sampling.with_(max_tokens=choice.budget)
    ctx = RunContext(backend=engine.backend, ledger=ledger, sampling=sampling,
                     max_total_tokens=cap, registry=engine.registry)
    answer = await engine.registry.create(choice.strategy, dict(choice.params)).run(problem, ctx)
    answer.info["policy"] = {"difficulty": difficulty, "bin": bin_index, **asdict(choice)}
    return answer


def _cells(runs: Sequence[Path]) -> Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]:
    for run in runs:
        if not run.exists():
            raise ConfigError(f"run folder {run} does not exist")
        for spec_path in sorted(run.rglob(SPEC_FILE)):
            rows = list(read_rows(spec_path.parent / RESULTS_FILE).values())
            if rows:
                yield json.loads(spec_path.read_text(encoding="utf-8")), rows


def _by_bin(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Rows by difficulty bin; items without one go to bin 0."""
    bins: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        difficulty = row.get("difficulty")
        bins[int(difficulty) if difficulty is not None else 0].append(row)
    return bins


def _choice(spec: dict[str, Any], rows: list[dict[str, Any]]) -> Choice:
    tokens = [float(row.get("usage", {}).get("completion_tokens", 0)) for row in rows]
    return Choice(str(spec["strategy"]), {str(k): str(v) for k, v in
                                          (spec.get("params") or {}).items()},
                  int(spec["budget"]), str(spec.get("budget_mode", "sample")),
                  sum(bool(row.get("correct")) for row in rows) / len(rows),
                  sum(tokens) / len(rows), len(rows))
