"""Run llama.cpp's OpenAI-compatible HTTP server for one GGUF file in a child process.

``xllamacpp`` has no command-line entry point: its ``xllamacpp.Server(CommonParams)`` loads the model
and starts llama.cpp's C++ HTTP server on background threads *inside the calling process*
(``server.listening_address`` gives ``http://host:port``; port 0 lets the OS pick a free one). To be
able to kill it cleanly, :class:`LlamaServer` runs this very file as a child
(``python .../assistant/answer/llama_server.py --child '{json}'``; the child part at the top of the file uses
only the standard library and ``xllamacpp``, so the child does not import the ``assistant`` package),
which creates the ``Server``, writes one JSON line
``{"event": "ready", "address": ...}`` on its protocol channel (its original stdout; the child's
fd 1 is pointed at stderr so llama.cpp cannot write into the protocol) and then blocks reading its
stdin. Closing the child's stdin (or the parent dying) makes it exit; :meth:`LlamaServer.stop` closes
stdin, then terminates, then kills. Stopping also happens at interpreter exit.

Usage::

    with LlamaServer("models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf") as srv:
        llm = ChatOpenAI(base_url=srv.base_url, api_key="none", model=srv.model_name)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# -- child side ---------------------------------------------------------------------------------


def _set_param(params: Any, dotted: str, value: Any) -> None:
    obj = params
    *parents, last = dotted.split(".")
    for name in parents:
        obj = getattr(obj, name)
    if not hasattr(obj, last):
        raise AttributeError(f"xllamacpp.CommonParams has no parameter {dotted!r}")
    setattr(obj, last, value)


def _child_main(config: dict[str, Any]) -> int:
    # Keep the protocol channel for ourselves and send anything else written to fd 1 to stderr.
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def send(event: dict[str, Any]) -> None:
        proto.write(json.dumps(event) + "\n")
        proto.flush()

    try:
        import xllamacpp as xlc
    except ImportError as exc:
        send({"event": "error", "message": f"xllamacpp is not installed ({exc}); pip install xllamacpp"})
        return 2

    try:
        params = xlc.CommonParams()
        params.model.path = config["model_path"]
        params.n_ctx = int(config["n_ctx"])
        params.n_parallel = int(config["n_parallel"])
        params.cpuparams.n_threads = int(config["threads"])
        params.cpuparams_batch.n_threads = int(config["threads"])
        params.hostnames = [config["host"]]
        params.port = int(config["port"])
        params.model_alias = {config["model_name"]}
        for key, value in (config.get("extra_params") or {}).items():
            _set_param(params, key, value)
        server = xlc.Server(params)
        address = server.listening_address
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises LLMError
        send({"event": "error", "message": f"{type(exc).__name__}: {exc}"})
        return 1

    send({"event": "ready", "address": address, "pid": os.getpid()})
    try:
        sys.stdin.buffer.read()  # returns at EOF: the parent closed our stdin or died
    except (OSError, KeyboardInterrupt):
        pass
    # Shut down; if the server's threads do not finish quickly, leave anyway.
    threading.Timer(5.0, os._exit, args=(0,)).start()
    del server
    os._exit(0)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="llama.cpp server child process (used by LlamaServer)")
    parser.add_argument("--child", required=True, help="JSON configuration from LlamaServer")
    args = parser.parse_args(argv)
    return _child_main(json.loads(args.child))


if __name__ == "__main__":  # the child: run as a file, before (and without) importing the assistant package
    sys.exit(_main())


from assistant.errors import LLMError  # noqa: E402
from assistant.answer.gguf import check_gguf_header  # noqa: E402

__all__ = ["LlamaServer"]

_THIS_FILE = str(Path(__file__).resolve())
_STDERR_LINES = 200


def _kill_process(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Ask ``proc`` to exit (close stdin), then SIGTERM, then SIGKILL; reap it. Never raises."""
    if proc.poll() is not None:
        return
    steps = (
        lambda: proc.stdin.close() if proc.stdin else None,
        proc.terminate,
        proc.kill,
    )
    for step in steps:
        try:
            step()
        except (OSError, ValueError):
            pass
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass


