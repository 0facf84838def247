"""The openai backend against a real OpenAI-compatible server.

The server is llama-cpp-python's, serving the tiny SmolLM2 GGUF on a free
local port (see ``tests/helpers/llama_server.py``). It ignores ``n``, so it
also exercises the fan-out path.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openai.types.chat import ChatCompletion

from ponder.backends import make_backend
from ponder.backends.base import TokenLogprob
from ponder.backends.openai_compat import (
    OpenAICompatBackend,
    _chat_completion,
    _split,
    normalise_base_url,
)
from ponder.errors import BackendError, CapabilityError, ConfigError, RemoteError
from ponder.ledger import Ledger, Usage
from ponder.model_files import resolve_model
from ponder.params import SamplingParams

HELPER = Path(__file__).resolve().parents[1] / "helpers" / "llama_server.py"
CHAT = [{"role": "user", "content": "Say hello."}]
SHORT = SamplingParams(max_tokens=6, temperature=0.0, seed=1)
STARTUP_SECONDS = 60.0


@dataclass(frozen=True)
class Server:
    port: int
    model_id: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"llama server not ready after {STARTUP_SECONDS:g} s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real OpenAI-compatible server (llama-cpp-python) on a free local port."""
    model_path = resolve_model("smollm2-135m")[1]
    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(HELPER), "--model", str(model_path), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "2048", "--n_threads", "1",
             # The batch thread count defaults to every core; on a busy 2-core machine the
             # OpenMP workers then stall prompt evaluation for seconds. One thread is enough.
             "--n_threads_batch", "1"],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, port, log)
        yield Server(port, str(model_path))  # llama.cpp's server names the model by its path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def backend(server: Server) -> Iterator[OpenAICompatBackend]:
    be = OpenAICompatBackend(server.url, timeout=30.0, max_retries=0)
    yield be
    be.close()


# -- generation -------------------------------------------------------------


def test_chat_generate_returns_text_and_records_usage(backend: OpenAICompatBackend,
                                                      server: Server) -> None:
    ledger = Ledger()
    with ledger.activate():
        result = backend.generate([CHAT], SHORT)
    assert len(result) == 1 and len(result[0]) == 1
    completion = result[0][0]
    assert completion.text.strip()
    assert completion.finish_reason in ("stop", "length")
    assert completion.usage.prompt_tokens > 0
    assert 0 < completion.usage.completion_tokens <= SHORT.max_tokens
    assert completion.token_ids is None and completion.logprobs is None
    assert backend.model == server.model_id  # resolved from GET /models
    assert ledger.calls == 1
    entry = ledger.snapshot()[0]
    assert (entry.backend, entry.model, entry.completions) == ("openai", server.model_id, 1)
    assert ledger.total() == completion.usage


def test_raw_prompt_is_continued(backend: OpenAICompatBackend) -> None:
    params = SamplingParams(max_tokens=4, temperature=0.0)
    [[completion]] = backend.generate(["The capital of France is"], params)
    assert completion.text
    assert completion.usage.prompt_tokens >= 4  # the raw prompt, no chat template around it
    assert completion.usage.prompt_tokens < 20
    assert 0 < completion.usage.completion_tokens <= 4


def test_n_fans_out_when_the_engine_ignores_it(backend: OpenAICompatBackend) -> None:
    params = SamplingParams(max_tokens=6, temperature=1.0, seed=7, n=3)
    ledger = Ledger()
    with ledger.activate():
        [group] = backend.generate([CHAT], params)
    assert len(group) == 3
    assert backend.honours_n is False  # detected: the server answered with one choice
    assert all(c.usage.completion_tokens > 0 for c in group)  # one response per sample
    assert ledger.calls == 1
    assert ledger.snapshot()[0].completions == 3
    assert ledger.total().completion_tokens == sum(c.usage.completion_tokens for c in group)
    assert ledger.total() == Usage.sum(c.usage for c in group)


