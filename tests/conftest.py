"""Shared fixtures: an isolated PONDER_HOME per test, and the real models, loaded once.

Model fixtures are session-scoped and use one thread less than the machine
has, so a test run never holds two busy llama.cpp contexts at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder.model_files import DEFAULT_MODEL, TINY_MODEL, resolve_model


@pytest.fixture(autouse=True)
def ponder_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own PONDER_HOME (like llm's LLM_USER_PATH fixture)."""
    home = tmp_path / "ponder_home"
    monkeypatch.setenv("PONDER_HOME", str(home))
    for var in ("PONDER_BASE_URL", "PONDER_MODEL", "PONDER_API_KEY", "PONDER_BACKEND",
                "PONDER_SERVER_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PONDER_HOME shared by the session, where the default model is assembled once."""
    return tmp_path_factory.mktemp("model_cache")


@pytest.fixture(scope="session")
def default_model_path(model_cache: Path) -> Path:
    old = os.environ.get("PONDER_HOME")
    os.environ["PONDER_HOME"] = str(model_cache)
    try:
        return resolve_model(DEFAULT_MODEL)[1]
    finally:
        if old is None:
            os.environ.pop("PONDER_HOME", None)
        else:
            os.environ["PONDER_HOME"] = old


@pytest.fixture(scope="session")
def tiny_backend() -> Iterator[object]:
    """SmolLM2-135M through the real embedded backend: for mechanics, not answers."""
    from ponder.backends.llamacpp import EmbeddedBackend

    backend = EmbeddedBackend(TINY_MODEL, n_ctx=4096)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def default_backend(default_model_path: Path) -> Iterator[object]:
    """Qwen2.5-Coder-0.5B through the real embedded backend: for answers."""
    from ponder.backends.llamacpp import EmbeddedBackend

    backend = EmbeddedBackend(str(default_model_path), n_ctx=4096)
    yield backend
    backend.close()
