"""Adaptive vs uniform budget allocation at the same total tokens, on a mixed-difficulty batch.

Problems come from ponder's own generator (``ponder.evals.generator``; dataset
spec ``gen,bins=0-4``): a batch mixing the five ladder bins, from one-step sums
the 0.5B model answers directly to three-step stories with a distractor it
rarely solves. Each query gets one budget level (``BudgetLevel``: a strategy
with a hard completion-token cap). **Uniform** gives every query the same
level; **adaptive** solves ``ponder.budget.allocate`` (scipy milp) for the
level per query that maximises the expected number correct within the total.

The difficulty estimate is honest and free: ``TextFeatureEstimator`` fits, per
level, a logistic regression (scikit-learn) of "answered correctly" on features
of the question text (sentences, numbers, capitalised words, length) on a
*calibration split* (another generator seed); the *test split* is only used
to evaluate. It makes no model call, so it adds 0 tokens; any estimator that
did would have its tokens counted by ``answer_batch`` in the same ledgers.

To save model time, every level runs once per test problem, through
``answer_batch`` with that one level (the same code path, caps and seed as a
live batch), and the outcome and ledger tokens are cached. Uniform and
adaptive results are computed from that cache: the allocation only chooses
which cached outcome counts, and the estimator never sees the outcomes. One
adaptive allocation is then run live through ``answer_batch`` on the whole test
batch, to show the real path spends what the cache says and stays in budget.

Tokens are completion tokens from the ledger (prompt tokens are not counted,
as in ``answer_batch``). Self-consistency runs without early stopping (one
call of n samples): with a fixed seed, the early-stop rounds after the first
restart the embedded backend's per-sample random streams, so their samples
nearly repeat the first round's. Measured with Qwen2.5-Coder-0.5B-Instruct
Q4_K_M on a 2-core x86_64 VM, no GPU, 1 llama.cpp thread (``PONDER_THREADS=1``).

The allocator plans with each level's cap, so it spends less than its budget.
Adaptive is therefore solved on a fixed grid of budgets (0.05x to 2x each
uniform spend) and, per uniform point, three grid points are picked by fixed
rules: equal budget (budget = uniform's spend), equal spend (the largest budget
spending no more than uniform) and the first budget reaching uniform's accuracy.

Two planning modes are analysed from the same cache. **cap** (the pre-registered
analysis, the top level of the JSON): each level's planning cost is its hard
cap. **mean** (``plan_mean`` in the JSON), added *after* seeing the cap results
as a post-hoc design fix: the planning cost is the mean completion tokens the
level spent on the *calibration* split (never the test split), and the hard cap
per query stays the same (``BudgetLevel.cap_tokens``), so every cached outcome
is still exactly what ``answer_batch`` would produce. A mean plan may spend more
than its budget; every point is reported with its actual spend from the cache,
and "equal spend" always compares actual spends. ``--plan`` picks the mode the
live ``answer_batch`` run uses; both analyses are always computed and printed.

Prints a table (policy, budget, tokens, n correct / n, accuracy, 95% Wilson
interval) and the ratios per mode; saves ``benchmarks/results/adaptive_budget.{json,png}``.

    PONDER_THREADS=1 python benchmarks/adaptive_budget.py [--test-per-bin 6] [--plan cap|mean]
    python benchmarks/adaptive_budget.py --plot-only benchmarks/results/adaptive_budget.json
    python benchmarks/adaptive_budget.py --reanalyse benchmarks/results/adaptive_budget.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ponder.budget.allocate import BudgetLevel, allocate
from ponder.budget.batch import answer_batch
from ponder.budget.estimators import Estimate, fit_per_level
from ponder.engine import Engine
from ponder.evals.datasets import load_dataset
from ponder.evals.datasets.base import EvalItem
from ponder.evals.metrics import bootstrap_interval, wilson_interval
from ponder.params import SamplingParams
from ponder.strategies.base import Problem, RunContext
from ponder.verifiers.answers import answers_equal

RESULTS = Path(__file__).resolve().parent / "results"
PRESETS: dict[str, BudgetLevel] = {
    "direct": BudgetLevel("direct", "direct", {"max_tokens": "24"}, expected_tokens=24,
                          max_tokens=24),
    "cod": BudgetLevel("cod", "chain-of-draft", {}, expected_tokens=32, max_tokens=32),
    "cot": BudgetLevel("cot", "cot", {}, expected_tokens=256, max_tokens=256),
    "sc3": BudgetLevel("sc3", "self-consistency", {"n": "3", "early_stop": "false"},
                       expected_tokens=768, max_tokens=256),
    "sc4": BudgetLevel("sc4", "self-consistency", {"n": "4", "early_stop": "false"},
                       expected_tokens=1024, max_tokens=256),
}
"""Budget levels. ``expected_tokens`` is each query's hard cap in ``answer_batch`` and
the cost the allocator plans with ("cap" planning), so a plan never spends more than its
budget. The caps were set on the calibration split only (chain of draft's right answers
there took <= 26 tokens but one, so its cap is 32; cot's need up to ~250)."""
PLANS = ("cap", "mean")
"""Planning costs: the hard caps (pre-registered) or the calibration split's mean spend
per level with the same caps (post hoc, added after the cap results)."""
MEAN_NOTE = ("post hoc: added after seeing the cap-planning results; planning costs are "
             "each level's mean completion tokens on the calibration split (not the test "
             "split), hard caps unchanged")
FRACTIONS = tuple(round(0.05 * k, 2) for k in range(1, 41))
"""Adaptive budgets as fractions of each uniform point's spend: a fixed grid up to 2x,
because the allocator plans with the caps and so spends less than its budget."""
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One (problem, level) run: graded answer and ledger tokens."""

    correct: bool
    tokens: int
    answer: str | None
    seconds: float


@dataclass
class Config:
    levels: list[BudgetLevel]
    bins: str = "0-4"
    test_per_bin: int = 6
    calib_per_bin: int = 5
    test_seed: int = 0
    calib_seed: int = 1
    sample_seed: int = 0
    top_share: float = 1.0
    live: str = "reach"
    """Live ``answer_batch`` budget: "reach" (the smallest grid budget at which adaptive
    reaches the best uniform accuracy, else half its tokens), "none", or a token count."""
    plan: str = "cap"
    """Planning costs of the live run: "cap" (pre-registered) or "mean" (post hoc)."""
    cache: Path | None = None
    log: Callable[[str], None] = field(default=print)


# --- the zero-token estimator ----------------------------------------------------------------

def text_features(question: str) -> list[float]:
    """What the question text shows about its difficulty, before any model call."""
    numbers = [float(x) for x in _NUMBER.findall(question)]
    return [len(re.findall(r"[.?!](?=\s|$)", question)), len(numbers),
            math.log1p(max(numbers, default=0.0)),
            len(set(re.findall(r"\b[A-Z][a-z]+\b", question))),
            math.log1p(len(question.split()))]


class TextFeatureEstimator:
    """Per level, P(correct | text features), fitted on a calibration split. Zero tokens."""

    name = "text-features"

    def __init__(self, models: Sequence[Any]) -> None:
        self.models = list(models)

    @classmethod
    def fit(cls, questions: Sequence[str], correct: Sequence[Sequence[bool]],
            c: float = 1.0) -> TextFeatureEstimator:
        """A scaled logistic regression per level; a level whose labels are all equal
        predicts its smoothed rate (one pseudo-item each way)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = np.array([text_features(q) for q in questions])
        return cls(fit_per_level(
            x, correct, lambda: make_pipeline(StandardScaler(), LogisticRegression(C=c))))

    def predict(self, question: str) -> tuple[float, ...]:
        x = np.array([text_features(question)])
        return tuple(m if isinstance(m, float) else float(m.predict_proba(x)[0][1])
                     for m in self.models)

    async def estimate(self, problem: Problem, ctx: RunContext) -> Estimate:
        accuracy = self.predict(problem.question)
        return Estimate(1.0 - max(accuracy), accuracy)


class _OneLevel:
    """The estimator for a one-level batch (no choice to make, no calls)."""

    async def estimate(self, problem: Problem, ctx: RunContext) -> Estimate:
        return Estimate(0.0, (1.0,))


# --- measuring every (problem, level) once ---------------------------------------------------

def level_key(level: BudgetLevel, model: str, seed: int) -> str:
    params = ",".join(f"{k}={v}" for k, v in sorted(level.params.items()))
    return (f"{model}|{level.name}|{level.strategy}({params})|cap={level.hard_cap:g}"
            f"|max_tokens={level.max_tokens}|seed={seed}")


def load_cache(path: Path | None) -> dict[tuple[str, str], Outcome]:
    if path is None or not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["item"], r["key"]): Outcome(r["correct"], r["tokens"], r["answer"],
                                           r["seconds"]) for r in rows}


