from ponder import Engine, Problem
from ponder.backends.scripted import ScriptedBackend
from ponder.strategies.registry import Registry


def engine_with(replies: list[str]) -> tuple[Engine, ScriptedBackend]:
    backend = ScriptedBackend(replies)
    return Engine(backend, Registry.from_entry_points()), backend


def test_reasoning_then_answer_extraction() -> None:
    engine, backend = engine_with(["He has 3 and buys 4 more, so 3 + 4 = 7 apples, 9 seeds",
                                   "7."])
    answer = engine.ask("Tom has 3 apples and buys 4. How many?", strategy="zero-shot-cot")
    assert answer.answer == "7"  # from the extraction, not the last number (9) of the reasoning
    assert answer.info["answer_from"] == "extraction"
    (first, p1), (second, p2) = backend.calls
    [user] = first[0]
    assert user["role"] == "user"
    assert user["content"] == "Tom has 3 apples and buys 4. How many?\n\nLet's think step by step."
    assert [m["role"] for m in second[0]] == ["user", "assistant", "user"]
    assert second[0][1]["content"] == answer.text
    assert second[0][2]["content"] == "Therefore, the answer (arabic numerals) is"
    assert p1.temperature == 0.0 and p2.max_tokens == 24
    assert [e.strategy for e in answer.ledger.entries] == ["zero-shot-cot"] * 2
    assert answer.ledger.total().completion_tokens == 16 + 1


def test_text_answers_use_the_plain_trigger() -> None:
    engine, backend = engine_with(["The capital of France is Paris.", "Paris."])
    answer = engine.ask(Problem("Capital of France?", kind="text"), strategy="zero-shot-cot")
    assert answer.answer == "Paris"
    assert backend.calls[1][0][0][-1]["content"] == "Therefore, the answer is"


def test_without_extraction_one_call() -> None:
    engine, backend = engine_with(["3 + 4 = 7"])
    answer = engine.ask("q", strategy="zero-shot-cot", params={"answer_extraction": "false"})
    assert len(backend.calls) == 1 and answer.answer == "7"
    assert answer.info["answer_from"] == "reasoning"


def test_out_of_budget_extraction_falls_back_to_the_reasoning() -> None:
    engine, backend = engine_with(["a b Answer: 5"])
    answer = engine.ask("q", strategy="zero-shot-cot", max_total_tokens=4)
    assert len(backend.calls) == 1
    assert answer.answer == "5" and answer.info["extraction"] is None
    assert answer.ledger.total().completion_tokens == 4