class LlamaServer:
    """A llama.cpp OpenAI-compatible server on ``127.0.0.1`` for one GGUF model, in a child process.

    Args:
        model_path: The ``.gguf`` file.
        n_ctx: Context size in tokens (shared by the ``n_parallel`` slots).
        threads: CPU threads for generation and prompt processing; default ``os.cpu_count()``.
        model_name: Name the server announces (``/v1/models``) and accepts; default the file stem.
        host: Interface to listen on (keep the default: the server has no API key).
        port: TCP port; 0 (default) lets the OS choose a free one.
        n_parallel: Number of request slots.
        startup_timeout: Seconds to wait for the model to load and ``/health`` to answer ``ok``.
        extra_params: More ``xllamacpp.CommonParams`` attributes to set (``{"n_batch": 512}``;
            dotted names reach nested ones: ``{"sampling.temp": 0.2}``).
        python: Interpreter that runs the child (must have ``xllamacpp``); default ``sys.executable``.

    Raises (from :meth:`start`):
        LLMError: the file is missing or not a GGUF, ``xllamacpp`` is missing, or the server did not
        come up in time; the message ends with the last lines of the server's log.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        threads: int | None = None,
        model_name: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        n_parallel: int = 1,
        startup_timeout: float = 120.0,
        extra_params: Mapping[str, Any] | None = None,
        python: str | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = int(n_ctx)
        self.threads = int(threads) if threads else (os.cpu_count() or 1)
        self.model_name = model_name or self.model_path.stem
        self.host = host
        self.requested_port = int(port)
        self.n_parallel = int(n_parallel)
        self.startup_timeout = float(startup_timeout)
        self.extra_params = dict(extra_params or {})
        self.python = python or sys.executable
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._address: str | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._finalizer: weakref.finalize | None = None
        self._lock = threading.Lock()

    # -- public API -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """OpenAI base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"{self._require_address()}/v1"

    @property
    def address(self) -> str:
        """Root URL of the server, ``http://127.0.0.1:PORT``."""
        return self._require_address()

    @property
    def port(self) -> int:
        return int(self._require_address().rsplit(":", 1)[1])

    @property
    def pid(self) -> int | None:
        """Process id of the child, or None before :meth:`start`."""
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stderr_tail(self, n: int = 30) -> str:
        """The last ``n`` lines the server wrote to its log (stderr)."""
        return "\n".join(list(self._stderr)[-n:])

    def start(self) -> LlamaServer:
        """Start the child and wait until it is healthy; no-op if already running. Returns ``self``."""
        with self._lock:
            if self.is_running and self._address is not None:
                return self
            self._reset()
            check_gguf_header(self.model_path)
            started = time.monotonic()
            self._spawn()
            try:
                self._address = self._wait_ready(started + self.startup_timeout)
                self._wait_healthy(started + self.startup_timeout)
            except BaseException:
                self._stop_locked()
                raise
            self.startup_seconds = time.monotonic() - started
            return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the child (close stdin, SIGTERM, SIGKILL, each after ``timeout`` s). Safe to call twice."""
        with self._lock:
            self._stop_locked(timeout)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self._address}" if self.is_running else "stopped"
        return f"<LlamaServer {self.model_path.name} {state}>"

    # -- internals --------------------------------------------------------------------------------

    def _require_address(self) -> str:
        if self._address is None or not self.is_running:
            raise LLMError(f"the llama.cpp server for {self.model_path.name} is not running; call start()")
        return self._address

    def _reset(self) -> None:
        self._stop_locked()
        self._stderr.clear()
        self._events = queue.Queue()
        self._address = None
        self.startup_seconds = None

    def _child_config(self) -> dict[str, Any]:
        return {
            "model_path": str(self.model_path.resolve()),
            "n_ctx": self.n_ctx,
            "threads": self.threads,
            "model_name": self.model_name,
            "host": self.host,
            "port": self.requested_port,
            "n_parallel": self.n_parallel,
            "extra_params": self.extra_params,
        }

    def _spawn(self) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        cmd = [self.python, _THIS_FILE, "--child", json.dumps(self._child_config())]
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,  # Ctrl-C in a terminal goes to the parent only
            )
        except OSError as exc:
            raise LLMError(f"could not start the llama.cpp server process ({self.python}): {exc}") from exc
        self._proc = proc
        self._finalizer = weakref.finalize(self, _kill_process, proc)
        self._threads = [
            threading.Thread(target=self._read_events, args=(proc,), name="llama-server-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, args=(proc,), name="llama-server-stderr", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_events(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        events = self._events
        for raw in proc.stdout:
            line = raw.decode("utf-8", errors="replace").strip()
            try:
                event = json.loads(line)
            except ValueError:
                self._stderr.append(line)
                continue
            if isinstance(event, dict):
                events.put(event)
        events.put(None)  # EOF: the child has exited or closed its channel

    def _read_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            self._stderr.append(raw.decode("utf-8", errors="replace").rstrip())

    def _fail(self, message: str) -> LLMError:
        # give the stderr reader a moment to collect the last lines of a dying child
        if self._proc is not None:
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        if len(self._threads) > 1:
            self._threads[1].join(timeout=2)
        tail = self.stderr_tail(20)
        return LLMError(f"{message}\n--- last lines of the server log ---\n{tail}" if tail else message)

    def _wait_ready(self, deadline: float) -> str:
        name = self.model_path.name
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if self._proc is not None:
                    _kill_process(self._proc)
                raise self._fail(f"the llama.cpp server for {name} did not load within {self.startup_timeout:.0f}s")
            try:
                event = self._events.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if event is None:
                code = self._proc.poll() if self._proc else None
                raise self._fail(f"the llama.cpp server for {name} exited during startup (exit code {code})")
            if event.get("event") == "error":
                raise self._fail(f"the llama.cpp server for {name} failed to start: {event.get('message')}")
            if event.get("event") == "ready":
                return str(event["address"]).rstrip("/")

    def _wait_healthy(self, deadline: float) -> None:
        url = f"{self._address}/health"
        last = ""
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = self._proc.poll() if self._proc else None
                raise self._fail(f"the llama.cpp server for {self.model_path.name} exited (exit code {code})")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:  # 503 while loading
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.1)
        raise self._fail(f"the llama.cpp server at {url} was not healthy within {self.startup_timeout:.0f}s ({last})")

    def _stop_locked(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if proc is not None:
            _kill_process(proc, grace=timeout)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
        for t in self._threads:
            t.join(timeout=2)
        self._threads = []
        self._address = None
