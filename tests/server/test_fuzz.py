"""Fuzzed request bodies: whatever a client sends, the answer is never a 5xx.

Bodies mix well-formed fields, wrong types and random JSON. Any body that
would generate asks for at most 3 tokens, so the run stays short.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving import Served

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                  max_size=3),
    max_leaves=8)

ROLES = st.sampled_from(["system", "developer", "user", "assistant", "tool"])
TINY = st.integers(1, 3)
MESSAGE = st.fixed_dictionaries(
    {"role": ROLES, "content": st.text(max_size=30) | st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image_url"]), "text": st.text(max_size=10)}),
        min_size=1, max_size=2)},
    optional={"name": st.text(min_size=1, max_size=8), "tool_calls": st.lists(
        st.fixed_dictionaries({"id": st.text(max_size=6), "type": st.just("function"),
                               "function": st.fixed_dictionaries({
                                   "name": st.text(max_size=6),
                                   "arguments": st.text(max_size=10)})}), max_size=1)})
PONDER = st.fixed_dictionaries({"budget": st.integers(1, 40)}, optional={
    "strategy": st.sampled_from(["cot", "direct", "self-consistency", "nope"]),
    "params": st.fixed_dictionaries({}, optional={
        "n": st.integers(0, 3) | JSON, "temperature": st.floats(-1, 3) | JSON,
        "max_tokens": TINY | JSON, "bogus": JSON}),
    "reasoning_effort": st.sampled_from(["low", "medium", "high", "extreme"]),
    "context_id": st.text(max_size=8)})
COMMON = {
    "model": st.sampled_from(["smollm2-135m", "cot/smollm2-135m", "direct/smollm2-135m",
                              "self-consistency/x", "nope"]),
    "n": st.integers(0, 5), "temperature": st.floats(-1, 3), "top_p": st.floats(-1, 2),
    "stream": st.booleans(), "stream_options": st.fixed_dictionaries(
        {"include_usage": st.booleans()}),
    "stop": st.text(max_size=4) | st.lists(st.text(max_size=4), max_size=3),
    "seed": st.integers(-(2**70), 2**70), "logit_bias": st.dictionaries(
        st.sampled_from(["1", "2", "-1", "x", "99999999"]), st.floats(-200, 200), max_size=2),
    "user": st.text(max_size=5), "frequency_penalty": st.floats(-3, 3), "ponder": PONDER,
}
CHAT = st.fixed_dictionaries({"messages": st.lists(MESSAGE, min_size=1, max_size=3),
                              "max_tokens": TINY}, optional={
    **COMMON,
    "tools": st.lists(st.fixed_dictionaries({"type": st.just("function"), "function":
                                             st.fixed_dictionaries({"name": st.text(max_size=5)})
                                             }), max_size=1),
    "tool_choice": st.sampled_from(["none", "auto", "required"]),
    "response_format": st.fixed_dictionaries({"type": st.sampled_from(["text", "json_object"])}),
    "logprobs": st.booleans(), "max_completion_tokens": TINY})
COMPLETION = st.fixed_dictionaries({"prompt": st.text(max_size=20) | st.lists(
    st.text(max_size=8), min_size=1, max_size=3), "max_tokens": TINY}, optional={
    **COMMON, "echo": st.booleans(), "suffix": st.text(max_size=3),
    "best_of": st.integers(0, 3), "logprobs": st.integers(-1, 6)})


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, Any]:
    """A well-formed body, then up to two fields broken (replaced by random JSON or
    dropped), or now and then a body of pure random JSON."""
    path, base = draw(st.sampled_from([("/chat/completions", CHAT),
                                       ("/completions", COMPLETION)]))
    if draw(st.integers(0, 9)) == 0:
        return path, draw(JSON)
    body: dict[str, Any] = draw(base)
    for key in draw(st.lists(st.sampled_from(sorted({*body, "ponder", "n", "junk"})),
                             max_size=2)):
        if key == "max_tokens":
            continue  # keep generations tiny
        if draw(st.booleans()):
            body[key] = draw(JSON)
        else:
            body.pop(key, None)
    return path, body


BODIES = bodies()


def _send(client: httpx.Client, path: str, body: Any) -> tuple[int, str]:
    try:
        content = json.dumps(body).encode()
    except (ValueError, OverflowError):
        content = repr(body).encode()
    with client.stream("POST", path, content=content,
                       headers={"Content-Type": "application/json"}) as response:
        text = response.read().decode("utf-8", "replace")
        return response.status_code, text


@pytest.fixture(scope="module")
def http(served: Served) -> httpx.Client:
    return httpx.Client(base_url=served.base_url, headers=served.auth, timeout=60)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(request=BODIES)
def test_no_5xx_for_any_body(http: httpx.Client, request: tuple[str, Any]) -> None:
    path, body = request
    status, text = _send(http, path, body)
    assert status < 500, (status, text)
    if 400 <= status < 500:
        error = json.loads(text)["error"]
        assert set(error) == {"message", "type", "param", "code"}
    elif text.startswith("data: "):  # a stream: no server error inside it either
        for line in text.splitlines():
            if line.startswith("data: {"):
                event = json.loads(line[6:])
                assert "error" not in event or event["error"]["code"] not in (
                    "internal_error", "backend_error"), event


def test_random_bytes_are_400(http: httpx.Client) -> None:
    for raw in (b"\xff\xfe\x00", b"", b"null", b"[]", b'{"messages": [}', b"1e999999"):
        response = http.post("/chat/completions", content=raw,
                             headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (raw, response.text)
