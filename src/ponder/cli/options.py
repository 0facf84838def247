"""Options shared by commands that talk to a model, and building the engine from them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from ponder.backends import BACKEND_KINDS
from ponder.engine import Engine
from ponder.errors import ConfigError

BackendOpt = Annotated[str | None, typer.Option(
    "--backend", envvar="PONDER_BACKEND",
    help=f"One of {', '.join(BACKEND_KINDS)}. Default: openai if a base URL is set, "
         "else embedded.")]
BaseUrlOpt = Annotated[str | None, typer.Option(
    "--base-url", envvar="PONDER_BASE_URL",
    help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (vLLM, SGLang, Ollama).")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", "-m", envvar="PONDER_MODEL",
    help="Embedded: a known model name, a .gguf path or a Hub repo. Remote: the model id.")]
ApiKeyOpt = Annotated[str | None, typer.Option(
    "--api-key", envvar="PONDER_API_KEY", help="API key for the remote engine.")]


def backend_kind(backend: str | None, base_url: str | None) -> str:
    kind = backend or ("openai" if base_url else "embedded")
    if kind not in BACKEND_KINDS:
        raise ConfigError(f"unknown backend {kind!r} (choose from: {', '.join(BACKEND_KINDS)})")
    return kind


@contextmanager
def engine_from_options(backend: str | None, base_url: str | None, model: str | None,
                        api_key: str | None) -> Iterator[Engine]:
    """Build the engine; shows a progress bar while a model file is first assembled."""
    kind = backend_kind(backend, base_url)
    with Progress(TextColumn("assembling model"), BarColumn(), DownloadColumn(),
                  transient=True) as bar:
        task = bar.add_task("assemble", total=None, visible=False)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, visible=True)

        engine = Engine.create(kind, model=model, base_url=base_url, api_key=api_key,
                               progress=progress)
    try:
        yield engine
    finally:
        engine.close()


def parse_key_values(pairs: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}`` with a clear error for malformed items."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out
