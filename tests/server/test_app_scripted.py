"""Exact server logic on the scripted backend, in-process (no socket, no model).

The real-model tests live next to this file; these pin the numbers: usage
arithmetic, precedence, tool-call parsing, timeouts.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ponder.backends.base import Completion, Prompt
from ponder.backends.scripted import ScriptedBackend
from ponder.engine import Engine
from ponder.errors import RemoteError
from ponder.ledger import Usage
from ponder.params import SamplingParams
from ponder.server import ServerSettings, create_app
from ponder.server.passthrough import parse_tool_calls
from ponder.server.protocol import ChatCompletionRequest, CompletionRequest

HI = [{"role": "user", "content": "What is 2 + 2?"}]


def make_client(replies: Any, **settings: Any) -> Iterator[tuple[TestClient, ScriptedBackend]]:
    backend = ScriptedBackend(replies, model="m")
    app = create_app(Engine(backend), ServerSettings(**settings))
    with TestClient(app) as client:
        yield client, backend


@pytest.fixture
def four() -> Iterator[tuple[TestClient, ScriptedBackend]]:
    """Every sample says 'so Answer: 4' (3 tokens) unless the prompt asks otherwise."""
    yield from make_client(lambda prompt, params: ["so Answer: 4"] * params.n)


def test_reasoning_tokens_are_the_hidden_samples(four: tuple[TestClient, Any]) -> None:
    client, _ = four
    body = {"model": "self-consistency/m", "messages": HI,
            "ponder": {"params": {"n": 5, "early_stop": False}}}
    usage = client.post("/v1/chat/completions", json=body).json()["usage"]
    assert usage["completion_tokens"] == 15  # 5 samples x 3 words
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 12  # 4 not returned
    assert usage["prompt_tokens"] == 50  # 5 x 10, 4 of them served from the shared prefill
    assert usage["prompt_tokens_details"]["cached_tokens"] == 40
    assert usage["ponder"]["strategies"] == {
        "test/self-consistency": {"prompt_tokens": 50, "completion_tokens": 15,
                                  "cached_prompt_tokens": 40}}


def test_n_sums_the_ledgers_of_independent_runs(four: tuple[TestClient, Any]) -> None:
    client, backend = four
    body = {"model": "self-consistency/m", "messages": HI, "n": 3, "seed": 7,
            "ponder": {"params": {"n": 2}}}
    reply = client.post("/v1/chat/completions", json=body).json()
    assert len(reply["choices"]) == 3
    assert reply["usage"]["completion_tokens"] == 3 * 2 * 3
    assert reply["usage"]["completion_tokens_details"]["reasoning_tokens"] == 3 * 3
    assert reply["usage"]["ponder"]["calls"] == 3
    assert sorted(params.seed for _, params in backend.calls) == [7, 8, 9]
    assert reply["choices"][0]["ponder"]["votes"] == {"4": 2}


def test_precedence_request_then_server_default_then_built_in() -> None:
    defaults = ServerSettings(default_strategy="direct", default_max_tokens=100)
    bare = ChatCompletionRequest.model_validate({"messages": HI}).to_run_spec(defaults)
    assert (bare.strategy, bare.sampling.max_tokens, bare.sampling.temperature) == \
        ("direct", 100, SamplingParams().temperature)
    assert bare.budget == defaults.max_request_tokens
    given = ChatCompletionRequest.model_validate(
        {"messages": HI, "max_tokens": 7, "temperature": 0.1, "reasoning_effort": "high"})
    spec = given.to_run_spec(defaults)
    assert (spec.strategy, spec.sampling.max_tokens, spec.sampling.temperature) == \
        ("self-consistency", 7, 0.1)
    assert spec.overrides == {"max_tokens": 7, "temperature": 0.1}
    # body field > model prefix > reasoning effort > server default
    assert given.to_run_spec(defaults, model_strategy="cot").strategy == "cot"
    explicit = ChatCompletionRequest.model_validate(
        {"messages": HI, "reasoning_effort": "low", "ponder": {"strategy": "tpo"}})
    assert explicit.to_run_spec(defaults, model_strategy="cot").strategy == "tpo"
    # max_completion_tokens wins over the deprecated max_tokens
    both = ChatCompletionRequest.model_validate(
        {"messages": HI, "max_tokens": 7, "max_completion_tokens": 9})
    assert both.to_run_spec(defaults).sampling.max_tokens == 9
    # a temperature too small to divide by is greedy (found by the fuzz test)
    tiny = ChatCompletionRequest.model_validate({"messages": HI, "temperature": 1e-101})
    assert tiny.to_run_spec(defaults).sampling.temperature == 0
    assert tiny.to_run_spec(defaults).overrides["temperature"] == 0


def test_completions_without_a_strategy_continue_raw() -> None:
    defaults = ServerSettings(default_strategy="self-consistency")
    spec = CompletionRequest.model_validate({"prompt": ["a", "b"], "n": 2}).to_run_spec(defaults)
    assert (spec.mode, spec.strategy, spec.choices) == ("raw", None, 4)
    assert spec.sampling.max_tokens == 16  # OpenAI's default for /v1/completions
    named = CompletionRequest.model_validate({"prompt": "a"}).to_run_spec(
        defaults, model_strategy="cot")
    assert (named.mode, named.strategy) == ("strategy", "cot")


def test_messages_are_kept_whole(four: tuple[TestClient, ScriptedBackend]) -> None:
    client, backend = four
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather"},
                                     {"type": "text", "text": "in Paris?"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "weather", "arguments": "{}"}}], "x-extra": 1},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "user", "content": "Umbrella?"},
    ]
    assert client.post("/v1/chat/completions",
                       json={"model": "direct/m", "messages": messages}).status_code == 200
    [(prompts, _)] = backend.calls
    [sent] = prompts
    assert not isinstance(sent, str)
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert sent[1]["content"] == "Weather\nin Paris?"
    assert sent[2]["tool_calls"][0]["function"]["name"] == "weather"
    assert sent[2]["x-extra"] == 1
    assert sent[3]["tool_call_id"] == "c1"
    assert sent[0]["content"].startswith("Be brief.")


TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]


def tool_reply(prompt: Prompt, params: SamplingParams) -> list[str]:
    assert not isinstance(prompt, str)
    assert "<tools>" in prompt[0]["content"] and '"weather"' in prompt[0]["content"]
    return ['Let me check. <tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}'
            '\n</tool_call>'] * params.n


def test_tool_calls_come_back_as_tool_calls() -> None:
    for client, backend in make_client(tool_reply):
        body = {"model": "self-consistency/m", "messages": HI, "tools": TOOLS}
        reply = client.post("/v1/chat/completions", json=body).json()
        [choice] = reply["choices"]
        assert choice["finish_reason"] == "tool_calls"
        [call] = choice["message"]["tool_calls"]
        assert call["function"] == {"name": "weather", "arguments": '{"city": "Paris"}'}
        assert choice["message"]["content"] == "Let me check."
        assert len(backend.calls) == 1 and backend.calls[0][1].n == 1
        streamed = client.post("/v1/chat/completions", json=body | {"stream": True}).text
        events = [json.loads(line[6:]) for line in streamed.splitlines()
                  if line.startswith("data: {")]
        deltas = [e["choices"][0]["delta"] for e in events]
        assert deltas[1]["content"] == "Let me check."
        assert deltas[2]["tool_calls"][0]["function"]["name"] == "weather"
        assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_call_parsing_keeps_what_it_cannot_read() -> None:
    text = '<tool_call>{"name": "nope", "arguments": {}}</tool_call> <tool_call>{bad</tool_call>'
    assert parse_tool_calls(text, {"weather"}) == (text, [])
    content, calls = parse_tool_calls('<tool_call>{"name": "weather", "arguments": "{}"}',
                                      {"weather"})
    assert content is None and calls[0]["function"]["arguments"] == "{}"


def test_tool_choice_none_runs_the_strategy(four: tuple[TestClient, Any]) -> None:
    client, _ = four
    body = {"model": "m", "messages": HI, "tools": TOOLS, "tool_choice": "none"}
    choice = client.post("/v1/chat/completions", json=body).json()["choices"][0]
    assert choice["ponder"]["strategy"] == "cot"


def test_timeout_is_504() -> None:
    def slow(prompt: Prompt, params: SamplingParams) -> list[Completion]:
        time.sleep(0.5)
        return [Completion("late", "stop", Usage(1, 1))]

    for client, _ in make_client(slow, request_timeout=0.1):
        response = client.post("/v1/chat/completions", json={"messages": HI})
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "timeout"
        stream = client.post("/v1/chat/completions", json={"messages": HI, "stream": True})
        assert '"code": "timeout"' in stream.text and stream.text.endswith("data: [DONE]\n\n")
        assert client.get("/health").json()["in_flight"] == 0


def test_unknown_fields_are_logged(four: tuple[TestClient, Any],
                                   caplog: pytest.LogCaptureFixture) -> None:
    client, _ = four
    with caplog.at_level(logging.WARNING, logger="ponder.server"):
        client.post("/v1/chat/completions", json={"messages": HI, "store": True, "zzz": 1})
    assert "ignored unknown fields ['store', 'zzz']" in caplog.text


def test_chunked_body_over_the_limit_is_413(four: tuple[TestClient, Any]) -> None:
    client, _ = four

    def chunks() -> Iterator[bytes]:
        yield b'{"messages": "'
        for _ in range(40):
            yield b"x" * 50_000
        yield b'"}'

    response = client.post("/v1/chat/completions", content=chunks(),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_metrics_count_tokens_by_phase(four: tuple[TestClient, Any]) -> None:
    client, _ = four
    client.post("/v1/chat/completions", json={"messages": HI})
    text = client.get("/metrics").text
    assert 'ponder_tokens_total{phase="test",kind="completion"} 3' in text
    assert 'ponder_requests_total{endpoint="/v1/chat/completions",status="200"} 1' in text
    assert 'ponder_request_seconds_count{endpoint="/v1/chat/completions"} 1' in text


def test_library_errors_map_to_statuses() -> None:
    def remote_fails(prompt: Prompt, params: SamplingParams) -> list[str]:
        raise RemoteError("engine said no", url="http://127.0.0.1:9/v1", status=500)

    for client, _ in make_client(remote_fails):
        response = client.post("/v1/chat/completions", json={"messages": HI})
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_error"


def test_budget_errors_are_400(four: tuple[TestClient, Any]) -> None:
    client, _ = four
    too_small = {"messages": HI, "n": 2, "ponder": {"budget": 1}}
    error = client.post("/v1/chat/completions", json=too_small).json()["error"]
    assert (error["param"], error["code"]) == ("ponder.budget", "budget_exceeded")
    starved = {"model": "self-consistency/m", "messages": HI,
               "ponder": {"budget": 3, "params": {"n": 8, "early_stop": False}}}
    response = client.post("/v1/chat/completions", json=starved)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "budget_exceeded"
