"""DVTS: independent greedy subtrees, on a scripted backend and a table PRM."""

from __future__ import annotations

import pytest
from step_fakes import ChatScripted, TablePRM, run, steps_in

from ponder.errors import ConfigError
from ponder.strategies.dvts import DVTS, DVTSParams
from ponder.strategies.registry import Registry


def dvts(**params: object) -> DVTS:
    base = {"n": 4, "beam_width": 2, "max_depth": 2, "max_step_tokens": 5}
    return DVTS(DVTSParams(**(base | params)))  # type: ignore[arg-type]


def test_each_subtree_greedily_keeps_its_own_best_step() -> None:
    # two subtrees; subtree 1's best step (0.8) beats subtree 0's (0.7), but subtree 0
    # still follows its own best instead of being pruned, as beam search would do
    replies = ["s0a", "s0b", "s1a", "s1b",
               "Answer: 3", "Answer: 4", "Answer: 5", "Answer: 6"]
    scores = {"s0a": 0.3, "s0b": 0.7, "s1a": 0.8, "s1b": 0.2,
              "Answer: 3": 0.5, "Answer: 4": 0.6, "Answer: 5": 0.9, "Answer: 6": 0.1}
    backend = ChatScripted(replies)
    prm = TablePRM(scores)
    answer = run(dvts(), backend, prm)
    assert [len(prompts) for prompts, _ in backend.calls] == [2, 2]
    assert [params.n for _, params in backend.calls] == [2, 2]
    assert [steps_in(p) for p in backend.calls[1][0]] == [["s0b"], ["s1a"]]
    assert [params.stop for _, params in backend.calls] == [("\n\n",), ()]
    assert len(prm.calls) == 2 and len(prm.calls[0]) == 4
    assert [c.text for c in answer.candidates] == ["s0b\n\nAnswer: 4", "s1a\n\nAnswer: 5"]
    assert answer.answer == "5" and answer.confidence == pytest.approx(0.9)
    assert answer.info["subtrees"] == 2 and answer.info["depth"] == 2


def test_a_finished_subtree_stops_expanding() -> None:
    replies = ["Answer: 1", "x", "y", "z", "Answer: 2", "w"]
    scores = {"Answer: 1": 0.9, "x": 0.1, "y": 0.4, "z": 0.3, "Answer: 2": 0.6, "w": 0.2}
    backend = ChatScripted(replies)
    answer = run(dvts(max_depth=3), backend, TablePRM(scores))
    # subtree 0 picked its answer at depth 0; only subtree 1 ("y") goes on
    assert [len(prompts) for prompts, _ in backend.calls] == [2, 1]
    assert [steps_in(p) for p in backend.calls[1][0]] == [["y"]]
    assert answer.info["stopped"] == "finished"
    assert [c.answer for c in answer.candidates] == ["1", "2"]
    assert answer.answer == "1"


def test_budget_stops_with_every_subtree_so_far() -> None:
    replies = ["a", "b", "c", "d"]
    backend = ChatScripted(replies)
    answer = run(dvts(max_depth=3), backend, TablePRM({"b": 0.6, "c": 0.7}),
                 max_total_tokens=5)
    assert len(backend.calls) == 1 and answer.info["stopped"] == "budget"
    assert [c.text for c in answer.candidates] == ["b", "c"]
    assert answer.text == "c"
    assert answer.ledger.total().completion_tokens <= 5


def test_beam_width_must_divide_n() -> None:
    with pytest.raises(ConfigError, match="dvts beam_width must be an integer that divides n=6"):
        Registry.from_entry_points().create("dvts", {"n": "6", "beam_width": "4"})