def measure(engine: Engine, items: Sequence[EvalItem], config: Config, model: str,
            label: str) -> list[list[Outcome]]:
    """outcomes[i][l]: item i at level l, run through ``answer_batch`` with that one level
    (cached by item and level key, so a killed run resumes)."""
    cache = load_cache(config.cache)
    sampling = SamplingParams(seed=config.sample_seed)
    started = time.perf_counter()
    table: list[list[Outcome]] = []
    for index, item in enumerate(items, start=1):
        row: list[Outcome] = []
        for level in config.levels:
            key = level_key(level, model, config.sample_seed)
            if (item.id, key) not in cache:
                cache[(item.id, key)] = _run_one(engine, item, level, sampling)
                _append(config.cache, item.id, key, cache[(item.id, key)])
            row.append(cache[(item.id, key)])
        table.append(row)
        config.log(f"[{time.perf_counter() - started:6.0f} s] {label} {index}/{len(items)} "
                   f"bin {item.difficulty}: " + " ".join(
                       f"{lv.name} {'+' if o.correct else '-'}{o.tokens}"
                       for lv, o in zip(config.levels, row, strict=True)))
    return table


def _run_one(engine: Engine, item: EvalItem, level: BudgetLevel,
             sampling: SamplingParams) -> Outcome:
    started = time.perf_counter()
    result = engine.backend.run_sync(answer_batch(
        engine, [item.problem()], [level], _OneLevel(), level.hard_cap, sampling=sampling))
    answer = result.answers[0].answer
    return Outcome(answers_equal(item.answer, answer, item.kind), result.completion_tokens,
                   answer, round(time.perf_counter() - started, 2))


