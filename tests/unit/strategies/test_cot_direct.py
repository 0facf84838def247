from ponder import Engine
from ponder.backends.scripted import ScriptedBackend


def test_cot_is_one_greedy_sample() -> None:
    backend = ScriptedBackend(["4 pens at 3 dollars is 12 dollars.\nAnswer: 12"])
    answer = Engine(backend).ask("q", strategy="cot")
    assert answer.answer == "12"
    [(_, params)] = backend.calls
    assert params.n == 1 and params.temperature == 0.0


def test_direct_keeps_a_text_answer_without_numbers() -> None:
    backend = ScriptedBackend(["Paris"])
    answer = Engine(backend).ask("capital of France?", strategy="direct")
    assert answer.answer == "Paris"
    assert backend.calls[0][1].max_tokens == 64
