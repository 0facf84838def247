from ponder import Problem, RunContext
from ponder.backends.scripted import ScriptedBackend
from ponder.strategies.feedback_edit import CRITIC, EDITOR, FeedbackEdit, FeedbackEditParams
from ponder.strategies.registry import Registry


def test_separate_feedback_model_and_edit_calls() -> None:
    main = ScriptedBackend(["Answer: 6", "Fixed: Answer: 5"])
    critic = ScriptedBackend(["Step 1 adds wrong.", "NO ISSUES"], model="critic")
    strategy = FeedbackEdit(FeedbackEditParams(rounds=3), feedback_backend=critic)
    ctx = RunContext(backend=main)
    answer = main.run_sync(strategy.run(Problem("2+3?"), ctx))
    assert answer.answer == "5"
    assert [c.score for c in answer.candidates] == [0.0, 1.0]
    assert answer.info["stop_reason"] == "no issues" and answer.info["feedback_model"] == "critic"
    # one ledger, both models, every row labelled with the strategy
    assert [(e.model, e.strategy) for e in ctx.ledger.entries] == [
        ("scripted", "feedback-edit"), ("critic", "feedback-edit"),
        ("scripted", "feedback-edit"), ("critic", "feedback-edit")]
    # no history: the critic sees the problem and the current draft only
    first_review, second_review = (call[0][0] for call in critic.calls)
    assert first_review[0]["content"] == CRITIC and len(first_review) == 2
    assert "Answer: 6" in first_review[1]["content"]
    assert "Fixed: Answer: 5" in second_review[1]["content"]
    assert "Answer: 6" not in second_review[1]["content"]
    [edit] = main.calls[1][0]
    assert edit[0]["content"] == EDITOR
    assert "Step 1 adds wrong." in edit[1]["content"] and "Answer: 6" in edit[1]["content"]


def test_from_the_registry_the_same_backend_gives_feedback() -> None:
    backend = ScriptedBackend(["Answer: 6", "bad", "Answer: 5"])
    strategy = Registry.from_entry_points().create("feedback-edit", {"rounds": "1"})
    answer = backend.run_sync(strategy.run(Problem("q"), RunContext(backend=backend)))
    assert len(backend.calls) == 3 and answer.answer == "5"
    assert [c.score for c in answer.candidates] == [0.0, None]


def test_budget_stops_gracefully() -> None:
    backend = ScriptedBackend(["Answer: 6", "bad"])
    ctx = RunContext(backend=backend, max_total_tokens=3)
    answer = backend.run_sync(FeedbackEdit().run(Problem("q"), ctx))
    assert answer.answer == "6" and answer.info["stop_reason"] == "budget"
    assert ctx.ledger.total().completion_tokens == 3
