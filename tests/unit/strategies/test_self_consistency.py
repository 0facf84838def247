import pytest

from ponder import Engine, Problem
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import BudgetExceeded, ConfigError
from ponder.strategies.registry import Registry


def engine_with(replies: list[str]) -> tuple[Engine, ScriptedBackend]:
    backend = ScriptedBackend(replies)
    return Engine(backend, Registry.from_entry_points()), backend


def test_majority_vote_with_vote_shares() -> None:
    engine, backend = engine_with(["so Answer: 12", "\\boxed{12}", "Answer: 13", "hmm",
                                   "Answer: 12.0"])
    answer = engine.ask("q", strategy="self-consistency", params={"n": "5"})
    assert answer.answer == "12"
    assert answer.votes == {"12": 3, "13": 1}
    assert answer.confidence == pytest.approx(0.6)
    assert answer.info["unanswered"] == 1
    assert answer.text == "so Answer: 12"
    # one backend call with n=5 and a chain-of-thought instruction
    [(prompts, params)] = backend.calls
    assert params.n == 5 and params.temperature == 0.7
    assert "step by step" in prompts[0][0]["content"]


def test_ledger_rows_carry_the_strategy_and_sum_usage() -> None:
    engine, _ = engine_with(["a b c Answer: 1", "Answer: 1"])
    answer = engine.ask("q", strategy="self-consistency", params={"n": 2})
    [entry] = answer.ledger.entries
    assert (entry.phase, entry.strategy, entry.backend, entry.completions) == \
        ("test", "self-consistency", "scripted", 2)
    # scripted usage: 10 prompt tokens, the second sample's prompt counted as cached
    assert entry.usage.prompt_tokens == 20 and entry.usage.cached_prompt_tokens == 10
    assert entry.usage.completion_tokens == 5 + 2
    assert sum(c.tokens for c in answer.candidates) == entry.usage.completion_tokens


def test_budget_trims_samples_then_refuses() -> None:
    engine, backend = engine_with(["w " * 50] * 4)
    answer = engine.ask("q", strategy="self-consistency", params={"n": 4},
                        max_total_tokens=40)
    assert backend.calls[0][1].max_tokens == 10
    assert answer.ledger.total().completion_tokens == 40
    with pytest.raises(BudgetExceeded, match="budget of 3"):
        engine.ask("q", strategy="self-consistency", params={"n": 4}, max_total_tokens=3)


def test_bad_params_are_config_errors() -> None:
    registry = Registry.from_entry_points()
    with pytest.raises(ConfigError, match="n must be an integer >= 1"):
        registry.create("self-consistency", {"n": "0"})
    with pytest.raises(ConfigError, match="cannot read 'x' as int"):
        registry.create("self-consistency", {"n": "x"})
    with pytest.raises(ConfigError, match="no parameter 'beams'"):
        registry.create("self-consistency", {"beams": "2"})


def test_problem_messages_are_kept_whole() -> None:
    engine, backend = engine_with(["Answer: 3"])
    messages = ({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "1+2?"})
    engine.ask(Problem("1+2?", messages=messages), strategy="cot")
    [(prompts, _)] = backend.calls
    assert [m["role"] for m in prompts[0]] == ["system", "user", "assistant", "user"]
    assert prompts[0][1:] == [dict(m) for m in messages]