def test_logprobs_chat_and_raw(backend: OpenAICompatBackend) -> None:
    params = SamplingParams(max_tokens=3, temperature=0.0, logprobs=2)
    [[chat]], [[raw]] = backend.generate([CHAT], params), backend.generate(["1, 2, 3,"], params)
    for completion in (chat, raw):
        assert completion.logprobs
        assert all(isinstance(t, TokenLogprob) and t.logprob <= 0 for t in completion.logprobs)
        assert all(len(t.top) <= 2 for t in completion.logprobs)
        assert any(t.top for t in completion.logprobs)


def test_async_path(backend: OpenAICompatBackend) -> None:
    async def run() -> list[list[str]]:
        try:
            groups = await backend.agenerate([CHAT, "Once upon a time"], SHORT)
            return [[c.text for c in group] for group in groups]
        finally:
            await backend.aclose()

    texts = asyncio.run(run())
    assert [len(group) for group in texts] == [1, 1]
    assert all(group[0] for group in texts)


def test_sync_generate_twice_reuses_its_loop(backend: OpenAICompatBackend) -> None:
    first = backend.generate([CHAT], SHORT)
    second = backend.generate([CHAT], SHORT)
    assert first[0][0].text == second[0][0].text  # greedy, same prompt
    assert len(backend._states) == 1  # one client, bound to the private loop thread


def test_list_models_sync_and_async(backend: OpenAICompatBackend, server: Server) -> None:
    assert backend.run_sync(backend.list_models()) == [server.model_id]  # as `ponder models`

    async def listed() -> list[str]:
        try:
            return await backend.list_models()
        finally:
            await backend.aclose()

    assert asyncio.run(listed()) == [server.model_id]


def test_closed_backend_refuses_work(server: Server) -> None:
    be = OpenAICompatBackend(server.url, model="m", max_retries=0)
    assert be.run_sync(be.list_models())
    be.close()
    with pytest.raises(BackendError, match="closed"):
        be.generate([CHAT], SHORT)


# -- errors -----------------------------------------------------------------


def test_unreachable_engine_names_the_url() -> None:
    port = _free_port()  # nothing listens there any more
    be = OpenAICompatBackend(f"http://127.0.0.1:{port}", model="m", timeout=5.0, max_retries=0)
    try:
        with pytest.raises(RemoteError) as info:
            be.generate([CHAT], SHORT)
    finally:
        be.close()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    assert info.value.url == url
    assert info.value.status is None
    assert str(info.value) == f"POST {url} failed: connection refused (is the engine running?)"


def test_wrong_path_is_a_404_with_status(server: Server) -> None:
    base = f"http://127.0.0.1:{server.port}/nope/v1"
    be = OpenAICompatBackend(base, model="m", max_retries=0)
    try:
        with pytest.raises(RemoteError) as info:
            be.generate([CHAT], SHORT)
        with pytest.raises(RemoteError) as listing:
            be.run_sync(be.list_models())  # model resolution and `ponder models` take this path
    finally:
        be.close()
    assert info.value.status == 404
    assert str(info.value) == f"{base}/chat/completions returned 404: Not Found"
    assert listing.value.status == 404 and listing.value.url == f"{base}/models"


# -- construction -----------------------------------------------------------


def test_make_backend_openai(server: Server) -> None:
    be = make_backend("openai", base_url=f"http://127.0.0.1:{server.port}", model="x",
                      max_concurrency=2)
    try:
        assert isinstance(be, OpenAICompatBackend)
        assert be.base_url == server.url
        assert (be.model, be.max_concurrency) == ("x", 2)
    finally:
        be.close()
    with pytest.raises(ConfigError, match="base URL"):
        make_backend("openai")


@pytest.mark.parametrize(("given", "expected"), [
    ("http://h:8000", "http://h:8000/v1"),
    ("http://h:8000/", "http://h:8000/v1"),
    ("http://h:8000/v1", "http://h:8000/v1"),
    ("https://h/api/v1/", "https://h/api/v1"),
])
def test_base_url_is_normalised(given: str, expected: str) -> None:
    assert normalise_base_url(given) == expected


@pytest.mark.parametrize("bad", ["", "h:8000", "ftp://h/v1"])
def test_bad_base_url_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError):
        normalise_base_url(bad)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="max_concurrency"):
        OpenAICompatBackend("http://h:1", max_concurrency=0)


