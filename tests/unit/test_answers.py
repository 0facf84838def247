import pytest

from ponder.verifiers.answers import answers_equal, extract_answer, normalize_answer
from ponder.verifiers.voting import vote


@pytest.mark.parametrize(("text", "expected"), [
    ("4 pens cost 4 * 3 = 12 dollars.\nAnswer: 12", "12"),
    ("So the total is \\boxed{12}.", "12"),
    ("We get \\boxed{\\frac{1}{2}} in the end", "\\frac{1}{2}"),
    ("The answer is $1,250.", "1,250"),
    ("Final Answer: The final answer is 7. I hope it is correct.", "7"),
    ("She has 3 apples and buys 4 more, so 7 in total", "7"),
    ("Answer: -4.5", "-4.5"),
    ("Answer: Sara has 12 dollars left, 8 fewer than Tom.", "12"),
    ("Answer: 4 * 3 = 12", "12"),
    ("no numbers here", None),
    ("", None),
])
def test_extract_math(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_boxed_wins_over_answer_line_and_last_number() -> None:
    assert extract_answer("Answer: 5\nActually \\boxed{6} and then 7") == "6"


def test_extract_text_kind_keeps_words() -> None:
    assert extract_answer("Reasoning...\nAnswer: Paris.", kind="text") == "Paris"


@pytest.mark.parametrize(("a", "b"), [
    ("12", "12.0"), ("1,000", "1000"), ("$3.50", "3.5"), ("0.5", "1/2"),
    ("\\frac{1}{2}", "0.5"), ("7", "7."), ("\\sqrt{4}", "2"),
])
def test_equivalent_answers(a: str, b: str) -> None:
    assert answers_equal(a, b)


@pytest.mark.parametrize(("a", "b"), [("12", "13"), ("0.5", "1/3"), (None, "1"),
                                      ("x+1", "x+2")])
def test_different_answers(a: str | None, b: str) -> None:
    assert not answers_equal(a, b)


def test_normalize_answer_keys() -> None:
    assert normalize_answer("1,000.00") == "1000"
    assert normalize_answer("7/2") == "7/2"
    assert normalize_answer(" Paris. ", kind="text") == "paris"


def test_majority_vote_groups_equivalent_answers() -> None:
    result = vote(["12", "12.0", "13", None, "$12"])
    assert result.winner == "12"
    assert result.winner_index == 0
    assert result.tally == {"12": 3, "13": 1}
    assert result.share == pytest.approx(3 / 5)


def test_vote_ties_go_to_first_seen_and_weights_count() -> None:
    assert vote(["5", "6", "6", "5"]).winner == "5"
    assert vote(["5", "6"], weights=[0.2, 0.9]).winner == "6"
    assert vote([None, None]).winner is None
