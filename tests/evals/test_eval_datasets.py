"""Dataset loaders: shipped GSM8K/MATH-500 slices, paths, the Hub plumbing, user JSONL,
the generator adapter (bins, multi-query), specs and the registry."""

from __future__ import annotations

import json
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

from ponder.errors import ConfigError
from ponder.evals.datasets import DatasetSpec, available_datasets, load_dataset
from ponder.evals.datasets.gsm8k import final_answer, strip_calculator
from ponder.strategies.base import Answer
from ponder.verifiers.answers import canonical_number


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_shipped_gsm8k_slice_parses_every_gold_answer() -> None:
    data = load_dataset("gsm8k")
    assert len(data) == 200 and data.source == "shipped:gsm8k/train-200.jsonl"
    assert data.items[0].answer == "72" and data.items[0].question.startswith("Natalia")
    for item in data:
        number = canonical_number(item.answer)
        assert number is not None and number.denominator == 1, item.answer
        assert "," not in item.answer
    assert "MIT" in data.licence
    shipped = Path(data.source.removeprefix("shipped:"))
    folder = Path(__file__).resolve().parents[2] / "src/ponder/evals/datasets/data" / \
        shipped.parent
    assert (folder / "LICENSE").read_text().startswith("MIT License")


def test_gsm8k_answer_format_details() -> None:
    assert final_answer("so 2 + 2 = <<2+2=4>>4\n#### 1,234") == "1234"
    assert final_answer("#### -3") == "-3"
    assert strip_calculator("48/2 = <<48/2=24>>24 clips") == "48/2 = 24 clips"
    with pytest.raises(ConfigError, match="####"):
        final_answer("no marker here")


def test_gsm8k_from_a_path_and_bad_records(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "test.jsonl", [
        {"question": "What is 2+3?", "answer": "2+3=<<2+3=5>>5\n#### 5"},
        {"question": "What is 10*100?", "answer": "#### 1,000"}])
    data = load_dataset(f"gsm8k:{path}")
    assert [i.answer for i in data] == ["5", "1000"] and data.source == str(path)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "answer": "no marker"}])
    with pytest.raises(ConfigError, match="record 0"):
        load_dataset(f"gsm8k:{bad}")
    with pytest.raises(ConfigError, match="not found"):
        load_dataset(f"gsm8k:{tmp_path / 'missing.jsonl'}")
    (tmp_path / "broken.jsonl").write_text('{"question": "q"\n')
    with pytest.raises(ConfigError, match=r"broken.jsonl:1: not valid JSON"):
        load_dataset(f"gsm8k:{tmp_path / 'broken.jsonl'}")


def test_shipped_math500_slice_has_levels_and_grades_symbolically() -> None:
    data = load_dataset("math500")
    assert len(data) == 100
    assert Counter(i.difficulty for i in data) == {level: 20 for level in range(1, 6)}
    first = data.items[0]
    assert first.answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert first.meta["subject"] == "Precalculus"
    half = next(i for i in data if i.answer == "\\frac{1}{2}") if any(
        i.answer == "\\frac{1}{2}" for i in data) else None
    numeric = next(i for i in data if canonical_number(i.answer) is not None
                   and canonical_number(i.answer).denominator == 1)  # type: ignore[union-attr]
    assert data.grade(numeric, Answer("", numeric.answer, "x"))
    assert not data.grade(numeric, Answer("", str(canonical_number(numeric.answer) + 1), "x"))
    assert data.grade(first, Answer("", "(3, \\pi/2)", "x"))
    if half is not None:
        assert data.grade(half, Answer("", "0.5", "x"))


def test_hub_loading_goes_through_the_datasets_library(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []

    def load(name: str, config: str | None, split: str) -> list[dict[str, object]]:
        calls.append((name, config, split))
        return [{"question": "1+1?", "answer": "#### 2"}]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load))
    data = load_dataset("gsm8k:hub:openai/gsm8k,split=test")
    assert calls == [("openai/gsm8k", "main", "test")]
    assert data.items[0].answer == "2" and data.source == "hub:openai/gsm8k/main/test"


def test_hub_without_the_datasets_library_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails
    with pytest.raises(ConfigError, match="pip install datasets"):
        load_dataset("math500:hub:HuggingFaceH4/MATH-500")


