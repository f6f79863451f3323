"""The Gradio web UI: chat with cited answers, citation lookup, document upload and viewer.

The UI only renders ``Answer`` records and search hits; retrieval, answering and loading live in
``Assistant``. Rendering is in ``render.py`` (every text escaped, every mixed-direction run isolated),
the page's script and style in ``assets.py``, the conversations kept in the browser in
``conversations.py``.

    from assistant import Assistant
    from assistant.ui import serve
    serve(Assistant(), host="127.0.0.1", port=7860)
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home from a newsroom machine

import datetime
import errno
import ipaddress
import json
import logging
import shutil
import socket
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import gradio as gr

from assistant.errors import AssistantError, ConfigError, DocumentError
from assistant.ingest.loaders import SUPPORTED_SUFFIXES, load_document, sanitize_filename
from assistant.ui import conversations as convs
from assistant.ui.assets import CONV_LIST_JS, CONVERSATION_JS, CSS, DOCS_JS, PAGE_JS, PANEL_JS, SCROLL_TO_MARK_JS, VIEWER_JS
from assistant.ui.render import (
    HEADER,
    esc,
    lang_of,
    render_about,
    render_conversation,
    render_conversation_list,
    render_document,
    render_documents_table,
    render_ingest_status,
    render_lookup,
    render_remove_confirm,
)

log = logging.getLogger("assistant.ui")

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_FILES = 20
UPLOAD_TYPES = sorted(SUPPORTED_SUFFIXES)
DEFAULT_SEEDS = Path(__file__).resolve().parents[2] / "seeds"
DEFAULT_PORT = 7860
# Removed uploads are kept this long so a removal can be undone (re-ingested from the kept file).
KEEP_REMOVED_SECONDS = 7 * 24 * 3600
STORAGE_KEY = "news-assistant-conversations"

EXAMPLES = [
    "What did Lavrov announce?",
    "ماذا أعلن لافروف؟",
    "Who will lead the Russian embassy?",
    "ماذا قال غوتيريش عن ليبيا؟",
]
LOOKUP_EXAMPLES = [
    "Tarhuna is 95 km from Tripoli",
    "ترهونة تبعد 95 كيلومترا عن طرابلس",
]
# Short enough for a 390 px phone screen: a cut placeholder reads as a broken page.
QUESTION_PLACEHOLDER = "Ask a question · اكتب سؤالك"
LLM_HINT = ("Answers are extractive: the evidence sentences are quoted verbatim, in the language of the document they come from. "
            "For written English answers, configure a language model: ASSISTANT_LLM_BASE_URL and ASSISTANT_LLM_MODEL "
            "(Ollama, vLLM, llama.cpp server, OpenAI) or ASSISTANT_LLM_GGUF, or the --llm-* flags of assistant serve.")


class _RWLock:
    """Many readers (questions, lookups) or one writer (upload, remove) at a time."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()




