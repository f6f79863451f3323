"""Kept so existing imports keep working: the web sources live in :mod:`assistant.ingest.web`."""

from assistant.ingest.web import *  # noqa: F401,F403
from assistant.ingest.web import __all__  # noqa: F401
