"""The real openai client against the real server serving SmolLM2 (mechanics only)."""

from __future__ import annotations

import httpx
import openai
import pytest
from serving import Served

STORY = [{"role": "user", "content": "Tell me a short story about a robot."}]


def test_chat_completion(served: Served) -> None:
    reply = served.client().chat.completions.create(
        model=served.model, messages=STORY, max_tokens=12, temperature=0)  # type: ignore[arg-type]
    assert reply.object == "chat.completion"
    assert reply.model == served.model
    [choice] = reply.choices
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = reply.usage
    assert usage is not None
    assert usage.prompt_tokens > 10
    assert 1 <= usage.completion_tokens <= 12
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # one visible sample: nothing hidden
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens is not None
    ledger = usage.model_extra["ponder"]  # type: ignore[index]
    assert ledger["calls"] == 1
    assert ledger["completion_tokens"] == usage.completion_tokens
    assert set(ledger["strategies"]) == {"test/cot"}


def test_streaming_chat_matches_its_usage(served: Served) -> None:
    stream = served.client().chat.completions.create(
        model=served.model, messages=STORY, max_tokens=24, temperature=0, stream=True,
        stream_options={"include_usage": True})  # type: ignore[arg-type]
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and
              c.choices[0].delta.content]
    assert len(deltas) > 3, "tokens should arrive as separate chunks"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices
                and c.choices[0].finish_reason]
    assert finishes in (["stop"], ["length"])
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None and 1 <= usage.completion_tokens <= 24
    # the streamed text is the same greedy text the non-streaming call returns
    whole = served.client().chat.completions.create(
        model=served.model, messages=STORY, max_tokens=24, temperature=0)  # type: ignore[arg-type]
    assert "".join(deltas) == whole.choices[0].message.content


def test_n_choices_each_with_its_own_run(served: Served) -> None:
    reply = served.client().chat.completions.create(
        model=served.model, messages=STORY, max_tokens=10, n=3, temperature=1.0,
        seed=5)  # type: ignore[arg-type]
    assert [c.index for c in reply.choices] == [0, 1, 2]
    texts = [c.message.content for c in reply.choices]
    assert all(texts)
    assert len(set(texts)) > 1, "seeds seed+i give different samples"
    assert reply.usage is not None
    ledger = reply.usage.model_extra["ponder"]  # type: ignore[index]
    assert ledger["calls"] == 3
    assert reply.usage.completion_tokens == ledger["completion_tokens"] <= 30


def test_streaming_n_choices(served: Served) -> None:
    stream = served.client().chat.completions.create(
        model=served.model, messages=STORY, max_tokens=8, n=2, temperature=1.0, seed=1,
        stream=True)  # type: ignore[arg-type]
    text = {0: "", 1: ""}
    finished = set()
    for chunk in stream:
        for choice in chunk.choices:
            text[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    assert finished == {0, 1}
    assert text[0] and text[1]


def test_strategy_by_model_prefix(served: Served) -> None:
    reply = served.client().chat.completions.create(
        model=f"self-consistency/{served.model}", messages=STORY, max_tokens=8,
        extra_body={"ponder": {"params": {"n": 3}}})  # type: ignore[arg-type]
    assert reply.model == f"self-consistency/{served.model}"
    info = reply.choices[0].model_extra["ponder"]  # type: ignore[index]
    assert info["strategy"] == "self-consistency"
    usage = reply.usage
    assert usage is not None
    ledger = usage.model_extra["ponder"]  # type: ignore[index]
    assert set(ledger["strategies"]) == {"test/self-consistency"}
    # three samples, one returned: the other two are hidden reasoning
    assert usage.completion_tokens_details is not None
    hidden = usage.completion_tokens_details.reasoning_tokens
    assert 0 < hidden < usage.completion_tokens
    assert usage.completion_tokens <= 3 * 8


def test_strategy_by_extra_body_wins_over_prefix(served: Served) -> None:
    reply = served.client().chat.completions.create(
        model=f"self-consistency/{served.model}", messages=STORY, max_tokens=8,
        extra_body={"ponder": {"strategy": "direct"}})  # type: ignore[arg-type]
    assert reply.choices[0].model_extra["ponder"]["strategy"] == "direct"  # type: ignore[index]


def test_budget_caps_hidden_samples(served: Served) -> None:
    reply = served.client().chat.completions.create(
        model=served.model, messages=STORY, max_tokens=40,
        extra_body={"ponder": {"strategy": "self-consistency", "params": {"n": 4},
                               "budget": 20}})  # type: ignore[arg-type]
    assert reply.usage is not None
    assert reply.usage.completion_tokens <= 20


def test_multi_turn_and_tool_messages_reach_the_model_whole(served: Served) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
        {"role": "user", "content": "So, should I take an umbrella?"},
    ]
    reply = served.client().chat.completions.create(
        model=served.model, messages=messages, max_tokens=8)  # type: ignore[arg-type]
    usage = reply.usage
    assert usage is not None
    # the whole conversation was templated: far more prompt than the last question alone
    short = served.client().chat.completions.create(
        model=served.model, messages=[messages[-1]], max_tokens=8)  # type: ignore[arg-type]
    assert short.usage is not None
    assert usage.prompt_tokens > short.usage.prompt_tokens + 20


