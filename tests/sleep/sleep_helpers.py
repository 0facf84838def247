"""Helpers shared by the sleep tests: a hand-moved clock and scripted sleep agents."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable

from ponder.backends.base import Prompt
from ponder.params import SamplingParams


class Clock:
    """A clock the test moves by hand (leases, backoff, idle triggers)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def user_text(prompt: Prompt) -> str:
    """The last user message of a chat prompt (or the raw prompt)."""
    if isinstance(prompt, str):
        return prompt
    return next(m["content"] for m in reversed(prompt) if m["role"] == "user")


def situation(prompt: Prompt) -> str:
    """The raw context a text-protocol sleep prompt shows."""
    match = re.search(r"Situation:\n(.*?)\n(?:\nQuestions already|\nNotes:|\nYour notes)",
                      user_text(prompt), re.DOTALL)
    assert match, user_text(prompt)
    return match.group(1)


def turn_counter(delay: float = 0.0) -> Callable[[Prompt, SamplingParams], Iterable[str]]:
    """A text-protocol sleep agent whose notes name the last turn and count the turns.

    Rethink prompts get FINISH, so each run is: notes, then done.
    """

    def respond(prompt: Prompt, params: SamplingParams) -> Iterable[str]:
        if delay:
            time.sleep(delay)
        if "Your notes so far" in user_text(prompt):
            return ["FINISH"] * params.n
        lines = situation(prompt).splitlines()
        return [f"last={lines[-1]} count={len(lines)}"] * params.n

    return respond
