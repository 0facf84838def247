"""Streaming sends tokens as they are decoded: the first one long before the last."""

from __future__ import annotations

import time

from serving import Served

from ponder.backends.llamacpp import EmbeddedBackend


def test_first_chunk_arrives_long_before_the_end(served: Served,
                                                 tiny_backend: EmbeddedBackend) -> None:
    no_eos = {str(t): -100 for t in sorted(tiny_backend._eog_set)}  # a long generation
    started = time.perf_counter()
    stream = served.client().chat.completions.create(
        model=served.model, messages=[{"role": "user", "content": "Tell me about the sea."}],
        max_tokens=192, temperature=0, logit_bias=no_eos, stream=True,
        stream_options={"include_usage": True})  # type: ignore[arg-type]
    first: float | None = None
    pieces = 0
    usage = None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces += 1
            if first is None:
                first = time.perf_counter() - started
        usage = chunk.usage or usage
    total = time.perf_counter() - started
    assert usage is not None and usage.completion_tokens == 192
    assert first is not None
    assert pieces > 90, "one chunk per token (or close)"
    # the first token is one prefill + one decode step; the rest is 191 more decode steps
    assert first / total < 0.2, f"first chunk after {first:.3f}s of {total:.3f}s"


def test_multi_sample_strategy_sends_progress_then_the_answer(served: Served) -> None:
    import httpx

    body = {"model": f"self-consistency/{served.model}", "max_tokens": 48, "stream": True,
            "messages": [{"role": "user", "content": "Tell me about the sea."}],
            "ponder": {"params": {"n": 4, "early_stop": False}}}
    lines: list[str] = []
    with httpx.stream("POST", f"{served.base_url}/chat/completions", json=body,
                      headers=served.auth, timeout=120) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    progress = [line for line in lines if line.startswith(": ponder-progress")]
    data = [line for line in lines if line.startswith("data: ")]
    assert data[-1] == "data: [DONE]"
    # role chunk, the chosen answer in one piece, finish chunk
    assert len(data) == 4, data
    assert progress, "4 x 48 tokens take longer than the 0.5 s progress interval"
