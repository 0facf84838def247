"""Beam search bookkeeping on a scripted backend and a table PRM, with exact results."""

from __future__ import annotations

import pytest
from step_fakes import ChatScripted, TablePRM, run, steps_in

from ponder.backends.scripted import ScriptedBackend
from ponder.errors import CapabilityError, ConfigError
from ponder.strategies.beam_search import BeamSearch, BeamSearchParams
from ponder.strategies.registry import Registry

# depth 0: four candidates from the root; a2 and a4 survive (N/M = 2)
# depth 1: two per survivor; b2 states an answer and finishes; b4 and b3 survive
# depth 2 (last): two per survivor, sampled to the end
REPLIES = ["a1", "a2", "a3", "a4",
           "b1", "b2 Answer: 5", "b3", "b4",
           "Answer: 7", "So Answer: 7", "Answer: 9", "Answer: 10"]
SCORES = {"a1": 0.1, "a2": 0.9, "a3": 0.5, "a4": 0.7,
          "b1": 0.3, "b2 Answer: 5": 0.8, "b3": 0.6, "b4": 0.95,
          "Answer: 7": 0.4, "So Answer: 7": 0.6, "Answer: 9": 0.99, "Answer: 10": 0.1}


def search(**params: object) -> BeamSearch:
    base = {"n": 4, "beam_width": 2, "max_depth": 3, "max_step_tokens": 7,
            "final_max_tokens": 11}
    return BeamSearch(BeamSearchParams(**(base | params)))  # type: ignore[arg-type]


def test_keeps_the_best_n_over_m_beams_and_expands_each_m_times() -> None:
    backend = ChatScripted(REPLIES)
    prm = TablePRM(SCORES)
    answer = run(search(), backend, prm)
    assert [len(prompts) for prompts, _ in backend.calls] == [1, 2, 2]
    assert [params.n for _, params in backend.calls] == [4, 2, 2]
    assert [steps_in(p) for p in backend.calls[1][0]] == [["a2"], ["a4"]]
    assert [steps_in(p) for p in backend.calls[2][0]] == [["a4", "b3"], ["a4", "b4"]]
    # steps stop at a blank line, except at the last depth, which runs to the end
    assert [params.stop for _, params in backend.calls] == [("\n\n",), ("\n\n",), ()]
    assert [params.max_tokens for _, params in backend.calls] == [7, 7, 11]
    # every depth is scored in one verifier call, over whole paths
    assert prm.calls[1] == [["a2", "b1"], ["a2", "b2 Answer: 5"], ["a4", "b3"], ["a4", "b4"]]
    assert answer.answer == "9" and answer.confidence == pytest.approx(0.99)
    assert answer.text == "a4\n\nb4\n\nAnswer: 9"
    assert sorted(c.answer for c in answer.candidates) == ["10", "5", "7", "7", "9"]
    assert answer.info["depth"] == 3 and answer.info["finished"] == 5


def test_raw_prompts_continue_the_rendered_chat_with_the_steps_so_far() -> None:
    backend = ChatScripted(REPLIES)
    run(search(), backend, TablePRM(SCORES))
    head = backend.calls[0][0][0]
    assert head.startswith("<system>Solve the problem step by step") and head.endswith(
        "<user>q<assistant>")
    assert backend.calls[2][0][0] == head + "a4\n\nb3\n\n"


@pytest.mark.parametrize(("aggregation", "expected"), [("last", "9"), ("min", "5"),
                                                       ("prod", "5")])
def test_step_aggregation_decides_the_answer(aggregation: str, expected: str) -> None:
    # last: 0.99 (a4, b4, 9) wins; min: 0.8 (a2, b2) beats 0.7; prod: 0.72 beats 0.658
    answer = run(search(aggregation=aggregation), ChatScripted(REPLIES), TablePRM(SCORES))
    assert answer.answer == expected


def test_weighted_vote_sums_scores_per_answer() -> None:
    answer = run(search(select="weighted-vote"), ChatScripted(REPLIES), TablePRM(SCORES))
    # 7 collects 0.4 + 0.6 = 1.0 and beats 9's 0.99; its best-scored solution is returned
    assert answer.answer == "7" and answer.text.endswith("So Answer: 7")
    assert answer.info["weighted_votes"]["7"] == pytest.approx(1.0)
    assert answer.confidence == pytest.approx(1.0 / (0.8 + 0.4 + 0.6 + 0.99 + 0.1))


