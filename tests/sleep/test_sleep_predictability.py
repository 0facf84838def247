"""log p(question | context): prompt logprobs on the real tiny model, and the remote path."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from ponder.backends.openai_compat import OpenAICompatBackend
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import ConfigError
from ponder.ledger import Ledger
from ponder.params import SamplingParams
from ponder.sleep.predictability import PredictabilityScorer, scoring_prompt
from ponder.strategies.base import RunContext

CONTEXT = "Tom has 3 apples. He buys 4 more apples."


def test_prompt_logprobs_match_the_sampled_tokens_logprobs(tiny_backend: Any) -> None:
    prompt = "The capital of France is"
    [[sample]] = tiny_backend.generate([prompt], SamplingParams(max_tokens=8, temperature=0,
                                                                logprobs=0))
    text = tiny_backend.detokenize([t for t in sample.token_ids
                                    if t not in tiny_backend._eog_set])
    ledger = Ledger()
    with ledger.activate():
        scored = tiny_backend.prompt_logprobs(prompt, text)
    assert [t.token for t in scored] == [t.token for t in sample.logprobs][:len(scored)]
    assert [t.logprob for t in scored] == pytest.approx(
        [t.logprob for t in sample.logprobs][:len(scored)], abs=0.15)
    [entry] = ledger.entries
    assert entry.usage.completion_tokens == 0
    assert entry.usage.prompt_tokens == len(tiny_backend._encode(prompt)) + len(scored)
    again = tiny_backend.prompt_logprobs(prompt, text)  # prefix cached: same numbers
    assert [t.logprob for t in again] == pytest.approx([t.logprob for t in scored], abs=1e-4)
    with pytest.raises(ConfigError, match="continuation to score is empty"):
        tiny_backend.prompt_logprobs(prompt, "")


def test_a_related_question_is_more_predictable(tiny_backend: Any) -> None:
    scorer = PredictabilityScorer()
    ctx = RunContext(tiny_backend, Ledger())
    related = tiny_backend.run_sync(scorer.score(ctx, CONTEXT, "How many apples does Tom have?"))
    unrelated = tiny_backend.run_sync(scorer.score(ctx, CONTEXT,
                                                   "Which violin concerto did Sibelius write?"))
    assert related is not None and unrelated is not None
    assert related.tokens >= 6 and related.per_token < 0
    assert related.per_token > unrelated.per_token
    assert [(e.phase, e.strategy) for e in ctx.ledger.entries] == [
        ("test", "predictability")] * 2


def echo_engine(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    assert body["echo"] is True and body["logprobs"] == 0 and body["max_tokens"] == 1
    prompt = scoring_prompt(CONTEXT)
    assert body["prompt"] == prompt + "How many?"
    tokens = ["Tom", " has", "\n", "How", " many", "?", " 7"]
    offsets = [0, 3, len(prompt) - 1, len(prompt), len(prompt) + 3, len(prompt) + 8,
               len(prompt) + 9]
    return httpx.Response(200, json={
        "choices": [{"text": prompt + "How many? 7", "logprobs": {
            "tokens": tokens, "text_offset": offsets,
            "token_logprobs": [None, -1.0, -0.5, -2.0, -1.0, -0.25, -3.0]}}],
        "usage": {"prompt_tokens": 6, "completion_tokens": 1}})


def test_remote_engines_are_asked_for_echoed_logprobs() -> None:
    backend = OpenAICompatBackend("http://127.0.0.1:9/v1", model="m")
    scorer = PredictabilityScorer(client=httpx.Client(transport=httpx.MockTransport(echo_engine)))
    ctx = RunContext(backend, Ledger())
    try:
        score = backend.run_sync(scorer.score(ctx, CONTEXT, "How many?"))
    finally:
        scorer.close()
        backend.close()
    assert score is not None and (score.logprob, score.tokens) == (-3.25, 3)
    [entry] = ctx.ledger.entries
    assert (entry.strategy, entry.usage.prompt_tokens) == ("predictability", 6)


def test_engines_that_cannot_score_give_none() -> None:
    refusing = httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(400, json={"error": {"message": "echo unsupported"}})))
    backend = OpenAICompatBackend("http://127.0.0.1:9/v1", model="m")
    scorer = PredictabilityScorer(client=refusing)
    try:
        assert backend.run_sync(scorer.score(RunContext(backend), CONTEXT, "q?")) is None
    finally:
        scorer.close()
        backend.close()
    scripted = ScriptedBackend([])
    assert scripted.run_sync(PredictabilityScorer().score(RunContext(scripted), CONTEXT,
                                                          "q?")) is None