def _append(path: Path | None, item: str, key: str, outcome: Outcome) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps({"item": item, "key": key, **asdict(outcome)}) + "\n")


# --- uniform vs adaptive from the cache ------------------------------------------------------

def mean_levels(levels: Sequence[BudgetLevel], calib_mean_tokens: Sequence[float]
                ) -> list[BudgetLevel]:
    """The same levels planned at the calibration split's mean spend, with the same hard caps
    (so the cached outcomes stay valid)."""
    return [replace(lv, expected_tokens=max(float(mean), 1.0), cap_tokens=lv.hard_cap)
            for lv, mean in zip(levels, calib_mean_tokens, strict=True)]


def planning(levels: Sequence[BudgetLevel], calib_mean_tokens: Sequence[float],
             plan: str) -> list[BudgetLevel]:
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {', '.join(PLANS)}, got {plan!r}")
    return list(levels) if plan == "cap" else mean_levels(levels, calib_mean_tokens)


def point(policy: str, budget: float | None, plan: Sequence[int],
          outcomes: Sequence[Sequence[Outcome]], levels: Sequence[BudgetLevel],
          reference: str | None = None) -> dict[str, Any]:
    """Tokens and correctness of one assignment of levels to the test items."""
    chosen = [outcomes[i][lv] for i, lv in enumerate(plan)]
    correct, n = sum(o.correct for o in chosen), len(chosen)
    low, high = wilson_interval(correct, n)
    mix = Counter(levels[lv].name for lv in plan)
    return {"policy": policy, "reference": reference, "budget": budget,
            "tokens": sum(o.tokens for o in chosen), "correct": correct, "n": n,
            "accuracy": correct / n, "wilson": [low, high], "plan": list(plan),
            "mix": {lv.name: mix.get(lv.name, 0) for lv in levels}}


def adaptive_plan(predicted: np.ndarray, levels: Sequence[BudgetLevel], budget: float,
                  top_share: float) -> list[int] | None:
    """What ``answer_batch`` would allocate with 0 probe tokens (None: infeasible)."""
    if budget < len(predicted) * min(lv.expected_tokens for lv in levels):
        return None
    plan = allocate(predicted, [lv.expected_tokens for lv in levels], budget,
                    top_share=top_share, method="auto")
    return list(plan.levels)


def compare(outcomes: Sequence[Sequence[Outcome]], predicted: np.ndarray,
            levels: Sequence[BudgetLevel], top_share: float) -> dict[str, Any]:
    """Uniform points; adaptive on a grid of budgets around each uniform spend; the ratios.
    ``levels``' ``expected_tokens`` are the planning costs; tokens are the cached spend."""
    n_items = len(outcomes)
    uniform = [point(f"uniform {lv.name}", None, [index] * n_items, outcomes, levels)
               for index, lv in enumerate(levels)]
    truth = np.array([[float(o.correct) for o in row] for row in outcomes])
    adaptive, oracle, ratios = [], [], []
    for u in uniform:
        grid = []
        for fraction in FRACTIONS:
            plan = adaptive_plan(predicted, levels, fraction * u["tokens"], top_share)
            if plan is not None:
                grid.append(point("adaptive", fraction * u["tokens"], plan, outcomes, levels,
                                  u["policy"]) | {"fraction": fraction})
        adaptive += grid
        best_plan = adaptive_plan(truth, levels, u["tokens"], top_share)
        if best_plan is not None:
            oracle.append(point("oracle", u["tokens"], best_plan, outcomes, levels,
                                u["policy"]) | {"fraction": 1.0})
        within = [p for p in grid if p["tokens"] <= u["tokens"]]
        ratios.append(_ratio(u, {
            "budget": next((p for p in grid if p["fraction"] == 1.0), None),
            "spend": within[-1] if within else None,
            "reach": next((p for p in grid if p["correct"] >= u["correct"]), None)}, outcomes))
    return {"uniform": uniform, "adaptive": adaptive, "oracle": oracle, "ratios": ratios,
            "max_over_budget": max((p["tokens"] - p["budget"] for p in adaptive), default=None)}


