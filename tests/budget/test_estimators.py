"""Probe agreement and the calibration table (scripted backend: exact logic)."""

from __future__ import annotations

import asyncio

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.budget.estimators import (
    CalibrationTable,
    DifficultyEstimator,
    LearnedEstimator,
    ProbeAgreement,
    ProbeAgreementParams,
    ProbeFeatures,
)
from ponder.errors import ConfigError
from ponder.ledger import Ledger
from ponder.strategies.base import Problem, RunContext

TABLE = CalibrationTable((0.4,), ((0.9, 0.95), (0.2, 0.6)))


def _estimate(replies: list[str]) -> tuple[float, tuple[float, ...], Ledger]:
    ledger = Ledger()
    ctx = RunContext(backend=ScriptedBackend(replies), ledger=ledger)
    probe = ProbeAgreement(TABLE, ProbeAgreementParams(k=4, max_tokens=8))
    estimate = asyncio.run(probe.estimate(Problem("What is 2+2?"), ctx))
    return estimate.difficulty, estimate.accuracy, ledger


def test_agreeing_probes_are_easy_and_billed_to_the_ledger() -> None:
    difficulty, accuracy, ledger = _estimate(["Answer: 4"] * 4)
    assert difficulty == 0.0
    assert accuracy == (0.9, 0.95)
    assert ledger.total().completion_tokens == 8
    assert ledger.snapshot()[0].strategy == "probe"


def test_disagreeing_probes_are_hard() -> None:
    difficulty, accuracy, _ = _estimate(["Answer: 4", "Answer: 5", "Answer: 6", "no idea"])
    assert difficulty == pytest.approx(0.75)
    assert accuracy == (0.2, 0.6)


def test_probe_is_a_difficulty_estimator() -> None:
    assert isinstance(ProbeAgreement(TABLE), DifficultyEstimator)


def test_fit_bins_by_quantile_and_smooths_towards_the_overall_rate() -> None:
    difficulty = [0.0, 0.0, 0.1, 0.8, 0.9, 1.0]
    correct = [[True, True]] * 3 + [[False, True], [False, False], [False, True]]
    table = CalibrationTable.fit(difficulty, correct, bins=2, prior=0.0)
    assert table.edges == (pytest.approx(0.45),)
    assert table.accuracy == ((1.0, 1.0), (0.0, pytest.approx(2 / 3)))
    smoothed = CalibrationTable.fit(difficulty, correct, bins=2, prior=2.0)
    assert 0 < smoothed.accuracy[1][0] < smoothed.accuracy[0][0] < 1
    assert CalibrationTable.from_dict(table.to_dict()) == table


def test_fit_pools_bins_that_share_a_difficulty() -> None:
    table = CalibrationTable.fit([0.5] * 4, [[True], [False], [True], [True]], bins=2, prior=0)
    assert table.edges == ()
    assert table.accuracy == ((0.75,),)


def test_bad_calibration_and_probe_params_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="edges"):
        CalibrationTable((0.7, 0.3), ((0.1,), (0.2,), (0.3,)))
    with pytest.raises(ConfigError, match="k"):
        ProbeAgreementParams(k=1)


def _features(difficulty: float) -> ProbeFeatures:
    return ProbeFeatures(difficulty, 0.0, 0.5, 20, 3)


def test_learned_estimator_learns_that_disagreement_predicts_failure() -> None:
    grid = [i / 20 for i in range(21)]
    # level 0 succeeds below 0.5 disagreement; level 1 always succeeds
    correct = [[d < 0.5, True] for d in grid]
    learned = LearnedEstimator.fit([_features(d) for d in grid], correct, c=10.0)
    easy, hard = learned.predict(_features(0.0)), learned.predict(_features(1.0))
    assert easy[0] > 0.7 > 0.3 > hard[0]
    assert easy[1] == hard[1] == pytest.approx(22 / 23)  # constant level, smoothed


def test_learned_estimator_probes_through_the_ledger() -> None:
    grid = [i / 10 for i in range(11)]
    learned = LearnedEstimator.fit([_features(d) for d in grid], [[d < 0.5] for d in grid],
                                   params=ProbeAgreementParams(k=2, max_tokens=8))
    ledger = Ledger()
    ctx = RunContext(backend=ScriptedBackend(["Answer: 1", "Answer: 2"]), ledger=ledger)
    estimate = asyncio.run(learned.estimate(Problem("What is 3 + 4 + 5?"), ctx))
    assert estimate.difficulty == 0.5 and len(estimate.accuracy) == 1
    assert [e.strategy for e in ledger.entries] == ["probe"]
    assert isinstance(learned, DifficultyEstimator)
