import pytest

from ponder import Engine, Problem
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import BudgetExceeded, ConfigError
from ponder.params import SamplingParams
from ponder.strategies.registry import Registry
from ponder.strategies.self_consistency import decided
from ponder.verifiers.voting import vote


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
    # early stop: 3 samples (12, 12, 13) leave 12 ahead by 1 with 2 to go, so 2 more are drawn
    assert [params.n for _, params in backend.calls] == [3, 2]
    assert answer.info["samples_skipped"] == 0 and answer.info["stop_reason"] == "n"
    for prompts, params in backend.calls:
        assert params.temperature == 0.7
        assert "step by step" in prompts[0][0]["content"]


def test_without_early_stop_all_samples_go_in_one_call() -> None:
    engine, backend = engine_with(["Answer: 4"] * 5)
    answer = engine.ask("q", strategy="self-consistency",
                        params={"n": "5", "early_stop": "false"})
    [(prompts, params)] = backend.calls
    assert params.n == 5 and "step by step" in prompts[0][0]["content"]
    assert answer.votes == {"4": 5} and answer.info["samples_skipped"] == 0


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


def test_early_stop_after_the_first_round_when_the_vote_is_decided() -> None:
    engine, backend = engine_with(["Answer: 7"] * 5)
    answer = engine.ask("q", strategy="self-consistency", params={"n": 8})
    # n // 2 + 1 = 5 unanimous samples: 5 - 0 > 3 remaining, so nothing more is drawn
    assert [params.n for _, params in backend.calls] == [5]
    assert answer.votes == {"7": 5} and answer.confidence == 1.0
    assert answer.info["stop_reason"] == "decided"
    assert answer.info["samples_skipped"] == 3
    assert answer.info["tokens_saved_estimate"] == 3 * 2  # each sample cost 2 tokens
    assert {e.strategy for e in answer.ledger.entries} == {"self-consistency"}


def test_early_stop_arithmetic_over_rounds() -> None:
    replies = ["Answer: 7", "Answer: 7", "Answer: 7", "Answer: 8", "Answer: 8",  # 3-2, 3 left
               "Answer: 7", "x Answer: 7"]                                         # 5-2, 1 left
    engine, backend = engine_with(replies)
    answer = engine.ask("q", strategy="self-consistency", params={"n": 8, "batch": 2})
    assert [params.n for _, params in backend.calls] == [5, 2]
    assert answer.votes == {"7": 5, "8": 2}
    assert answer.info["samples_skipped"] == 1
    assert answer.info["tokens_saved_estimate"] == round(15 / 7)
    assert answer.ledger.total().completion_tokens == 15


def test_a_lead_equal_to_the_remaining_samples_is_not_decided() -> None:
    # 8, 7, 7 then one left: a tie is still possible and ties go to the first seen (8)
    engine, backend = engine_with(["Answer: 8", "Answer: 7", "Answer: 7", "Answer: 8"])
    answer = engine.ask("q", strategy="self-consistency", params={"n": 4})
    assert [params.n for _, params in backend.calls] == [3, 1]
    assert answer.answer == "8" and answer.votes == {"8": 2, "7": 2}


@pytest.mark.parametrize(("answers", "remaining", "expected"), [
    (["1", "1", "1"], 2, True), (["1", "1", "1"], 3, False), (["1", "1", "2"], 0, True),
    (["1", "2"], 0, False), ([None, None], 0, False), (["1", None, None], 0, True),
])
def test_decided(answers: list[str | None], remaining: int, expected: bool) -> None:
    assert decided(vote(answers), remaining) is expected


def test_budget_is_shared_fairly_between_rounds() -> None:
    engine, backend = engine_with(["w " * 50] * 8)
    answer = engine.ask("q", strategy="self-consistency", params={"n": 8}, max_total_tokens=50)
    # each round caps its samples at (budget left) // (samples still planned):
    # 50 // 8 = 6 for 5 samples, then 20 // 3 = 6 for 2, then 8 // 1 = 8 for the last
    assert [(params.n, params.max_tokens) for _, params in backend.calls] == \
        [(5, 6), (2, 6), (1, 8)]
    assert len(answer.candidates) == 8
    assert answer.ledger.total().completion_tokens == 50


def test_later_rounds_get_fresh_seeds_so_random_streams_do_not_repeat() -> None:
    replies = ["Answer: 7", "Answer: 7", "Answer: 7", "Answer: 8", "Answer: 8",
               "Answer: 7", "x Answer: 7"]
    engine, backend = engine_with(replies)
    engine.ask("q", strategy="self-consistency", params={"n": 8, "batch": 2},
               sampling=SamplingParams(seed=42))
    seeds = [params.seed for _, params in backend.calls]
    assert seeds[0] == 42 and len(set(seeds)) == len(seeds) == 2
    again, backend_again = engine_with(replies)
    again.ask("q", strategy="self-consistency", params={"n": 8, "batch": 2},
              sampling=SamplingParams(seed=42))
    assert [params.seed for _, params in backend_again.calls] == seeds  # still reproducible