def plan_mean_section(outcomes: Sequence[Sequence[Outcome]], predicted: np.ndarray,
                      levels: Sequence[BudgetLevel], calib_mean_tokens: Sequence[float],
                      top_share: float) -> dict[str, Any]:
    """The post-hoc "mean" analysis (uniform points are the same as in "cap", so left out)."""
    planned = mean_levels(levels, calib_mean_tokens)
    comparison = compare(outcomes, predicted, planned, top_share)
    del comparison["uniform"]
    return {"note": MEAN_NOTE, "levels": [{"name": lv.name, "expected_tokens": lv.expected_tokens,
                                           "cap": lv.hard_cap} for lv in planned],
            **comparison, "live": None}


def _ratio(u: dict[str, Any], chosen: dict[str, dict[str, Any] | None],
           outcomes: Sequence[Sequence[Outcome]]) -> dict[str, Any]:
    """Per uniform point, three adaptive points picked by fixed rules: at equal budget
    (budget = uniform's spend), at equal spend (the largest grid budget whose spend is
    <= uniform's) and the first to reach uniform's accuracy (smallest grid budget)."""
    row: dict[str, Any] = {"uniform": u["policy"], "uniform_correct": u["correct"],
                           "uniform_tokens": u["tokens"], "n": u["n"]}
    for name, p in chosen.items():
        if p is None:
            continue
        diff = [float(outcomes[i][a].correct) - float(outcomes[i][b].correct)
                for i, (a, b) in enumerate(zip(p["plan"], u["plan"], strict=True))]
        row[name] = {"fraction": p["fraction"], "budget": p["budget"], "tokens": p["tokens"],
                     "correct": p["correct"], "token_ratio": p["tokens"] / max(u["tokens"], 1),
                     "diff_ci": list(bootstrap_interval(diff)), "mix": p["mix"]}
    return row


# --- the live path ---------------------------------------------------------------------------

def live_run(engine: Engine, items: Sequence[EvalItem], estimator: TextFeatureEstimator,
             config: Config, levels: Sequence[BudgetLevel], budget: int,
             outcomes: Sequence[Sequence[Outcome]],
             simulated: Sequence[int] | None) -> dict[str, Any]:
    """The whole test batch through ``answer_batch`` at ``budget`` with ``levels`` (planning
    costs and caps), checked against the cache."""
    started = time.perf_counter()
    result = engine.backend.run_sync(answer_batch(
        engine, [item.problem() for item in items], levels, estimator, budget,
        top_share=config.top_share, sampling=SamplingParams(seed=config.sample_seed)))
    plan = list(result.allocation.levels)
    correct = [answers_equal(item.answer, a.answer, item.kind)
               for item, a in zip(items, result.answers, strict=True)]
    tokens = [a.ledger.total().completion_tokens for a in result.answers]
    cached = [outcomes[i][lv] for i, lv in enumerate(plan)]
    return {"planning": config.plan, "budget": budget, "tokens": sum(tokens),
            "correct": sum(correct), "n": len(items),
            "accuracy": sum(correct) / len(items), "plan": plan,
            "plan_matches_simulation": simulated is not None and plan == list(simulated),
            "cached_tokens": sum(o.tokens for o in cached),
            "cached_correct": sum(o.correct for o in cached),
            "items_same_tokens": sum(t == o.tokens for t, o in zip(tokens, cached, strict=True)),
            "items_same_grade": sum(c == o.correct for c, o in zip(correct, cached,
                                                                   strict=True)),
            "max_query_over_cap": max(t - levels[lv].hard_cap
                                      for t, lv in zip(tokens, plan, strict=True)),
            "seconds": round(time.perf_counter() - started, 1)}


