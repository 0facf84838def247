"""Backends: where completions come from.

* ``EmbeddedBackend`` (``llamacpp.py``): llama.cpp in-process, the default.
* ``OpenAICompatBackend`` (``openai_compat.py``): vLLM, SGLang, llama.cpp server, Ollama.
* ``TransformersBackend`` (``transformers.py``): a transformers checkpoint on PyTorch
  (e.g. one ``ponder train ibpo`` saved); needs the ``train`` extra.
* ``ScriptedBackend`` (``scripted.py``): canned completions for unit tests only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ponder.backends.base import Backend, Completion, Message, Prompt, TokenLogprob
from ponder.errors import ConfigError
from ponder.ledger import Usage
from ponder.params import SamplingParams

if TYPE_CHECKING:
    from ponder.model_files import Progress

BACKEND_KINDS = ("embedded", "openai", "transformers")

__all__ = [
    "BACKEND_KINDS",
    "Backend",
    "Completion",
    "Message",
    "Prompt",
    "SamplingParams",
    "TokenLogprob",
    "Usage",
    "make_backend",
]


def make_backend(kind: str = "embedded", *, model: str | None = None,
                 base_url: str | None = None, api_key: str | None = None,
                 progress: Progress | None = None, **options: Any) -> Backend:
    """Build a backend by name: ``embedded`` (default), ``openai`` or ``transformers``."""
    if kind == "embedded":
        from ponder.backends.llamacpp import EmbeddedBackend

        return EmbeddedBackend(model, progress=progress, **options)
    if kind == "openai":
        from ponder.backends.openai_compat import OpenAICompatBackend

        if not base_url:
            raise ConfigError("the openai backend needs a base URL (--base-url or "
                              "PONDER_BASE_URL), e.g. http://127.0.0.1:8000/v1")
        return OpenAICompatBackend(base_url=base_url, model=model, api_key=api_key, **options)
    if kind == "transformers":
        from ponder.backends.transformers import TransformersBackend

        return TransformersBackend(model, progress=progress, **options)
    raise ConfigError(f"unknown backend {kind!r} (choose from: {', '.join(BACKEND_KINDS)})")
