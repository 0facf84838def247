"""Helpers for the evaluation tests: scripted engines that know the gold answers."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ponder.backends.base import Prompt
from ponder.backends.scripted import ScriptedBackend
from ponder.engine import Engine
from ponder.evals.datasets import Dataset
from ponder.params import SamplingParams


def question_of(prompt: Prompt) -> str:
    assert not isinstance(prompt, str)
    return str(prompt[-1]["content"])


def oracle_engine(dataset: Dataset, *, right: Callable[[int], bool] = lambda i: True,
                  words: int = 5) -> tuple[Engine, ScriptedBackend]:
    """A scripted engine that answers item i correctly when ``right(i)``; else "-1"."""
    index = {item.full_question: (i, item.answer) for i, item in enumerate(dataset.items)}

    def respond(prompt: Prompt, params: SamplingParams) -> Iterable[str]:
        i, gold = index[question_of(prompt)]
        answer = gold if right(i) else "-1"
        return [" ".join(["step"] * words) + f" Answer: {answer}"] * params.n

    backend = ScriptedBackend(respond)
    return Engine(backend), backend
