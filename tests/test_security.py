"""Safe to expose: nothing on disk is unpickled, index files are validated before use, ids and names are inert.

The UI's own safety rules (escaping in the page, upload limits, host/auth handling of ``serve``) are
tested in ``test_ui_client.py`` and ``test_ui_browser.py``; here are the library and CLI parts.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sqlite3
import zlib
from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant
from assistant.cli import build_parser
from assistant.cli import main as cli_main
from assistant.errors import IndexCorruptError
import assistant.stores.faiss.snapshots as snapshots_module
import assistant.stores.faiss.vectors as vectors_module
from assistant.stores.faiss import LOG_FILES, IndexStore, consistency_problems
from assistant.stores.faiss.postings import POSTING_FILES

from conftest import ROOT

PACKAGE = ROOT / "assistant"


# -- no pickle: a source guard plus behaviour --------------------------------------------------------------
def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), {kw.arg: kw.value for kw in node.keywords}


def test_source_never_unpickles():
    """No module imports pickle-like loaders, and every ``np.load`` says ``allow_pickle=False``."""
    unsafe_modules = {"pickle", "cPickle", "_pickle", "dill", "joblib", "shelve", "cloudpickle", "marshal"}
    found = []
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [f"{where}: import {a.name}" for a in node.names if a.name.split(".")[0] in unsafe_modules]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in unsafe_modules:
                found.append(f"{where}: from {node.module} import ...")
        for func, kwargs in _calls(tree):
            if func in ("np.load", "numpy.load"):
                flag = kwargs.get("allow_pickle")
                if not (isinstance(flag, ast.Constant) and flag.value is False):
                    found.append(f"{where}: {func} without allow_pickle=False")
            if func.endswith("read_pickle") or func in ("yaml.load", "yaml.unsafe_load"):
                found.append(f"{where}: {func}")
            if func == "torch.load":
                flag = kwargs.get("weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    found.append(f"{where}: torch.load without weights_only=True")
            if "allow_pickle" in kwargs and isinstance(kwargs["allow_pickle"], ast.Constant) and kwargs["allow_pickle"].value:
                found.append(f"{where}: {func}(allow_pickle=True)")
    assert found == []


@pytest.fixture
def index(hash_assistant, seed_copy):
    hash_assistant.ingest([seed_copy])
    return hash_assistant.index_dir


def snapshot_dir(index: Path) -> Path:
    return index / (index / "CURRENT").read_text().strip()


def reopen(index: Path):
    return Assistant(index, embedder="hash").data


def fix_manifest_sizes(snap: Path) -> None:
    """Make the manifest's lengths and checksums match the (tampered) files, so deeper checks have to catch it."""
    manifest = json.loads((snap / "manifest.json").read_text())
    for name in manifest["logs"]:
        payload = (snap / name).read_bytes()
        manifest["logs"][name], manifest["crc32"][name] = len(payload), zlib.crc32(payload)
    manifest["files"] = {name: (snap / name).stat().st_size for name in manifest["files"]}
    (snap / "manifest.json").write_text(json.dumps(manifest))


