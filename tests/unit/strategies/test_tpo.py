from collections.abc import Sequence

import pytest

from ponder import Problem, RunContext
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import ConfigError
from ponder.strategies.registry import Registry
from ponder.strategies.tpo import TPO, TPOParams

SCORES = {"5": 0.2, "6": 0.9, "7": 0.5}


class ScoreByAnswer:
    name = "by-answer"

    async def score(self, problem: Problem, candidates: Sequence[str],
                    ctx: RunContext) -> list[float]:
        return [SCORES.get(c.rsplit("Answer: ", 1)[-1], 0.0) for c in candidates]


def test_critique_of_best_vs_worst_guides_the_next_samples() -> None:
    backend = ScriptedBackend(["x Answer: 5", "y Answer: 7",   # round 0: 0.2, 0.5
                               "A is clearer; check the sum.",  # textual loss + gradient
                               "z Answer: 6", "w Answer: 5"])   # round 1: 0.9, 0.2
    ctx = RunContext(backend=backend, verifier=ScoreByAnswer())
    answer = backend.run_sync(TPO(TPOParams(n=2, rounds=1)).run(Problem("q"), ctx))
    assert answer.answer == "6" and answer.text == "z Answer: 6" and answer.confidence == 0.9
    assert [c.score for c in answer.candidates] == [0.2, 0.5, 0.9, 0.2]
    assert answer.info["rounds"] == 1 and answer.info["stop_reason"] == "rounds"
    _, (critique_prompts, critique_params), (update_prompts, update_params) = backend.calls
    critique = critique_prompts[0][0]["content"]
    assert "Response A (preferred, score 0.50):\ny Answer: 7" in critique
    assert "Response B (rejected, score 0.20):\nx Answer: 5" in critique
    assert critique_params.temperature == 0.0 and critique_params.n == 1
    update = update_prompts[0]
    assert update[-2] == {"role": "assistant", "content": "y Answer: 7"}
    assert "A is clearer; check the sum." in update[-1]["content"]
    assert update_params.n == 2 and update_params.temperature == 0.7
    assert {e.strategy for e in ctx.ledger.entries} == {"tpo"}


def test_zero_rounds_is_best_of_n() -> None:
    backend = ScriptedBackend(["Answer: 5", "Answer: 7"])
    ctx = RunContext(backend=backend, verifier=ScoreByAnswer())
    answer = backend.run_sync(TPO(TPOParams(n=2, rounds=0)).run(Problem("q"), ctx))
    assert len(backend.calls) == 1 and answer.answer == "7"


def test_budget_is_split_over_rounds_and_ends_them_gracefully() -> None:
    backend = ScriptedBackend(["w " * 20] * 2 + ["critique " * 20] + ["Answer: 6 " * 10] * 2)
    ctx = RunContext(backend=backend, verifier=ScoreByAnswer(), max_total_tokens=30)
    answer = backend.run_sync(TPO(TPOParams(n=2, rounds=1)).run(Problem("q"), ctx))
    # round 0 keeps room for round 1: 30 // (2 rounds x (2 samples + 1 critique)) = 5 tokens;
    # then 20 left: the critique gets 20 // 3 = 6, the last samples 14 // 3 = 4 each
    assert [call[1].max_tokens for call in backend.calls] == [5, 6, 4]
    assert ctx.ledger.total().completion_tokens == 10 + 6 + 8
    assert len(answer.candidates) == 4 and answer.answer == "6"


def test_registry_validation() -> None:
    registry = Registry.from_entry_points()
    with pytest.raises(ConfigError, match="tpo n must be an integer >= 2"):
        registry.create("tpo", {"n": "1"})
    with pytest.raises(ConfigError, match="tpo rounds must be an integer >= 0"):
        registry.create("tpo", {"rounds": "-2"})


def test_running_out_mid_round_returns_the_best_so_far() -> None:
    backend = ScriptedBackend(["Answer: 5", "Answer: 7", "critique", "Answer: 6", "Answer: 6"])
    ctx = RunContext(backend=backend, verifier=ScoreByAnswer(), max_total_tokens=4)
    answer = backend.run_sync(TPO(TPOParams(n=2, rounds=1)).run(Problem("q"), ctx))
    # 1 token per sample (2), 1 for the critique, and 1 left cannot feed 2 new samples
    assert len(backend.calls) == 2
    assert answer.info["stop_reason"] == "budget" and len(answer.candidates) == 2
    assert ctx.ledger.total().completion_tokens == 3
