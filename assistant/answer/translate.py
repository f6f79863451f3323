"""Machine translations, by the answering model, of the Arabic sentences an English answer cites
(``Answer.translations``, ``prompts/translate.en.toml``)."""

from __future__ import annotations

import logging

from langchain_core.messages import HumanMessage, SystemMessage

from assistant.answer.generate import CompleteFunction, truncate
from assistant.answer.injection import defang, echoes_injection
from assistant.answer.prompts import render
from assistant.errors import LLMError
from assistant.records import Answer
from assistant.text.normalize import detect_language

log = logging.getLogger("assistant.llm")

TRANSLATE_MAX_TOKENS = 120
MAX_TRANSLATIONS = 3


def translate_citations(complete: CompleteFunction, answer: Answer) -> dict[int, str]:
    """English machine translations of the cited Arabic sentences of ``answer``, keyed by marker.

    At most :data:`MAX_TRANSLATIONS` citations, :data:`TRANSLATE_MAX_TOKENS` tokens each; a
    translation that fails, or that obeys an instruction inside the text, is left out.
    """
    out: dict[int, str] = {}
    for citation in answer.citations:
        if len(out) >= MAX_TRANSLATIONS:
            break
        if citation.marker in out or detect_language(citation.quote) != "ar":
            continue
        source = truncate(citation.quote, 500)
        messages = [
            SystemMessage(render("translate", "en", "system")),
            HumanMessage(render("translate", "en", "user", text=defang(source))),
        ]
        try:
            text = complete(messages, TRANSLATE_MAX_TOKENS)
        except LLMError as exc:
            log.warning("translation of citation [%d] failed: %s", citation.marker, exc)
            break  # the backend is failing; do not wait for it once per citation
        text = text.strip().strip("\"«»“”").strip()
        if text and detect_language(text) == "en" and not echoes_injection(text, [citation.quote]):
            out[citation.marker] = text
    return out
