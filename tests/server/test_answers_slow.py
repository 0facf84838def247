"""Answers through the server on the default model (Qwen2.5-Coder-0.5B). Slow: -m slow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serving import Served, running

from ponder.engine import Engine
from ponder.server import ServerSettings, create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def qwen(default_backend: object, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Served]:
    settings = ServerSettings(api_key="k", sleep_worker=False,
                              database_url=f"sqlite:///{tmp_path_factory.mktemp('q') / 'db'}")
    engine = Engine(default_backend)  # type: ignore[arg-type]
    app = create_app(engine, settings)
    with running(app) as root:
        yield Served(f"{root}/v1", root, app, settings, engine.backend.model, api_key="k")


@pytest.mark.parametrize("model", ["cot/{m}", "self-consistency/{m}"])
def test_word_problem(qwen: Served, model: str) -> None:
    reply = qwen.client().chat.completions.create(
        model=model.format(m=qwen.model), max_tokens=256, seed=0,
        messages=[{"role": "user", "content": "Tom has 17 marbles and wins 25 more. "
                                              "How many marbles does he have?"}],
        extra_body={"ponder": {"params": {"n": 4}} if "self" in model else {}})  # type: ignore[arg-type]
    assert reply.choices[0].model_extra["ponder"]["answer"] == "42"  # type: ignore[index]
