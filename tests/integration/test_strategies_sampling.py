"""The sampling-style strategies end to end on the real embedded model.

SmolLM2-135M (``tiny_backend``) checks mechanics: every backend call lands
in the ledger, budgets hold, budget forcing edits the raw continuation, the
thought-switch penalty really moves the logits. It cannot do arithmetic, so
no test here asserts an answer; the one quality comparison runs on the 0.5B
model and is marked slow.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from ponder import Engine, Problem, SamplingParams
from ponder.backends.base import Backend, Completion, Message, Prompt
from ponder.backends.llamacpp import EmbeddedBackend
from ponder.ledger import Usage
from ponder.strategies.registry import Registry
from ponder.strategies.thought_switch_penalty import SwitchPenalty, switch_token_ids

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have now?"


class Recording(Backend):
    """Passes calls to the real backend and keeps what it returned, to audit the ledger.

    It calls the inner backend's generation hook directly, so each call is
    recorded once (by this wrapper, in the strategy's ledger).
    """

    kind = "embedded"

    def __init__(self, inner: EmbeddedBackend) -> None:
        super().__init__()
        self.inner = inner
        self.model = inner.model
        for flag in ("supports_raw_completion", "supports_logits_processor",
                     "supports_prefix_cache", "supports_logprobs"):
            setattr(self, flag, getattr(inner, flag))
        self.calls: list[tuple[list[Prompt], SamplingParams, list[list[Completion]]]] = []

    async def _agenerate(self, prompts: list[Prompt], params: SamplingParams
                         ) -> list[list[Completion]]:
        result = await self.inner._agenerate(prompts, params)
        self.calls.append((prompts, params, result))
        return result

    def render_chat(self, messages: Sequence[Message], *, add_generation_prompt: bool = True
                    ) -> str:
        return self.inner.render_chat(messages, add_generation_prompt=add_generation_prompt)

    def tokenize(self, text: str) -> list[int]:
        return self.inner.tokenize(text)

    def completions(self) -> list[Completion]:
        return [c for _, _, groups in self.calls for group in groups for c in group]


@pytest.fixture
def recording(tiny_backend: EmbeddedBackend) -> Recording:
    return Recording(tiny_backend)


def ask(backend: Backend, strategy: str, params: dict[str, Any], *, max_tokens: int = 48,
        max_total_tokens: int | None = None, question: str | Problem = QUESTION) -> Any:
    engine = Engine(backend, Registry.from_entry_points())
    return engine.ask(question, strategy=strategy, params=params,
                      sampling=SamplingParams(max_tokens=max_tokens, seed=0),
                      max_total_tokens=max_total_tokens)


CASES = [  # budgets below what each run would use, so that they bind
    ("zero-shot-cot", {}, 40),
    ("chain-of-draft", {}, 20),
    ("self-consistency", {"n": 5, "batch": 2}, 120),
    ("best-of-n", {"n": 3}, 90),
    ("weighted-best-of-n", {"n": 3}, 90),
    ("budget-forcing", {"min_thinking_tokens": 40, "max_thinking_tokens": 60,
                        "answer_max_tokens": 12}, 50),
    ("thought-switch-penalty", {"beta": 16}, 30),
    ("self-refine", {"rounds": 2}, 90),
    ("feedback-edit", {"rounds": 2}, 90),
    ("tpo", {"n": 2, "rounds": 1}, 100),
    ("think", {"reasoning_effort": "low"}, 20),
]


@pytest.mark.parametrize(("name", "params", "budget"), CASES, ids=[c[0] for c in CASES])
def test_ledger_matches_the_backend_and_the_budget_holds(
        recording: Recording, name: str, params: dict[str, Any], budget: int) -> None:
    answer = ask(recording, name, params, max_total_tokens=budget)
    seen = recording.completions()
    assert recording.calls, "the strategy made no backend call"
    assert answer.ledger.calls == len(recording.calls)
    assert answer.ledger.total() == Usage.sum(c.usage for c in seen)
    assert answer.ledger.total().completion_tokens == sum(len(c.token_ids or ()) for c in seen)
    assert answer.ledger.total().completion_tokens <= budget
    assert {e.strategy for e in answer.ledger.entries} <= {name, "llm-judge"}
    assert answer.ledger.entries[0].strategy == name
    assert answer.strategy == name and answer.candidates
    assert all(c.tokens >= 0 for c in answer.candidates)


@pytest.mark.parametrize("name", ["best-of-n", "weighted-best-of-n", "tpo"])
def test_verifier_strategies_score_with_the_models_logprobs(recording: Recording,
                                                            name: str) -> None:
    answer = ask(recording, name, {"n": 2, **({"rounds": 0} if name == "tpo" else {})},
                 max_tokens=32)
    judge_calls = [(prompts, params) for prompts, params, _ in recording.calls
                   if params.logprobs is not None]
    [(prompts, params)] = judge_calls
    assert len(prompts) == 2 and params.max_tokens == 1
    scores = [c.score for c in answer.candidates]
    assert all(s is not None and 0.0 <= s <= 1.0 for s in scores)
    assert answer.info["scored_by"] == "llm-judge"


def test_self_consistency_stops_early_on_a_unanimous_first_round(recording: Recording) -> None:
    # greedy samples agree, so the first round (n // 2 + 1 = 5 of 8) decides the vote
    answer = ask(recording, "self-consistency", {"n": 8, "temperature": 0.0}, max_tokens=24)
    assert [params.n for _, params, _ in recording.calls] == [5]
    assert len(answer.votes) == 1 and answer.info["stop_reason"] == "decided"
    assert answer.info["samples_skipped"] == 3
    mean = answer.ledger.total().completion_tokens / 5
    assert answer.info["tokens_saved_estimate"] == round(3 * mean) > 0


def test_budget_forcing_appends_wait_when_the_model_stops_early(recording: Recording) -> None:
    answer = ask(recording, "budget-forcing",
                 {"min_thinking_tokens": 40, "max_thinking_tokens": 64, "max_waits": 2},
                 question="Say hi.")
    assert answer.info["waits"] >= 1, "SmolLM2 ends its turn after ~25 tokens here"
    thinking = [(p[0], g[0][0]) for p, _, g in recording.calls[:answer.info["thinking_calls"]]]
    assert len(thinking) == answer.info["waits"] + 1
    for (prompt, step), (next_prompt, _) in itertools.pairwise(thinking):
        assert step.finish_reason == "stop"
        assert next_prompt.startswith(prompt + step.text)
        assert next_prompt.rstrip().endswith("Wait")
    # each continuation re-uses the prefix cache: only the appended word is prefilled
    for _, _, [[step]] in recording.calls[1:answer.info["thinking_calls"]]:
        assert step.usage.prefill_tokens <= 4
    last_prompt = recording.calls[-1][0][0]
    assert isinstance(last_prompt, str) and last_prompt.endswith("</think>\n\nFinal Answer:")


def test_budget_forcing_cuts_at_the_maximum(recording: Recording) -> None:
    answer = ask(recording, "budget-forcing",
                 {"min_thinking_tokens": 0, "max_thinking_tokens": 12, "answer_max_tokens": 8},
                 question="Write a long story about a robot who learns to paint.")
    first, answer_call = recording.calls
    [[think]] = first[2]
    assert think.finish_reason == "length" and think.usage.completion_tokens == 12
    assert answer.info["cut"] and answer.info["thinking_tokens"] == 12
    assert answer_call[0][0].endswith(f"{think.text.rstrip()}\n</think>\n\nFinal Answer:")
    assert answer_call[1].max_tokens == 8


def test_switch_penalty_lowers_the_switch_tokens_logits(tiny_backend: EmbeddedBackend) -> None:
    ids = list(switch_token_ids(tiny_backend, ["Alternatively", "Wait", "Another approach"]))
    assert tiny_backend.tokenize(" Wait")[0] in ids
    seen: list[np.ndarray] = []

    def record(generated: Sequence[int], logits: np.ndarray) -> np.ndarray:
        seen.append(logits.copy())
        return logits

    prompt = tiny_backend.render_chat([{"role": "user", "content": "Say: Wait, wait."}])
    for processors in ((record,), (SwitchPenalty(ids, 3.0, 600), record)):
        tiny_backend.generate([prompt], SamplingParams(max_tokens=1, temperature=0,
                                                       logits_processors=processors))
    plain, penalised = seen

    def prob(logits: np.ndarray) -> np.ndarray:
        z = np.exp(logits - logits.max())
        return z / z.sum()

    assert np.allclose(plain[ids] - penalised[ids], 3.0, atol=1e-3)
    others = np.setdiff1d(np.arange(plain.size), ids)
    assert np.allclose(plain[others], penalised[others], atol=1e-3)
    top = ids[int(np.argmax(plain[ids]))]
    assert prob(penalised)[top] < prob(plain)[top] / 10


def test_switch_penalty_reduces_switch_tokens_in_samples(recording: Recording) -> None:
    problem = Problem("Repeat exactly, five times: Wait, wait, wait.")

    def switches(alpha: float) -> int:
        engine = Engine(recording, Registry.from_entry_points())
        return sum(engine.ask(problem, strategy="thought-switch-penalty",
                              params={"alpha": alpha, "temperature": 0.7},
                              sampling=SamplingParams(max_tokens=40, seed=seed)
                              ).info["switch_tokens"] for seed in range(3))

    free, penalised = switches(0.0), switches(3.0)
    assert free >= 3, "the prompt should elicit switch words without the penalty"
    assert penalised < free / 2


@pytest.mark.slow
def test_chain_of_draft_uses_far_fewer_tokens_than_cot(default_backend: EmbeddedBackend
                                                       ) -> None:
    problems = [("A pen costs 3 dollars. How much do 4 pens cost?", 12),
                ("Sara had 15 stickers and gave away 6. How many stickers does she have?", 9),
                ("A box holds 8 eggs. How many eggs are in 5 boxes?", 40),
                ("Tom read 12 pages on Monday and 17 on Tuesday. How many pages in total?", 29)]
    tokens = {"cot": 0, "chain-of-draft": 0}
    right = {"cot": 0, "chain-of-draft": 0}
    for question, expected in problems:
        for name in tokens:
            answer = ask(default_backend, name, {}, max_tokens=256, question=question)
            tokens[name] += answer.ledger.total().completion_tokens
            right[name] += answer.answer == str(expected)
    print(f"\ncompletion tokens {tokens}, correct {right} of {len(problems)}")
    assert tokens["chain-of-draft"] < 0.5 * tokens["cot"]
    assert right["chain-of-draft"] >= len(problems) // 2