def test_duplicate_steps_are_dropped_before_keeping() -> None:
    replies = ["x", "x", "y", "z", "Answer: 1", "Answer: 2", "Answer: 3", "Answer: 4"]
    scores = {"x": 0.9, "y": 0.5, "z": 0.1}
    backend = ChatScripted(replies)
    run(search(max_depth=2), backend, TablePRM(scores))
    assert [steps_in(p) for p in backend.calls[1][0]] == [["x"], ["y"]]
    backend = ChatScripted(replies)
    run(search(max_depth=2, dedupe=False), backend, TablePRM(scores))
    assert [steps_in(p) for p in backend.calls[1][0]] == [["x"], ["x"]]


def test_fewer_open_beams_get_more_expansions_and_the_search_stops_at_n_finished() -> None:
    replies = ["Answer: 1", "Answer: 2", "Answer: 3", "c",
               "Answer: 4", "d", "e", "f"]
    backend = ChatScripted(replies)
    answer = run(search(), backend, TablePRM({"Answer: 4": 0.9}, default=0.5))
    # one open beam after depth 0 gets all N = 4 expansions; then 4 have finished
    assert [params.n for _, params in backend.calls] == [4, 4]
    assert answer.info["stopped"] == "finished" and answer.info["depth"] == 2
    assert answer.answer == "4"


def test_an_empty_step_ends_a_beam_and_answers_are_preferred() -> None:
    backend = ChatScripted(["a", "b", "", "Answer: 3"])
    answer = run(search(n=2, beam_width=1, max_depth=3), backend,
                 TablePRM({"a": 0.9, "b": 0.5, "Answer: 3": 0.2}))
    # beam "a" sampled an empty step: it finished as it was, still scored 0.9
    assert len(backend.calls) == 2 and answer.info["finished"] == 2
    assert [(c.text, c.score) for c in answer.candidates] == [("a", 0.9),
                                                               ("b\n\nAnswer: 3", 0.2)]
    # but it states no answer, so the lower-scored solution that does is chosen
    assert answer.answer == "3" and answer.confidence == pytest.approx(0.2)


def test_budget_stops_the_search_with_the_best_beams_so_far() -> None:
    backend = ChatScripted(REPLIES)
    answer = run(search(), backend, TablePRM(SCORES), max_total_tokens=6)
    # depth 0 costs 4 tokens; 2 left cannot give 4 samples a token each
    assert len(backend.calls) == 1
    assert answer.info["stopped"] == "budget"
    assert answer.text == "a2" and answer.candidates[0].finish_reason == "length"
    assert answer.ledger.total().completion_tokens <= 6


def test_ledger_rows_are_labelled_with_the_strategy() -> None:
    answer = run(search(), ChatScripted(REPLIES), TablePRM(SCORES))
    assert {e.strategy for e in answer.ledger.entries} == {"beam-search"}
    assert answer.ledger.total().completion_tokens == 4 + (1 + 3 + 1 + 1) + (2 + 3 + 2 + 2)


def test_a_backend_without_raw_completion_is_refused_clearly() -> None:
    class ChatOnly(ChatScripted):
        supports_raw_completion = False

    with pytest.raises(CapabilityError, match="beam-search continues partial solutions"):
        run(search(), ChatOnly(REPLIES), TablePRM(SCORES))
    # a raw-capable backend that cannot render a chat template (a remote engine) gets a
    # plain transcript to continue
    templateless = ScriptedBackend(REPLIES)
    run(search(), templateless, TablePRM(SCORES))
    first_prompt = templateless.calls[0][0][0]
    assert isinstance(first_prompt, str) and first_prompt.startswith("System: ")
    assert "\n\nAssistant: " in first_prompt


@pytest.mark.parametrize(("options", "message"), [
    ({"n": "0"}, "beam-search n must be an integer >= 1, got 0"),
    ({"n": "8", "beam_width": "3"}, "beam_width must be an integer that divides n=8, got 3"),
    ({"aggregation": "max"}, "cannot read 'max'"),
    ({"max_depth": "0"}, "beam-search max_depth must be an integer >= 1"),
    ({"select": "first"}, "cannot read 'first'"),
])
def test_bad_params_are_config_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Registry.from_entry_points().create("beam-search", options)
