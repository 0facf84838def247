"""MCTS: UCT choices, backup values and visit counts, exact on scripted replies."""

from __future__ import annotations

import math

import pytest
from step_fakes import ChatScripted, TablePRM, run, steps_in

from ponder.errors import ConfigError
from ponder.strategies.mcts import MCTS, MCTSParams, Node, backup, select_leaf, uct
from ponder.strategies.registry import Registry
from ponder.strategies.steps import Beam

SCORES = {"a": 0.2, "b": 0.6, "c": 0.9, "d": 0.1, "e": 0.5, "f Answer: 2": 0.7}
REPLIES = ["a", "b", "c", "d", "e", "f Answer: 2"]


def mcts(**params: object) -> MCTS:
    base = {"simulations": 3, "expansion_width": 2, "max_depth": 3, "c_uct": 1.0,
            "max_step_tokens": 6}
    return MCTS(MCTSParams(**(base | params)))  # type: ignore[arg-type]


def test_uct_explores_the_less_visited_child() -> None:
    backend = ChatScripted(REPLIES)
    answer = run(mcts(), backend, TablePRM(SCORES))
    # sim 1 expands the root into a (0.2) and b (0.6).
    # sim 2: UCT(a) = 0.2 + sqrt(ln 2) = 1.03 < UCT(b) = 1.43, so b is expanded (c, d).
    # sim 3: b now has N=3, Q=1.6/3: UCT(b) = 0.533 + sqrt(ln 4 / 3) = 1.21, while
    #        UCT(a) = 0.2 + sqrt(ln 4) = 1.38, so exploration picks a.
    assert [steps_in(p[0]) for p, _ in backend.calls] == [[], ["b"], ["a"]]
    assert answer.info["root_visits"] == 6 and answer.info["nodes"] == 6
    assert answer.answer == "2" and answer.text == "a\n\nf Answer: 2"
    assert answer.confidence == pytest.approx(0.7)


def test_without_exploration_uct_is_greedy_on_q() -> None:
    backend = ChatScripted(REPLIES)
    run(mcts(c_uct=0), backend, TablePRM(SCORES))
    # sim 3 descends b (Q 0.533 > 0.2), then its best child c (0.9)
    assert [steps_in(p[0]) for p, _ in backend.calls[1:]] == [["b"], ["b", "c"]]


def test_backup_adds_one_visit_and_value_per_child_up_to_the_root() -> None:
    root = Node(Beam())
    a = Node(Beam(("a",)), 1, root)
    root.children = [a]
    backup(root, [0.2, 0.6])
    a.visits, a.value_sum = 1, 0.2
    backup(a, [0.9, 0.1])
    assert (root.visits, root.value_sum) == (4, pytest.approx(1.8))
    assert (a.visits, a.value_sum, a.q) == (3, pytest.approx(1.2), pytest.approx(0.4))


def test_uct_formula_and_tie_break() -> None:
    root = Node(Beam(), visits=4)
    x = Node(Beam(("x",)), 1, root, visits=2, value_sum=1.0)
    y = Node(Beam(("y",)), 1, root, visits=2, value_sum=1.0)
    root.children = [x, y]
    assert uct(x, 4, 1.5) == pytest.approx(0.5 + 1.5 * math.sqrt(math.log(4) / 2))
    assert uct(Node(Beam()), 4, 1.0) == math.inf
    assert select_leaf(root, 1.0) is x  # equal UCT: the first child


def test_a_terminal_leaf_is_backed_up_again_without_a_model_call() -> None:
    backend = ChatScripted(["Answer: 1", "Answer: 2"])
    answer = run(mcts(max_depth=1), backend, TablePRM({"Answer: 1": 0.3, "Answer: 2": 0.8}))
    # sim 1 samples to the end (depth 1 is the last); sims 2 and 3 revisit "Answer: 2"
    assert len(backend.calls) == 1 and backend.calls[0][1].stop == ()
    assert answer.info["root_visits"] == 4 and answer.info["simulations"] == 3
    assert answer.answer == "2"


def test_rollout_value_samples_each_new_child_to_an_answer() -> None:
    backend = ChatScripted(["a", "b", "Answer: 1", "Answer: 2"])
    prm = TablePRM({"a": 0.5, "b": 0.5, "Answer: 1": 0.3, "Answer: 2": 0.9})
    answer = run(mcts(simulations=1, value="rollout", final_max_tokens=9), backend, prm)
    [_, (prompts, params)] = backend.calls
    assert [steps_in(p) for p in prompts] == [["a"], ["b"]]
    assert (params.n, params.stop, params.max_tokens) == (1, (), 9)
    # the rollouts are the finished candidates; their scores are the children's values
    assert [c.text for c in answer.candidates] == ["a\n\nAnswer: 1", "b\n\nAnswer: 2"]
    assert answer.answer == "2" and answer.info["root_visits"] == 2


def test_budget_stops_the_simulations_and_answers_from_the_most_visited_path() -> None:
    backend = ChatScripted(["a", "b"])
    answer = run(mcts(simulations=5), backend, TablePRM({"a": 0.2, "b": 0.6}),
                 max_total_tokens=3)
    assert answer.info["stopped"] == "budget" and answer.info["simulations"] == 1
    assert answer.text == "b" and answer.candidates[0].finish_reason == "length"
    assert answer.ledger.total().completion_tokens <= 3


@pytest.mark.parametrize(("options", "message"), [
    ({"simulations": "0"}, "mcts simulations must be an integer >= 1, got 0"),
    ({"expansion_width": "0"}, "mcts expansion_width must be an integer >= 1"),
    ({"c_uct": "-1"}, "mcts c_uct must be >= 0, got -1.0"),
    ({"value": "oracle"}, "cannot read 'oracle'"),
])
def test_bad_params_are_config_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Registry.from_entry_points().create("mcts", options)
