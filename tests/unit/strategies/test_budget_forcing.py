from collections.abc import Sequence

import pytest

from ponder import Engine, Problem
from ponder.backends.base import Message
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import BudgetExceeded, CapabilityError, ConfigError
from ponder.strategies.registry import Registry


class TemplatedScripted(ScriptedBackend):
    """Scripted replies plus a toy chat template, so raw prompts can be rendered."""

    def render_chat(self, messages: Sequence[Message], *, add_generation_prompt: bool = True
                    ) -> str:
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + \
            "<assistant>"


def run(replies: list[str], **params: object) -> tuple[object, TemplatedScripted]:
    backend = TemplatedScripted(replies)
    max_total = params.pop("max_total_tokens", None)
    answer = Engine(backend, Registry.from_entry_points()).ask(
        Problem("2+2?"), strategy="budget-forcing", params=params,
        max_total_tokens=max_total)  # type: ignore[arg-type]
    return answer, backend


def test_wait_is_appended_while_thinking_is_below_the_minimum() -> None:
    answer, backend = run(["a b c", "d e", "f g", "4"], min_thinking_tokens=10,
                          max_thinking_tokens=100, max_waits=2)
    prompts = [call[0][0] for call in backend.calls]
    assert len(prompts) == 4
    head = prompts[0]
    assert head.startswith("<system>") and head.endswith("<assistant><think>\n")
    # each early stop (at 3, then 5 thinking tokens) is replaced by "Wait"; the third
    # stop (at 7) is accepted because k = 2 waits are used up
    assert prompts[1] == head + "a b c Wait"
    assert prompts[2] == head + "a b c Waitd e Wait"
    assert prompts[3] == head + "a b c Waitd e Waitf g\n</think>\n\nFinal Answer:"
    assert [call[1].stop for call in backend.calls] == [("</think>",)] * 3 + [()]
    assert [call[1].max_tokens for call in backend.calls] == [100, 97, 95, 64]
    assert answer.answer == "4"
    expected = {"waits": 2, "thinking_tokens": 7, "cut": False, "attempts_to_stop": [3, 5, 7],
                "thinking_calls": 3, "answer_tokens": 1, "budget_exhausted": False}
    assert {k: answer.info[k] for k in expected} == expected
    assert [e.strategy for e in answer.ledger.entries] == ["budget-forcing"] * 4


def test_thinking_past_the_minimum_stops_without_wait() -> None:
    answer, backend = run(["a b c", "7"], min_thinking_tokens=3)
    assert len(backend.calls) == 2 and answer.info["waits"] == 0
    assert answer.answer == "7"


def test_maximum_cuts_and_forces_the_answer() -> None:
    answer, backend = run(["w " * 10, "12"], max_thinking_tokens=4)
    (_, think_params), (answer_prompts, _) = backend.calls
    assert think_params.max_tokens == 4
    assert answer_prompts[0].endswith("<think>\nw w w w\n</think>\n\nFinal Answer:")
    assert answer.info["cut"] and answer.info["thinking_tokens"] == 4
    assert answer.answer == "12"
    assert "</think>\n\nFinal Answer:12" in answer.text


def test_thinking_leaves_the_answer_its_share_of_the_budget() -> None:
    answer, backend = run(["w " * 30, "5 5 5 5 5 5"], max_total_tokens=20, answer_max_tokens=5)
    assert [call[1].max_tokens for call in backend.calls] == [15, 5]
    assert answer.ledger.total().completion_tokens == 20
    assert answer.info["cut"] and not answer.info["budget_exhausted"]


def test_a_budget_below_the_answer_reserve_skips_thinking() -> None:
    answer, backend = run(["9 9 9 9"], max_total_tokens=3, answer_max_tokens=5)
    [(prompts, params)] = backend.calls
    assert prompts[0].endswith("<think>\n\n</think>\n\nFinal Answer:")
    assert params.max_tokens == 3
    assert answer.info["cut"] and answer.info["thinking_tokens"] == 0
    assert answer.answer == "9"  # "Final Answer: 9 9 9" -> its last number
    assert answer.ledger.total().completion_tokens == 3


def test_no_budget_at_all_is_an_error() -> None:
    with pytest.raises(BudgetExceeded):
        run([], max_total_tokens=0)


def test_backends_without_raw_continuation_are_refused_clearly() -> None:
    class ChatOnly(TemplatedScripted):
        supports_raw_completion = False

    with pytest.raises(CapabilityError, match="budget-forcing needs raw continuation"):
        Engine(ChatOnly([]), Registry.from_entry_points()).ask("q", strategy="budget-forcing")


def test_bad_params() -> None:
    with pytest.raises(ConfigError, match="max_thinking_tokens must be an integer >= 1"):
        Registry.from_entry_points().create("budget-forcing", {"max_thinking_tokens": "0"})
