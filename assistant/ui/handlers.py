"""The web UI's event handlers: each takes what the page sends, calls the ``Assistant`` and returns the
rendered HTML (``render``, ``panels``). No business logic: uploads, removal and undo are ``Assistant``
methods, and the assistant's own locking keeps writers apart (``app`` lays the page out and wires these).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import gradio as gr

from assistant.errors import AssistantError
from assistant.ingest.loaders import sanitize_filename
from assistant.ingest.staging import REMOVED_FOLDER, Removal
from assistant.records import DocumentInfo
from assistant.ui import conversations as convs
from assistant.ui.panels import render_about, render_document, render_documents_table, render_ingest_status, render_remove_confirm
from assistant.ui.render import esc, lang_of, render_conversation, render_conversation_list, render_lookup

log = logging.getLogger("assistant.ui")

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_FILES = 20
LLM_HINT = ("Answers are extractive: the evidence sentences are quoted verbatim, in the language of the document they come from. "
            "For written English answers, configure a language model: ASSISTANT_LLM_BASE_URL and ASSISTANT_LLM_MODEL "
            "(Ollama, vLLM, llama.cpp server, OpenAI) or ASSISTANT_LLM_GGUF, or the --llm-* flags of assistant serve.")


def admin_notes(assistant: Any) -> str:
    """What an administrator should know about how answers are made here (shown in About, logged at start)."""
    return LLM_HINT if getattr(assistant, "llm", None) is None else ""


class UIHandlers:
    """Event handlers around one ``Assistant`` (``app.AssistantUI`` adds the layout that wires them).

    No lock here: the assistant serializes its writers and never makes a reader wait.
    """

    def __init__(self, assistant: Any) -> None:
        self.assistant = assistant

    # -- paths --------------------------------------------------------------------------------------
    @property
    def uploads_dir(self) -> Path:
        return Path(self.assistant.uploads_dir)

    @property
    def removed_dir(self) -> Path:
        """Where removed uploads wait for a possible undo (hidden from the uploads listing)."""
        return self.uploads_dir / REMOVED_FOLDER

    # -- API ------------------------------------------------------------------------------------------
    def api_ask(self, question: str, history_json: str = "[]") -> dict:
        """Answer a question with citations; the same JSON as ``assistant ask --json``.

        history_json: JSON list of {"role": "user"|"assistant", "content": str} (earlier turns), or "" / "[]".
        """
        try:
            history = json.loads(history_json) if history_json and history_json.strip() else []
        except ValueError as exc:
            raise gr.Error(f"history_json is not valid JSON: {exc}") from None
        if not isinstance(history, list):
            raise gr.Error('history_json must be a JSON list of {"role", "content"} objects')
        try:
            return self.assistant.ask(question, history).to_dict()
        except AssistantError as exc:
            raise gr.Error(str(exc)) from None

    def api_lookup(self, phrase: str, k: int = 5) -> list:
        """Citation lookup: the passages where the corpus says ``phrase`` (``assistant lookup --json``)."""
        try:
            return [h.to_dict() for h in self.assistant.search(phrase, k=int(k)).hits]
        except AssistantError as exc:
            raise gr.Error(str(exc)) from None

    def api_documents(self) -> list:
        """The indexed documents (``assistant list --json``)."""
        return [d.to_dict() for d in self.assistant.documents()]

    # -- chat -----------------------------------------------------------------------------------------
    @staticmethod
    def _history(turns: Sequence[dict]) -> list[dict]:
        history = []
        for i, turn in enumerate(turns):
            if turn["role"] == "assistant" and turn.get("answer") is not None and turn.get("final", True):
                history.append({"role": "user", "content": turns[i - 1]["text"]})
                history.append({"role": "assistant", "content": turn["answer"].text})
        return history

    def _doc_meta(self, doc_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """``doc_id -> {"published", "site"}`` for the given documents, where the index knows them."""
        lookup = getattr(self.assistant, "document", None)
        meta: dict[str, dict[str, str]] = {}
        if lookup is None:
            return meta
        for doc_id in dict.fromkeys(doc_ids):
            try:
                doc = lookup(doc_id)
            except Exception:  # noqa: BLE001 - a removed document just has no metadata
                continue
            entry = {k: v for k, v in (("published", getattr(doc, "published", "")), ("site", getattr(doc, "site", ""))) if v}
            if entry:
                meta[doc_id] = entry
        return meta

    def _answer_meta(self, answer: Any) -> dict[str, dict[str, str]]:
        return self._doc_meta([c.doc_id for c in answer.citations] + [h.chunk.doc_id for h in answer.passages])

    def on_ask(self, question: str, turns: list, show_all: bool, store: Any = None, since: str = "", until: str = ""):
        """Stream one answer; the conversation is saved in the browser once the answer is final.

        ``since``/``until`` (``YYYY-MM-DD``, either may be empty) keep only passages of documents
        published in that range, as ``assistant ask --since/--until``.
        """
        turns = list(turns or [])
        question = (question or "").strip()
        if not question:
            yield gr.skip(), turns, gr.skip(), gr.skip(), gr.skip()
            return
        since, until = (since or "").strip() or None, (until or "").strip() or None
        history = self._history(turns)
        lang = lang_of(question)
        turns.append({"role": "user", "text": question})
        turns.append({"role": "assistant", "answer": None, "final": False, "lang": lang})
        yield render_conversation(turns, show_all), turns, "", gr.skip(), gr.skip()
        try:
            for label, value in (("From", since), ("To", until)):
                if value is not None:
                    try:
                        datetime.date.fromisoformat(value)
                    except ValueError:
                        raise AssistantError(f"{label} date {value!r} is not a date like 2020-06-05 (year-month-day).") from None
            dated = {"since": since, "until": until} if since or until else {}
            for answer in self.assistant.ask_stream(question, history, **dated):
                turns[-1] = {"role": "assistant", "answer": answer, "final": False, "lang": answer.language}
                yield render_conversation(turns, show_all), turns, gr.skip(), gr.skip(), gr.skip()
            if turns[-1].get("answer") is None:
                raise AssistantError("No answer was produced.")
            turns[-1]["final"] = True
            turns[-1]["meta"] = self._answer_meta(turns[-1]["answer"])
        except AssistantError as exc:
            turns[-1] = {"role": "assistant", "error": str(exc), "lang": lang}
        except Exception as exc:  # keep the UI alive and say what happened
            log.exception("answering %r failed", question)
            turns[-1] = {"role": "assistant", "error": f"Internal error ({exc.__class__.__name__}): {exc}", "lang": lang}
        store = convs.save_turns(convs.normalize_store(store), turns)
        yield (render_conversation(turns, show_all), turns, gr.skip(), store,
               render_conversation_list(store["items"], store["current"]))

    # -- conversations kept in the browser ------------------------------------------------------------
    def on_restore(self, store: Any, show_all: bool = False):
        """Page load: show the conversation this browser was in, and the list of its conversations."""
        store = convs.normalize_store(store)
        item = convs.find(store, store["current"])
        turns = convs.turns_from_json(item["turns"]) if item else []
        return (render_conversation(turns, show_all), turns, store,
                render_conversation_list(store["items"], store["current"]))

    def on_new_conversation(self, store: Any):
        """Start an empty conversation; the previous one stays in the list."""
        store = convs.normalize_store(store)
        store["current"] = convs.new_id()
        return render_conversation([]), [], store, render_conversation_list(store["items"], store["current"])

    def on_open_conversation(self, store: Any, show_all: bool, evt: gr.EventData):
        store = convs.normalize_store(store)
        data = getattr(evt, "_data", None) or {}
        item = convs.find(store, str(data.get("id") or ""))
        if item is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        store["current"] = item["id"]
        turns = convs.turns_from_json(item["turns"])
        return (render_conversation(turns, show_all), turns, store,
                render_conversation_list(store["items"], store["current"]))

    def on_clear(self):
        return render_conversation([]), []

    def on_show_all(self, turns: list, show_all: bool):
        return render_conversation(turns or [], show_all)

    # -- lookup ---------------------------------------------------------------------------------------
    def on_lookup(self, phrase: str):
        phrase = (phrase or "").strip()
        if not phrase:
            return '<p class="notice">Paste a phrase or a claim to look up.</p>'
        try:
            result = self.assistant.search(phrase, k=8)
            weak = self.assistant.should_abstain(result) if hasattr(self.assistant, "should_abstain") else False
            meta = self._doc_meta([h.chunk.doc_id for h in result.hits])
        except AssistantError as exc:
            return f'<p class="notice" dir="auto">{esc(exc)}</p>'
        return render_lookup(phrase, result.hits, weak, meta)

    # -- viewer ---------------------------------------------------------------------------------------
    def on_open_doc(self, evt: gr.EventData):
        data = getattr(evt, "_data", None) or {}
        doc_id = str(data.get("doc_id") or "")
        try:
            start, end = int(data.get("start") or 0), int(data.get("end") or 0)
        except (TypeError, ValueError):
            start = end = 0
        try:
            body = render_document(self.assistant.document(doc_id), start, end)
        except AssistantError as exc:
            body = f'<p class="notice" dir="auto">{esc(exc)}</p>'
        return body, gr.Tabs(selected="viewer")

    # -- documents ------------------------------------------------------------------------------------
    def _docs_outputs(self):
        docs = self.assistant.documents()
        return render_documents_table(docs), self._status_text(docs)

    @staticmethod
    def _status_text(docs: Sequence[DocumentInfo]) -> str:
        passages = sum(int(d.chunks) for d in docs)
        return f"{len(docs)} documents · {passages} passages indexed"

    def on_load(self):
        return self._docs_outputs()

    def about(self) -> str:
        """The About · settings panel: index, models, and the set-up notes meant for an administrator."""
        settings = {"Index": str(getattr(self.assistant, "index_dir", ""))}
        llm = getattr(self.assistant, "llm", None)
        if llm is None:
            settings["Answers"] = "extractive (quotes from the documents; no language model configured)"
        else:
            name = getattr(llm, "model", None) or getattr(llm, "name", None) or llm.__class__.__name__
            settings["Answers"] = f"written by a language model ({name}), checked against the cited passages"
        embedder = getattr(self.assistant, "_embedder", None)  # only if already loaded: never load a model here
        if embedder is not None and getattr(embedder, "model", None):
            settings["Embedding model"] = f"{embedder.model} ({getattr(embedder, 'backend', '')})"
        else:
            settings["Embedding model"] = os.environ.get("ASSISTANT_EMBEDDER") or "auto"
        settings["Uploads kept in"] = str(self.uploads_dir)
        notes = [admin_notes(self.assistant)] if admin_notes(self.assistant) else []
        notes.append("Conversations are kept in each browser (encrypted in its local storage) and survive a reload and "
                     "a restart of the app; set ASSISTANT_UI_SECRET to keep them across a new index folder.")
        return render_about(settings, notes)


    def on_ingest(self, files: list | None, progress=gr.Progress()):
        files = [f for f in (files or []) if f]
        if not files:
            return (render_ingest_status([], [], "Choose one or more .txt, .md, .html, .pdf or .docx files first."),
                    *self._docs_outputs(), gr.skip())
        if len(files) > MAX_UPLOAD_FILES:
            msg = f"You chose {len(files)} files; add at most {MAX_UPLOAD_FILES} at a time. Nothing was added."
            return render_ingest_status([], [("upload", msg)]), *self._docs_outputs(), gr.skip()
        paths = [Path(f if isinstance(f, (str, Path)) else getattr(f, "name", str(f))) for f in files]
        names = [sanitize_filename(p.name) for p in paths]

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage == "checking":
                progress((done, total), desc=f"Checking {names[done]}")
                return
            what = "Reading" if stage == "reading" else "Embedding passages"
            progress((done, max(total, 1)), desc=f"{what} {done}/{total}")

        progress(0, desc="Checking files")
        uploaded = self.assistant.add_uploads(paths, max_bytes=MAX_UPLOAD_BYTES, progress=on_progress)
        report, problems = uploaded.ingest, uploaded.problems
        lines = []
        summary = ""
        if report is not None:
            if report.added:
                lines.append("Added: " + ", ".join(report.added))
            if report.updated:
                lines.append("Updated: " + ", ".join(report.updated))
            if report.unchanged:
                lines.append("Already indexed, unchanged: " + ", ".join(report.unchanged))
            summary = report.summary()
        return render_ingest_status(lines, problems, summary), *self._docs_outputs(), None

    def on_ingest_url(self, text: str | None, kind: str = "page", progress=gr.Progress()):
        """Fetch web articles (one URL per line), or every page of a feed or sitemap, into the index.

        The app is a server, so its URL box must not become a way into the newsroom's network: private
        and loopback addresses are refused unless ``ASSISTANT_ALLOW_PRIVATE_URLS=1`` is set.
        """
        from assistant.ingest.web import Feed, FetchPolicy, Fetcher, Sitemap, WebPage

        urls = [u for u in (text or "").split() if u]
        if not urls:
            return render_ingest_status([], [], "Paste one or more http(s) URLs first."), *self._docs_outputs(), gr.skip()
        fetcher = Fetcher(FetchPolicy(allow_private=os.environ.get("ASSISTANT_ALLOW_PRIVATE_URLS") == "1"))
        make = {"feed": Feed, "sitemap": Sitemap}.get(kind, WebPage)
        items = [make(url, fetcher) for url in urls[:MAX_UPLOAD_FILES]]

        def on_progress(stage: str, done: int, total: int) -> None:
            what = "Fetching" if stage == "reading" else "Embedding passages"
            progress((done, max(total, 1)), desc=f"{what} {done}/{total}")

        try:
            report = self.assistant.ingest(items, progress=on_progress)
        except AssistantError as exc:
            return render_ingest_status([], [("index", str(exc))]), *self._docs_outputs(), gr.skip()
        lines = [f"{label}: {', '.join(ids)}" for label, ids in (("Added", report.added), ("Updated", report.updated),
                                                                   ("Already indexed, unchanged", report.unchanged)) if ids]
        return render_ingest_status(lines, report.skipped, report.summary()), *self._docs_outputs(), ""

    # -- removal: confirm first, undo after -----------------------------------------------------------
    def on_remove_request(self, evt: gr.EventData):
        """A row's "Remove…" button: show the document's full title and id and ask before removing."""
        data = getattr(evt, "_data", None) or {}
        doc_id = str(data.get("doc_id") or "")
        doc = next((d for d in self.assistant.documents() if d.doc_id == doc_id), None)
        if doc is None:
            return None, render_ingest_status([], [(doc_id, "is no longer in the index")]), gr.update(visible=False)
        return doc_id, render_remove_confirm(doc), gr.update(visible=True)

    def on_remove_cancel(self):
        return None, "", gr.update(visible=False)

    def on_remove_confirm(self, doc_id: str | None):
        status, table, index_status, kept = self.on_remove(doc_id)
        return (status, table, index_status, None, "", gr.update(visible=False), kept,
                gr.update(visible=kept is not None))

    def on_remove(self, doc_id: str | None):
        """Remove ``doc_id``; returns ``(status, table, index_status, undo)``.

        ``undo`` says how to bring it back (``Removal.to_dict()``, kept in the page's state): an uploaded
        file is moved aside into ``uploads/.removed/`` rather than deleted, and put back and re-ingested on
        undo; any other file is re-ingested from where it is. None when there is nothing to undo.
        """
        if not doc_id:
            return '<p class="notice">Choose a document to remove.</p>', *self._docs_outputs(), None
        kept = None
        try:
            removal = self.assistant.remove_with_undo(doc_id)
            if removal.path is not None:
                kept = removal.to_dict()
            msg = render_ingest_status([f"Removed {doc_id} ({removal.chunks} passages)."], [])
        except AssistantError as exc:
            msg = render_ingest_status([], [(doc_id, str(exc))])
        return msg, *self._docs_outputs(), kept

    def on_undo_remove(self, kept: dict | None):
        """Put a removed document back: move a kept upload back in place and ingest it again."""
        if not kept:
            return render_ingest_status([], [("undo", "there is no removal to undo")]), *self._docs_outputs(), None, gr.update(visible=False)
        problems: list[tuple[str, str]] = []
        lines: list[str] = []
        try:
            report = self.assistant.undo_removal(Removal.from_dict(kept))
            if report.skipped:
                problems.extend((Path(p).name, reason) for p, reason in report.skipped)
            else:
                lines.append(f"Restored {kept['doc_id']}.")
        except AssistantError as exc:
            problems.append((str(kept.get("doc_id", "undo")), str(exc)))
        return render_ingest_status(lines, problems), *self._docs_outputs(), None, gr.update(visible=False)
