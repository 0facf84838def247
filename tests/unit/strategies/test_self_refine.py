import pytest

from ponder import Engine
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import ConfigError
from ponder.strategies.registry import Registry
from ponder.strategies.self_refine import FEEDBACK, REFINE, found_nothing


def run(replies: list[str], **kwargs: object) -> tuple[object, ScriptedBackend]:
    backend = ScriptedBackend(replies)
    answer = Engine(backend, Registry.from_entry_points()).ask("2+3?", strategy="self-refine",
                                                               **kwargs)  # type: ignore[arg-type]
    return answer, backend


def test_refines_until_the_critique_finds_nothing() -> None:
    answer, backend = run(["Answer: 6", "2+3 is 5, not 6.", "Answer: 5", "NO ISSUES"],
                          params={"rounds": 3})
    assert answer.answer == "5" and answer.text == "Answer: 5"
    assert [c.answer for c in answer.candidates] == ["6", "5"]
    assert [c.score for c in answer.candidates] == [0.0, 1.0]
    assert answer.confidence == 1.0
    assert answer.info["stop_reason"] == "no issues" and answer.info["rounds"] == 1
    chats = [call[0][0] for call in backend.calls]
    assert len(chats) == 4
    # one growing conversation: each call sees every earlier draft and critique
    assert [m["role"] for m in chats[3]] == ["system", "user", "assistant", "user", "assistant",
                                             "user", "assistant", "user"]
    assert [m["content"] for m in chats[3][2:]] == ["Answer: 6", FEEDBACK, "2+3 is 5, not 6.",
                                                   REFINE, "Answer: 5", FEEDBACK]
    assert chats[2] == chats[3][:6]
    assert {e.strategy for e in answer.ledger.entries} == {"self-refine"}


def test_stops_after_the_rounds() -> None:
    answer, backend = run(["Answer: 6", "wrong", "Answer: 5"], params={"rounds": 1})
    assert len(backend.calls) == 3 and answer.answer == "5"
    assert [c.score for c in answer.candidates] == [0.0, None]
    assert answer.info["stop_reason"] == "rounds"


def test_zero_rounds_is_one_draft() -> None:
    answer, backend = run(["Answer: 6"], params={"rounds": 0})
    assert len(backend.calls) == 1 and answer.answer == "6" and answer.confidence is None


def test_the_budget_ends_refinement_and_keeps_the_last_answer() -> None:
    # draft 2 tokens + critique 1 token = the whole budget of 3: no revision is possible
    answer, backend = run(["Answer: 6", "wrong"], max_total_tokens=3)
    assert len(backend.calls) == 2
    assert answer.answer == "6" and answer.info["stop_reason"] == "budget"
    assert answer.ledger.total().completion_tokens == 3


def test_a_revision_cut_by_the_budget_does_not_replace_an_answered_version() -> None:
    answer, _ = run(["Answer: 6", "wrong", "let me redo this carefully"], max_total_tokens=5)
    assert [c.answer for c in answer.candidates] == ["6", None]
    assert answer.answer == "6"


def test_found_nothing_needs_the_marker() -> None:
    assert found_nothing("The solution is right. NO ISSUES")
    assert not found_nothing("There are no issues with step 1, but step 2 is wrong.")


def test_bad_rounds() -> None:
    with pytest.raises(ConfigError, match="self-refine rounds must be an integer >= 0"):
        Registry.from_entry_points().create("self-refine", {"rounds": "-1"})
