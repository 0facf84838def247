"""Difficulty estimators: per query, the expected accuracy at each budget level.

An estimator first measures a raw difficulty in [0, 1] (0 easy, 1 hard), then a
``CalibrationTable`` fitted on an eval run turns it into the expected accuracy
per level: the accuracy each level reached on eval items of similar difficulty.

``ProbeAgreement`` is the cheap probe of compute-optimal scaling (Snell et al.,
arXiv:2408.03314, bin by difficulty): k short samples through ``ctx.generate``
(so the ledger bills them); the less they agree, the harder the question.
``LearnedEstimator`` fits a logistic regression per level on the probe's features
(agreement, unanswered share, length, question size) instead of a binned table.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ponder.errors import ConfigError
from ponder.strategies import prompts
from ponder.strategies.base import Candidate, Problem, RunContext
from ponder.verifiers.voting import vote

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class Estimate:
    """What an estimator knows about one query."""

    difficulty: float
    """Raw difficulty in [0, 1]: 0 easy, 1 hard."""
    accuracy: tuple[float, ...]
    """Calibrated expected accuracy at each budget level, in level order."""


@runtime_checkable
class DifficultyEstimator(Protocol):
    """Estimates how likely each budget level is to answer ``problem`` correctly."""

    async def estimate(self, problem: Problem, ctx: RunContext) -> Estimate: ...


@dataclass(frozen=True, slots=True)
class CalibrationTable:
    """Expected accuracy per (difficulty bin, level), fitted on an eval run.

    ``edges`` are the upper bounds of all bins but the last, increasing in (0, 1).
    Example: ``CalibrationTable((0.5,), ((0.9, 0.95), (0.3, 0.6)))`` says easy
    questions (difficulty <= 0.5) score 0.9 / 0.95 at levels 0 / 1, hard ones 0.3 / 0.6.
    """

    edges: tuple[float, ...]
    accuracy: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if len(self.accuracy) != len(self.edges) + 1 or not self.accuracy:
            raise ConfigError(f"calibration needs len(edges)+1 = {len(self.edges) + 1} rows "
                              f"of accuracy, got {len(self.accuracy)}")
        if list(self.edges) != sorted(self.edges) or any(not 0 < e < 1 for e in self.edges):
            raise ConfigError(f"calibration edges must increase within (0, 1), got {self.edges}")
        widths = {len(row) for row in self.accuracy}
        if len(widths) != 1 or any(not 0 <= a <= 1 for row in self.accuracy for a in row):
            raise ConfigError("calibration accuracy rows must have one probability per level")

    @property
    def levels(self) -> int:
        return len(self.accuracy[0])

    def expected(self, difficulty: float) -> tuple[float, ...]:
        """The accuracy per level of the bin ``difficulty`` falls in."""
        return self.accuracy[bisect.bisect_left(self.edges, difficulty)]

    @classmethod
    def fit(cls, difficulty: Sequence[float], correct: Sequence[Sequence[bool]], *,
            bins: int = 3, prior: float = 1.0) -> CalibrationTable:
        """Fit from an eval run: ``difficulty[i]`` is the probe's value for item i,
        ``correct[i][l]`` whether level l answered it. Bins hold equal numbers of items
        (quantiles); accuracies are smoothed towards the level's overall rate by
        ``prior`` pseudo-items, so a thin bin does not claim 0% or 100%."""
        if not difficulty or len(difficulty) != len(correct):
            raise ConfigError("calibration needs one row of per-level results per item")
        if bins < 1 or prior < 0:
            raise ConfigError(f"bins must be >= 1 and prior >= 0, got {bins}, {prior}")
        order = sorted(range(len(difficulty)), key=lambda i: difficulty[i])
        groups = [order[k * len(order) // bins:(k + 1) * len(order) // bins]
                  for k in range(bins)]
        groups = _pool_ties([g for g in groups if g], difficulty)
        n_levels = len(correct[0])
        overall = [sum(bool(row[lv]) for row in correct) / len(correct)
                   for lv in range(n_levels)]
        table = tuple(tuple((sum(bool(correct[i][lv]) for i in g) + prior * overall[lv])
                            / (len(g) + prior) for lv in range(n_levels)) for g in groups)
        edges = tuple(_edge(difficulty[a[-1]], difficulty[b[0]])
                      for a, b in itertools.pairwise(groups))
        return cls(edges, table)

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "accuracy": [list(r) for r in self.accuracy]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibrationTable:
        return cls(tuple(data["edges"]), tuple(tuple(r) for r in data["accuracy"]))


def _edge(low: float, high: float) -> float:
    return min(max((low + high) / 2, 1e-6), 1 - 1e-6)


def _pool_ties(groups: list[list[int]], difficulty: Sequence[float]) -> list[list[int]]:
    """Neighbouring bins that share a difficulty value at their border cannot be told
    apart by a threshold: pool them."""
    pooled = [groups[0]]
    for group in groups[1:]:
        if difficulty[pooled[-1][-1]] == difficulty[group[0]]:
            pooled[-1] = pooled[-1] + group
        else:
            pooled.append(group)
    return pooled


@dataclass(frozen=True, slots=True)
class ProbeAgreementParams:
    k: int = 4
    """Probe samples, >= 2 (agreement needs at least two)."""
    max_tokens: int = 48
    """Per-sample cap: the probe is meant to be cheap."""
    temperature: float = 0.8
    """> 0, or every sample is the same and agreement says nothing."""
    instruction: str = prompts.DIRECT
    """The probe asks for the answer directly, so short samples still carry one."""

    def __post_init__(self) -> None:
        if not isinstance(self.k, int) or self.k < 2:
            raise ConfigError(f"probe k must be an integer >= 2, got {self.k!r}")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ConfigError(f"probe max_tokens must be an integer >= 1, "
                              f"got {self.max_tokens!r}")
        if not self.temperature > 0:
            raise ConfigError(f"probe temperature must be > 0, got {self.temperature!r}")


class ProbeAgreement:
    """Difficulty = 1 - the share of k short probe samples that give the majority answer
    (unanswered samples count against it)."""

    name = "probe"

    def __init__(self, calibration: CalibrationTable,
                 params: ProbeAgreementParams | None = None) -> None:
        self.calibration = calibration
        self.params = params if params is not None else ProbeAgreementParams()

    async def difficulty(self, problem: Problem, ctx: RunContext) -> float:
        return await probe_difficulty(problem, ctx, self.params)

    async def estimate(self, problem: Problem, ctx: RunContext) -> Estimate:
        difficulty = await self.difficulty(problem, ctx)
        return Estimate(difficulty, self.calibration.expected(difficulty))


@dataclass(frozen=True, slots=True)
class ProbeFeatures:
    """What one probe call shows about a question (the learned estimator's inputs)."""

    difficulty: float
    """1 - the majority answer's share of the probe samples."""
    unanswered: float
    """Share of probe samples with no readable answer."""
    length: float
    """Mean probe completion tokens over the probe's max_tokens (1: samples ran out)."""
    question_words: int
    question_numbers: int
    """How many numbers the question states (more numbers, more steps)."""

    def vector(self) -> list[float]:
        return [self.difficulty, self.unanswered, self.length,
                math.log1p(self.question_words), math.log1p(self.question_numbers)]


async def probe_features(problem: Problem, ctx: RunContext,
                         params: ProbeAgreementParams | None = None) -> ProbeFeatures:
    """Draw k short samples in one ``ctx.generate`` call and describe them."""
    params = params if params is not None else ProbeAgreementParams()
    sampling = ctx.sampling.with_(n=params.k, max_tokens=params.max_tokens, min_tokens=0,
                                  temperature=params.temperature)
    [completions] = await ctx.generate([problem.chat(params.instruction)], sampling,
                                       strategy=ProbeAgreement.name)
    answers = [Candidate.from_completion(c, problem.kind).answer for c in completions]
    tokens = [c.usage.completion_tokens for c in completions]
    return ProbeFeatures(1.0 - vote(answers, problem.kind).share,
                         sum(a is None for a in answers) / len(answers),
                         sum(tokens) / len(tokens) / params.max_tokens,
                         len(problem.question.split()),
                         len(_NUMBER.findall(problem.question)))


async def probe_difficulty(problem: Problem, ctx: RunContext,
                           params: ProbeAgreementParams | None = None) -> float:
    """1 - the majority share of k short samples, drawn in one ``ctx.generate`` call."""
    return (await probe_features(problem, ctx, params)).difficulty


def fit_per_level(x: Sequence[Sequence[float]] | Any, correct: Sequence[Sequence[bool]],
                  make_model: Callable[[], Any]) -> list[Any]:
    """One classifier per level on ``x``; a level whose labels are all equal gets its
    smoothed rate instead (one pseudo-item each way, so it never claims 0 or 1)."""
    models: list[Any] = []
    for level in range(len(correct[0])):
        y = [int(bool(row[level])) for row in correct]
        models.append((sum(y) + 1) / (len(y) + 2) if len(set(y)) < 2
                      else make_model().fit(x, y))
    return models


class LearnedEstimator:
    """Per level, a logistic regression of "answered correctly" on the probe's features
    (scikit-learn, the ``budget`` extra), fitted on an eval run: it learns which probe
    signals predict each level's success instead of using agreement alone."""

    name = "learned"

    def __init__(self, models: Sequence[Any], params: ProbeAgreementParams | None = None
                 ) -> None:
        self.models = list(models)
        self.params = params if params is not None else ProbeAgreementParams()

    @classmethod
    def fit(cls, features: Sequence[ProbeFeatures], correct: Sequence[Sequence[bool]], *,
            params: ProbeAgreementParams | None = None, c: float = 1.0) -> LearnedEstimator:
        """One model per level; a level whose labels are all equal predicts that rate
        (smoothed by one pseudo-item each way, so it never claims 0 or 1)."""
        try:
            from sklearn.linear_model import LogisticRegression
        except ImportError as exc:
            raise ConfigError("the learned estimator needs scikit-learn: "
                              "pip install 'ponder[budget]'") from exc
        if not features or len(features) != len(correct):
            raise ConfigError("learned estimator needs one row of per-level results per item")
        x = [f.vector() for f in features]
        return cls(fit_per_level(x, correct, lambda: LogisticRegression(C=c)), params)

    def predict(self, features: ProbeFeatures) -> tuple[float, ...]:
        x = [features.vector()]
        return tuple(float(m) if isinstance(m, float) else float(m.predict_proba(x)[0][1])
                     for m in self.models)

    async def estimate(self, problem: Problem, ctx: RunContext) -> Estimate:
        features = await probe_features(problem, ctx, self.params)
        return Estimate(features.difficulty, self.predict(features))
