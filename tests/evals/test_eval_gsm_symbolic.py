"""GSM-Symbolic: the template sampler, the JSONL format, and the stateful split.

The shared copy (CC BY-NC-ND 4.0) is read in place; nothing derived is written.
Hand-made strings cover the split's known traps ("Mrs.", "$0.7").
"""

from __future__ import annotations

import json
import random
import re
from fractions import Fraction
from pathlib import Path

import pytest

from ponder.errors import ConfigError
from ponder.evals.datasets import Dataset, load_dataset
from ponder.evals.datasets.gsm_symbolic import make_stateful
from ponder.evals.datasets.sentences import split_sentences, stateful_split
from ponder.evals.datasets.symbolic_template import (
    TemplateError,
    format_number,
    number_words,
    parse_template,
    sample_instance,
)
from ponder.verifiers.answers import canonical_number

TEMPLATE = {
    "id_shuffled": 7, "id_orig": 99,
    "question_annotated": (
        "{name,Ann} has {x,4} {fruit,apples}. {name,Ann} eats {frac,half} of them. "
        "How many {fruit,apples} are left?\n\n"
        "#init:\n- name = sample(names_female)\n- fruit = sample([\"pears\", \"plums\"])\n"
        "- $x = range(2, 60)\n- $frac = sample(fraction_alnum)\n\n"
        "#conditions:\n- is_int(x * frac)\n- x > 10\n\n"
        "#answer: x - x * frac"),
}


def test_template_instances_follow_their_conditions_and_answer() -> None:
    template = parse_template(TEMPLATE, "symbolic")
    seen = set()
    for seed in range(40):
        instance = sample_instance(template, random.Random(seed))
        match = re.fullmatch(r"(\w+) has (\d+) (pears|plums)\. \1 eats (.+) of them\. "
                             r"How many \3 are left\?", instance.question)
        assert match, instance.question
        x = int(match.group(2))
        frac = instance.values["frac"]
        assert x > 10 and (x * frac).denominator == 1
        assert Fraction(instance.answer) == x - x * frac
        assert match.group(4) == frac.text
        seen.add(match.group(4))
    assert len(seen) > 3  # words ("half") and numerals ("1/3") both appear


def test_template_sampling_is_seeded() -> None:
    template = parse_template(TEMPLATE, "symbolic")
    a = sample_instance(template, random.Random("s"))
    assert sample_instance(template, random.Random("s")) == a


@pytest.mark.parametrize("expression", [
    "__import__('os').system('true')", "x.__class__", "open('f')", "[y for y in range(3)]",
    "(lambda: 1)()", "np.load('x')"])
def test_template_expressions_are_data_not_code(expression: str) -> None:
    record = {"id_shuffled": 1, "question_annotated":
              f"{{x,1}} apples.\n#init:\n- $x = range(1, 3)\n#answer: {expression}"}
    with pytest.raises(TemplateError, match="not allowed"):
        parse_template(record, "symbolic")


def test_impossible_conditions_and_unknown_names_fail_clearly() -> None:
    base = "{x,1} apples.\n#init:\n- $x = range(1, 3)\n"
    never = parse_template({"id_shuffled": 2, "question_annotated":
                            base + "#conditions:\n- x > 5\n#answer: x"}, "p1")
    with pytest.raises(TemplateError, match="p1/2: no sample met its conditions in 50"):
        sample_instance(never, random.Random(0), max_tries=50)
    with pytest.raises(TemplateError, match="p1/3: name 'y' is not defined"):
        parse_template({"id_shuffled": 3, "question_annotated": base + "#answer: y"}, "p1")


def test_number_formatting_is_exact() -> None:
    assert [format_number(v) for v in (12, Fraction(65, 2), Fraction(1, 4), 45.0,
                                       Fraction(1, 3))] == ["12", "32.5", "0.25", "45",
                                                            "0.333333"]
    assert [number_words(n) for n in (7, 42, 90, 115)] == [
        "seven", "forty-two", "ninety", "one hundred and fifteen"]


@pytest.fixture(scope="module")
def shared_instances(gsm_symbolic_dir: Path) -> Dataset:
    """One instance of each of the 200 shared templates (built in memory, never written)."""
    return load_dataset(f"gsm-symbolic:{gsm_symbolic_dir / 'templates'}", seed=0)


def test_every_shared_template_samples_with_a_numeric_answer(shared_instances: Dataset) -> None:
    data = shared_instances
    assert len(data) == 200 and "skipped" not in data.source
    assert {i.meta["variant"] for i in data} == {"symbolic", "p1"}
    assert {i.difficulty for i in data} == {0, 1}
    answers = [canonical_number(i.answer) for i in data]
    assert all(a is not None for a in answers)
    assert any(a.denominator != 1 for a in answers if a is not None)  # some golds are decimals
    for item in data:
        assert "{" not in item.question and "#init" not in item.question
    assert "CC BY-NC-ND" in data.licence


