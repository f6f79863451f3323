"""The Gradio web UI's page and server: ``AssistantUI`` lays the page out and wires the handlers
(``handlers``) to it; ``serve`` indexes the seeds into an empty index and launches the app.

The UI only renders ``Answer`` records and search hits; retrieval, answering, loading and uploads live
in ``Assistant``. Rendering is in ``render.py`` and ``panels.py`` (every text escaped, every
mixed-direction run isolated), the page's script and style in ``static/`` (read by ``assets.py``), the
conversations kept in the browser in ``conversations.py``.

    from assistant import Assistant
    from assistant.ui import serve
    serve(Assistant(), host="127.0.0.1", port=7860)
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.errors import ConfigError
from assistant.ingest.loaders import SUPPORTED_SUFFIXES
from assistant.ui import conversations as convs
from assistant.ui.assets import CONV_LIST_JS, CONVERSATION_JS, CSS, DOCS_JS, PAGE_JS, PANEL_JS, SCROLL_TO_MARK_JS, VIEWER_JS
from assistant.ui.handlers import MAX_UPLOAD_BYTES, MAX_UPLOAD_FILES, UIHandlers, admin_notes
from assistant.ui.render import HEADER, render_conversation, render_conversation_list

log = logging.getLogger("assistant.ui")

UPLOAD_TYPES = sorted(SUPPORTED_SUFFIXES)
DEFAULT_SEEDS = Path(__file__).resolve().parents[2] / "seeds"
DEFAULT_PORT = 7860
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

class AssistantUI(UIHandlers):
    """The app around one ``Assistant``: the handlers of ``UIHandlers``; ``build()`` returns the ``gr.Blocks``."""

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
