"""Paper reproductions, one command each: ``ponder eval recipe NAME``.

1. ``sleep-pareto``: sleep-time vs test-time only (``sleep_pareto.py``)
2. ``sleep-scaling``: k sleep samples / rethink rounds (``sleep_scaling.py``)
3. ``amortisation``: 1, 2, 5, 10 queries per context (``amortisation.py``)
4. ``predictability``: the sleep gain by quintile of log p(q|c) (``predictability.py``)
5. ``search-equal-budget``: self-consistency vs best-of-N vs beam search
   (``search_equal_budget.py``)
"""

from __future__ import annotations

from ponder.evals.recipes import (
    amortisation,
    predictability,
    search_equal_budget,
    sleep_pareto,
    sleep_scaling,
)
from ponder.evals.recipes.base import Findings, Recipe, RecipeRun, arun_recipe

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    sleep_pareto.RECIPE, sleep_scaling.RECIPE, amortisation.RECIPE, predictability.RECIPE,
    search_equal_budget.RECIPE)}

__all__ = ["RECIPES", "Findings", "Recipe", "RecipeRun", "arun_recipe"]