def _live_budget(config: Config, levels: Sequence[BudgetLevel], comparison: dict[str, Any],
                 n_items: int) -> int | None:
    if config.live == "none":
        return None
    if config.live != "reach":
        return int(config.live)
    best = max(comparison["ratios"], key=lambda r: (r["uniform_correct"], -r["uniform_tokens"]))
    fraction = best["reach"]["fraction"] if "reach" in best else 0.5
    floor = n_items * min(lv.expected_tokens for lv in levels)
    return math.ceil(max(fraction * best["uniform_tokens"], floor))


# --- the whole benchmark ---------------------------------------------------------------------

def splits(config: Config) -> tuple[list[EvalItem], list[EvalItem]]:
    """Calibration and test items (different generator seeds; calibration items whose text
    also appears in the test split are dropped)."""
    test = list(load_dataset(f"gen,bins={config.bins},"
                             f"per_bin={config.test_per_bin},seed={config.test_seed}"))
    calib = list(load_dataset(f"gen,bins={config.bins},per_bin={config.calib_per_bin},"
                              f"seed={config.calib_seed}"))
    seen = {item.full_question for item in test}
    return [item for item in calib if item.full_question not in seen], test


def run(engine: Engine, config: Config, model: str) -> dict[str, Any]:
    """Calibrate, measure the test split, compare uniform with adaptive, and run one live batch."""
    started = time.perf_counter()
    calib, test = splits(config)
    config.log(f"calibration split: {len(calib)} items (seed {config.calib_seed}); "
               f"test split: {len(test)} items (seed {config.test_seed}); levels: "
               + ", ".join(lv.name for lv in config.levels))
    calib_out = measure(engine, calib, config, model, "calibration")
    estimator = TextFeatureEstimator.fit([i.full_question for i in calib],
                                         [[o.correct for o in row] for row in calib_out])
    test_out = measure(engine, test, config, model, "test")
    predicted = np.array([estimator.predict(item.full_question) for item in test])
    calib_summary = _split_summary(calib, calib_out, config.levels)
    comparison = compare(test_out, predicted, config.levels, config.top_share)
    plan_mean = plan_mean_section(test_out, predicted, config.levels,
                                  calib_summary["mean_tokens"], config.top_share)
    sections = {"cap": comparison, "mean": plan_mean}
    live_levels = planning(config.levels, calib_summary["mean_tokens"], config.plan)
    budget = _live_budget(config, live_levels, sections[config.plan], len(test))
    comparison["live"] = None
    if budget is not None:
        simulated = adaptive_plan(predicted, live_levels, budget, config.top_share)
        config.log(f"live answer_batch on the test batch at a budget of {budget} tokens "
                   f"({config.plan} planning) ...")
        sections[config.plan]["live"] = live_run(engine, test, estimator, config, live_levels,
                                                 budget, test_out, simulated)
    return {
        "levels": [{"name": lv.name, "strategy": lv.strategy, "params": dict(lv.params),
                    "cap": lv.hard_cap, "max_tokens": lv.max_tokens}
                   for lv in config.levels],
        "calibration": calib_summary,
        "test": _split_summary(test, test_out, config.levels)
        | {"predicted_mean": predicted.mean(axis=0).tolist(),
           "brier": _brier(predicted, test_out)},
        "items": [{"id": item.id, "bin": item.difficulty, "predicted": list(p),
                   "outcomes": [asdict(o) for o in row]}
                  for item, p, row in zip(test, predicted.tolist(), test_out, strict=True)],
        **comparison, "plan_mean": plan_mean,
        "seconds": round(time.perf_counter() - started, 1),
    }


def reanalyse(report: dict[str, Any]) -> dict[str, Any]:
    """Both comparisons again, from the saved per-item outcomes, estimates and calibration
    mean spend (no model); saved live runs are kept."""
    levels = [BudgetLevel(lv["name"], lv["strategy"], lv["params"], expected_tokens=lv["cap"],
                          max_tokens=lv["max_tokens"]) for lv in report["levels"]]
    outcomes = [[Outcome(**o) for o in item["outcomes"]] for item in report["items"]]
    predicted = np.array([item["predicted"] for item in report["items"]])
    top_share = report["config"]["top_share"]
    plan_mean = plan_mean_section(outcomes, predicted, levels,
                                  report["calibration"]["mean_tokens"], top_share)
    plan_mean["live"] = (report.get("plan_mean") or {}).get("live")
    return compare(outcomes, predicted, levels, top_share) | {"plan_mean": plan_mean}


