"""``ponder models``: the embedded models ponder knows, or a remote engine's models."""

from __future__ import annotations

import importlib.util

import typer
from rich.console import Console
from rich.table import Table

from ponder.cli.options import ApiKeyOpt, BackendOpt, BaseUrlOpt, ModelOpt, backend_kind
from ponder.model_files import DEFAULT_MODEL, KNOWN_MODELS, ChunkedModel

console = Console()


def models(backend: BackendOpt = None, base_url: BaseUrlOpt = None, model: ModelOpt = None,
           api_key: ApiKeyOpt = None) -> None:
    """List embedded models (and whether they are installed), or a remote engine's models."""
    if backend_kind(backend, base_url) == "openai":
        from ponder.backends import make_backend

        remote = make_backend("openai", base_url=base_url, model=model, api_key=api_key)
        try:
            for model_id in remote.run_sync(remote.list_models()):  # type: ignore[attr-defined]
                console.print(model_id)
        finally:
            remote.close()
        return
    table = Table(show_edge=False)
    for column in ("name", "status", "description"):
        table.add_column(column)
    for name, spec in KNOWN_MODELS.items():
        table.add_row(name + (" (default)" if name == DEFAULT_MODEL else ""), _status(spec),
                      spec.description)
    console.print(table)
    console.print("[dim]Any local GGUF works too: --model path/to/model.gguf[/]")


def _status(spec: object) -> str:
    if isinstance(spec, ChunkedModel):
        if spec.target().is_file():
            return "ready"
        first = f"{spec.package_prefix}1"
        return "installed" if importlib.util.find_spec(first) else f"pip install {spec.pip_spec}"
    module = getattr(spec, "module", "")
    return "installed" if importlib.util.find_spec(module) else \
        f"pip install {getattr(spec, 'pip_spec', '')}"


def register(app: typer.Typer) -> None:
    app.command()(models)
