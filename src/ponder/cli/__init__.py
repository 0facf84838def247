"""The ``ponder`` command line. One module per command group."""

from ponder.cli.app import app, main

__all__ = ["app", "main"]
