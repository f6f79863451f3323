"""The collections of one Milvus index: the shared client, the collection names of a prefix, their
schemas (created on the first write) and the key-value rows of ``P_meta``."""

from __future__ import annotations

import json
import logging
import os
import threading
from types import SimpleNamespace
from typing import Any

from assistant.stores.lexical import B as BM25_B
from assistant.stores.lexical import K1 as BM25_K1
from assistant.stores.milvus.client import connect, load_pymilvus, release
from assistant.stores.milvus.location import parse_location

log = logging.getLogger("assistant.milvus")

VARCHAR_MAX = 65_535
ID_MAX = 1_024
TERM_MAX_BYTES = 1_024
DUMMY_VECTOR = [0.0, 0.0]  # the value of ``_v``: Milvus needs a vector field in every collection


class MilvusCollections:
    """The collections of one location and prefix, over the location's shared client.

    ``MilvusStore`` adds the manifest and the writer lock; ``MilvusBackend`` reads and writes rows.
    """

    def __init__(self, location: str | os.PathLike[str], prefix: str | None = None, bm25: str | None = None,
                 vector_index: str | None = None) -> None:
        loc = parse_location(location, prefix=prefix, bm25=bm25, vector_index=vector_index)
        self.location = loc
        self.names = SimpleNamespace(**{k: f"{loc.prefix}_{k}" for k in ("chunks", "documents", "doctext", "vocab", "meta")})
        self._client = None
        self._loaded: set[str] = set()
        self._analyzer: dict[str, Any] | None = None
        self._guard = threading.RLock()

    # -- connection --------------------------------------------------------------------------------------
    @property
    def uri(self) -> str:
        return self.location.display

    @property
    def client(self):
        with self._guard:
            if self._client is None:
                self._client = connect(self.location)
            return self._client

    def close(self) -> None:
        """Let go of the connection (the last store of a Milvus Lite file also stops its server)."""
        with self._guard:
            if self._client is not None:
                self._client = None
                self._loaded.clear()
                release(self.location)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"

    def has(self, name: str) -> bool:
        return bool(self.client.has_collection(name))

    def ensure_loaded(self, name: str) -> None:
        """Milvus searches only loaded collections (Milvus Lite reopens them released)."""
        if name in self._loaded:
            return
        state = self.client.get_load_state(name).get("state")
        if "Loaded" not in str(state):
            self.client.load_collection(name)
        self._loaded.add(name)

    # -- meta rows --------------------------------------------------------------------------------------
    def _put_meta(self, key: str, value: dict[str, Any]) -> None:
        self._ensure_meta()
        self.client.upsert(self.names.meta, [{"key": key, "value": json.dumps(value, ensure_ascii=False), "_v": DUMMY_VECTOR}])

    def _get_meta(self, key: str) -> dict[str, Any] | None:
        self._ensure_meta()
        rows = self.client.query(self.names.meta, ids=[key], output_fields=["value"])
        return json.loads(rows[0]["value"]) if rows else None

    def _ensure_meta(self) -> None:
        if not self.has(self.names.meta):
            pymilvus = load_pymilvus()
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("key", pymilvus.DataType.VARCHAR, is_primary=True, max_length=64)
            schema.add_field("value", pymilvus.DataType.VARCHAR, max_length=VARCHAR_MAX)
            schema.add_field("_v", pymilvus.DataType.FLOAT_VECTOR, dim=2)
            self._create(self.names.meta, schema, [("_v", "FLAT", "L2", {})])
        self.ensure_loaded(self.names.meta)

    def _create(self, name: str, schema, indexes: list[tuple[str, str, str, dict]]) -> None:
        index_params = self.client.prepare_index_params()
        for field, kind, metric, params in indexes:
            if metric:
                index_params.add_index(field_name=field, index_type=kind, metric_type=metric, params=params)
            else:  # a scalar index
                index_params.add_index(field_name=field, index_type=kind)
        self.client.create_collection(name, schema=schema, consistency_level="Strong")
        # sync=False: pymilvus otherwise polls every index build with a 0.5 s sleep; loading the
        # collection waits for the indexes anyway.
        self.client.create_index(name, index_params, sync=False)
        self.client.load_collection(name)
        self._loaded.add(name)

    # -- schema ------------------------------------------------------------------------------------------
    def analyzer_params(self) -> dict[str, Any]:
        """The analyzer of the ``terms`` field: whitespace on a server, Lite's ``standard`` (``\\w+``).

        Our terms are ``\\w+`` tokens already folded and lower-cased, so both analyzers give back
        exactly the terms we wrote.
        """
        if self._analyzer is None:
            self._analyzer = {"tokenizer": "standard"} if self.location.is_lite else {"tokenizer": "whitespace"}
        return self._analyzer

    def create_chunk_collection(self, dim: int) -> None:
        pymilvus = load_pymilvus()
        DataType = pymilvus.DataType

        def schema_with(analyzer: dict[str, Any]):
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX + 32)
            schema.add_field("doc_id", DataType.VARCHAR, max_length=ID_MAX)
            schema.add_field("seq", DataType.INT64)
            schema.add_field("start_offset", DataType.INT64)
            schema.add_field("end_offset", DataType.INT64)
            schema.add_field("page", DataType.INT64)
            schema.add_field("text", DataType.VARCHAR, max_length=VARCHAR_MAX)
            schema.add_field("sentences", DataType.JSON)
            schema.add_field("terms", DataType.VARCHAR, max_length=VARCHAR_MAX, enable_analyzer=True, analyzer_params=analyzer)
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
            schema.add_function(pymilvus.Function(name="bm25", function_type=pymilvus.FunctionType.BM25,
                                                  input_field_names=["terms"], output_field_names=["sparse"]))
            return schema

        bm25 = {"bm25_k1": BM25_K1, "bm25_b": BM25_B}
        # pymilvus sends index params as flat key-value pairs, which a server reads; Milvus Lite reads
        # only a JSON "params" entry and would silently keep its default k1=1.5.
        indexes = [("sparse", "SPARSE_INVERTED_INDEX", "BM25", {"params": bm25} if self.location.is_lite else bm25),
                   ("vector", self.location.vector_index, "IP", {}), ("doc_id", "INVERTED", "", {})]
        try:
            self._create(self.names.chunks, schema_with(self.analyzer_params()), indexes)
        except Exception as exc:  # an older server without the whitespace tokenizer
            if "tokenizer" not in str(exc).lower() or self._analyzer == {"tokenizer": "standard"}:
                raise
            log.info("whitespace tokenizer refused (%s); using standard", exc)
            self._analyzer = {"tokenizer": "standard"}
            self._create(self.names.chunks, schema_with(self._analyzer), indexes)

    def create_side_collections(self) -> None:
        DataType = load_pymilvus().DataType
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX)
        for name in ("title", "source"):
            schema.add_field(name, DataType.VARCHAR, max_length=VARCHAR_MAX)
        schema.add_field("kind", DataType.VARCHAR, max_length=64)
        schema.add_field("added_at", DataType.VARCHAR, max_length=64)
        schema.add_field("content_hash", DataType.VARCHAR, max_length=256)
        schema.add_field("pages", DataType.JSON)
        schema.add_field("text_chars", DataType.INT64)
        schema.add_field("text_parts", DataType.INT64)
        schema.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
        if not self.has(self.names.documents):
            self._create(self.names.documents, schema, [("_v", "FLAT", "L2", {})])
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("part_id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX + 32)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=ID_MAX)
        schema.add_field("part", DataType.INT64)
        schema.add_field("text", DataType.VARCHAR, max_length=VARCHAR_MAX)
        schema.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
        if not self.has(self.names.doctext):
            self._create(self.names.doctext, schema, [("_v", "FLAT", "L2", {}), ("doc_id", "INVERTED", "", {})])
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("term", DataType.VARCHAR, is_primary=True, max_length=TERM_MAX_BYTES)
        schema.add_field("df", DataType.INT64)
        schema.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
        if not self.has(self.names.vocab):
            self._create(self.names.vocab, schema, [("_v", "FLAT", "L2", {})])

