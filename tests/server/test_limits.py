"""Auth, caps, saturation, body size and error bodies, against the real server."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from serving import Served

HI = [{"role": "user", "content": "Hi"}]


def post(served: Served, body: Any, *, path: str = "/v1/chat/completions",
         headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    headers = served.auth if headers is None else headers
    return httpx.post(f"{served.root}{path}", json=body, headers=headers, timeout=60, **kwargs)


def assert_error(response: httpx.Response, status: int, *, param: str | None = None,
                 code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    return error


def test_api_key_is_required(served: Served) -> None:
    body = {"model": served.model, "messages": HI, "max_tokens": 2}
    assert_error(post(served, body, headers={}), 401, code="invalid_api_key")
    assert_error(post(served, body, headers={"Authorization": "Bearer nope"}), 401)
    assert httpx.get(f"{served.root}/v1/models").status_code == 401
    with pytest.raises(openai.AuthenticationError):
        served.client(api_key="wrong").models.list()
    assert httpx.get(f"{served.root}/health").status_code == 200  # health stays open
    assert post(served, body).status_code == 200


@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 5}, "n"),
    ({"max_tokens": 513}, "max_tokens"),
    ({"max_completion_tokens": 10_000}, "max_tokens"),
    ({"ponder": {"budget": 5000}}, "ponder.budget"),
    ({"ponder": {"strategy": "self-consistency", "params": {"n": 65}}}, "ponder.params.n"),
])
def test_caps_are_400_naming_the_parameter(served: Served, extra: dict[str, Any],
                                           param: str) -> None:
    body = {"model": served.model, "messages": HI, "max_tokens": 2} | extra
    assert_error(post(served, body), 400, param=param, code="above_cap")


@pytest.mark.parametrize(("body", "param"), [
    ({}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": "hi"}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user"}]}, "messages.0"),
    ({"messages": HI, "temperature": "hot"}, "temperature"),
    ({"messages": HI, "temperature": 3}, "temperature"),
    ({"messages": HI, "n": 0}, "n"),
    ({"messages": HI, "n": True}, "n"),
    ({"messages": HI, "stop": [""]}, "stop"),
    ({"messages": HI, "logit_bias": {"x": 1}}, "logit_bias"),
    ({"messages": HI, "logprobs": True}, "logprobs"),
    ({"messages": HI, "ponder": {"strategyy": "cot"}}, "ponder.strategyy"),
    ({"messages": HI, "ponder": {"strategy": "cot", "params": {"temperature": [1]}}},
     "ponder.params.temperature"),
    ({"messages": HI, "ponder": {"strategy": "cot", "params": {"nope": 1}}}, "ponder.params"),
    ({"messages": HI, "ponder": {"budget": 0}}, "ponder.budget"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://127.0.0.1:1/x.png"}}]}]}, None),
])
def test_bad_input_is_400_with_an_openai_error_body(served: Served, body: dict[str, Any],
                                                    param: str | None) -> None:
    error = assert_error(post(served, {"max_tokens": 2} | body), 400, param=param)
    assert error["type"] == "invalid_request_error"


def test_malformed_json_and_non_object_bodies(served: Served) -> None:
    response = httpx.post(f"{served.root}/v1/chat/completions", content=b'{"messages": [',
                          headers=served.auth | {"Content-Type": "application/json"})
    assert_error(response, 400, code="invalid_json")
    assert_error(post(served, [1, 2]), 400)
    assert_error(post(served, "text"), 400)


def test_unknown_fields_are_ignored(served: Served) -> None:
    body = {"model": served.model, "messages": HI, "max_tokens": 2, "store": True,
            "metadata": {"a": "b"}, "frobnicate": 1}
    assert post(served, body).status_code == 200


def test_unknown_context_and_route(served: Served) -> None:
    body = {"messages": HI, "max_tokens": 2, "ponder": {"context_id": "no-such-context"}}
    assert_error(post(served, body), 404, param="ponder.context_id")
    assert_error(httpx.get(f"{served.root}/v1/nothing", headers=served.auth), 404)
    assert_error(httpx.get(f"{served.root}/v1/chat/completions", headers=served.auth), 405)


def test_body_size_limit(served: Served) -> None:
    big = {"messages": [{"role": "user", "content": "x" * (served.settings.max_body_bytes)}]}
    assert_error(post(served, big), 413, code="body_too_large")


def test_saturation_is_429_with_retry_after(served: Served) -> None:
    client = served.client()
    long = [{"role": "user", "content": "Write a very long essay about the sea."}]
    streams = [client.chat.completions.create(
        model=served.model, messages=long, max_tokens=400,  # type: ignore[arg-type]
        stream=True) for _ in range(served.settings.max_concurrency)]
    try:
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model=served.model, messages=HI, max_tokens=2)  # type: ignore[arg-type]
        assert info.value.response.headers["Retry-After"] == str(served.settings.retry_after)
        assert info.value.body["code"] == "server_busy"  # type: ignore[index]
        assert httpx.get(f"{served.root}/health").json()["in_flight"] == 2
    finally:
        for stream in streams:
            stream.close()
    # closing the streams frees their slots (the server sees the disconnect)
    deadline = time.monotonic() + 20
    while httpx.get(f"{served.root}/health").json()["in_flight"]:
        assert time.monotonic() < deadline, "slots were not released"
        time.sleep(0.05)
    assert post(served, {"model": served.model, "messages": HI, "max_tokens": 2}
                ).status_code == 200