# -- the app -----------------------------------------------------------------------------------------
class AssistantUI:
    """Event handlers around one ``Assistant``; ``build()`` returns the ``gr.Blocks``."""

    def __init__(self, assistant: Any) -> None:
        self.assistant = assistant
        self.lock = _RWLock()

    # -- paths --------------------------------------------------------------------------------------
    @property
    def uploads_dir(self) -> Path:
        return Path(self.assistant.uploads_dir)

    @property
    def removed_dir(self) -> Path:
        """Where removed uploads wait for a possible undo (hidden from the uploads listing)."""
        return self.uploads_dir / ".removed"

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
            with self.lock.read():
                return self.assistant.ask(question, history).to_dict()
        except AssistantError as exc:
            raise gr.Error(str(exc)) from None

    def api_lookup(self, phrase: str, k: int = 5) -> list:
        """Citation lookup: the passages where the corpus says ``phrase`` (``assistant lookup --json``)."""
        try:
            with self.lock.read():
                return [h.to_dict() for h in self.assistant.search(phrase, k=int(k)).hits]
        except AssistantError as exc:
            raise gr.Error(str(exc)) from None

    def api_documents(self) -> list:
        """The indexed documents (``assistant list --json``)."""
        with self.lock.read():
            return self.assistant.documents()

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
            stream = self.assistant.ask_stream(question, history, **dated)
            while True:
                with self.lock.read():  # held while computing, never while the generator is suspended
                    answer = next(stream, None)
                if answer is None:
                    break
                turns[-1] = {"role": "assistant", "answer": answer, "final": False, "lang": answer.language}
                yield render_conversation(turns, show_all), turns, gr.skip(), gr.skip(), gr.skip()
            if turns[-1].get("answer") is None:
                raise AssistantError("No answer was produced.")
            turns[-1]["final"] = True
            with self.lock.read():
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
            with self.lock.read():
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
            with self.lock.read():
                doc = self.assistant.document(doc_id)
            body = render_document(doc, start, end)
        except AssistantError as exc:
            body = f'<p class="notice" dir="auto">{esc(exc)}</p>'
        return body, gr.Tabs(selected="viewer")

    # -- documents ------------------------------------------------------------------------------------
    def _documents(self) -> list[dict]:
        """The document list, with publication date and site added where the index has them."""
        with self.lock.read():
            docs = self.assistant.documents()
            if docs and "published" not in docs[0] and hasattr(self.assistant, "document"):
                # An index whose listing lacks the metadata fields: read them from the documents.
                meta = self._doc_meta([d["doc_id"] for d in docs])
                docs = [{**d, **meta.get(d["doc_id"], {})} for d in docs]
        return docs

    def _docs_outputs(self):
        docs = self._documents()
        return render_documents_table(docs), self._status_text(docs)

    @staticmethod
    def _status_text(docs: Sequence[dict]) -> str:
        passages = sum(int(d["chunks"]) for d in docs)
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
        problems: list[tuple[str, str]] = []
        staging = self.uploads_dir / ".staging" / uuid.uuid4().hex
        placed: dict[Path, tuple[str, Path | None]] = {}  # target -> (shown name, backup of the old file)
        progress(0, desc="Checking files")
        with self.lock.write():
            try:
                staging.mkdir(parents=True, exist_ok=True)
                seen: set[str] = set()
                for number, item in enumerate(files, 1):
                    src = Path(item if isinstance(item, (str, Path)) else getattr(item, "name", str(item)))
                    shown = sanitize_filename(src.name)
                    progress((number - 1, len(files)), desc=f"Checking {shown}")
                    problem = self._check_upload(src, shown, seen)
                    if problem:
                        problems.append((shown, problem))
                        continue
                    staged = staging / str(number) / shown
                    staged.parent.mkdir(parents=True)
                    shutil.copyfile(src, staged)
                    try:  # read it once before it touches the index: bad files never get in
                        load_document(staged, max_bytes=MAX_UPLOAD_BYTES)
                    except DocumentError as exc:
                        problems.append((shown, exc.reason))
                        continue
                    except Exception as exc:
                        problems.append((shown, f"could not be read ({exc.__class__.__name__}: {exc})"))
                        continue
                    seen.add(shown.lower())
                    target = self.uploads_dir / shown
                    backup = None
                    if target.exists():
                        backup = staged.parent / (shown + ".previous")
                        os.replace(target, backup)
                    os.replace(staged, target)
                    placed[target] = (shown, backup)
                report = None
                if placed:
                    def on_progress(stage: str, done: int, total: int) -> None:
                        what = "Reading" if stage == "reading" else "Embedding passages"
                        progress((done, max(total, 1)), desc=f"{what} {done}/{total}")

                    try:
                        report = self.assistant.ingest(list(placed), progress=on_progress)
                    except AssistantError as exc:
                        problems.append(("index", str(exc)))
                        report = None
                    failed = set()
                    if report is None:
                        failed = set(placed)
                    else:
                        for path, reason in report.skipped:
                            match = next((t for t in placed if _same_path(t, path)), None)
                            if match is not None:
                                failed.add(match)
                                problems.append((placed[match][0], reason))
                            else:
                                problems.append((Path(path).name, reason))
                    for target, (shown, backup) in placed.items():
                        if target in failed:  # put things back as they were
                            if backup is not None:
                                os.replace(backup, target)
                            else:
                                target.unlink(missing_ok=True)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
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

        with self.lock.write():
            try:
                report = self.assistant.ingest(items, progress=on_progress)
            except AssistantError as exc:
                return render_ingest_status([], [("index", str(exc))]), *self._docs_outputs(), gr.skip()
        lines = [f"{label}: {', '.join(ids)}" for label, ids in (("Added", report.added), ("Updated", report.updated),
                                                                   ("Already indexed, unchanged", report.unchanged)) if ids]
        return render_ingest_status(lines, report.skipped, report.summary()), *self._docs_outputs(), ""

    @staticmethod
    def _check_upload(src: Path, shown: str, seen: set[str]) -> str | None:
        suffix = Path(shown).suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            return f"unsupported file type {suffix or '(no extension)'!r}; supported: .txt, .md, .html, .pdf, .docx"
        try:
            size = src.stat().st_size
        except OSError:
            return "the upload did not arrive; try again"
        if size > MAX_UPLOAD_BYTES:
            limit = MAX_UPLOAD_BYTES
            shown_limit = f"{limit / (1024 * 1024):g} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
            return f"the file is {size / (1024 * 1024):.1f} MB, over the {shown_limit} limit"
        if shown.lower() in seen:
            return "another file in this upload has the same name"
        return None


    # -- removal: confirm first, undo after -----------------------------------------------------------
    def on_remove_request(self, evt: gr.EventData):
        """A row's "Remove…" button: show the document's full title and id and ask before removing."""
        data = getattr(evt, "_data", None) or {}
        doc_id = str(data.get("doc_id") or "")
        doc = next((d for d in self._documents() if d["doc_id"] == doc_id), None)
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

        ``undo`` says how to bring it back (``{"doc_id", "title", "path", "restore_to"}``): an uploaded
        file is moved aside into ``uploads/.removed/`` rather than deleted, and put back and re-ingested on
        undo; any other file is re-ingested from where it is. None when there is nothing to undo.
        """
        if not doc_id:
            return '<p class="notice">Choose a document to remove.</p>', *self._docs_outputs(), None
        kept = None
        try:
            with self.lock.write():
                doc = self.assistant.document(doc_id)
                removed = self.assistant.remove(doc_id)
                path = Path(doc.source)
                restore_to = None
                if _inside(path, self.uploads_dir):  # our own copy of an uploaded file: keep it aside for undo
                    aside = self.removed_dir / uuid.uuid4().hex / path.name
                    try:
                        aside.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(path, aside)
                        restore_to, path = str(doc.source), aside
                    except OSError:
                        path.unlink(missing_ok=True)
                        path = None
                if path is not None:
                    kept = {"doc_id": doc_id, "title": doc.title, "path": str(path), "restore_to": restore_to}
                self._purge_removed()
            msg = render_ingest_status([f"Removed {doc_id} ({removed} passages)."], [])
        except AssistantError as exc:
            msg = render_ingest_status([], [(doc_id, str(exc))])
        return msg, *self._docs_outputs(), kept

    def on_undo_remove(self, kept: dict | None):
        """Put a removed document back: move a kept upload back in place and ingest it again."""
        if not kept:
            return render_ingest_status([], [("undo", "there is no removal to undo")]), *self._docs_outputs(), None, gr.update(visible=False)
        path, restore_to = Path(kept["path"]), kept.get("restore_to")
        problems: list[tuple[str, str]] = []
        lines: list[str] = []
        with self.lock.write():
            try:
                if restore_to:
                    target = Path(restore_to)
                    if target.exists():
                        raise AssistantError(f"a new file {target.name} was uploaded since; remove it first")
                    if not path.is_file():
                        raise AssistantError("the removed file is no longer kept")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, target)
                    shutil.rmtree(path.parent, ignore_errors=True)
                    path = target
                elif not path.is_file():
                    raise AssistantError(f"its source file {path} is gone; add it again with Add to index")
                report = self.assistant.ingest([path])
                if report.skipped:
                    problems.extend((Path(p).name, reason) for p, reason in report.skipped)
                else:
                    lines.append(f"Restored {kept['doc_id']}.")
            except AssistantError as exc:
                problems.append((str(kept.get("doc_id", "undo")), str(exc)))
        return render_ingest_status(lines, problems), *self._docs_outputs(), None, gr.update(visible=False)

    def _purge_removed(self) -> None:
        """Forget removed uploads older than ``KEEP_REMOVED_SECONDS``."""
        if not self.removed_dir.is_dir():
            return
        cutoff = time.time() - KEEP_REMOVED_SECONDS
        for folder in self.removed_dir.iterdir():
            try:
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                continue

    # -- layout ---------------------------------------------------------------------------------------
    def build(self, secret: str | None = None) -> gr.Blocks:
        """The app. ``secret`` encrypts the conversations kept in the browser (default: one kept beside
        the uploads, see ``conversations.ui_secret``)."""
        secret = secret or convs.ui_secret(self.uploads_dir.parent if self.uploads_dir.name == "uploads" else self.uploads_dir)
        with gr.Blocks(title="News Assistant · مساعد الأخبار", analytics_enabled=False) as demo:
            with gr.Row(equal_height=True, elem_id="header-row"):
                gr.HTML(HEADER, js_on_load=None, elem_id="header-html")
                index_status = gr.Markdown("", elem_id="index-status")
            turns = gr.State([])
            store = gr.BrowserState(None, storage_key=STORAGE_KEY, secret=secret)
            with gr.Tabs(selected="chat", overflow_behavior="wrap", elem_id="main-tabs") as tabs:
                with gr.Tab("Ask", id="chat"):
                    conversation = gr.HTML(render_conversation([]), elem_id="conversation", js_on_load=CONVERSATION_JS,
                                           min_height=120, max_height="62vh")
                    with gr.Row(equal_height=True, elem_id="ask-row"):
                        question = gr.Textbox(
                            show_label=False, placeholder=QUESTION_PLACEHOLDER,
                            lines=1, max_lines=6, scale=8, min_width=120, elem_id="question", autofocus=True,
                            submit_btn=False,
                        )
                        ask_btn = gr.Button("Ask · اسأل", variant="primary", scale=1, min_width=90, elem_id="ask-btn")
                    with gr.Row():
                        gr.Examples(EXAMPLES, inputs=[question], label="Examples · أمثلة")
                    with gr.Row(elem_id="chat-tools"):
                        show_all = gr.Checkbox(label="Show all retrieved passages", value=False, elem_id="show-all",
                                               scale=3)
                        clear_btn = gr.Button("New conversation", size="sm", scale=1, elem_id="clear-btn")
                    with gr.Accordion("Filter by publication date", open=False, elem_id="date-filter"):
                        with gr.Row():
                            since_box = gr.Textbox(label="From (YYYY-MM-DD)", placeholder="2020-06-01", max_lines=1,
                                                   elem_id="since", min_width=120)
                            until_box = gr.Textbox(label="To (YYYY-MM-DD)", placeholder="2020-06-30", max_lines=1,
                                                   elem_id="until", min_width=120)
                        gr.Markdown("Only documents that state a publication date in this range are searched.")
                    with gr.Accordion("Past conversations", open=False, elem_id="past-conversations"):
                        conv_list = gr.HTML(render_conversation_list([], None), elem_id="conv-list",
                                            js_on_load=CONV_LIST_JS)
                with gr.Tab("Citation lookup", id="lookup"):
                    gr.Markdown("Paste a phrase or a claim, in English or Arabic, to see **where the documents say it**: "
                                "ranked passages with the matching sentence highlighted. No generated text.")
                    with gr.Row(equal_height=True):
                        phrase = gr.Textbox(show_label=False, placeholder="e.g. Tarhuna is 95 km from Tripoli",
                                            lines=1, max_lines=6, scale=8, min_width=120, elem_id="lookup-input",
                                            submit_btn=False)
                        lookup_btn = gr.Button("Find sources", variant="primary", scale=1, min_width=90, elem_id="lookup-btn")
                    gr.Examples(LOOKUP_EXAMPLES, inputs=[phrase], label="Examples · أمثلة")
                    lookup_out = gr.HTML("", elem_id="lookup-results", js_on_load=PANEL_JS)
                with gr.Tab("Documents", id="documents"):
                    with gr.Row():
                        with gr.Column(scale=3, min_width=240):
                            files = gr.File(
                                label=f"Add documents: .txt .md .html .pdf .docx (up to {MAX_UPLOAD_FILES} files, 20 MB each)",
                                file_count="multiple", file_types=UPLOAD_TYPES, elem_id="upload", height=160,
                            )
                            ingest_btn = gr.Button("Add to index", variant="primary", elem_id="ingest-btn")
                            url_box = gr.Textbox(label="Or add web articles by URL (one per line)", lines=2,
                                                 placeholder="https://example.com/news/article.html", elem_id="url-input")
                            url_kind = gr.Radio([("Articles", "page"), ("RSS/Atom feed", "feed"), ("Sitemap", "sitemap")],
                                                value="page", show_label=False, elem_id="url-kind")
                            url_btn = gr.Button("Fetch and add", elem_id="url-btn")
                        with gr.Column(scale=2, min_width=240):
                            ingest_status = gr.HTML("", elem_id="ingest-status", js_on_load=None)
                            undo_btn = gr.Button("Undo removal", size="sm", visible=False, elem_id="undo-remove")
                            with gr.Group(visible=False, elem_id="remove-confirm") as confirm_box:
                                confirm_html = gr.HTML("", elem_id="remove-confirm-text")
                                with gr.Row():
                                    confirm_btn = gr.Button("Remove", variant="stop", size="sm", elem_id="confirm-remove")
                                    cancel_btn = gr.Button("Cancel", size="sm", elem_id="cancel-remove")
                    docs_table = gr.HTML("", elem_id="docs-table", js_on_load=DOCS_JS)
                with gr.Tab("Document viewer", id="viewer"):
                    viewer = gr.HTML('<p class="notice">Open a document from a source, a lookup result or the '
                                     "Documents list.</p>", elem_id="doc-viewer", js_on_load=VIEWER_JS)
            with gr.Accordion("About · settings", open=False, elem_id="about"):
                about = gr.HTML("", elem_id="about-panel")
            pending_remove = gr.State(None)
            last_removed = gr.State(None)

            private = {"api_visibility": "private"}
            ask_inputs = [question, turns, show_all, store, since_box, until_box]
            ask_outputs = [conversation, turns, question, store, conv_list]
            question.submit(self.on_ask, ask_inputs, ask_outputs, show_progress="hidden", **private)
            ask_btn.click(self.on_ask, ask_inputs, ask_outputs, show_progress="hidden", **private)
            clear_btn.click(self.on_new_conversation, [store], [conversation, turns, store, conv_list], queue=False,
                            **private)
            conv_list.open_conv(self.on_open_conversation, [store, show_all], [conversation, turns, store, conv_list],
                                show_progress="hidden", **private)
            show_all.change(self.on_show_all, [turns, show_all], conversation, queue=False, show_progress="hidden", **private)

            phrase.submit(self.on_lookup, phrase, lookup_out, **private)
            lookup_btn.click(self.on_lookup, phrase, lookup_out, **private)

            for panel in (conversation, lookup_out, docs_table):
                panel.open_doc(self.on_open_doc, None, [viewer, tabs], show_progress="hidden", **private).then(
                    None, js=SCROLL_TO_MARK_JS, **private)

            docs_outputs = [docs_table, index_status]
            url_btn.click(self.on_ingest_url, [url_box, url_kind], [ingest_status, *docs_outputs, url_box],
                          show_progress="full", **private)
            ingest_btn.click(self.on_ingest, files, [ingest_status, *docs_outputs, files], show_progress="full",
                             **private)
            docs_table.remove_doc(self.on_remove_request, None, [pending_remove, confirm_html, confirm_box],
                                  show_progress="hidden", **private)
            cancel_btn.click(self.on_remove_cancel, None, [pending_remove, confirm_html, confirm_box], queue=False,
                             **private)
            confirm_btn.click(self.on_remove_confirm, pending_remove,
                              [ingest_status, *docs_outputs, pending_remove, confirm_html, confirm_box, last_removed,
                               undo_btn], **private)
            undo_btn.click(self.on_undo_remove, last_removed, [ingest_status, *docs_outputs, last_removed, undo_btn],
                           **private)
            demo.load(self.on_load, None, docs_outputs, show_progress="hidden", **private)
            demo.load(self.on_restore, [store], [conversation, turns, store, conv_list], show_progress="hidden",
                      **private)
            demo.load(self.about, None, about, show_progress="hidden", **private)

            gr.api(self.api_ask, api_name="ask")
            gr.api(self.api_lookup, api_name="lookup")
            gr.api(self.api_documents, api_name="documents")
        return demo


def _same_path(a: Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except (OSError, ValueError):
        return False



def theme() -> gr.themes.Base:
    # System fonts only: the app must work without internet access (no Google Fonts).
    return gr.themes.Soft(
        primary_hue="blue",
        neutral_hue="slate",
        font=["system-ui", "Segoe UI", "Noto Sans", "Noto Sans Arabic", "DejaVu Sans", "sans-serif"],
        font_mono=["ui-monospace", "DejaVu Sans Mono", "monospace"],
    )


def launch_kwargs() -> dict:
    """Arguments for ``Blocks.launch`` that the app needs (theme, CSS, page script, limits)."""
    return {"theme": theme(), "css": CSS, "js": PAGE_JS, "max_file_size": MAX_UPLOAD_BYTES, "ssr_mode": False,
            "show_error": True, "footer_links": ["api"]}


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_auth(auth: str | tuple[str, str] | None) -> tuple[str, str] | None:
    if auth is None or auth == "":
        return None
    if isinstance(auth, tuple):
        return auth
    user, sep, password = str(auth).partition(":")
    if not sep or not user or not password:
        raise ConfigError("auth must look like USER:PASSWORD (both non-empty)")
    return user, password


def index_seeds(assistant: Any, seeds: Path | str | None = None, out=sys.stderr) -> None:
    """Index the seed folder into an empty index, printing progress to the console."""
    folder = Path(seeds) if seeds else DEFAULT_SEEDS
    if not folder.is_dir():
        print(f"The index is empty and there is no seed folder {folder}; add documents in the Documents tab.", file=out)
        return
    print(f"The index {assistant.index_dir} is empty: indexing {folder} ...", file=out, flush=True)
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] > 0.5:
            last[0] = now
            what = "reading files" if stage == "reading" else "embedding passages"
            print(f"  {what}: {done}/{total}", file=out, flush=True)

    report = assistant.ingest([folder], progress=progress)
    print(f"Indexed {folder}: {report.summary()}", file=out, flush=True)
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}", file=out, flush=True)


def build_app(assistant: Any) -> gr.Blocks:
    """The Gradio app for ``assistant`` (launch it with ``launch_kwargs()`` or use ``serve``)."""
    return AssistantUI(assistant).build()


def admin_notes(assistant: Any) -> str:
    """What an administrator should know about how answers are made here (shown in About, logged at start)."""
    return LLM_HINT if getattr(assistant, "llm", None) is None else ""


class PortInUseError(ConfigError):
    """The port the app should listen on is taken by another program."""


def resolve_address(host: str | None, port: int | str | None) -> tuple[str, int]:
    """The address to serve on: the flag when given, else ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``
    (what Gradio users expect to work), else 127.0.0.1:7860."""
    host = host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    raw = port if port not in (None, "") else os.environ.get("GRADIO_SERVER_PORT") or DEFAULT_PORT
    try:
        number = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"The port must be a number, not {raw!r} (--port or GRADIO_SERVER_PORT)") from None
    if not 0 < number < 65536:
        raise ConfigError(f"The port must be between 1 and 65535, not {number} (--port or GRADIO_SERVER_PORT)")
    return host, number


def check_port_free(host: str, port: int) -> None:
    """Raise ``PortInUseError`` naming the port and how to pick another when ``host:port`` is taken.

    Checked before the index is loaded, so a second start fails at once with a clear message instead of
    after indexing with Gradio's "Cannot find empty port".
    """
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Gradio's server sets SO_REUSEADDR too: a port in TIME_WAIT after a restart counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUseError(_port_message(host, port, exc)) from None
            raise ConfigError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _port_message(host: str, port: int, exc: OSError | None = None) -> str:
    why = "is already in use (is the app already running?)" if exc is None or exc.errno != errno.EACCES else \
        "needs administrator rights"
    other = 7861 if port != 7861 else 7862
    return (f"Port {port} on {host} {why}. Pick another port: --port {other} "
            f"(or GRADIO_SERVER_PORT={other}), or stop the program using port {port}.")


def serve(assistant: Any, host: str | None = None, port: int | None = None, auth: str | tuple[str, str] | None = None,
          seeds: Path | str | None = None, *, block: bool = True) -> Any:
    """Index the seeds on first start (empty index), then launch the app on ``host:port``.

    ``host``/``port`` default to ``GRADIO_SERVER_NAME``/``GRADIO_SERVER_PORT``, else 127.0.0.1:7860. A port
    that is taken raises ``PortInUseError`` (naming the port and how to pick another) before anything is
    loaded. Binding to a non-loopback address without ``auth`` ("user:password") prints a warning.
    """
    credentials = parse_auth(auth)
    host, port = resolve_address(host, port)
    check_port_free(host, port)
    if not _is_loopback(host) and credentials is None:
        print(f"WARNING: serving on {host} without a login: anyone who can reach this machine can read and change "
              "the index. Use --auth USER:PASSWORD (or $ASSISTANT_AUTH), or bind 127.0.0.1.", file=sys.stderr, flush=True)
    started = time.perf_counter()
    if assistant.data.n_live == 0:
        index_seeds(assistant, seeds)
    else:
        print(f"Loaded the index {assistant.index_dir}: {assistant.data.n_live} passages "
              f"({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
    note = admin_notes(assistant)
    if note:  # said once, where an administrator looks: here and in the About panel, not in every answer
        print(f"Note: {note}", file=sys.stderr, flush=True)
        log.info(note)
    demo = build_app(assistant)
    demo.queue(default_concurrency_limit=4)
    try:
        return demo.launch(server_name=host, server_port=port, auth=credentials, prevent_thread_lock=not block,
                           **launch_kwargs())
    except OSError as exc:  # taken between the check and the launch
        if "Cannot find empty port" in str(exc) or getattr(exc, "errno", None) == errno.EADDRINUSE:
            raise PortInUseError(_port_message(host, port)) from None
        raise
