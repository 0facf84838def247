"""ponder's OpenAI-compatible HTTP server (``ponder serve``)."""

from ponder.server.app import create_app
from ponder.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