def test_environment_fills_model_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONDER_MODEL", "env-model")
    monkeypatch.setenv("PONDER_API_KEY", "env-key")
    be = OpenAICompatBackend("http://h:1")
    assert (be.model, be._api_key) == ("env-model", "env-key")
    assert OpenAICompatBackend("http://h:1", model="arg").model == "arg"


def test_raw_completion_can_be_turned_off() -> None:
    be = OpenAICompatBackend("http://h:1", model="m", raw_completion=False)
    assert be.supports_raw_completion is False
    assert OpenAICompatBackend.supports_raw_completion is True
    assert be.describe()["raw_completion"] is False
    with pytest.raises(CapabilityError):
        be.generate(["raw text"], SHORT)
    be.close()


# -- response parsing (engines that honour n, tool calls, cached tokens) ---


def _chat_response(choices: int, *, cached: int | None) -> ChatCompletion:
    tool_call = {"id": "call_1", "type": "function",
                 "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}
    return ChatCompletion.model_validate({
        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": i, "finish_reason": "tool_calls" if i == 0 else "stop",
                     "message": {"role": "assistant", "content": None if i == 0 else f"c{i}",
                                 "tool_calls": [tool_call] if i == 0 else None}}
                    for i in reversed(range(choices))],
        "usage": {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
                  "prompt_tokens_details": None if cached is None else {"cached_tokens": cached}},
    })


def test_one_response_with_several_choices_bills_its_first_completion() -> None:
    url = "http://h/v1/chat/completions"
    got = _split(_chat_response(3, cached=4), url, _chat_completion, None)
    assert [c.text for c in got] == ["", "c1", "c2"]  # ordered by choice index
    assert got[0].usage == Usage(10, 7, 4)
    assert got[1].usage == got[2].usage == Usage()
    assert got[0].finish_reason == "tool_calls"
    assert got[0].tool_calls is not None
    assert got[0].tool_calls[0]["function"] == {"name": "add", "arguments": '{"a": 1, "b": 2}'}
    assert got[1].tool_calls is None


def test_missing_cached_tokens_count_as_zero() -> None:
    [completion] = _split(_chat_response(1, cached=None), "u", _chat_completion, None)
    assert completion.usage == Usage(10, 7, 0)


def test_budget_forcing_runs_on_a_remote_engine(backend: OpenAICompatBackend) -> None:
    """s1 budget forcing through /v1/completions, with a plain transcript (no template)."""
    from ponder import Engine

    engine = Engine(backend)
    answer = engine.ask("What is 2 + 3?", strategy="budget-forcing",
                        params={"min_thinking_tokens": 40, "max_thinking_tokens": 48,
                                "max_waits": 2, "answer_max_tokens": 8},
                        sampling=SamplingParams(max_tokens=64, temperature=0.0, seed=1))
    info = answer.info
    entries = answer.ledger.snapshot()
    assert len(entries) >= 2 and all(e.backend == "openai" for e in entries)
    assert all(e.strategy == "budget-forcing" for e in entries)
    # the thinking either ran into the maximum (and was cut) or was extended with "Wait"
    thinking = answer.ledger.total().completion_tokens
    assert thinking <= 48 + 8
    assert info.get("cut") or info.get("waits", 0) >= 1, info


def test_tokenize_uses_the_engines_endpoint(backend: OpenAICompatBackend) -> None:
    from ponder.backends.llamacpp import EmbeddedBackend

    local = EmbeddedBackend("smollm2-135m", n_ctx=256)
    try:
        assert backend.tokenize(" Alternatively, wait") == local.tokenize(" Alternatively, wait")
    finally:
        local.close()


def test_thought_switch_penalty_runs_on_a_remote_engine(backend: OpenAICompatBackend) -> None:
    """TIP approximated with logit_bias in a first segment, then a plain continuation."""
    from ponder import Engine

    answer = Engine(backend).ask(
        "Tell me a story.", strategy="thought-switch-penalty",
        params={"beta": 12, "max_tokens": 24},
        sampling=SamplingParams(max_tokens=24, temperature=0.0, seed=1))
    entries = answer.ledger.snapshot()
    assert entries and all(e.backend == "openai" for e in entries)
    assert answer.ledger.total().completion_tokens <= 24
    assert answer.text
