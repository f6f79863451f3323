"""Answers written by a language model, grounded in the retrieved passages and checked citation by citation.

Two backends, both spoken to through LangChain's ``ChatOpenAI`` (``pip install -e '.[llm]'``):

- any OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp server, LM Studio, OpenAI):
  ``ASSISTANT_LLM_BASE_URL``, ``ASSISTANT_LLM_MODEL``, ``ASSISTANT_LLM_API_KEY``;
- a local GGUF file run by llama.cpp (``xllamacpp``) in a child process the assistant starts and
  stops: ``ASSISTANT_LLM_GGUF=/path/model.gguf`` (``scripts/fetch_gguf.py`` assembles one).

With neither, :func:`llm_from_settings` returns None and answers stay extractive.

    from assistant import Assistant
    from assistant.answer.models import llm_from_settings
    bot = Assistant(llm=llm_from_settings(gguf="models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:  # pragma: no cover
    from assistant.answer.llm import LLMAnswerer

__all__ = ["ENV_API_KEY", "ENV_BASE_URL", "ENV_GGUF", "ENV_MODEL", "ENV_TRANSLATE", "LLMAnswerer", "llm_from_settings"]

ENV_BASE_URL = "ASSISTANT_LLM_BASE_URL"
ENV_MODEL = "ASSISTANT_LLM_MODEL"
ENV_API_KEY = "ASSISTANT_LLM_API_KEY"
ENV_GGUF = "ASSISTANT_LLM_GGUF"
#: ``1``/``0``: English machine translations of cited Arabic passages (default on for endpoints, off for GGUF).
ENV_TRANSLATE = "ASSISTANT_LLM_TRANSLATE"


def __getattr__(name: str):
    if name == "LLMAnswerer":
        from assistant.answer.llm import LLMAnswerer

        return LLMAnswerer
    raise AttributeError(f"module 'assistant.llm' has no attribute {name!r}")


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _flag(value: str | None, name: str) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0, got {value!r}")


def llm_from_settings(
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    gguf: str | os.PathLike[str] | None = None,
    *,
    translate: bool | None = None,
) -> LLMAnswerer | None:
    """The answer generator the settings ask for, or None for extractive answers.

    Arguments win over the environment (``ASSISTANT_LLM_BASE_URL``, ``ASSISTANT_LLM_MODEL``,
    ``ASSISTANT_LLM_API_KEY``, ``ASSISTANT_LLM_GGUF``, ``ASSISTANT_LLM_TRANSLATE``). Nothing is
    started or contacted here: a local model's server starts on the first question.

    Args:
        base_url: OpenAI-compatible endpoint, e.g. ``http://127.0.0.1:11434/v1``.
        model: Model name at that endpoint (default: the first one it lists).
        api_key: API key (default ``$OPENAI_API_KEY`` or a dummy one for local servers).
        gguf: A local ``.gguf`` file run with llama.cpp on this machine.
        translate: English machine translations of cited Arabic passages for English questions.

    Raises:
        ConfigError: both an endpoint and a GGUF file were given, or a bad value.
        MissingDependencyError: ``langchain-openai`` (or ``xllamacpp`` for GGUF) is not installed.
        LLMError: the GGUF file is missing or not a GGUF file.
    """
    if base_url and gguf:
        raise ConfigError(f"Give either an LLM endpoint ({base_url}) or a GGUF file ({gguf}), not both")
    if not base_url and not gguf:
        env_url, env_gguf = _env(ENV_BASE_URL), _env(ENV_GGUF)
        if env_url and env_gguf:
            raise ConfigError(f"Both {ENV_BASE_URL} and {ENV_GGUF} are set; unset one of them")
        base_url, gguf = env_url, env_gguf
    if not base_url and not gguf:
        return None
    model = model or _env(ENV_MODEL)
    api_key = api_key or _env(ENV_API_KEY)
    if translate is None:
        translate = _flag(_env(ENV_TRANSLATE), ENV_TRANSLATE)

    try:
        import langchain_openai  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("langchain-openai", extra="llm", purpose="answers written by a language model") from exc
    from assistant.answer.llm import LLMAnswerer

    options = {} if translate is None else {"translate": translate}
    if gguf:
        import importlib.util

        if importlib.util.find_spec("xllamacpp") is None:
            raise MissingDependencyError("xllamacpp", extra="llm", purpose="running a local GGUF model")
        return LLMAnswerer.from_gguf(Path(gguf).expanduser(), **options)
    return LLMAnswerer.from_endpoint(base_url, model=model, api_key=api_key, **options)
