"""The Gradio web UI: chat with cited answers, citation lookup, document upload and viewer.

    from assistant import Assistant
    from assistant.ui import serve
    serve(Assistant(), host="127.0.0.1", port=7860)

Modules: ``app`` (the page's layout, ``build_app`` and ``serve``), ``handlers`` (the event handlers:
page in, ``Assistant`` call, HTML out), ``render`` (HTML of answers, sources, conversations, lookups;
escaping and bidi isolation), ``panels`` (HTML of the document viewer, the Documents tab and About),
``assets`` (the page's script and style, kept as files in ``static/``) and ``conversations`` (what is
kept in the browser).
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home from a newsroom machine

from assistant.ui.app import (
    DEFAULT_SEEDS,
    EXAMPLES,
    LOOKUP_EXAMPLES,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_FILES,
    UPLOAD_TYPES,
    AssistantUI,
    PortInUseError,
    admin_notes,
    build_app,
    check_port_free,
    index_seeds,
    launch_kwargs,
    parse_auth,
    resolve_address,
    serve,
    theme,
)
from assistant.ui.assets import CSS, PAGE_JS
from assistant.ui.panels import (
    VIEWER_MAX_CHARS,
    render_document,
    render_documents_table,
    render_ingest_status,
)
from assistant.ui.render import (
    LABELS,
    WELCOME,
    bidi,
    dir_of,
    esc,
    highlight,
    lang_of,
    link_markers,
    render_answer,
    render_conversation,
    render_conversation_list,
    render_lookup,
    render_passage,
    render_user,
)

__all__ = [
    "AssistantUI", "CSS", "DEFAULT_SEEDS", "EXAMPLES", "LABELS", "LOOKUP_EXAMPLES", "MAX_UPLOAD_BYTES", "MAX_UPLOAD_FILES",
    "PAGE_JS", "PortInUseError", "UPLOAD_TYPES", "VIEWER_MAX_CHARS", "WELCOME", "admin_notes", "bidi", "build_app",
    "check_port_free", "dir_of", "esc", "highlight", "index_seeds", "lang_of", "launch_kwargs", "link_markers",
    "parse_auth", "render_answer", "render_conversation", "render_conversation_list", "render_document",
    "render_documents_table", "render_ingest_status", "render_lookup", "render_passage", "render_user",
    "resolve_address", "serve", "theme",
]