def _split_summary(items: Sequence[EvalItem], outcomes: Sequence[Sequence[Outcome]],
                   levels: Sequence[BudgetLevel]) -> dict[str, Any]:
    bins = sorted({item.difficulty or 0 for item in items})
    return {"n": len(items), "bins": {str(b): {lv.name: [
        sum(o[i].correct for it, o in zip(items, outcomes, strict=True) if it.difficulty == b),
        sum(it.difficulty == b for it in items)] for i, lv in enumerate(levels)} for b in bins},
        "accuracy": [sum(row[i].correct for row in outcomes) / len(items)
                     for i in range(len(levels))],
        "mean_tokens": [sum(row[i].tokens for row in outcomes) / len(items)
                        for i in range(len(levels))],
        "model_seconds": round(sum(o.seconds for row in outcomes for o in row), 1)}


def _brier(predicted: np.ndarray, outcomes: Sequence[Sequence[Outcome]]) -> list[float]:
    truth = np.array([[float(o.correct) for o in row] for row in outcomes])
    return ((predicted - truth) ** 2).mean(axis=0).tolist()


# --- printing and plotting -------------------------------------------------------------------

def print_report(report: dict[str, Any]) -> None:
    print(f"\nmodel {report['model']} ({report['hardware']}); {report['seconds']} s; "
          f"test {report['test']['n']} items, calibration {report['calibration']['n']}; "
          f"bins {report['config']['bins']}; model time (every level once per item, from the "
          f"cache): calibration {report['calibration']['model_seconds']:.0f} s, test "
          f"{report['test']['model_seconds']:.0f} s")
    names = [lv["name"] for lv in report["levels"]]
    print("levels: " + "; ".join(
        f"{lv['name']} = {lv['strategy']}"
        + "".join(f" {k}={v}" for k, v in lv["params"].items())
        + f", cap {lv['cap']:g} tokens" for lv in report["levels"]))
    print("per bin, correct/n at each level (test): " + "; ".join(
        f"bin {b}: " + " ".join(f"{n} {c}/{t}" for n, (c, t) in row.items())
        for b, row in report["test"]["bins"].items()))
    print("estimator (text features, fitted on calibration) on test: mean predicted "
          + ", ".join(f"{n} {p:.0%}" for n, p in zip(names, report["test"]["predicted_mean"],
                                                    strict=True))
          + " vs actual " + ", ".join(f"{n} {a:.0%}" for n, a in
                                      zip(names, report["test"]["accuracy"], strict=True)))
    print("mean completion tokens per level: calibration " + ", ".join(
        f"{n} {t:.0f}" for n, t in zip(names, report["calibration"]["mean_tokens"], strict=True))
        + "; test " + ", ".join(f"{n} {t:.0f}" for n, t in
                                zip(names, report["test"]["mean_tokens"], strict=True)))
    print("\n=== cap planning (pre-registered): planning cost = each level's hard cap ===")
    _print_section(report, report)
    mean = report.get("plan_mean")
    if mean:
        print(f"\n=== mean planning ({mean['note']}) ===")
        print("planning costs: " + ", ".join(
            f"{lv['name']} {lv['expected_tokens']:.1f} (cap {lv['cap']})" for lv in mean["levels"]))
        _print_section(report, mean)
        _print_modes(report, mean)


def _print_section(report: dict[str, Any], section: dict[str, Any]) -> None:
    """One planning mode: the table, the ratios and its live run."""
    print(f"\n{'policy':<24} {'picked by':<28} {'budget':>7} {'tokens':>7} {'correct':>7} "
          f"{'acc':>4} {'95% CI':>9}  mix")
    for u in report["uniform"]:
        _row(u["policy"], "", u)
        ratio = next(r for r in section["ratios"] if r["uniform"] == u["policy"])
        picked: dict[float, list[str]] = {}
        for key, text in (("budget", "equal budget"), ("spend", "equal spend"),
                          ("reach", "reaches uniform")):
            if key in ratio:
                picked.setdefault(ratio[key]["fraction"], []).append(text)
        for fraction, texts in sorted(picked.items()):
            p = next(p for p in section["adaptive"] if p["reference"] == u["policy"]
                     and p["fraction"] == fraction)
            _row(f"  adaptive {fraction:.2f}x", ", ".join(texts), p)
        for p in (p for p in section["oracle"] if p["reference"] == u["policy"]):
            _row("  oracle (knows answers)", "equal budget", p)
    print("budget = the total the allocator may plan with its planning costs; tokens ="
          " completion tokens spent (ledger, from the cache); oracle rows know the outcomes: "
          "an upper bound for the allocator, not a policy")
    over = section.get("max_over_budget")
    if over is not None:
        print(f"largest spend over budget on the grid: {over:+.0f} tokens"
              + (" (never over)" if over <= 0 else " (plans may overspend: caps, not the "
                                                   "budget, bound the spend)") + "\n")
    for r in section["ratios"]:
        _print_ratio(r)
    live = section.get("live")
    if live:
        print(f"\nlive answer_batch at budget {live['budget']}: {live['tokens']} tokens "
              f"(<= budget: {live['tokens'] <= live['budget']}), {live['correct']}/{live['n']} "
              f"correct; cache predicted {live['cached_tokens']} tokens, "
              f"{live['cached_correct']}/{live['n']}; plan matches simulation: "
              f"{live['plan_matches_simulation']}; items with the same tokens "
              f"{live['items_same_tokens']}/{live['n']}, same grade "
              f"{live['items_same_grade']}/{live['n']}; largest query spend over its cap "
              f"{live['max_query_over_cap']:+g}; {live['seconds']} s")