def test_tools_fall_back_to_one_direct_generation(served: Served) -> None:
    tools = [{"type": "function", "function": {
        "name": "weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    reply = served.client().chat.completions.create(
        model=f"self-consistency/{served.model}", messages=STORY, tools=tools,
        max_tokens=8)  # type: ignore[arg-type]
    assert reply.choices[0].model_extra["ponder"]["strategy"] == "tools"  # type: ignore[index]
    assert reply.usage is not None
    assert reply.usage.model_extra["ponder"]["calls"] == 1  # type: ignore[index]


def test_completions_continue_the_prompt(served: Served) -> None:
    client = served.client()
    reply = client.completions.create(model=served.model, prompt="Once upon a time",
                                      max_tokens=8, temperature=0)
    assert reply.object == "text_completion"
    assert reply.choices[0].text
    assert reply.usage is not None and reply.usage.completion_tokens <= 8
    assert reply.choices[0].model_extra["ponder"]["strategy"] == "raw"  # type: ignore[index]
    echoed = client.completions.create(model=served.model, prompt="Once upon a time",
                                       max_tokens=8, temperature=0, echo=True)
    assert echoed.choices[0].text == "Once upon a time" + reply.choices[0].text
    streamed = client.completions.create(model=served.model, prompt="Once upon a time",
                                         max_tokens=8, temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == reply.choices[0].text


def test_completions_with_a_strategy_and_several_prompts(served: Served) -> None:
    reply = served.client().completions.create(
        model=f"cot/{served.model}", prompt=["Name a color.", "Name an animal."],
        max_tokens=6, n=2)
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    assert {c.model_extra["ponder"]["strategy"] for c in reply.choices} == {"cot"}  # type: ignore[index]


def test_models_lists_backend_and_strategy_names(served: Served) -> None:
    ids = [m.id for m in served.client().models.list()]
    assert ids[0] == served.model
    assert f"self-consistency/{served.model}" in ids
    assert f"cot/{served.model}" in ids


def test_unknown_model_and_unknown_strategy_prefix_are_404(served: Served) -> None:
    client = served.client()
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4", messages=STORY, max_tokens=4)  # type: ignore[arg-type]
    assert info.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model=f"self_consistency/{served.model}",
                                       messages=STORY, max_tokens=4)  # type: ignore[arg-type]
    assert "unknown strategy" in info.value.message


def test_unknown_strategy_in_body_is_400(served: Served) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        served.client().chat.completions.create(
            model=served.model, messages=STORY, max_tokens=4,
            extra_body={"ponder": {"strategy": "self-consistensy"}})  # type: ignore[arg-type]
    assert info.value.body["param"] == "ponder.strategy"  # type: ignore[index]
    assert "did you mean 'self-consistency'" in info.value.message


def test_health_and_metrics(served: Served) -> None:
    health = httpx.get(f"{served.root}/health").json()
    assert health["status"] == "ok" and health["model"] == served.model
    served.client().chat.completions.create(model=served.model, messages=STORY,
                                            max_tokens=4)  # type: ignore[arg-type]
    text = httpx.get(f"{served.root}/metrics", headers=served.auth).text
    assert 'ponder_requests_total{endpoint="/v1/chat/completions",status="200"}' in text
    assert 'ponder_tokens_total{phase="test",kind="completion"}' in text
    assert "ponder_request_seconds_bucket" in text
    completion = [line for line in text.splitlines()
                  if line.startswith('ponder_tokens_total{phase="test",kind="completion"}')]
    assert int(completion[0].split()[-1]) > 0
