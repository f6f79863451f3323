"""The web UI's script and style, read from ``static/`` (real ``.js`` and ``.css`` files, packaged with
the code); each name below says where Gradio runs it."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"


def _read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


# Click handling inside the HTML panels: [n] links scroll to their source; "open document" buttons
# send the document id and span to Python (``open_doc`` event); "Copy as Markdown" copies an answer.
PANEL_JS = _read("panel.js")
# The conversation scrolls so that the newest question is at the top when it is asked and again when
# its answer arrives (not on every streamed token, so a reader is not pulled away).
CONVERSATION_JS = PANEL_JS + _read("conversation.js")
# The Documents list: "Remove…" asks Python to show the confirmation (``remove_doc`` event).
DOCS_JS = PANEL_JS + _read("documents.js")
# Past conversations: a click opens one (``open_conv`` event).
CONV_LIST_JS = _read("conversation_list.js")
# The document viewer scrolls to the cited span once it is shown.
VIEWER_JS = _read("viewer.js")
# Run after a document opens in the viewer (a function, as Gradio's ``js=`` takes).
SCROLL_TO_MARK_JS = _read("scroll_to_mark.js")
# The page's script (a function): text inputs follow what is typed, Arabic right-to-left, English
# left-to-right; and the phone layout's page margin.
PAGE_JS = _read("page.js")
CSS = _read("app.css")