def test_instances_and_seeds(gsm_symbolic_dir: Path) -> None:
    folder = gsm_symbolic_dir / "templates" / "symbolic"
    spec = f"gsm-symbolic:{folder},templates=4,instances=3"
    data = load_dataset(spec, seed=1)
    assert len(data) == 12 and len({i.id for i in data}) == 12
    assert load_dataset(spec, seed=1) == data
    assert [i.question for i in load_dataset(spec, seed=2)] != [i.question for i in data]
    single = load_dataset(f"gsm-symbolic:{folder / '0001.json'}")
    assert len(single) == 1 and single.items[0].meta["original_id"] is not None
    stateful = load_dataset(f"stateful-gsm-symbolic:{folder},templates=4,instances=3", seed=1)
    assert [i.id for i in stateful] == [i.id for i in data]
    assert all(s.context and s.full_question.endswith(s.question) for s in stateful)
    assert "split=sentences" in stateful.source


def test_stateful_split_on_the_shared_templates(shared_instances: Dataset) -> None:
    differs = 0
    for plain in shared_instances:
        ours, naive = make_stateful(plain), make_stateful(plain, "naive")
        assert ours.id == plain.id and ours.answer == plain.answer
        # nothing is lost or altered: context + question is the original text
        joined = " ".join(filter(None, [ours.context, ours.question]))
        assert joined.split() == plain.question.split()
        assert ours.question[:1].isupper() and len(ours.question.split()) >= 3
        if ours.question != naive.question:
            differs += 1
            # the reference's "." split only ever cuts our question shorter ("Ms." etc.)
            assert ours.question.rstrip(".").endswith(naive.question)
    assert differs >= 1


@pytest.mark.parametrize(("text", "context", "question"), [
    ("Mrs. Smith buys apples for $0.7 each. She buys 5 apples. How much does she pay?",
     "Mrs. Smith buys apples for $0.7 each. She buys 5 apples.", "How much does she pay?"),
    ("Ann has 3 pens. How much will Mrs. Lee pay for 2.5 pens at $1.20 each?",
     "Ann has 3 pens.", "How much will Mrs. Lee pay for 2.5 pens at $1.20 each?"),
    ("A cup costs $2. Dr. J. Watson buys 3 cups. How much is left of $10? Round down.",
     "A cup costs $2. Dr. J. Watson buys 3 cups.", "How much is left of $10? Round down."),
    ("Tom leaves at 5 p.m. Then he walks 2.5 miles. Calculate his total distance.",
     "Tom leaves at 5 p.m. Then he walks 2.5 miles.", "Calculate his total distance."),
    ("How many legs does a cat have?", "", "How many legs does a cat have?"),
])
def test_stateful_split_handles_abbreviations_and_decimals(text: str, context: str,
                                                           question: str) -> None:
    assert stateful_split(text) == (context, question)


def test_naive_split_reproduces_the_reference_quirks() -> None:
    text = "Mrs. Smith pays $0.7 per apple. How much do 3 apples cost?"
    context, question = stateful_split(text, "naive")
    assert context == "Mrs. Smith pays $0. 7 per apple." and question == \
        "How much do 3 apples cost?"
    assert stateful_split("Ann met Mrs. Lee. How old is Mrs. Lee?", "naive")[1] == "Lee?"
    assert split_sentences('He said "I have 5." Then she had 2.') == [
        'He said "I have 5."', "Then she had 2."]


def test_generated_jsonl_format(tmp_path: Path) -> None:
    records = [
        {"id": 3, "instance": 0, "question": "Mrs. Reed buys 5 pens at $0.5 each. "
         "How much does she spend?", "answer": "5 * 0.5 = 2.5\n#### 2.5", "original_id": 9},
        {"id": 3, "instance": 1, "question": "Mr. Reed buys 4 pens at $1.5 each. "
         "How much does he spend?", "answer": "#### 6.0", "original_id": 9}]
    path = tmp_path / "GSM_p1.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    data = load_dataset(f"stateful-gsm-symbolic:{path}")
    first, second = data.items
    assert first.id == "gsm-symbolic-p1-3-0" and first.difficulty == 1
    assert first.context == "Mrs. Reed buys 5 pens at $0.5 each."
    assert first.question == "How much does she spend?" and first.answer == "2.5"
    assert second.answer == "6.0" and canonical_number(second.answer) == 6
    path.write_text(json.dumps({"id": 1, "question": "q"}) + "\n")
    with pytest.raises(ConfigError, match="missing field 'answer'"):
        load_dataset(f"gsm-symbolic:{path}")
