"""Prompt and answer templates, kept as data in ``prompts/``.

A template file is TOML named ``<name>.<lang>.toml``; values are ``str.format`` templates. A template
that needs a variable nobody supplied raises ``PromptTemplateError`` naming it, instead of leaving
``{quotes}`` in front of a user.
"""

from __future__ import annotations

import os
import string
import tomllib
from functools import lru_cache
from pathlib import Path

from assistant.errors import PromptTemplateError


def prompts_dir() -> Path:
    """``ASSISTANT_PROMPTS`` or the ``prompts/`` folder shipped with the package (or the repo's)."""
    env = os.environ.get("ASSISTANT_PROMPTS")
    if env:
        return Path(env)
    packaged = Path(__file__).resolve().parents[1] / "prompts"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "prompts"


@lru_cache(maxsize=64)
def _load(directory: str, name: str, lang: str) -> dict[str, str]:
    path = Path(directory) / f"{name}.{lang}.toml"
    if not path.is_file():
        fallback = Path(directory) / f"{name}.en.toml"
        if not fallback.is_file():
            raise PromptTemplateError(f"No template {name!r} for language {lang!r} in {directory}")
        path = fallback
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PromptTemplateError(f"{path} is not valid TOML: {exc}") from exc


def template(name: str, lang: str, key: str) -> str:
    """The raw template string ``key`` of ``prompts/<name>.<lang>.toml``."""
    data = _load(str(prompts_dir()), name, lang)
    if key not in data:
        raise PromptTemplateError(f"Template {name}.{lang} has no entry {key!r}")
    return data[key]


def render(name: str, lang: str, key: str, **values: object) -> str:
    """Fill template ``key``; every placeholder must be supplied."""
    text = template(name, lang, key)
    needed = {field for _, field, _, _ in string.Formatter().parse(text) if field}
    missing = sorted(needed - set(values))
    if missing:
        raise PromptTemplateError(f"Template {name}.{lang}:{key} needs {', '.join(missing)}, which was not supplied")
    return text.format(**values)