def test_generator_bins_are_interleaved_and_known() -> None:
    data = load_dataset("gen,per_bin=3", seed=4)
    assert len(data) == 15
    assert [i.difficulty for i in data.items[:5]] == [0, 1, 2, 3, 4]
    assert Counter(i.difficulty for i in data) == dict.fromkeys(range(5), 3)
    for item in data:
        assert item.context and item.question.endswith("?") and item.group is None
        assert int(item.answer) >= 0
    again = load_dataset("gen,per_bin=3", seed=4)
    assert again == data
    assert load_dataset("gen,per_bin=3", seed=5).items != data.items
    assert [i.difficulty for i in load_dataset("gen,per_bin=2,bins=1+3")] == [1, 3, 1, 3]
    custom = load_dataset("gen,per_bin=2,entities=3,steps=5")
    assert {i.meta["steps"] for i in custom} == {5}


def test_multi_query_groups_share_a_context() -> None:
    data = load_dataset("multi-query,per_bin=2,bins=2-4")
    groups: dict[str, list[object]] = {}
    for item in data:
        assert item.group is not None
        groups.setdefault(item.group, []).append(item)
    assert len(groups) == 6
    for members in groups.values():
        assert len(members) >= 2
        assert len({m.context for m in members}) == 1  # type: ignore[attr-defined]
        assert len({m.question for m in members}) == len(members)  # type: ignore[attr-defined]


def test_user_jsonl_with_a_field_mapping(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mine.jsonl", [
        {"uid": "a", "story": "Ann has 3 cats.", "ask": "How many cats?",
         "meta": {"gold": 3}, "level": 1},
        {"uid": "b", "story": "Ann has 3 cats.", "ask": "How many legs?",
         "meta": {"gold": 12}, "level": 2},
        {"uid": "c", "ask": "Name a colour.", "meta": {"gold": "red"}, "level": 1}])
    spec = f"jsonl:{path},id=uid,question=ask,answer=meta.gold,context=story,difficulty=level"
    data = load_dataset(spec)
    a, b, c = data.items
    assert (a.id, a.answer, a.context, a.difficulty) == ("a", "3", "Ann has 3 cats.", 1)
    assert a.group == b.group is not None and c.group is None and c.context is None
    assert a.full_question == "Ann has 3 cats.\n\nHow many cats?"
    with pytest.raises(ConfigError, match="no field 'question'"):
        load_dataset(f"jsonl:{path}")
    gsm = write_jsonl(tmp_path / "g.jsonl", [{"q": "x?", "a": "work\n#### 1,500"}])
    assert load_dataset(f"jsonl:{gsm},question=q,answer=a,answer_format=gsm8k"
                        ).items[0].answer == "1500"


def test_specs_and_options_fail_clearly() -> None:
    spec = DatasetSpec.parse("gsm8k:hub:openai/gsm8k, split=test ,config=main")
    assert (spec.name, spec.source, dict(spec.options)) == (
        "gsm8k", "hub:openai/gsm8k", {"split": "test", "config": "main"})
    assert str(spec) == "gsm8k:hub:openai/gsm8k,config=main,split=test"
    with pytest.raises(ConfigError, match="did you mean 'gsm8k'"):
        load_dataset("gsm8kk")
    with pytest.raises(ConfigError, match="has no option 'colour'"):
        load_dataset("gen,colour=red")
    with pytest.raises(ConfigError, match="per_bin must be an integer"):
        load_dataset("gen,per_bin=many")
    with pytest.raises(ConfigError, match=r"bins must be in 0\.\.4"):
        load_dataset("gen,bins=3-7")
    with pytest.raises(ConfigError, match="key=value"):
        load_dataset("gen,per_bin")
    with pytest.raises(ConfigError, match="not shipped"):
        load_dataset("gsm-symbolic")


def test_every_builtin_dataset_is_registered() -> None:
    names = {info.name for info in available_datasets()}
    assert {"gen", "multi-query", "gsm8k", "math500", "gsm-symbolic", "stateful-gsm-symbolic",
            "jsonl"} <= names
    for info in available_datasets():
        if info.source == "ponder":
            assert info.summary and info.licence


def test_one_entity_contexts_get_an_at_the_start_question() -> None:
    from ponder.evals.generator import Difficulty, generate

    [problem] = generate(1, Difficulty(entities=1, steps=2), queries=5, seed=2)
    questions = {q.question: q.answer for q in problem.queries}
    assert len(questions) == 2
    [start] = [q for q in questions if q.endswith("at the start?")]
    first_sentence = problem.context.split(". ")[0]
    assert questions[start] == int(first_sentence.split()[2])
    # single-query problems are unchanged by the extra questions
    assert generate(1, Difficulty(entities=1, steps=2), seed=2)[0].queries[0] in problem.queries
