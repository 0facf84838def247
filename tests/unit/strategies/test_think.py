import pytest

from ponder import Engine, Problem
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import ConfigError
from ponder.strategies import prompts
from ponder.strategies.registry import Registry


def run(reply: str, question: str | Problem = "q", **params: object
        ) -> tuple[object, ScriptedBackend]:
    backend = ScriptedBackend([reply])
    answer = Engine(backend, Registry.from_entry_points()).ask(question, strategy="think",
                                                               params=params)
    return answer, backend


@pytest.mark.parametrize(("effort", "max_tokens", "phrase"), [
    ("none", 64, prompts.DIRECT), ("low", 192, "a few short steps"),
    ("medium", 512, prompts.COT), ("high", 1024, "check each step"),
])
def test_effort_sets_prompt_and_budget(effort: str, max_tokens: int, phrase: str) -> None:
    answer, backend = run("Answer: 3", reasoning_effort=effort)
    [(chat, params)] = backend.calls
    assert phrase in chat[0][0]["content"]
    assert params.max_tokens == max_tokens and params.temperature == 0.0
    assert answer.answer == "3" and answer.info["reasoning_effort"] == effort
    assert [e.strategy for e in answer.ledger.entries] == ["think"]


def test_max_tokens_overrides_the_effort_budget() -> None:
    _, backend = run("Answer: 3", reasoning_effort="high", max_tokens=40)
    assert backend.calls[0][1].max_tokens == 40


def test_no_effort_keeps_a_bare_reply_as_the_answer() -> None:
    answer, _ = run("Paris", Problem("Capital of France?", kind="text"), reasoning_effort="none")
    assert answer.answer == "Paris"


@pytest.mark.parametrize(("effort", "tag"), [("none", " /no_think"), ("low", " /think")])
def test_soft_switch_tags_the_user_turn(effort: str, tag: str) -> None:
    _, backend = run("Answer: 1", "2-1?", reasoning_effort=effort, soft_switch=True)
    assert backend.calls[0][0][0][-1]["content"] == f"2-1?{tag}"


def test_unknown_effort_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot read 'max'"):
        Registry.from_entry_points().create("think", {"reasoning_effort": "max"})
