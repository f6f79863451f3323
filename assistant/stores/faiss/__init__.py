"""The on-disk index: a directory of versioned snapshots over append-only logs, with the documents and
chunk rows in SQLite.

Layout (format 3)::

    index/
      CURRENT            name of the live snapshot, replaced atomically (os.replace)
      .lock              held (flock) by the one process that writes
      tables-<generation>.sqlite   documents and chunk rows (SQLite, WAL), shared by a generation's snapshots
      snap-<time>-<id>/
        manifest.json    format, embedder, chunking, normalizer, counts, commit number, the table file,
                         and the committed length and CRC-32 of every log below
        vectors.f32      log: float32 rows, L2-normalized; row i is chunk row i
        bm25_*.f32/.i32  logs: BM25 term counts per row (values, term ids, entries per row) and vocabulary
        bm25_cols.i64, bm25_rows.i32, bm25_tf.f32, bm25_len.f32
                         the generation's BM25 postings, column-major, memory-mapped (postings.py)
        dead.i32         rows whose document was removed or replaced (until compaction)
        ann.faiss        HNSW graph over rows [0, ann_rows), present once the index is large

**Commits cost what they add.** A writer makes the new snapshot folder by hard-linking the live
snapshot's logs and postings, appending the new rows past each log's committed length, inserting the
new documents and chunk rows into SQLite with the next commit number (one transaction; a snapshot
sees only the rows of commits up to its own), and writing a new ``dead.i32`` and manifest; then it
points CURRENT at it. A crash at any moment leaves the live snapshot complete: bytes and table rows
of a commit that never became live are ignored, and cut by the next writer. Rebuilds and
compactions write a new generation (fresh logs, tables and postings). The writer reads documents
one at a time from SQLite, never the whole table.

**Vectors.** Below ``HNSW_THRESHOLD`` rows every search is exact (flat inner product, built in memory
from ``vectors.f32`` at load). Past it, ``ann.faiss`` holds an HNSW graph over the first rows
(memory-mapped by readers) and the rows appended since (at most ``TAIL_MAX_ROWS``) are searched
exactly; a commit that would exceed that extends the graph. Removed rows are filtered out inside
FAISS (an ID selector).

**Readers** map a snapshot (``mapped.read_mapped``: no per-row table is read at load) and then follow
commits incrementally (``IndexStore.refresh``): the rows appended since are read from the logs.

Before use, a snapshot is validated: CURRENT must name a snapshot folder of this index, every file must
be at least as long as the manifest's committed length (exactly as long for ``dead.i32``,
``ann.faiss`` and the postings), every log byte read must match the manifest's CRC-32 of the committed
prefix, arrays are read as raw little-endian numbers and documents as JSON (nothing is ever
unpickled), ``ann.faiss`` must be an HNSW FAISS index, and the tables must hold the manifest's rows
and documents; a chunk whose offsets fall outside its document is refused when read. A snapshot
that fails any check raises ``IndexCorruptError`` naming the problem. Snapshots of formats 1 (one
file per part) and 2 (JSON-lines document and chunk logs, the document table in the manifest) are
still read; the first commit rewrites them in format 3 (``IndexStore.writer``).

Test hook: ``ASSISTANT_TEST_SLOW_SAVE=SECONDS`` makes ``save`` sleep after each step (logs appended,
snapshot folder renamed, new pointer written), so the crash tests can kill a writer mid-save.

The package's modules: ``snapshots`` (``IndexStore``), ``committing`` (format-3 commits), ``mapped``
(a loaded format-3 snapshot), ``tables`` (SQLite), ``postings`` (BM25 on disk), ``writer``
(``IndexWriter``), ``reading`` and ``legacy`` (format 2 and 1 readers), ``memory`` (``IndexData``),
``chunk_rows``, ``vectors`` (FAISS), ``logs`` (log files) and ``checks``; the writer lock is
:mod:`assistant.stores.locking`.
"""

from assistant.stores.faiss.checks import consistency_problems
from assistant.stores.faiss.chunk_rows import ChunkRows
from assistant.stores.faiss.logs import ANN_FILE, DEAD_FILE, LOG_FILES
from assistant.stores.faiss.memory import MAX_FLAT_PARTS, IndexData, compact
from assistant.stores.faiss.committing import COMPACT_DEAD_SHARE, FORMAT_VERSION
from assistant.stores.faiss.snapshots import (KEEP_OLD_SNAPSHOTS, READABLE_FORMATS,
                                              TAIL_MAX_ROWS, IndexStore)
from assistant.stores.faiss.vectors import (HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, HNSW_THRESHOLD, build_faiss_index,
                                            build_hnsw)
from assistant.stores.faiss.writer import IndexWriter

__all__ = [
    "ANN_FILE", "COMPACT_DEAD_SHARE", "DEAD_FILE", "FORMAT_VERSION", "HNSW_EF_CONSTRUCTION", "HNSW_EF_SEARCH", "HNSW_M",
    "HNSW_THRESHOLD", "KEEP_OLD_SNAPSHOTS", "LOG_FILES", "MAX_FLAT_PARTS", "READABLE_FORMATS", "TAIL_MAX_ROWS",
    "ChunkRows", "IndexData", "IndexStore", "IndexWriter", "build_faiss_index", "build_hnsw", "compact",
    "consistency_problems",
]
