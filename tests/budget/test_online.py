"""The rolling budget, driven by a fake clock."""

from __future__ import annotations

import pytest

from ponder.budget.online import RollingBudget
from ponder.errors import ConfigError


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


LEVELS = [10, 100, 400]


def test_levels_fall_as_the_budget_drains_and_rise_as_it_refills() -> None:
    clock = FakeClock()
    budget = RollingBudget(2000, window_seconds=60, share=0.25, clock=clock)
    assert budget.choose(LEVELS) == 2  # 500 allowed
    budget.record(1000)
    assert budget.available() == 1000
    assert budget.choose(LEVELS) == 1  # 250 allowed
    clock.now = 30
    budget.record(990)
    assert budget.choose(LEVELS) == 0  # 10 left, 2.5 allowed: cheapest, not a refusal
    clock.now = 60.5  # the first 1000 leave the window
    assert budget.spent() == 990
    assert budget.choose(LEVELS) == 1
    clock.now = 91
    assert budget.spent() == 0
    assert budget.choose(LEVELS) == 2


@pytest.mark.parametrize("kwargs", [dict(tokens_per_window=0), dict(tokens_per_window=10,
                                    window_seconds=0), dict(tokens_per_window=10, share=0)])
def test_bad_settings_are_config_errors(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        RollingBudget(**kwargs)
