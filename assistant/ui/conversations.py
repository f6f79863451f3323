"""Conversations kept in the browser: what is stored, how it is trimmed, how it is read back.

The web UI keeps every browser's conversations in its ``localStorage`` through ``gr.BrowserState``
(encrypted with a secret kept beside the index, so they survive a page reload and an app restart and
stay unreadable to other sites). What is stored is plain JSON: a list of conversations, each a list of
turns; an answer is stored with the passages it showed, so an old conversation renders the same
sources without asking again even if the index changed since.

Stored value::

    {"version": 1, "current": "<id>", "items": [{"id", "title", "updated", "questions", "turns": [...]}]}
"""

from __future__ import annotations

import datetime as _dt
import json
import secrets
import uuid
from pathlib import Path
from typing import Any, Mapping

from assistant.records import Answer, Citation, Hit

STORE_VERSION = 1
# localStorage holds about 5 MB per site; an answer with its passages is 5-20 KB, so these limits keep
# the stored value well under it (and the page quick to load).
MAX_CONVERSATIONS = 30
MAX_TURNS = 60
# The encrypted value is base64 (4/3 of the UTF-8 bytes) and localStorage stops at about 5 million
# characters per site: past this many bytes the oldest conversations are dropped.
MAX_STORED_BYTES = 2_500_000


def empty_store() -> dict[str, Any]:
    return {"version": STORE_VERSION, "current": new_id(), "items": []}


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def answer_to_json(answer: Answer) -> dict[str, Any]:
    """An ``Answer`` as JSON that ``answer_from_json`` reads back (passages keep their chunk text)."""
    return {
        "question": answer.question, "language": answer.language, "text": answer.text, "abstained": answer.abstained,
        "citations": [c.to_dict() for c in answer.citations], "passages": [_hit_json(h) for h in answer.passages],
        "mode": answer.mode, "notice": answer.notice, "retrieval_query": answer.retrieval_query,
        "translations": {str(k): v for k, v in (answer.translations or {}).items()},
        "outcome": answer.outcome, "missing": list(answer.missing),
    }


def _hit_json(hit: Hit) -> dict[str, Any]:
    data = hit.to_dict()
    # Sentence spans only serve retrieval; the page needs the text and the best span.
    data["chunk"].pop("sentences", None)
    return data


def answer_from_json(data: Mapping[str, Any]) -> Answer:
    """The ``Answer`` stored by ``answer_to_json``; raises ``KeyError``/``TypeError``/``ValueError`` on bad data."""
    return Answer(
        question=str(data["question"]), language=str(data["language"]), text=str(data["text"]),
        abstained=bool(data["abstained"]),
        citations=tuple(Citation.from_dict(c) for c in data.get("citations", [])),
        passages=tuple(Hit.from_dict(h) for h in data.get("passages", [])),
        mode=str(data.get("mode", "extractive")), notice=data.get("notice"),
        retrieval_query=str(data.get("retrieval_query", "")),
        translations={int(k): str(v) for k, v in (data.get("translations") or {}).items()},
        outcome=str(data.get("outcome", "")), missing=tuple(data.get("missing", ())),
    )


def turns_to_json(turns: list[dict]) -> list[dict]:
    """The UI's turns as JSON; unfinished answers are not stored."""
    out: list[dict] = []
    for turn in turns[-MAX_TURNS:]:
        if turn["role"] == "user":
            out.append({"role": "user", "text": turn["text"]})
        elif turn.get("error"):
            out.append({"role": "assistant", "error": turn["error"], "lang": turn.get("lang", "en")})
        elif turn.get("answer") is not None and turn.get("final", True):
            out.append({"role": "assistant", "answer": answer_to_json(turn["answer"]), "lang": turn.get("lang", "en"),
                        "meta": turn.get("meta") or {}})
    return out


def turns_from_json(data: Any) -> list[dict]:
    """Turns read back from the browser; anything unreadable is dropped rather than breaking the page."""
    turns: list[dict] = []
    for item in data if isinstance(data, list) else []:
        try:
            if item["role"] == "user":
                turns.append({"role": "user", "text": str(item["text"])})
            elif item.get("error"):
                turns.append({"role": "assistant", "error": str(item["error"]), "lang": str(item.get("lang", "en"))})
            else:
                turns.append({"role": "assistant", "answer": answer_from_json(item["answer"]), "final": True,
                              "lang": str(item.get("lang", "en")), "meta": dict(item.get("meta") or {})})
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return turns


def normalize_store(value: Any) -> dict[str, Any]:
    """A well-formed store from whatever the browser sent (nothing, an old version, damaged JSON)."""
    if not isinstance(value, dict) or value.get("version") != STORE_VERSION or not isinstance(value.get("items"), list):
        return empty_store()
    items = [i for i in value["items"] if isinstance(i, dict) and isinstance(i.get("id"), str)]
    current = value.get("current") if isinstance(value.get("current"), str) else new_id()
    return {"version": STORE_VERSION, "current": current, "items": items}


def find(store: Mapping[str, Any], conv_id: str | None) -> dict | None:
    return next((i for i in store["items"] if i.get("id") == conv_id), None)


def save_turns(store: dict[str, Any], turns: list[dict]) -> dict[str, Any]:
    """``store`` with the current conversation's turns replaced, moved to the top, and old ones trimmed."""
    store = normalize_store(store)
    stored = turns_to_json(turns)
    first_question = next((t["text"] for t in stored if t["role"] == "user"), "")
    item = {"id": store["current"], "title": " ".join(first_question.split())[:120], "updated": now(),
            "questions": sum(1 for t in stored if t["role"] == "user"), "turns": stored}
    others = [i for i in store["items"] if i.get("id") != store["current"]]
    store["items"] = ([item] if stored else []) + others[: MAX_CONVERSATIONS - 1]
    while len(store["items"]) > 1 and len(json.dumps(store, ensure_ascii=False).encode("utf-8")) > MAX_STORED_BYTES:
        store["items"].pop()
    return store


def ui_secret(folder: Path) -> str:
    """The key that encrypts conversations in the browser: ``ASSISTANT_UI_SECRET``, else a random one
    kept in ``folder/.browser_state_secret`` (created on first use), so it outlives a restart.

    Without a stable secret Gradio makes a new one per start and every stored conversation would be lost.
    """
    import os

    env = os.environ.get("ASSISTANT_UI_SECRET")
    if env:
        return env
    path = Path(folder) / ".browser_state_secret"
    try:
        value = path.read_text(encoding="ascii").strip()
        if len(value) >= 16:
            return value
    except OSError:
        pass
    value = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(value)
    except OSError:  # a read-only folder: conversations then last until the app restarts
        pass
    return value
