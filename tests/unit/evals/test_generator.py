import pytest

from ponder.evals.generator import Difficulty, difficulty_ladder, generate


def test_seeded_and_deterministic() -> None:
    d = Difficulty(entities=3, steps=5, number_max=40, distractors=2)
    a, b = generate(5, d, queries=3, seed=7), generate(5, d, queries=3, seed=7)
    assert a == b
    assert generate(5, d, queries=3, seed=8) != a
    assert len({p.context for p in a}) == 5


@pytest.mark.parametrize("difficulty", difficulty_ladder())
def test_difficulty_knobs_shape_the_text(difficulty: Difficulty) -> None:
    for problem in generate(10, difficulty, queries=4, seed=1):
        sentences = problem.context.split(". ")
        assert sum(s.startswith("Then ") for s in sentences) == difficulty.steps
        assert problem.context.count(" also owns ") == difficulty.distractors
        names = {word for word in problem.context.replace(".", "").split() if word.istitle()}
        assert len(names - {"Then"}) == difficulty.entities
        questions = [q.question for q in problem.queries]
        assert len(questions) == len(set(questions)) >= 1
        assert all(isinstance(q.answer, int) and q.answer >= 0 for q in problem.queries)
        assert len(problem.steps) == len(sentences)


def test_answers_follow_the_story() -> None:
    [p] = generate(1, Difficulty(entities=1, steps=3, number_max=9), seed=3)
    final_state = p.steps[-1]
    name, value = final_state.split("=")
    assert p.queries[0].question.endswith(f"does {name} have now?")
    assert p.queries[0].answer == int(value)


def test_levels_increase_along_the_ladder() -> None:
    levels = [d.level() for d in difficulty_ladder()]
    assert levels == sorted(levels) and len(set(levels)) == len(levels)


def test_bad_knobs_are_rejected() -> None:
    with pytest.raises(ValueError, match="entities"):
        Difficulty(entities=0)
    with pytest.raises(ValueError, match="queries"):
        generate(1, queries=0)
