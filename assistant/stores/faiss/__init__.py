"""The on-disk index: a directory of versioned snapshots over append-only logs.

Layout::

    index/
      CURRENT            name of the live snapshot, replaced atomically (os.replace)
      .lock              held (flock) by the one process that writes
      snap-<time>-<id>/
        manifest.json    format, embedder, chunking, normalizer, counts, the document table, and the
                         committed length of every log below
        documents.jsonl  log: one Document per line (a replaced document's older line stays until compaction)
        chunks.jsonl     log: one chunk per row (offsets only: the text is the document's text[start:end])
        vectors.f32      log: float32 rows, L2-normalized; row i is chunk row i
        bm25_*           logs: BM25 term counts per row (values, term ids, entries per row) and vocabulary
        dead.i32         rows whose document was removed or replaced (until compaction)
        ann.faiss        HNSW graph over rows [0, ann_rows), present once the index is large

**Commits cost what they add.** A writer makes the new snapshot folder by hard-linking the live
snapshot's logs, appending the new rows past each log's committed length, and writing a new
``dead.i32`` and manifest; then it points CURRENT at it. A log file is shared by several snapshots,
each reading only its committed prefix, so appending never changes what an older snapshot holds and a
crash at any moment leaves the live snapshot complete (bytes a killed writer appended past the prefix
are ignored, and cut by the next writer). Rebuilds and compactions write fresh logs (a new
"generation"). Adding one article to a 100k-passage index writes a few kilobytes instead of the
whole index (BENCHMARKS.md).

**Vectors.** Below ``HNSW_THRESHOLD`` rows every search is exact (flat inner product, built in memory
from ``vectors.f32`` at load). Past it, ``ann.faiss`` holds an HNSW graph over the first rows and the
rows appended since (at most ``TAIL_MAX_ROWS``) are searched exactly; a commit that would exceed that
extends the graph. Removed rows are filtered out inside FAISS (an ID selector).

**Readers** load a snapshot once and then follow commits incrementally (``IndexStore.refresh``): the
rows appended since are read from the logs; nothing already loaded is read again.

Before use, a snapshot is validated: CURRENT must name a snapshot folder of this index, every file must
be at least as long as the manifest's committed length (exactly as long for ``dead.i32``,
``ann.faiss``), every log byte read must match the manifest's CRC-32 of the committed prefix (chained
across appends, so a reader following commits checks only the new bytes; the vector rows held by the
HNSW graph are not re-read), arrays are read as raw little-endian numbers (nothing is ever unpickled),
``ann.faiss`` must be an HNSW FAISS index, and chunks, vectors, BM25 rows, documents and the manifest
must agree (``consistency_problems``). A snapshot that fails any check raises ``IndexCorruptError``
naming the problem. Snapshots of format 1 (one file per part, before the logs) are still read; the
first commit rewrites them as logs (``IndexStore.writer``).

Test hook: ``ASSISTANT_TEST_SLOW_SAVE=SECONDS`` makes ``save`` sleep after each step (logs appended,
snapshot folder renamed, new pointer written), so the crash tests can kill a writer mid-save.

The package's modules: ``snapshots`` (``IndexStore``), ``writer`` (``IndexWriter``), ``reading`` and
``legacy`` (format 2 and 1 readers), ``memory`` (``IndexData``), ``chunk_rows``, ``vectors`` (FAISS),
``logs`` (log files) and ``checks``; the writer lock is :mod:`assistant.stores.locking`.
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