def _print_modes(report: dict[str, Any], mean: dict[str, Any]) -> None:
    """Cap vs mean planning side by side, per uniform point (actual spends)."""
    print("\n=== cap vs mean planning (actual spend from the cache) ===")
    print(f"{'uniform':<16} {'correct':>7} {'tokens':>7} | {'reach: cap':>17} {'mean':>17} | "
          f"{'equal spend: cap':>17} {'mean':>17}")

    def cell(r: dict[str, Any], key: str) -> str:
        if key not in r:
            return "-"
        p = r[key]
        return f"{p['correct']}/{r['n']} {p['tokens']} ({p['token_ratio']:.0%})"

    for cap, mn in zip(report["ratios"], mean["ratios"], strict=True):
        print(f"{cap['uniform']:<16} {cap['uniform_correct']:>4}/{cap['n']:<2} "
              f"{cap['uniform_tokens']:>7} | {cell(cap, 'reach'):>17} {cell(mn, 'reach'):>17} | "
              f"{cell(cap, 'spend'):>17} {cell(mn, 'spend'):>17}")
    print("reach = the smallest grid budget reaching uniform's correct count, with its spend and "
          "spend/uniform spend; equal spend = largest grid budget spending <= uniform")


def _row(label: str, picked: str, p: dict[str, Any]) -> None:
    budget = "-" if p["budget"] is None else f"{p['budget']:.0f}"
    mix = " ".join(f"{k}:{v}" for k, v in p["mix"].items() if v)
    print(f"{label:<24} {picked:<28} {budget:>7} {p['tokens']:>7} {p['correct']:>3}/{p['n']:<3} "
          f"{p['accuracy']:>4.0%} {p['wilson'][0]:>4.0%}-{p['wilson'][1]:<4.0%}  {mix}")


