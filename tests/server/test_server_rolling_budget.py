"""The online mode: a rolling token budget picks the level of requests that name no strategy.

The first test runs SmolLM2-135M behind real uvicorn and the openai client, with
a fake clock so the window moves only when the test says so. The scripted tests
pin the exact arithmetic, the error paths and the settings checks in-process.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from serving import API_KEY, Served, running

from ponder.backends.base import Prompt
from ponder.backends.scripted import ScriptedBackend
from ponder.budget.allocate import BudgetLevel
from ponder.engine import Engine
from ponder.errors import ConfigError, RemoteError
from ponder.params import SamplingParams
from ponder.server import ServerSettings, create_app

STORY = [{"role": "user", "content": "Tell me a long story about a robot and a cat."}]
HI = [{"role": "user", "content": "What is 2 + 2?"}]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the real model behind real uvicorn -----------------------------------------------------

TINY_LEVELS = (
    BudgetLevel("direct", "direct", {"max_tokens": 8}, expected_tokens=8, max_tokens=8),
    BudgetLevel("cot", "cot", {}, expected_tokens=16, max_tokens=16),
    BudgetLevel("sc2", "self-consistency", {"n": 2, "early_stop": False},
                expected_tokens=32, max_tokens=16),
)
TINY_BUDGET, SHARE, WINDOW = 200, 0.25, 60.0


def expected_level(available: int) -> int:
    """What ``RollingBudget.choose`` should give: the dearest level within share x left."""
    fitting = [i for i, lv in enumerate(TINY_LEVELS) if lv.expected_tokens <= available * SHARE]
    return fitting[-1] if fitting else 0


@pytest.fixture(scope="module")
def online(tiny_backend: object) -> Iterator[tuple[Served, FakeClock]]:
    clock = FakeClock()
    settings = ServerSettings(
        api_key=API_KEY, default_max_tokens=32, max_tokens=256, max_n=4,
        max_concurrency=2, request_timeout=120, contexts=False, token_budget=TINY_BUDGET,
        token_budget_window=WINDOW, token_budget_share=SHARE, budget_levels=TINY_LEVELS)
    engine = Engine(tiny_backend)  # type: ignore[arg-type]  # the fixture closes the backend
    app = create_app(engine, settings, clock=clock)
    with running(app) as root:
        yield Served(f"{root}/v1", root, app, settings, engine.backend.model), clock


def budget_of(reply: Any) -> dict[str, Any]:
    return reply.usage.model_extra["ponder"]["token_budget"]


def ask(served: Served, **kwargs: Any) -> Any:
    """A chat request that names no strategy (the budget picks)."""
    return served.client().chat.completions.create(
        model=served.model, messages=STORY, **kwargs)  # type: ignore[arg-type]


def test_levels_fall_as_the_window_drains_and_rise_when_it_passes(
        online: tuple[Served, FakeClock]) -> None:
    served, clock = online
    health = httpx.get(f"{served.root}/health").json()["token_budget"]
    assert health == {"tokens_per_window": TINY_BUDGET, "window_seconds": WINDOW,
                      "share": SHARE, "spent": 0, "available": TINY_BUDGET}

    # a fresh window: the top level that fits (32 <= 200 x 0.25)
    first = ask(served, seed=3)
    assert first.choices[0].model_extra["ponder"]["budget_level"] == 2
    assert first.choices[0].model_extra["ponder"]["strategy"] == "self-consistency"
    state = budget_of(first)
    assert state["level"] == 2 and state["level_name"] == "sc2"
    spent = first.usage.completion_tokens
    assert 2 <= spent <= 32  # two samples of at most 16 (the level's max_tokens)
    assert state["billed"] == spent and state["available"] == TINY_BUDGET - spent

    levels, available = [2], state["available"]
    for _ in range(12):
        # a request that names its strategy is untouched, but its tokens count
        named = served.client().chat.completions.create(
            model=served.model, messages=STORY, max_tokens=24, temperature=0,
            extra_body={"ponder": {"strategy": "cot"}})  # type: ignore[arg-type]
        assert named.choices[0].model_extra["ponder"] == named.choices[0].model_extra[
            "ponder"] | {"strategy": "cot", "budget_level": None}
        assert budget_of(named)["level"] is None
        assert budget_of(named)["available"] == max(0, available - named.usage.completion_tokens)
        available = budget_of(named)["available"]
        # the next request without a strategy gets the level the window allows now
        reply = ask(served, seed=3)
        level = reply.choices[0].model_extra["ponder"]["budget_level"]
        assert level == expected_level(available), (level, available)
        assert reply.choices[0].model_extra["ponder"]["strategy"] == TINY_LEVELS[level].strategy
        available = budget_of(reply)["available"]
        levels.append(level)
        if level == 0:
            break
    assert levels == sorted(levels, reverse=True), levels
    assert 1 in levels and levels[-1] == 0, levels  # each drain step < the cot band (64)

    # streaming at the bottom level: the usage chunk reports it, and it is billed
    chunks = list(served.client().chat.completions.create(
        model=served.model, messages=STORY, stream=True,
        stream_options={"include_usage": True}))  # type: ignore[arg-type]
    usage = chunks[-1].usage
    assert usage is not None
    state = usage.model_extra["ponder"]["token_budget"]
    assert state["level"] == 0
    assert set(usage.model_extra["ponder"]["strategies"]) == {"test/direct"}
    assert 1 <= usage.completion_tokens <= 8
    assert state["available"] == max(0, available - usage.completion_tokens)

    metrics = httpx.get(f"{served.root}/metrics", headers=served.auth).text
    assert f"ponder_token_budget_available_tokens {state['available']}" in metrics
    top = sum(1 for lv in levels if lv == 2)
    assert (f'ponder_token_budget_level_requests_total{{level="2",name="sc2",'
            f'strategy="self-consistency"}} {top}') in metrics

    # the window passes: every token leaves it, and the top level is back
    clock.now += WINDOW + 1
    assert httpx.get(f"{served.root}/health").json()["token_budget"]["spent"] == 0
    again = ask(served, seed=3)
    assert again.choices[0].model_extra["ponder"]["budget_level"] == 2


def test_raw_continuation_keeps_its_mode_and_is_billed(online: tuple[Served, FakeClock]) -> None:
    served, _ = online
    before = httpx.get(f"{served.root}/health").json()["token_budget"]["spent"]
    reply = served.client().completions.create(
        model=served.model, prompt="Once upon a time", max_tokens=6, temperature=0)
    assert reply.choices[0].model_extra["ponder"]["budget_level"] is None
    assert reply.choices[0].model_extra["ponder"]["strategy"] == "raw"
    assert reply.usage is not None
    after = httpx.get(f"{served.root}/health").json()["token_budget"]["spent"]
    assert after == before + reply.usage.completion_tokens


# -- exact arithmetic on the scripted backend -----------------------------------------------

SCRIPTED_LEVELS = (
    BudgetLevel("direct", "direct", {}, expected_tokens=3),
    BudgetLevel("cot", "cot", {}, expected_tokens=6, max_tokens=7),
    BudgetLevel("sc4", "self-consistency", {"n": 4, "early_stop": False}, expected_tokens=20),
)


def scripted(replies: Any, clock: FakeClock, **settings: Any
             ) -> Iterator[tuple[TestClient, ScriptedBackend]]:
    backend = ScriptedBackend(replies, model="m")
    options: dict[str, Any] = dict(contexts=False, token_budget=40, token_budget_window=10,
                                   token_budget_share=1.0, budget_levels=SCRIPTED_LEVELS)
    app = create_app(Engine(backend), ServerSettings(**options | settings), clock=clock)
    with TestClient(app) as client:
        yield client, backend


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def four(clock: FakeClock) -> Iterator[tuple[TestClient, ScriptedBackend]]:
    """Every sample is 'so Answer: 4': three completion tokens."""
    yield from scripted(lambda prompt, params: ["so Answer: 4"] * params.n, clock)


def level_of(client: TestClient, **body: Any) -> tuple[int | None, dict[str, Any]]:
    reply = client.post("/v1/chat/completions", json={"model": "m", "messages": HI} | body)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    return data["choices"][0]["ponder"]["budget_level"], data["usage"]["ponder"]["token_budget"]


def test_exact_ladder_down_and_back_up(four: tuple[TestClient, ScriptedBackend],
                                       clock: FakeClock) -> None:
    client, _ = four
    seen = []
    for _ in range(8):
        level, state = level_of(client)
        seen.append((level, state["available"]))
    # 40 left: sc4 (12 tokens) while 20 fit, cot (3) while 6 fit, then direct; at 0 left
    # nothing fits and the cheapest level still answers (degrade, do not refuse)
    assert seen == [(2, 28), (2, 16), (1, 13), (1, 10), (1, 7), (1, 4), (0, 1), (0, 0)]
    clock.now += 5  # still inside the 10 s window
    level, state = level_of(client)
    assert (level, state["spent"]) == (0, 45)  # 42 + 3: spent past the budget, not refused
    clock.now += 5.5  # the first eight requests leave the window; the ninth (3) stays
    level, state = level_of(client)
    assert (level, state["spent"], state["billed"]) == (2, 15, 12)


def test_choices_multiply_a_levels_cost(four: tuple[TestClient, ScriptedBackend]) -> None:
    client, backend = four
    level, state = level_of(client, n=3)  # sc4 would cost 3 x 20 > 40; cot 3 x 6 fits
    assert (level, state["billed"]) == (1, 9)
    assert backend.calls[-1][1].max_tokens == 7  # the level's cap: the request set none
    level, _ = level_of(client, n=3, max_tokens=50)  # 31 left
    assert level == 1 and backend.calls[-1][1].max_tokens == 50  # the request's cap wins
    assert level_of(client)[0] == 2  # one choice: sc4 (20) fits the 22 left


@pytest.mark.parametrize(("body", "strategy"), [
    ({"ponder": {"strategy": "self-consistency", "params": {"n": 2}}}, "self-consistency"),
    ({"model": "direct/m"}, "direct"),
    ({"reasoning_effort": "medium"}, "cot"),  # medium maps to the server default
    ({"ponder": {"params": {"temperature": 0.5}}}, "cot"),  # configures the default
])
def test_requests_that_choose_are_untouched_but_billed(
        four: tuple[TestClient, ScriptedBackend], body: dict[str, Any], strategy: str) -> None:
    client, _ = four
    reply = client.post("/v1/chat/completions", json={"model": "m", "messages": HI} | body)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["choices"][0]["ponder"]["strategy"] == strategy
    assert data["choices"][0]["ponder"]["budget_level"] is None
    state = data["usage"]["ponder"]["token_budget"]
    assert state["level"] is None and state["level_name"] is None
    assert state["billed"] == data["usage"]["completion_tokens"] > 0
    assert state["available"] == 40 - state["billed"]


def test_failed_requests_are_billed_what_they_spent(clock: FakeClock) -> None:
    """Round one of self-consistency (3 samples, no majority) lands in the ledger; the
    engine then fails round two. The 3 x 3 tokens spent still count, streaming or not."""
    calls: list[int] = []

    def replies(prompt: Prompt, params: SamplingParams) -> list[str]:
        calls.append(params.n)
        if len(calls) % 2 == 0:
            raise RemoteError("the engine went away", url="http://127.0.0.1:9/v1", status=503)
        return [f"so Answer: {i}" for i in range(params.n)]

    body = {"model": "m", "messages": HI,
            "ponder": {"strategy": "self-consistency", "params": {"n": 4}}}
    for client, _ in scripted(replies, clock):
        assert client.post("/v1/chat/completions", json=body).status_code == 502
        assert client.get("/health").json()["token_budget"]["spent"] == 9
        streamed = client.post("/v1/chat/completions", json=body | {"stream": True})
        assert streamed.status_code == 200
        assert '"code":"upstream_error"' in streamed.text.replace(" ", "")
        assert client.get("/health").json()["token_budget"]["spent"] == 18
        metrics = client.get("/metrics").text
        assert "ponder_token_budget_billed_requests_total 2" in metrics
        assert "ponder_token_budget_spent_tokens 18" in metrics
    assert calls == [3, 1, 3, 1]


def test_off_by_default(clock: FakeClock) -> None:
    for client, _ in scripted(lambda prompt, params: ["so Answer: 4"] * params.n, clock,
                              token_budget=None):
        assert client.get("/health").json()["token_budget"] is None
        assert "ponder_token_budget" not in client.get("/metrics").text
        data = client.post("/v1/chat/completions", json={"model": "m", "messages": HI}).json()
        assert data["choices"][0]["ponder"] == data["choices"][0]["ponder"] | {
            "strategy": "cot", "budget_level": None}
        assert "token_budget" not in data["usage"]["ponder"]


# -- bad settings -----------------------------------------------------------------------------

def level(name: str, strategy: str, tokens: float, **kwargs: Any) -> BudgetLevel:
    return BudgetLevel(name, strategy, kwargs.pop("params", {}), expected_tokens=tokens,
                       **kwargs)


@pytest.mark.parametrize(("settings", "message"), [
    ({"token_budget": 0}, "token_budget must be an integer >= 1"),
    ({"token_budget": 2.5}, "token_budget must be an integer >= 1"),
    ({"token_budget_window": 0}, "token_budget_window must be > 0"),
    ({"token_budget_share": 1.5}, r"token_budget_share must be in \(0, 1\]"),
    ({"budget_levels": ()}, "budget_levels must list at least one"),
    ({"budget_levels": (level("a", "cot", 9), level("b", "direct", 3))},
     "cheapest first .* got a=9, b=3"),
    ({"budget_levels": (level("a", "cot", 3), level("a", "direct", 9))}, "names repeat"),
    ({"budget_levels": (level("a", "cot", 3, max_tokens=9999),)},
     "budget level 'a': max_tokens=9999 must be in"),
])
def test_bad_settings_fail_at_construction(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServerSettings(**settings)


@pytest.mark.parametrize(("bad", "message"), [
    (level("x", "nope", 5), "budget level 'x': unknown strategy 'nope'"),
    (level("x", "self-consistency", 5, params={"m": 3}), "budget level 'x': .*no parameter 'm'"),
    (level("x", "self-consistency", 5, params={"n": 100}),
     "budget level 'x': ponder.params.n=100 exceeds this server's cap"),
])
def test_levels_the_registry_cannot_build_fail_at_startup(bad: BudgetLevel, message: str) -> None:
    settings = ServerSettings(token_budget=100, budget_levels=(bad,), contexts=False)
    with pytest.raises(ConfigError, match=message):
        create_app(Engine(ScriptedBackend([], model="m")), settings)
    create_app(Engine(ScriptedBackend([], model="m")), settings.with_(token_budget=None))


def test_serve_refuses_a_bad_budget_before_loading_a_model() -> None:
    done = subprocess.run([sys.executable, "-m", "ponder.cli", "serve", "--token-budget", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "token_budget must be an integer >= 1" in done.stderr
