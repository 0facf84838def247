"""``ponder serve``: the OpenAI-compatible server (FastAPI + uvicorn) on one engine."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer
from rich.console import Console

from ponder.cli.options import (
    ApiKeyOpt,
    BackendOpt,
    BaseUrlOpt,
    ModelOpt,
    engine_from_options,
)
from ponder.engine import DEFAULT_STRATEGY
from ponder.strategies.registry import Registry

err_console = Console(stderr=True)

LOOPBACK = "127.0.0.1"


def serve(
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless you mean it.")
                    ] = LOOPBACK,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    strategy: Annotated[str, typer.Option(
        "--strategy", "-s", help="Default strategy for chat requests that name none.")
                        ] = DEFAULT_STRATEGY,
    max_concurrency: Annotated[int, typer.Option(
        help="Generating requests at once; more get 429 + Retry-After.")] = 4,
    max_tokens: Annotated[int, typer.Option(help="Cap on a request's max_tokens.")] = 4096,
    max_n: Annotated[int, typer.Option(help="Cap on a request's n.")] = 8,
    max_request_tokens: Annotated[int, typer.Option(
        help="Completion-token budget cap of one request.")] = 32_768,
    timeout: Annotated[float, typer.Option(help="Seconds a request may run.")] = 300.0,
    no_sleep_worker: Annotated[bool, typer.Option(
        "--no-sleep-worker", help="Do not run sleep-time compute in this process.")] = False,
    token_budget: Annotated[int | None, typer.Option(
        help="Online mode: completion tokens all requests may spend per window. Requests "
             "that name no strategy get the dearest level that fits what is left (direct ~32 "
             "tok, cot ~256, self-consistency n=4 ~1000), falling as the window drains and "
             "rising as it refills. Off unless given.")] = None,
    token_budget_window: Annotated[float, typer.Option(
        help="Seconds of the online mode's rolling window.")] = 60.0,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Serve /v1/chat/completions, /v1/completions, /v1/models, /health and /metrics.

    Clients authenticate with PONDER_SERVER_API_KEY when it is set (PONDER_API_KEY /
    --api-key is the key for a remote engine behind ponder). With --token-budget, a
    rolling budget picks the strategy of requests that name none (see /health, /metrics).
    """
    import uvicorn

    from ponder.server import ServerSettings, create_app
    from ponder.server.rolling import check_levels

    registry = Registry.from_entry_points()
    registry.get(strategy)  # fail before loading a model
    settings = ServerSettings.from_env(
        default_strategy=strategy, max_concurrency=max_concurrency, max_tokens=max_tokens,
        default_max_tokens=min(512, max_tokens), max_n=max_n,
        max_request_tokens=max_request_tokens, request_timeout=timeout,
        sleep_worker=not no_sleep_worker, token_budget=token_budget,
        token_budget_window=token_budget_window)
    if settings.token_budget is not None:
        check_levels(settings, registry)
    if settings.api_key is None and not _is_loopback(host):
        err_console.print(f"[yellow]warning:[/] serving on {host} without an API key; "
                          "set PONDER_SERVER_API_KEY")
    with engine_from_options(backend, base_url, model, api_key) as engine:
        err_console.print(f"ponder serving {engine.backend.model} ({engine.backend.kind}) on "
                          f"http://{host}:{port}/v1")
        if settings.token_budget is not None:
            ladder = " -> ".join(f"{lv.name} (~{lv.expected_tokens:g} tok)"
                                 for lv in settings.budget_levels)
            err_console.print(f"online budget: {settings.token_budget} completion tokens per "
                              f"{settings.token_budget_window:g} s; levels {ladder}")
        uvicorn.run(create_app(engine, settings), host=host, port=port, log_level="info")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def register(app: typer.Typer) -> None:
    app.command()(serve)
