"""The sleep agent's logic on a scripted backend: rounds, protocols, caps, selection."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from ponder.backends.base import Completion
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import ConfigError
from ponder.ledger import Ledger, Usage
from ponder.sleep.agent import (
    SleepAgent,
    SleepEvent,
    SleepFailed,
    SleepInterrupted,
    SleepParams,
    SleepResult,
)
from ponder.strategies.base import Problem, RunContext

CONTEXT = "Ava has 3 apples. Ben has 2 more apples than Ava."


def run(backend: ScriptedBackend, params: SleepParams, *, agent: SleepAgent | None = None,
        events: list[SleepEvent] | None = None, **kw: Any) -> tuple[SleepResult, Ledger]:
    ledger = Ledger()
    agent = agent or SleepAgent(params)
    result = backend.run_sync(agent.run(CONTEXT, RunContext(backend, ledger, phase="sleep"),
                                        on_event=events.append if events is not None else None,
                                        **kw))
    return result, ledger


def tool_call(name: str, arguments: Any, call_id: str = "call_1") -> Completion:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return Completion("", "tool_calls", Usage(10, 7), tool_calls=(
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}},))


def test_text_protocol_rethinks_until_finish() -> None:
    backend = ScriptedBackend(["Ava = 3", "Ava = 3\nBen = 3 + 2 = 5", "FINISH"])
    events: list[SleepEvent] = []
    result, ledger = run(backend, SleepParams(rounds=5), events=events)
    assert result.memory == "Ava = 3\nBen = 3 + 2 = 5"
    assert (result.rounds, result.protocol, result.malformed) == (3, "text", 0)
    assert [e.action for e in events] == ["rethink", "rethink", "finish", "select"]
    assert [e.round for e in events[:3]] == [1, 2, 3]
    assert [(e.phase, e.strategy) for e in ledger.entries] == [("sleep", "sleep-agent")] * 3
    assert result.usage == ledger.total("sleep") and ledger.total("test") == Usage()
    # round 2 showed the model its notes so far
    second_prompt = backend.calls[1][0][0][-1]["content"]
    assert "Your notes so far:\nAva = 3" in second_prompt and CONTEXT in second_prompt


def test_unchanged_notes_end_the_rethinking() -> None:
    backend = ScriptedBackend(["Ben = 5", "Ben = 5"])
    result, ledger = run(backend, SleepParams(rounds=4))
    assert (result.memory, result.rounds, ledger.calls) == ("Ben = 5", 2, 2)


def test_rounds_cap_the_calls() -> None:
    backend = ScriptedBackend(lambda prompt, params: [f"note {len(backend.calls)}"])
    result, ledger = run(backend, SleepParams(rounds=3))
    assert (result.rounds, ledger.calls, result.memory) == (3, 3, "note 3")


def test_memory_block_is_capped_at_a_line_end() -> None:
    lines = "\n".join(f"quantity {i} = {i} * 2 = {2 * i}" for i in range(20))
    backend = ScriptedBackend([lines, "FINISH"])
    result, _ = run(backend, SleepParams(rounds=2, max_memory_chars=150))
    assert result.truncated and len(result.memory) <= 150
    assert lines.startswith(result.memory) and lines[len(result.memory)] == "\n"


def test_a_reply_cut_by_max_tokens_loses_its_last_line() -> None:
    cut = Completion("a = 1\nb = 2\nc = 3 +", "length", Usage(10, 12))
    backend = ScriptedBackend([cut, "FINISH"])
    result, _ = run(backend, SleepParams(rounds=2))
    assert result.memory == "a = 1\nb = 2"


def test_malformed_replies_are_retried_in_the_next_round() -> None:
    backend = ScriptedBackend(["", "FINISH", "Ben = 5"])
    events: list[SleepEvent] = []
    result, _ = run(backend, SleepParams(rounds=3), events=events)
    assert result.memory == "Ben = 5" and result.malformed == 2
    assert [e.action for e in events[:3]] == ["malformed", "malformed", "rethink"]
    assert events[1].detail == "FINISH before any notes were written"


def test_no_usable_block_raises_sleep_failed() -> None:
    backend = ScriptedBackend(["", "", ""])
    with pytest.raises(SleepFailed, match="no memory block in 3 round"):
        run(backend, SleepParams(rounds=3))
    assert len(backend.calls) == 3


def test_tool_calls_replace_the_block_and_keep_openai_shapes() -> None:
    backend = ScriptedBackend([tool_call("rethink_memory", {"new_memory": "Ben = 5"}, "c1"),
                               tool_call("finish_rethinking_memory", {}, "c2")])
    result, _ = run(backend, SleepParams(rounds=4, protocol="tools"))
    assert (result.memory, result.rounds, result.protocol) == ("Ben = 5", 2, "tools")
    [messages], _ = backend.calls[1]
    system, user, assistant, tool = messages
    assert "<rethink_memory_block>\nBen = 5\n</rethink_memory_block>" in system["content"]
    assert '"name": "rethink_memory"' in system["content"]  # the tool definitions
    assert user["content"].startswith("[trigger_rethink_memory] New situation:\n" + CONTEXT)
    assert assistant["tool_calls"][0]["function"]["name"] == "rethink_memory"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {
        "new_memory": "Ben = 5"}
    assert (tool["role"], tool["tool_call_id"]) == ("tool", "c1")
    assert tool["content"].startswith("ok: memory block replaced")


@pytest.mark.parametrize("text", [
    '<tool_call>\n{"name": "rethink_memory", "arguments": {"new_memory": "Ben = 5"}}\n'
    '</tool_call>',
    '```json\n{"name": "rethink_memory", "arguments": {"new_memory": "Ben = 5"}}\n```',
])
def test_tool_calls_written_as_text_are_read(text: str) -> None:
    backend = ScriptedBackend([text, '<tool_call>{"name": "finish_rethinking_memory"}'
                                     '</tool_call>'])
    result, _ = run(backend, SleepParams(rounds=3, protocol="tools"))
    assert (result.memory, result.rounds) == ("Ben = 5", 2)


@pytest.mark.parametrize(("bad", "error"), [
    (tool_call("rethink_memory", '{"new_memory": "Ben = 5"'), "not valid JSON"),
    (tool_call("rethink_memory", {"memory": "Ben = 5"}), "needs a non-empty string new_memory"),
    (tool_call("rethink_memory", {"new_memory": "  "}), "needs a non-empty string new_memory"),
    (tool_call("delete_everything", {}), "unknown tool 'delete_everything'"),
    ("I will now think about the apples.", "no tool call in the reply"),
    ("<tool_call>{not json}</tool_call>", "not a valid JSON object with a name"),
])
def test_malformed_tool_calls_are_reported_and_retried(bad: Any, error: str) -> None:
    backend = ScriptedBackend([bad, tool_call("rethink_memory", {"new_memory": "Ben = 5"}),
                               tool_call("finish_rethinking_memory", {})])
    events: list[SleepEvent] = []
    result, _ = run(backend, SleepParams(rounds=3, protocol="tools"), events=events)
    assert result.memory == "Ben = 5" and result.malformed == 1
    assert events[0].action == "malformed" and error in (events[0].detail or "")
    [messages], _ = backend.calls[1]
    assert error in messages[-1]["content"]  # the model is told what was wrong


class LengthVerifier:
    name = "length"

    async def score(self, problem: Problem, candidates: Sequence[str],
                    ctx: RunContext) -> list[float]:
        assert problem.question == CONTEXT
        return [float(len(c)) for c in candidates]


def test_parallel_agents_share_the_first_prefill_and_the_best_is_selected() -> None:
    replies = iter(["a = 1", "a = 1\nb = 2\nc = 3", "a = 1\nb = 2"])

    def respond(prompt: object, params: Any) -> list[str]:
        if params.n > 1:
            return [next(replies) for _ in range(params.n)]
        return ["FINISH"]

    backend = ScriptedBackend(respond)
    agent = SleepAgent(SleepParams(rounds=2, samples=3), verifier=LengthVerifier())
    result, ledger = run(backend, agent.params, agent=agent)
    first_prompts, first_params = backend.calls[0]
    assert len(first_prompts) == 1 and first_params.n == 3
    assert first_params.temperature == 0.7  # several agents sample
    assert len(backend.calls[1][0]) == 3  # then one batched call for the three agents
    assert (result.chosen, result.memory, result.samples) == (1, "a = 1\nb = 2\nc = 3", 3)
    assert result.scores == (5.0, 17.0, 11.0)
    assert result.strategy == "sleep-agent:text:k=3"
    assert ledger.calls == 2


def test_self_check_scores_by_the_models_yes() -> None:
    def respond(prompt: Any, params: Any) -> list[str]:
        text = prompt[-1]["content"]
        if "Answer Yes or No" in text:
            return ["Yes" if "b = 5" in text else "No"]
        if params.n > 1:
            return ["b = 4", "b = 5"]
        return ["FINISH"]

    backend = ScriptedBackend(respond)
    result, ledger = run(backend, SleepParams(rounds=2, samples=2))
    assert (result.memory, result.chosen, result.scores) == ("b = 5", 1, (0.0, 1.0))
    assert ("sleep", "self-check") in ledger.by_strategy()


def test_merge_makes_one_more_call() -> None:
    def respond(prompt: Any, params: Any) -> list[str]:
        text = prompt[-1]["content"]
        if "Merge them" in text:
            assert "Notes 1:\na = 1" in text and "Notes 2:\nb = 2" in text
            return ["a = 1\nb = 2"]
        return ["a = 1", "b = 2"] if params.n > 1 else ["FINISH"]

    backend = ScriptedBackend(respond)
    result, ledger = run(backend, SleepParams(rounds=2, samples=2, select="merge"))
    assert (result.memory, result.chosen, ledger.calls) == ("a = 1\nb = 2", None, 3)


def test_auto_protocol_follows_the_declared_capability() -> None:
    class ToolBackend(ScriptedBackend):
        supports_tools = True

    backend = ToolBackend([tool_call("rethink_memory", {"new_memory": "x"}),
                           tool_call("finish_rethinking_memory", {})])
    assert run(backend, SleepParams())[0].protocol == "tools"
    assert run(ScriptedBackend(["x", "FINISH"]), SleepParams())[0].protocol == "text"


def test_stop_request_interrupts_between_rounds() -> None:
    backend = ScriptedBackend(["a", "b", "c"])
    calls = iter([False, True])
    with pytest.raises(SleepInterrupted):
        run(backend, SleepParams(rounds=3), should_stop=lambda: next(calls))
    assert len(backend.calls) == 1


def test_bad_input() -> None:
    backend = ScriptedBackend([])
    with pytest.raises(ConfigError, match="context is empty"):
        backend.run_sync(SleepAgent().run("  ", RunContext(backend)))
    for kwargs, message in (({"rounds": 0}, "rounds must be an integer >= 1"),
                            ({"samples": 1.5}, "samples must be an integer"),
                            ({"protocol": "xml"}, "protocol must be auto, text or tools"),
                            ({"select": "vote"}, "select must be"),
                            ({"temperature": 5}, "temperature must be in")):
        with pytest.raises(ConfigError, match=message):
            SleepParams(**kwargs)


def test_a_context_too_long_for_the_window_is_refused_before_any_call(
        tiny_backend: Any) -> None:
    ledger = Ledger()
    long_context = " ".join(f"Box {i} holds {i % 7 + 2} red marbles." for i in range(900))
    with pytest.raises(ConfigError, match=r"too long for the model's window.*n_ctx=4096"):
        tiny_backend.run_sync(SleepAgent().run(long_context,
                                               RunContext(tiny_backend, ledger, phase="sleep")))
    assert ledger.calls == 0
