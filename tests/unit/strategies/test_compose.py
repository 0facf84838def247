"""Composition: the spec grammar, its errors, pipeline drafts, parallel selection, budgets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from ponder import Answer, Candidate, Engine, Problem, RunContext, Strategy
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import BudgetExceeded, ConfigError
from ponder.strategies.base import DRAFT_CONTEXT
from ponder.strategies.compose import (
    Call,
    Composite,
    Parallel,
    Pipeline,
    label,
    parallel,
    parse,
    pipeline,
)
from ponder.strategies.registry import Registry


@dataclass(frozen=True, slots=True)
class SayParams:
    tag: str = "x"
    k: int = 1
    max_tokens: int = 8


class Say(Strategy[SayParams]):
    """k samples in one call; answers with the first."""

    name = "say"
    Params = SayParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        params = self.sampling(ctx, n=self.params.k, max_tokens=self.params.max_tokens)
        [group] = await ctx.generate([problem.chat(f"tag {self.params.tag}")], params,
                                     strategy=self.name)
        candidates = [Candidate.from_completion(c, problem.kind) for c in group]
        return Answer(group[0].text, candidates[0].answer, self.name, candidates,
                      ledger=ctx.ledger)


class TextScore:
    name = "text-score"

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table

    async def score(self, problem: Problem, candidates: Sequence[str],
                    ctx: RunContext) -> list[float]:
        return [self.table.get(c, 0.0) for c in candidates]


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.register(Say)
    return registry


def run(strategy: Strategy[object], backend: ScriptedBackend, **ctx_fields: object) -> Answer:
    ctx = RunContext(backend=backend, **ctx_fields)  # type: ignore[arg-type]
    return backend.run_sync(strategy.run(Problem("q"), ctx))


# -- grammar ------------------------------------------------------------------

def test_pipeline_binds_tighter_than_parallel() -> None:
    assert parse("a|b>c") == Composite("|", (Call("a", (), 0), Composite(
        ">", (Call("b", (), 2), Call("c", (), 4)))))
    assert parse(" (a | b) > c(n=8, t='x|y') ") == Composite(">", (
        Composite("|", (Call("a", (), 2), Call("b", (), 6))),
        Call("c", (("n", "8"), ("t", "x|y")), 11)))
    assert parse("self-consistency(n=8)|best-of-n(n=4)") == Composite("|", (
        Call("self-consistency", (("n", "8"),), 0), Call("best-of-n", (("n", "4"),), 22)))


@pytest.mark.parametrize(("spec", "reason", "column"), [
    ("", "expected a strategy name, found the end", 1),
    ("a|", "expected a strategy name, found the end", 3),
    ("a>>b", "expected a strategy name, found '>'", 3),
    ("a(n=1", "expected ',' or ')' in the parameters of 'a', found the end", 6),
    ("a(n)", "expected '=' after parameter 'n', found ')'", 4),
    ("a(n=)", "expected a value for 'n', found ')'", 5),
    ("a(n=1,n=2)", "parameter 'n' is given twice", 7),
    ("a(t='x)", "unterminated quoted value of 't'", 5),
    ("(a|b", "expected ')' to close the group, found the end", 5),
    ("a)", "unexpected ')'", 2),
    ("a b", "unexpected 'b'", 3),
])
def test_parse_errors_point_at_the_column(spec: str, reason: str, column: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse(spec)
    first, shown, caret = str(info.value).splitlines()
    assert first == f"strategy spec {spec!r}: {reason} at column {column}"
    assert shown == f"  {spec}" and caret == "  " + " " * (column - 1) + "^"


def test_names_and_params_are_checked_against_the_registry(registry: Registry) -> None:
    with pytest.raises(ConfigError, match=r"unknown strategy 'sya'; did you mean 'say'\?.* "
                                          r"at column 5"):
        registry.create("say|sya")
    with pytest.raises(ConfigError, match=r"strategy 'say' has no parameter 'n'.* at column 5"):
        registry.create("say>say(n=2)")
    with pytest.raises(ConfigError, match=r"say\.k: cannot read 'many' as int"):
        registry.create("say(k=many)|say")


def test_options_apply_to_the_outermost_part(registry: Registry) -> None:
    chosen = registry.create("say|say(tag=b)", {"select": "verifier"})
    assert isinstance(chosen, Parallel) and chosen.params.select == "verifier"
    single = registry.create("say(tag=b)", {"k": "3"})
    assert isinstance(single, Say) and (single.params.tag, single.params.k) == ("b", 3)
    with pytest.raises(ConfigError, match="'tag' is given in the spec and as an option"):
        registry.create("say(tag=b)", {"tag": "c"})
    with pytest.raises(ConfigError, match="a pipeline takes no options"):
        registry.create("say>say", {"k": "2"})
    with pytest.raises(ConfigError, match=r"a parallel takes only select \(got n\); put"):
        registry.create("say|say", {"n": "3", "select": "vote"})
    with pytest.raises(ConfigError, match=r"parallel\.select: cannot read 'best'"):
        registry.create("say|say", {"select": "best"})


def test_labels_show_non_default_params(registry: Registry) -> None:
    composed = registry.create("(say|say(k=2))>say(tag=b)")
    assert isinstance(composed, Pipeline)
    assert composed.spec == "(say|say(k=2))>say(tag=b)"
    assert label(Say()) == "say"


def test_builtins_compose_through_the_entry_point_registry() -> None:
    composed = Registry.from_entry_points().create("cot>self-consistency(n=2)")
    assert isinstance(composed, Pipeline)
    assert [s.name for s in composed.stages] == ["cot", "self-consistency"]
    answer = Engine(ScriptedBackend(["so Answer: 3", "Answer: 3"])).ask("q", strategy="cot|cot")
    assert answer.strategy == "cot|cot" and answer.votes == {"3": 2}


# -- pipeline -----------------------------------------------------------------

def test_pipeline_feeds_the_previous_response_as_a_draft() -> None:
    backend = ScriptedBackend(["draft Answer: 1", "checked it Answer: 2"])
    answer = run(pipeline(Say(SayParams(tag="a")), Say(SayParams(tag="b"))), backend)
    first, second = (prompts[0] for prompts, _ in backend.calls)
    assert "Earlier attempt" not in first[0]["content"]
    assert second[0]["content"] == "tag b\n\n" + DRAFT_CONTEXT.format(draft="draft Answer: 1")
    assert answer.answer == "2" and answer.strategy == "say(tag=a)>say(tag=b)"
    assert [s["completion_tokens"] for s in answer.info["stages"]] == [3, 4]
    assert [s["answer"] for s in answer.info["stages"]] == ["1", "2"]


def test_the_draft_also_reaches_a_whole_chat() -> None:
    problem = Problem("q", messages=({"role": "user", "content": "q"},), draft="d")
    assert problem.chat("do it")[0] == {"role": "system",
                                        "content": "do it\n\n" + DRAFT_CONTEXT.format(draft="d")}
    assert Problem("q", draft="d").chat()[0]["content"] == DRAFT_CONTEXT.format(draft="d")


def test_pipeline_out_of_budget_answers_with_the_last_stage_that_ran() -> None:
    backend = ScriptedBackend(["one two three Answer: 1"])
    answer = run(pipeline(Say(), Say()), backend, max_total_tokens=5)
    assert len(backend.calls) == 1
    assert answer.answer == "1" and answer.info["stopped"] == "budget (before say)"
    with pytest.raises(BudgetExceeded):
        run(pipeline(Say(), Say()), ScriptedBackend([]), max_total_tokens=0)


# -- parallel -----------------------------------------------------------------

def test_parallel_votes_over_every_branch_candidate() -> None:
    backend = ScriptedBackend(["Answer: 4", "Answer: 5", "x Answer: 5", "Answer: 5"])
    answer = run(parallel(Say(SayParams(k=3)), Say()), backend)
    assert answer.answer == "5" and answer.votes == {"5": 3, "4": 1}
    assert answer.confidence == pytest.approx(0.75)
    assert answer.text == "Answer: 5" and len(answer.candidates) == 4
    assert answer.strategy == "say(k=3)|say"
    assert [b["completion_tokens"] for b in answer.info["branches"]] == [2 + 2 + 3, 2]


def test_parallel_selects_by_verifier() -> None:
    backend = ScriptedBackend(["Answer: 4", "Answer: 5"])
    verifier = TextScore({"Answer: 4": 0.2, "Answer: 5": 0.7})
    answer = run(parallel(Say(), Say(), select="verifier"), backend, verifier=verifier)
    assert answer.answer == "5" and answer.confidence == pytest.approx(0.7)
    assert [c.score for c in answer.candidates] == [0.2, 0.7]
    assert answer.info["verifier"] == "text-score"


def test_parallel_splits_the_remaining_budget_among_branches() -> None:
    backend = ScriptedBackend(["w " * 8, "Answer: 1", "w " * 8])
    run(parallel(Say(), Say(), Say()), backend, max_total_tokens=12)
    # 12 / 3 = 4 for the first; it spends 4, so 8 / 2 = 4; the second spends 2, so 6 / 1
    assert [params.max_tokens for _, params in backend.calls] == [4, 4, 6]


def test_a_branch_without_budget_is_skipped_and_none_left_raises() -> None:
    backend = ScriptedBackend(["9"])
    answer = run(parallel(Say(), Say()), backend, max_total_tokens=1)
    # the first branch's share is 1 // 2 = 0 tokens; the second gets the whole token
    assert answer.info["branches"][0] == {"strategy": "say", "skipped": "budget"}
    assert answer.answer == "9" and backend.calls[0][1].max_tokens == 1
    with pytest.raises(BudgetExceeded, match="before any branch"):
        run(parallel(Say(), Say()), ScriptedBackend([]), max_total_tokens=0)
