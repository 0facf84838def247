"""Run llama-cpp-python's OpenAI-compatible server for the openai backend tests.

Same command line as ``python -m llama_cpp.server`` (``--model``, ``--host``,
``--port``, ``--n_ctx``, ``--n_threads``, ...), with one change: weight
repacking into extra buffer types is turned off before any model loads.
On some CPUs/VMs llama.cpp's AMX repacking dies with SIGILL (illegal
instruction) on the first multi-token prompt, which would kill the server
mid-test. The embedded backend sets ``use_extra_bufts = False`` itself; the
server builds its params through ``llama_model_default_params``, so we wrap
that function instead.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any


def _without_extra_bufts(default_params: Callable[[], Any]) -> Callable[[], Any]:
    """Wrap ``llama_model_default_params`` so its result never uses extra buffer types."""

    @functools.wraps(default_params)
    def wrapper() -> Any:
        params = default_params()
        params.use_extra_bufts = False
        return params

    return wrapper


def patch_llama_cpp() -> None:
    """Patch both the package alias and the submodule that ``Llama`` calls into."""
    import llama_cpp
    import llama_cpp.llama_cpp as low_level

    patched = _without_extra_bufts(low_level.llama_model_default_params)
    low_level.llama_model_default_params = patched
    llama_cpp.llama_model_default_params = patched


def main(argv: list[str] | None = None) -> None:
    patch_llama_cpp()
    from llama_cpp.server.__main__ import main as server_main

    sys.argv = [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    server_main()  # reads sys.argv through argparse


if __name__ == "__main__":
    main()
