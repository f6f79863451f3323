"""Kept so existing imports keep working: model clients live in :mod:`assistant.answer.models`."""

from assistant.answer.models import ENV_API_KEY, ENV_BASE_URL, ENV_GGUF, ENV_MODEL, ENV_TRANSLATE, llm_from_settings

__all__ = ["ENV_API_KEY", "ENV_BASE_URL", "ENV_GGUF", "ENV_MODEL", "ENV_TRANSLATE", "llm_from_settings"]
