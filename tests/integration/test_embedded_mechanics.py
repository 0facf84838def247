"""The embedded backend's mechanics on the real tiny model (SmolLM2-135M via llama.cpp)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from ponder.backends.llamacpp import EmbeddedBackend
from ponder.errors import CapabilityError, ConfigError
from ponder.ledger import Ledger
from ponder.params import SamplingParams

CHAT = [{"role": "user", "content": "Tell me a short story about a robot."}]


def test_n_samples_share_one_prefill(tiny_backend: EmbeddedBackend) -> None:
    ledger = Ledger()
    with ledger.activate():
        [completions] = tiny_backend.generate(
            [CHAT], SamplingParams(n=6, max_tokens=24, temperature=1.0, seed=3))
    assert len(completions) == 6
    prompt = completions[0].usage.prompt_tokens
    assert prompt > 10
    # siblings fork the prefilled prompt: all their prompt tokens are cached
    for c in completions[1:]:
        assert c.usage.cached_prompt_tokens == prompt
    [entry] = ledger.entries
    assert entry.completions == 6
    assert entry.usage.prompt_tokens == 6 * prompt
    assert entry.usage.prefill_tokens == prompt - completions[0].usage.cached_prompt_tokens
    assert entry.usage.completion_tokens == sum(len(c.token_ids) for c in completions)
    assert len({c.text for c in completions}) > 1, "samples should differ at temperature 1"


def test_usage_matches_generated_tokens_and_text(tiny_backend: EmbeddedBackend) -> None:
    [[c]] = tiny_backend.generate([CHAT], SamplingParams(max_tokens=30, temperature=0))
    assert c.usage.completion_tokens == len(c.token_ids)
    body = [t for t in c.token_ids if t not in tiny_backend._eog_set]
    assert tiny_backend.detokenize(body) == c.text
    assert c.finish_reason in ("stop", "length")


def test_prefix_is_reused_across_calls(tiny_backend: EmbeddedBackend) -> None:
    params = SamplingParams(max_tokens=16, temperature=0)
    prompt = tiny_backend.render_chat(CHAT)
    [[first]] = tiny_backend.generate([prompt], params)
    continued = prompt + first.text + " And then"
    [[second]] = tiny_backend.generate([continued], params)
    total = second.usage.prompt_tokens
    # everything up to the end of the first completion was already in the KV cache
    assert second.usage.cached_prompt_tokens >= total - 5
    assert second.usage.prefill_tokens <= 5


def test_seeded_sampling_is_reproducible(tiny_backend: EmbeddedBackend) -> None:
    params = SamplingParams(n=3, max_tokens=20, temperature=0.9, seed=42)
    a = [c.text for c in tiny_backend.generate([CHAT], params)[0]]
    tiny_backend.generate([[{"role": "user", "content": "Something else entirely."}]], params)
    b = [c.text for c in tiny_backend.generate([CHAT], params)[0]]
    assert a == b
    c = [c.text for c in tiny_backend.generate([CHAT], params.with_(seed=43))[0]]
    assert c != a


def test_several_prompts_in_one_call(tiny_backend: EmbeddedBackend) -> None:
    prompts = [CHAT, [{"role": "user", "content": "Name a color."}]]
    out = tiny_backend.generate(prompts, SamplingParams(n=2, max_tokens=12, temperature=0))
    assert [len(group) for group in out] == [2, 2]
    # samples of one prompt share its first-token logits, so greedy first tokens agree
    # (later tokens may differ: batched float math is not bit-identical across rows)
    assert out[0][0].token_ids[0] == out[0][1].token_ids[0]
    assert out[1][0].token_ids[0] == out[1][1].token_ids[0]
    assert out[0][0].text != out[1][0].text
    # the second prompt shares the chat-template prefix with the first: it was copied, not
    # prefilled again
    assert out[1][0].usage.cached_prompt_tokens > 0


def test_logits_processor_and_logit_bias_steer_tokens(tiny_backend: EmbeddedBackend) -> None:
    [[plain]] = tiny_backend.generate([CHAT], SamplingParams(max_tokens=8, temperature=0))
    banned = plain.token_ids[0]
    calls: list[int] = []

    def ban_first(generated: list[int], logits: np.ndarray) -> np.ndarray:
        calls.append(len(generated))
        logits[banned] = -np.inf
        return logits

    [[steered]] = tiny_backend.generate(
        [CHAT], SamplingParams(max_tokens=8, temperature=0, logits_processors=(ban_first,)))
    assert banned not in steered.token_ids
    assert calls[:3] == [0, 1, 2]
    forced = tiny_backend.tokenize(" banana")[0]
    [[biased]] = tiny_backend.generate(
        [CHAT], SamplingParams(max_tokens=3, temperature=0, logit_bias={forced: 100}))
    assert biased.token_ids == (forced,) * 3


def test_min_tokens_stop_strings_and_logprobs(tiny_backend: EmbeddedBackend) -> None:
    short = [{"role": "user", "content": "Say just: yes"}]
    [[free]] = tiny_backend.generate([short], SamplingParams(max_tokens=40, temperature=0))
    [[forced]] = tiny_backend.generate(
        [short], SamplingParams(max_tokens=40, min_tokens=30, temperature=0))
    assert len(forced.token_ids) >= 30 > len(free.token_ids)
    [[stopped]] = tiny_backend.generate(
        [CHAT], SamplingParams(max_tokens=60, temperature=0, stop=(" the",)))
    assert " the" not in stopped.text and stopped.finish_reason == "stop"
    [[lp]] = tiny_backend.generate([CHAT], SamplingParams(max_tokens=5, temperature=0,
                                                          logprobs=3))
    assert lp.logprobs is not None and len(lp.logprobs) == 5
    first = lp.logprobs[0]
    assert first.logprob <= 0 and len(first.top) == 3
    # greedy picks the most likely token
    assert first.top[0][1] == pytest.approx(first.logprob)


def test_concurrent_callers_are_serialized_safely(tiny_backend: EmbeddedBackend) -> None:
    params = SamplingParams(max_tokens=16, temperature=0.8, seed=7)
    prompts = [[{"role": "user", "content": f"Count to {k}."}] for k in range(4)]
    expected = [tiny_backend.generate([p], params)[0][0].text for p in prompts]
    results: dict[int, str] = {}

    def worker(k: int) -> None:
        results[k] = tiny_backend.generate([prompts[k]], params)[0][0].text

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[k] for k in range(4)] == expected


def test_async_entry_point_records_into_the_callers_ledger(
        tiny_backend: EmbeddedBackend) -> None:
    async def main() -> tuple[Ledger, Ledger]:
        async def one(content: str) -> Ledger:
            ledger = Ledger()
            with ledger.activate():
                await tiny_backend.agenerate([[{"role": "user", "content": content}]],
                                             SamplingParams(max_tokens=8, temperature=0))
            return ledger

        a, b = await asyncio.gather(one("Hi"), one("Hello there"))
        return a, b

    a, b = asyncio.run(main())
    assert a.calls == 1 and b.calls == 1
    assert a.total().prompt_tokens != b.total().prompt_tokens


def test_bad_requests_fail_clearly(tiny_backend: EmbeddedBackend) -> None:
    with pytest.raises(ConfigError, match="exceeds the context window"):
        tiny_backend.generate([CHAT], SamplingParams(max_tokens=5000))
    with pytest.raises(ConfigError, match="list of prompts"):
        tiny_backend.generate("just a string", SamplingParams())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least one message"):
        tiny_backend.generate([[]], SamplingParams())


def test_capabilities_are_declared(tiny_backend: EmbeddedBackend) -> None:
    assert tiny_backend.supports_raw_completion and tiny_backend.supports_prefix_cache
    assert tiny_backend.supports_logits_processor and tiny_backend.supports_logprobs
    from ponder.backends.scripted import ScriptedBackend

    with pytest.raises(CapabilityError, match="logits processors"):
        ScriptedBackend(["x"]).generate(
            ["p"], SamplingParams(logits_processors=(lambda g, x: x,)))


def test_more_samples_than_sequences_run_in_waves() -> None:
    backend = EmbeddedBackend("smollm2-135m", n_ctx=1024, n_seq_max=4)
    try:
        [completions] = backend.generate([CHAT], SamplingParams(n=10, max_tokens=8,
                                                                temperature=0.9, seed=1))
        assert len(completions) == 10
        assert all(c.usage.completion_tokens >= 1 for c in completions)
    finally:
        backend.close()


def test_streaming_yields_deltas_that_add_up(tiny_backend: EmbeddedBackend) -> None:
    params = SamplingParams(max_tokens=40, temperature=0, stop=("@@@",))

    async def collect() -> tuple[list[str], object, Ledger]:
        ledger = Ledger()
        chunks: list[str] = []
        final = None
        with ledger.activate():
            async for chunk in tiny_backend.astream(CHAT, params):
                chunks.append(chunk.text)
                final = chunk.completion or final
        return chunks, final, ledger

    chunks, final, ledger = asyncio.run(collect())
    [[whole]] = tiny_backend.generate([CHAT], params)
    assert final is not None and "".join(chunks) == final.text == whole.text
    assert len([c for c in chunks if c]) > 3, "text should arrive in several pieces"
    assert ledger.calls == 1
    assert ledger.total().completion_tokens == final.usage.completion_tokens


def test_abandoned_stream_stops_decoding(tiny_backend: EmbeddedBackend) -> None:
    async def first_chunk() -> None:
        stream = tiny_backend.astream(CHAT, SamplingParams(max_tokens=400, min_tokens=400))
        async for chunk in stream:
            if chunk.text:
                break
        await stream.aclose()

    asyncio.run(first_chunk())
    # the backend is free again and the abandoned sample did not run to 400 tokens
    assert tiny_backend.cached_tokens < 200
