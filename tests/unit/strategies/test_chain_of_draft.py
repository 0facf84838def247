import pytest

from ponder import Engine, Problem
from ponder.backends.scripted import ScriptedBackend
from ponder.strategies.chain_of_draft import SEPARATOR, extract_after_separator
from ponder.strategies.registry import Registry


def engine_with(replies: list[str]) -> tuple[Engine, ScriptedBackend]:
    backend = ScriptedBackend(replies)
    return Engine(backend, Registry.from_entry_points()), backend


def test_draft_prompt_example_and_answer_after_the_separator() -> None:
    engine, backend = engine_with(["3 + 4 = 7; 7 * 2 = 14. #### 14"])
    answer = engine.ask("Double the sum of 3 and 4.", strategy="chain-of-draft")
    assert answer.answer == "14" and answer.info["separator_found"]
    [(prompts, params)] = backend.calls
    chat = prompts[0]
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert "5 words at most" in chat[0]["content"] and SEPARATOR in chat[0]["content"]
    assert chat[2]["content"].endswith(f"{SEPARATOR} 8")
    assert chat[3]["content"] == "Double the sum of 3 and 4."
    assert params.temperature == 0.0 and params.n == 1
    [entry] = answer.ledger.entries
    assert entry.strategy == "chain-of-draft" and entry.usage.completion_tokens == 12
    assert answer.candidates[0].tokens == 12


def test_zero_shot_variant_has_no_example() -> None:
    engine, backend = engine_with(["#### 3"])
    engine.ask("q", strategy="chain-of-draft", params={"few_shot": "false"})
    [(prompts, _)] = backend.calls
    assert [m["role"] for m in prompts[0]] == ["system", "user"]


@pytest.mark.parametrize(("text", "kind", "expected"), [
    ("20 - x = 12; x = 8. #### 8", "math", "8"),
    ("a #### 1 #### $1,250.\nmore text 99", "math", "1,250"),
    ("capital of France. #### Paris\nThe end", "text", "Paris"),
    ("no separator, Answer: 5", "math", "5"),
    ("steps: 2 + 2 = 4 ####   ", "math", "4"),
    ("", "math", None),
])
def test_extract_after_separator(text: str, kind: str, expected: str | None) -> None:
    assert extract_after_separator(text, kind) == expected  # type: ignore[arg-type]


def test_budget_caps_the_draft() -> None:
    engine, backend = engine_with(["w " * 40 + "#### 1"])
    answer = engine.ask(Problem("q"), strategy="chain-of-draft", max_total_tokens=10)
    assert backend.calls[0][1].max_tokens == 10
    assert answer.ledger.total().completion_tokens == 10
    assert answer.info["separator_found"] is False