class _Trap:
    """Unpickling this creates the file ``path``: proof that a pickle was executed."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def ann_index(hash_assistant, seed_copy, monkeypatch):
    """The seeds indexed with the HNSW switch-over lowered to 10 rows, so the snapshot holds ann.faiss."""
    monkeypatch.setattr(vectors_module, "HNSW_THRESHOLD", 10)
    monkeypatch.setattr(snapshots_module, "TAIL_MAX_ROWS", 5)
    hash_assistant.ingest([seed_copy])
    assert (snapshot_dir(hash_assistant.index_dir) / "ann.faiss").is_file()
    return hash_assistant.index_dir


def test_index_files_hold_no_pickles(index):
    snap = snapshot_dir(index)
    names = sorted(p.name for p in snap.iterdir())
    assert names == sorted([*LOG_FILES, *POSTING_FILES, "dead.i32", "manifest.json"])
    manifest = json.loads((snap / "manifest.json").read_text())
    with sqlite3.connect(index / manifest["tables"]) as db:  # documents as JSON text, spans as int32 pairs
        for (body,) in db.execute("SELECT body FROM texts"):
            json.loads(body)
        assert all(len(blob) % 8 == 0 for (blob,) in db.execute("SELECT sentences FROM chunks"))
    for path in snap.iterdir():
        head = path.read_bytes()[:2]
        assert head[:1] != b"\x80", f"{path.name} starts like a pickle"
        if path.suffix in (".f32", ".i32", ".i64"):
            assert path.stat().st_size % 4 == 0
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".jsonl":
            for line in path.read_text(encoding="utf-8").splitlines():
                json.loads(line)
    assert manifest["logs"] == {n: (snap / n).stat().st_size for n in LOG_FILES}
    assert manifest["crc32"] == {n: zlib.crc32((snap / n).read_bytes()) for n in LOG_FILES}
    assert manifest["files"] == {"dead.i32": 0, **{n: (snap / n).stat().st_size for n in POSTING_FILES}}


@pytest.mark.parametrize("name", ["vectors.f32", "bm25_data.f32", "bm25_rownnz.i32"])
def test_a_pickled_array_is_refused_not_executed(index, tmp_path, name):
    snap = snapshot_dir(index)
    marker = tmp_path / "pickle-was-executed"
    with open(snap / name, "wb") as fh:
        np.save(fh, np.array([_Trap(str(marker))], dtype=object), allow_pickle=True)
    fix_manifest_sizes(snap)
    with pytest.raises(IndexCorruptError, match=re.escape(f"The index snapshot {snap} is damaged (ValueError: ")) as info:
        reopen(index)
    assert "--rebuild" in str(info.value)
    assert not marker.exists()


def test_a_replaced_file_is_caught_by_its_size(index):
    snap = snapshot_dir(index)
    size = (snap / "vectors.f32").stat().st_size
    (snap / "vectors.f32").write_bytes(np.zeros((3, 64), dtype=np.float32).tobytes())
    with pytest.raises(IndexCorruptError, match=re.escape(
            f"vectors.f32 has {3 * 64 * 4} bytes, the manifest says {size} (truncated or replaced?)")):
        reopen(index)


def test_a_truncated_graph_is_caught(ann_index):
    snap = snapshot_dir(ann_index)
    data = (snap / "ann.faiss").read_bytes()
    (snap / "ann.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError, match=re.escape(f"ann.faiss has {len(data) // 2} bytes, the manifest says {len(data)}")):
        reopen(ann_index)


def test_faiss_file_of_another_kind_is_refused(ann_index):
    snap = snapshot_dir(ann_index)
    (snap / "ann.faiss").write_bytes(b"IwPQ" + bytes(200))
    fix_manifest_sizes(snap)
    with pytest.raises(IndexCorruptError, match=re.escape("ann.faiss is not an HNSW FAISS index (it starts with b'IwPQ')")):
        reopen(ann_index)


def test_changed_bytes_are_caught_by_the_checksum(index):
    """float64 written over the float32 vectors: the committed prefix is as long as before but its
    bytes changed, which the CRC-32 in the manifest catches."""
    snap = snapshot_dir(index)
    vectors = np.fromfile(snap / "vectors.f32", dtype="<f4")
    (snap / "vectors.f32").write_bytes(vectors.astype(np.float64).tobytes())
    with pytest.raises(IndexCorruptError, match=re.escape("vectors.f32 does not match its checksum (changed after it was written?)")):
        reopen(index)


@pytest.mark.parametrize("pointer", ["../../etc", "/etc", "snap-x/../../..", ".tmp-snap-1-abcdef12", "\x00", "snap-1-ABCDEFGH"])
def test_current_pointing_outside_the_index_is_refused(index, pointer):
    (index / "CURRENT").write_text(pointer)
    with pytest.raises(IndexCorruptError, match="which is not a snapshot of this index"):
        reopen(index)


# -- snapshots whose parts disagree -------------------------------------------------------------------------
def tables(index: Path) -> sqlite3.Connection:
    manifest = json.loads((snapshot_dir(index) / "manifest.json").read_text())
    return sqlite3.connect(index / manifest["tables"], isolation_level=None)


def test_chunk_table_with_a_row_removed(index):
    snap = snapshot_dir(index)
    db = tables(index)
    n = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    db.execute("DELETE FROM chunks WHERE row = 3")
    db.close()
    name = json.loads((snap / "manifest.json").read_text())["tables"]
    with pytest.raises(IndexCorruptError, match=re.escape(
            f"The index snapshot {snap} is damaged (ValueError: {name} holds {n - 1} chunk rows, the manifest says {n})")):
        reopen(index)


def test_document_table_with_a_document_removed(index):
    snap = snapshot_dir(index)
    db = tables(index)
    db.execute("DELETE FROM documents WHERE doc_id = (SELECT MIN(doc_id) FROM documents)")
    db.close()
    name = json.loads((snap / "manifest.json").read_text())["tables"]
    with pytest.raises(IndexCorruptError, match=re.escape(f"{name} holds 4 documents, the manifest says 5")):
        reopen(index)


def test_manifest_with_wrong_counts_or_hashes(index):
    snap = snapshot_dir(index)
    original = (snap / "manifest.json").read_text()
    manifest = json.loads(original)
    manifest["counts"]["live_chunks"] += 1
    (snap / "manifest.json").write_text(json.dumps(manifest))
    live = manifest["counts"]["live_chunks"] - 1
    with pytest.raises(IndexCorruptError, match=re.escape(f"manifest counts {live + 1} live chunks, the snapshot holds {live}")):
        reopen(index)
    manifest = json.loads(original)
    manifest["counts"]["documents"] += 1
    (snap / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match=re.escape(f"{manifest['tables']} holds 5 documents, the manifest says 6")):
        reopen(index)


def test_bytes_past_the_committed_length_are_ignored_then_cut(index, seed_copy):
    """What a writer killed mid-commit leaves: bytes past a log's committed length and table rows of a
    commit that never became live. Readers ignore them; the next commit cuts them before appending."""
    snap = snapshot_dir(index)
    manifest = json.loads((snap / "manifest.json").read_text())
    vocab = (snap / "bm25_vocab.txt").read_bytes()
    with open(snap / "bm25_vocab.txt", "ab") as fh:
        fh.write(b"half a ter")
    db = tables(index)
    db.execute("INSERT INTO documents (doc_id, added, removed, content_hash, source, first_row, n_rows) "
               "SELECT 'ghost', added + 1, NULL, content_hash, source, first_row, n_rows FROM documents LIMIT 1")
    db.execute("UPDATE documents SET removed = ? WHERE doc_id = (SELECT MIN(doc_id) FROM documents)", (manifest["commit"] + 1,))
    db.execute("INSERT INTO chunks SELECT row + 1000, chunk_id, doc_id, start, stop, page, sentences FROM chunks WHERE row = 0")
    db.close()
    data = reopen(index)
    assert len(data.documents) == 5 and "ghost" not in data.documents and consistency_problems(data) == []
    extra = seed_copy / "zz_new.txt"
    extra.write_text("مقال جديد عن سرت والجفرة وترهونة.", encoding="utf-8")
    assert Assistant(index, embedder="hash").ingest([extra]).added == ["zz_new"]
    new = snapshot_dir(index)
    text = (new / "bm25_vocab.txt").read_bytes()
    assert b"half a ter" not in text and text.startswith(vocab)
    assert len(text) == json.loads((new / "manifest.json").read_text())["logs"]["bm25_vocab.txt"] > len(vocab)
    after = reopen(index)
    assert len(after.documents) == 6 and "ghost" not in after.documents and consistency_problems(after) == []
    db = tables(index)
    assert db.execute("SELECT COUNT(*) FROM documents WHERE doc_id = 'ghost'").fetchone()[0] == 0
    assert db.execute("SELECT MAX(row) FROM chunks").fetchone()[0] == len(after.chunks) - 1
    db.close()


def test_chunk_offsets_outside_their_document(index):
    """Rows are read when a query needs them (not at load, which reads no row): the bad one is refused then."""
    db = tables(index)
    chunk_id, start = db.execute("SELECT chunk_id, start FROM chunks WHERE row = 2").fetchone()
    db.execute("UPDATE chunks SET stop = ? WHERE row = 2", (10**7,))
    db.close()
    with pytest.raises(IndexCorruptError, match=re.escape(f"chunk {chunk_id} offsets {start}..{10**7} fall outside its document")):
        reopen(index).get_chunks([chunk_id])


def test_cli_reports_a_damaged_index_without_a_traceback(index, capsys):
    snap = snapshot_dir(index)
    (snap / "vectors.f32").write_bytes(b"\x93NUMPY garbage")
    rc = cli_main(["ask", "ماذا أعلن لافروف؟", "--index", str(index), "--embedder", "hash"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"error: The index snapshot {snap} is damaged: vectors.f32 has 14 bytes, the manifest says ")
    assert "Rebuild it: assistant ingest --index" in err and "Traceback" not in err


def test_a_damaged_live_snapshot_is_replaced_by_a_rebuild(index, seed_copy):
    (snapshot_dir(index) / "bm25_rownnz.i32").write_bytes(b"garbage\n")
    with pytest.raises(IndexCorruptError):
        reopen(index)
    report = Assistant(index, embedder="hash").ingest([seed_copy], rebuild=True)
    assert len(report.added) == 5
    assert consistency_problems(reopen(index)) == []


# -- the writer lock file ------------------------------------------------------------------------------------
def test_lock_file_holds_only_the_pid(index):
    store = IndexStore(index)
    with store.lock():
        assert (index / ".lock").read_text() == f"{os.getpid()}\n"


def test_second_writer_is_told_who_holds_the_lock(index):
    from assistant.errors import IndexLockedError

    with IndexStore(index).lock():
        with pytest.raises(IndexLockedError, match=re.escape(
                f"Another process is writing to the index {index} (pid {os.getpid()} holds the lock); waited 0.2 s. "
                "Try again when it has finished.")):
            with IndexStore(index).lock(wait_seconds=0.2):
                pass


# -- serving defaults (the CLI side; serve() itself is tested in test_ui_client.py) ----------------------------
def test_serve_binds_loopback_by_default_and_takes_auth(monkeypatch):
    from assistant.ui import resolve_address

    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    args = build_parser().parse_args(["serve"])
    # no flag: $GRADIO_SERVER_NAME, else loopback
    assert args.host is None and args.auth is None and resolve_address(args.host, args.port) == ("127.0.0.1", 7860)
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--auth", "analyst:secret"])
    assert args.host == "0.0.0.0" and args.auth == "analyst:secret"


# -- uploads through the UI are checked by content (the UI's own limits are tested in test_ui_client.py) -------
def test_uploads_are_checked_by_content_not_extension(tmp_path):
    ui_module = pytest.importorskip("assistant.ui")
    from conftest import DATA

    ui = ui_module.AssistantUI(Assistant(tmp_path / "index", embedder="hash"))
    hostile = DATA / "hostile"
    uploads = tmp_path / "incoming"
    uploads.mkdir()
    files = {
        "photo.txt": (hostile / "png_named.txt").read_bytes(),
        "report.md": (hostile / "zip_named.md").read_bytes(),
        "a;rm -rf x$(id).html": (hostile / "elf_named.html").read_bytes(),
        "<b>scan<i>.pdf": (DATA / "scanned.pdf").read_bytes(),
        "xss.html": (hostile / "xss.html").read_bytes(),
    }
    for name, payload in files.items():
        (uploads / name).write_bytes(payload)
    status, *_ = ui.on_ingest([str(uploads / name) for name in files])
    assert "<b>scan" not in status and "&lt;" not in status  # the name was sanitized before it was shown
    assert "<bdi dir=\"auto\">photo.txt</bdi>: binary file: this is a PNG image, not text" in status
    assert "<bdi dir=\"auto\">report.md</bdi>: binary file: this is a ZIP archive" in status
    assert "<bdi dir=\"auto\">a_rm_-rf_x_id.html</bdi>: binary file: this is a Linux program (ELF), not text" in status
    assert "<bdi dir=\"auto\">b_scan_i.pdf</bdi>: the PDF has no text layer (scanned pages?)" in status
    assert [d.doc_id for d in ui.assistant.documents()] == ["xss"]
    assert "alert" not in ui.assistant.document("xss").text
    stored = sorted(p.name for p in ui.uploads_dir.iterdir() if not p.name.startswith("."))
    assert stored == ["xss.html"]


# -- markup that makes Python's HTMLParser quadratic (minutes for a few MB) is parsed in linear time ----------
@pytest.mark.parametrize(
    ("markup", "text"),
    [("</" * 500_000, "</" * 500_000), ("<?" * 500_000, "<?" * 500_000), ("<!" * 500_000, "<!" * 500_000),
     ("<!--x>" * 200_000, ""), ("<![CDATA[x>" * 100_000, ""), ("<![if x>" * 150_000, ""),
     ("<p>ok</p><!--" + "a>" * 500_000, "ok")],
    ids=["end-tag-openers", "pi-openers", "decl-openers", "unclosed-comments", "cdata", "marked-sections",
         "comment-to-eof"],
)
def test_pathological_html_is_parsed_in_linear_time(markup, text):
    """Each of these took from 20 s to over 8 minutes at a third of this size before the loader escaped
    stray "<" and dropped comments itself (quadratic searches in html.parser); comments, CDATA and
    marked sections are dropped as a browser does, stray "<" shown as text."""
    import time

    from assistant.ingest.html import html_to_text

    started = time.perf_counter()
    got, _title = html_to_text(markup)
    assert time.perf_counter() - started < 10
    assert got == text
