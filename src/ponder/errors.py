"""ponder's exceptions.

Every error a user can cause or meet is a ``PonderError``, so the CLI and the
server can turn it into one clear line (or a 4xx) without a traceback::

    PonderError
    ├── ConfigError            bad parameter value, unknown strategy, bad option
    ├── ModelError             a model file is missing, corrupt, or fails to load
    ├── CapabilityError        a backend cannot do what a strategy asks
    ├── BudgetExceeded         a token budget ran out (strategies catch it)
    └── BackendError           the model engine failed
        └── RemoteError        an OpenAI-compatible engine failed (names URL, status)
"""

from __future__ import annotations


class PonderError(Exception):
    """Base class of every error ponder raises on purpose."""


class ConfigError(PonderError, ValueError):
    """A parameter, option or name is invalid."""


class ModelError(PonderError):
    """A model cannot be found, verified or loaded."""


class CapabilityError(PonderError):
    """The backend does not support a feature the caller needs."""


class BudgetExceeded(PonderError):
    """A token budget is exhausted."""


class BackendError(PonderError):
    """The model engine failed to produce a completion."""


class RemoteError(BackendError):
    """An OpenAI-compatible engine failed; the message names the URL and status."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
