"""Chat model clients: LangChain's ``ChatOpenAI`` on an OpenAI-compatible endpoint, or on a local GGUF
file served by llama.cpp in a child process; each built lazily by a factory."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel

from assistant.errors import ConfigError, LLMError, MissingDependencyError

if TYPE_CHECKING:  # pragma: no cover
    from assistant.answer.llama_server import LlamaServer

ChatFactory = Callable[[], BaseChatModel]


def chat_openai_class() -> type:
    """``langchain_openai.ChatOpenAI``, or an error with the install hint."""
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise MissingDependencyError("langchain-openai", extra="llm", purpose="answers written by a language model") from exc
    return ChatOpenAI


def first_model(base_url: str, api_key: str) -> str:
    """The first model an OpenAI-compatible endpoint lists at ``/models``."""
    request = urllib.request.Request(f"{base_url}/models", headers={"Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            data = json.load(response)
        models = [m["id"] for m in data.get("data", []) if isinstance(m, dict) and m.get("id")]
    except (urllib.error.URLError, OSError, ValueError, AttributeError) as exc:
        raise LLMError(
            f"No model name given and {base_url}/models could not be read ({exc}); "
            "set --llm-model or ASSISTANT_LLM_MODEL"
        ) from exc
    if not models:
        raise LLMError(f"{base_url}/models lists no model; set --llm-model or ASSISTANT_LLM_MODEL")
    return models[0]


def endpoint_chat(base_url: str, model: str | None, api_key: str | None, timeout: float) -> tuple[ChatFactory, str]:
    """A factory of chat models on an OpenAI-compatible endpoint, and its description.

    Without ``model``, the first model the endpoint lists at ``/models`` is used (asked on first use).
    """
    chat_openai = chat_openai_class()
    base_url = base_url.rstrip("/")
    if not re.match(r"^https?://", base_url):
        raise ConfigError(f"The LLM base URL must start with http:// or https://, got {base_url!r}")
    key = api_key or os.environ.get("OPENAI_API_KEY") or "none"

    def make() -> BaseChatModel:
        name = model or first_model(base_url, key)
        return chat_openai(base_url=base_url, api_key=key, model=name, temperature=0, streaming=True,
                           timeout=timeout, max_retries=1)

    return make, f"{model or 'default model'} at {base_url}"


def gguf_chat(path: str | os.PathLike[str], n_ctx: int, threads: int | None, timeout: float) -> tuple[ChatFactory, LlamaServer, str]:
    """A factory of chat models on a local GGUF file (it starts the llama.cpp server), the server, and
    a description."""
    from assistant.answer.gguf import check_gguf_header
    from assistant.answer.llama_server import LlamaServer

    chat_openai = chat_openai_class()
    check_gguf_header(path)
    server = LlamaServer(path, n_ctx=n_ctx, threads=threads, startup_timeout=300)

    def make() -> BaseChatModel:
        server.start()
        return chat_openai(base_url=server.base_url, api_key="none", model=server.model_name, temperature=0,
                           streaming=True, timeout=timeout, max_retries=0)

    return make, server, f"gguf:{Path(path).name}"