def _print_ratio(r: dict[str, Any]) -> None:
    n, u_correct, u_tokens = r["n"], r["uniform_correct"], r["uniform_tokens"]
    head = f"{r['uniform']} ({u_correct}/{n} = {u_correct / n:.0%}, {u_tokens} tokens)"
    if "reach" in r:
        p = r["reach"]
        print(f"adaptive reaches {head}'s accuracy with {p['tokens']} tokens = "
              f"{p['token_ratio']:.0%} of its tokens (budget {p['fraction']:.2f}x)")
    else:
        print(f"adaptive does not reach {head}'s accuracy at any budget up to "
              f"{FRACTIONS[-1]:g}x its tokens")
    for key, text in (("spend", "at equal spend (<= its tokens)"), ("budget", "at equal budget")):
        if key in r:
            p = r[key]
            low, high = p["diff_ci"]
            print(f"  {text}: adaptive {p['correct']}/{n} = {p['correct'] / n:.0%} with "
                  f"{p['tokens']} tokens (budget {p['fraction']:.2f}x) vs {u_correct / n:.0%}: "
                  f"{(p['correct'] - u_correct) / n:+.0%}, 95% paired bootstrap "
                  f"{low:+.0%} to {high:+.0%}")
    by_tokens = "reach" in r and r["reach"]["token_ratio"] <= 0.5
    by_accuracy = "spend" in r and r["spend"]["correct"] > u_correct
    verdict = "not met"
    if by_tokens or by_accuracy:
        clear = by_tokens or r["spend"]["diff_ci"][0] > 0
        verdict = "met " + ("(<= 50% of the tokens)" if by_tokens else
                            "(more correct at equal spend" + ("" if clear else
                                                              ", but the CI includes 0") + ")")
    print(f"  goal (same accuracy with <= 50% of the tokens, or more correct at equal "
          f"spend): {verdict}")


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    uniform = sorted(report["uniform"], key=lambda p: p["tokens"])
    ax.plot([p["tokens"] for p in uniform], [100 * p["accuracy"] for p in uniform], "o--",
            color="C0", label="uniform (same level for every query)")
    for p in uniform:
        ax.annotate(p["policy"].split()[-1], (p["tokens"], 100 * p["accuracy"]), fontsize=8,
                    xytext=(4, -10), textcoords="offset points")
    adaptive = _envelope_free(report["adaptive"])
    ax.plot([p["tokens"] for p in adaptive], [100 * p["accuracy"] for p in adaptive], ".-",
            color="C1", label="adaptive, planned with caps (milp, text-feature estimates)")
    mean = report.get("plan_mean")
    if mean:
        points = _envelope_free(mean["adaptive"])
        ax.plot([p["tokens"] for p in points], [100 * p["accuracy"] for p in points], ".--",
                color="C2", alpha=0.8,
                label="adaptive, planned with calibration means (post hoc)")
    oracle = sorted(report["oracle"], key=lambda p: p["tokens"])
    ax.plot([p["tokens"] for p in oracle], [100 * p["accuracy"] for p in oracle], "x:",
            color="grey", label="oracle allocation (knows outcomes; upper bound)")
    for section, color, text in ((report, "C3", "caps"), (mean or {}, "C4", "means")):
        live = section.get("live")
        if live:
            ax.plot([live["tokens"]], [100 * live["accuracy"]], "*", color=color,
                    markersize=12, label=f"adaptive, live answer_batch ({text})")
    ax.set(xlabel=f"total completion tokens for {report['test']['n']} test questions",
           ylabel="accuracy (%)", ylim=(-3, 103),
           title=f"adaptive vs uniform budgets, {report['model']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.text(0.01, 0.01, f"{report['hardware']}; generator bins {report['config']['bins']}",
             fontsize=7, color="grey")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _envelope_free(points: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adaptive points in token order, one per distinct budget (no best-of selection)."""
    by_budget = {round(p["budget"]): p for p in points}
    return sorted(by_budget.values(), key=lambda p: (p["tokens"], p["budget"]))


# --- the script ------------------------------------------------------------------------------

def main() -> None:
    args = _parse_args()
    if args.plot_only or args.reanalyse:
        path = Path(args.plot_only or args.reanalyse)
        report = json.loads(path.read_text())
        if args.reanalyse:
            report |= reanalyse(report)
            path.write_text(json.dumps(report, indent=1) + "\n")
        print_report(report)
        plot(report, path.with_suffix(".png"))
        return
    from ponder.backends.llamacpp import EmbeddedBackend

    config = Config([PRESETS[name] for name in args.levels.split(",")], bins=args.bins,
                    test_per_bin=args.test_per_bin, calib_per_bin=args.calib_per_bin,
                    test_seed=args.test_seed, calib_seed=args.calib_seed,
                    top_share=args.top_share, live=args.live, plan=args.plan, cache=args.cache)
    backend = EmbeddedBackend(args.model, n_ctx=8192)
    with Engine(backend) as engine:
        report = run(engine, config, backend.model)
    report = {"model": backend.model, "hardware": f"{os.cpu_count()}-core "
              f"{platform.machine()}, CPU only, PONDER_THREADS="
              f"{os.environ.get('PONDER_THREADS', 'all')}",
              "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              **report}
    print_report(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "adaptive_budget.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    plot(report, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--levels", default="direct,cod,cot,sc4",
                        help=f"comma-separated, cheapest first, from {', '.join(PRESETS)}")
    parser.add_argument("--bins", default="0-4", help="generator ladder bins (0-4 or 1+3)")
    parser.add_argument("--test-per-bin", type=int, default=6)
    parser.add_argument("--calib-per-bin", type=int, default=5)
    parser.add_argument("--test-seed", type=int, default=0)
    parser.add_argument("--calib-seed", type=int, default=1)
    parser.add_argument("--top-share", type=float, default=1.0,
                        help="IBPO cap on the share of queries at the top level")
    parser.add_argument("--live", default="reach",
                        help='live answer_batch budget: "reach", "none" or a token count')
    parser.add_argument("--plan", choices=PLANS, default="cap",
                        help="planning costs of the live answer_batch run: the caps "
                             "(pre-registered) or the calibration split's mean spend (post "
                             "hoc); both analyses are always computed from the cache")
    parser.add_argument("--cache", type=Path, default=Path("runs/adaptive_budget/outcomes.jsonl"),
                        help="per-(item, level) outcomes, so a killed run resumes")
    parser.add_argument("--plot-only", metavar="JSON",
                        help="print and plot a saved result instead of running")
    parser.add_argument("--reanalyse", metavar="JSON",
                        help="recompute uniform vs adaptive from a saved result's per-item "
                             "outcomes and predictions (no model), rewrite it, print and plot")
    return parser.parse_args()


if __name__ == "__main__":
    main()
