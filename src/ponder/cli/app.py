"""The typer app and its error boundary: a ``PonderError`` is one red line, no traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from ponder import __version__
from ponder.errors import PonderError

app = typer.Typer(
    name="ponder",
    help="ponder: decide how much a language model thinks, when, and about what.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ponder {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """ponder: decide how much a language model thinks, when, and about what."""


def _register_commands() -> None:
    from ponder.cli import ask, models, serve, strategies

    for module in (ask, models, strategies, serve):
        module.register(app)
    from ponder.cli import eval as eval_commands

    eval_commands.register(app)
    from ponder.cli import contexts, sleep

    contexts.register(app)
    sleep.register(app)
    from ponder.cli import budget, train

    budget.register(app)
    train.register(app)


_register_commands()


def main() -> None:
    """Console entry point."""
    try:
        result = app(standalone_mode=False)
    except PonderError as exc:
        _fail(str(exc), 1)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("interrupted")
        sys.exit(130)
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            ctx = getattr(exc, "ctx", None)
            typer.echo(ctx.get_help() if ctx else str(exc))
            sys.exit(0)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        _fail(message, getattr(exc, "exit_code", 2))
    sys.exit(result if isinstance(result, int) else 0)


def _fail(message: str, code: int) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False,
                      soft_wrap=True)
    sys.exit(code)
