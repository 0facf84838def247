"""Step-level search and composition end to end on the real tiny model (SmolLM2-135M).

SmolLM2 cannot do arithmetic, so these tests check mechanics, not answers: the
ledger is exactly the sum of the backend calls, each row carries the name of
whoever made the call (the search or its step scorer), the token budget is
never exceeded, and a step continuation is served from the prefix cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ponder import Engine, Problem, SamplingParams, Usage
from ponder.backends.base import Completion, Prompt
from ponder.backends.llamacpp import EmbeddedBackend

Call = tuple[list[Prompt], SamplingParams, list[list[Completion]]]

PROBLEM = Problem("Tom has 3 apples and buys 4 more. How many apples does he have now?")
BUDGET = 400
SEARCHES = {
    "beam-search": {"n": 4, "beam_width": 2, "max_depth": 2},
    "dvts": {"n": 4, "beam_width": 2, "max_depth": 2},
    "mcts": {"simulations": 3, "expansion_width": 2, "max_depth": 2},
    "mcts-rollout": {"simulations": 2, "expansion_width": 2, "max_depth": 2,
                     "value": "rollout"},
}
STEP_CAPS = {"max_step_tokens": 24, "final_max_tokens": 32}
SCORER = "llm-step-scorer"


@pytest.fixture
def calls(tiny_backend: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Call]]:
    """Every backend call with its prompts, params and completions, in order."""
    recorded: list[Call] = []
    original = tiny_backend._generate

    def recording(prompts: list[Prompt], params: SamplingParams, **kw: Any
                  ) -> list[list[Completion]]:
        out = original(prompts, params, **kw)
        recorded.append((list(prompts), params, out))
        return out

    monkeypatch.setattr(tiny_backend, "_generate", recording)
    yield recorded


def ask(backend: EmbeddedBackend, strategy: str, params: dict[str, Any] | None = None,
        budget: int | None = BUDGET) -> Any:
    return Engine(backend).ask(PROBLEM, strategy=strategy, params=params,
                               sampling=SamplingParams(max_tokens=64, seed=0),
                               max_total_tokens=budget)


def assert_ledger_matches(answer: Any, calls: list[Call]) -> None:
    entries = answer.ledger.entries
    assert len(entries) == len(calls)
    for entry, (_, _, out) in zip(entries, calls, strict=True):
        flat = [c for group in out for c in group]
        assert entry.usage == Usage.sum(c.usage for c in flat)
        assert entry.completions == len(flat)
        assert entry.usage.completion_tokens == sum(len(c.token_ids or ()) for c in flat)
    assert answer.ledger.total() == Usage.sum(e.usage for e in entries)


@pytest.mark.parametrize("case", list(SEARCHES))
def test_search_ledger_budget_and_prefix_cache(case: str, tiny_backend: EmbeddedBackend,
                                               calls: list[Call]) -> None:
    name = case.split("-rollout")[0]
    answer = ask(tiny_backend, name, SEARCHES[case] | STEP_CAPS)
    assert answer.strategy == name and answer.candidates
    assert all(c.score is not None and 0.0 <= c.score <= 1.0 for c in answer.candidates)
    assert answer.text in {c.text for c in answer.candidates}
    assert_ledger_matches(answer, calls)
    assert answer.ledger.total().completion_tokens <= BUDGET
    rows = [(e.strategy, params) for e, (_, params, _) in zip(answer.ledger.entries, calls,
                                                               strict=True)]
    assert {s for s, _ in rows} == {name, SCORER}
    for strategy, params in rows:
        if strategy == SCORER:  # one greedy token with logprobs per question
            assert (params.max_tokens, params.temperature, params.logprobs) == (1, 0.0, 10)
        else:
            assert params.max_tokens <= 32 and params.logprobs is None
    # continuations are raw text that starts with the rendered chat (the first prompt)
    search_calls = [(p, out) for (s, _), (p, _, out) in zip(rows, calls, strict=True)
                    if s == name]
    head = search_calls[0][0][0]
    head_tokens = search_calls[0][1][0][0].usage.prompt_tokens
    for prompts, out in search_calls[1:]:
        assert all(isinstance(p, str) and p.startswith(head) for p in prompts)
        # the chat and the steps so far come from the prefix cache, not a new prefill
        first = out[0][0].usage
        assert first.cached_prompt_tokens >= head_tokens - 1
        assert first.prefill_tokens < first.prompt_tokens - head_tokens + 2
    # the scorer's questions replay the same chat, so their start is in the cache too
    for (strategy, _), (_, _, out) in zip(rows, calls, strict=True):
        if strategy == SCORER:
            assert out[0][0].usage.cached_prompt_tokens >= head_tokens - 2


@pytest.mark.parametrize("name", ["beam-search", "dvts", "mcts"])
def test_a_tight_budget_stops_the_search_gracefully(name: str, tiny_backend: EmbeddedBackend,
                                                    calls: list[Call]) -> None:
    params = (SEARCHES[name] | STEP_CAPS) | ({"simulations": 6} if name == "mcts" else {})
    budget = 20
    answer = ask(tiny_backend, name, params, budget=budget)
    assert answer.ledger.total().completion_tokens <= budget
    assert answer.info["stopped"] == "budget"
    assert answer.candidates and answer.text
    assert_ledger_matches(answer, calls)


def test_pipeline_and_parallel_on_the_real_model(tiny_backend: EmbeddedBackend,
                                                 calls: list[Call]) -> None:
    answer = ask(tiny_backend, "chain-of-draft(max_tokens=24)>self-refine(rounds=1,"
                               "max_tokens=24)", budget=300)
    assert answer.strategy == "chain-of-draft(max_tokens=24)>self-refine(rounds=1,max_tokens=24)"
    stages = answer.info["stages"]
    assert [s["strategy"].split("(")[0] for s in stages] == ["chain-of-draft", "self-refine"]
    assert sum(s["completion_tokens"] for s in stages) == answer.ledger.total().completion_tokens
    draft = calls[0][2][0][0].text
    later = [p for prompts, _, _ in calls[1:] for p in prompts]
    assert draft.strip() and all("Earlier attempt" in str(p) and draft.strip() in str(p)
                                 for p in later)
    assert_ledger_matches(answer, calls)
    assert answer.ledger.total().completion_tokens <= 300

    calls.clear()
    answer = ask(tiny_backend, "cot(max_tokens=24)|beam-search(n=2,beam_width=1,max_depth=2,"
                               "max_step_tokens=16,final_max_tokens=24)", budget=200)
    assert answer.strategy.startswith("cot(max_tokens=24)|beam-search(")
    assert {e.strategy for e in answer.ledger.entries} == {"cot", "beam-search", SCORER}
    assert answer.votes is not None and sum(answer.votes.values()) <= len(answer.candidates)
    assert answer.text in {c.text for c in answer.candidates}
    assert_ledger_matches(answer, calls)
    assert answer.ledger.total().completion_tokens <= 200
    # the first branch may use half the budget, no more
    assert answer.info["branches"][0]["completion_tokens"] <= 100
