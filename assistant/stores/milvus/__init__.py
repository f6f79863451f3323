"""The Milvus store: the same index as the FAISS directory, held by Milvus (server or Milvus Lite).

Modules: ``location`` (parsing a location), ``client`` (the shared clients, the server version
check), ``schema`` (the collections), ``store`` (``MilvusStore``: manifest, lock, save), ``backend``
(``MilvusBackend``: searches, reads, writes), ``terms`` (the vocabulary and the BM25 query text).

Locations (see ``assistant.stores.open_store``)::

    demo.db                                   Milvus Lite, embedded: a local folder named *.db
    milvus://host:19530                       a Milvus server, database "default"
    milvus://host:19530/newsroom?token=user:password&prefix=ar_news
    https://host:443/newsroom?token=KEY       the same over TLS (Zilliz Cloud, a TLS proxy)

Query parameters: ``token`` (else ``user:password@`` in the URI, else ``$MILVUS_TOKEN``),
``prefix`` (collection-name prefix, default ``assistant``; several indexes can share one database),
``lock`` (``auto``: a file lock for Milvus Lite, a lease row for a server; ``lease``; ``none``),
``bm25`` (``global``, the default, or ``milvus``: see below), ``vector_index`` (``FLAT``: exact, the
default, like the FAISS folder below 50k chunks; ``AUTOINDEX`` or ``HNSW`` for large collections;
applies when the collections are created).

Collections (``P`` is the prefix)::

    P_chunks     chunk_id (pk), doc_id, seq, start_offset, end_offset, page (-1 = none), text,
                 sentences (JSON), terms (our folded/stemmed BM25 terms joined by spaces, analyzer
                 on), sparse (SPARSE_FLOAT_VECTOR made from ``terms`` by a BM25 Function; index
                 SPARSE_INVERTED_INDEX, metric BM25, k1=1.2 b=0.75 like stores/lexical.py), vector
                 (FLOAT_VECTOR dim, L2-normalized; index FLAT by default, metric IP: cosine)
    P_documents  doc_id (pk), title, source, kind, added_at, content_hash, pages (JSON),
                 text_chars, text_parts, _v (FLOAT_VECTOR dim 2: Milvus needs a vector field)
    P_doctext    part_id (pk, ``{doc_id}~{n}``), doc_id, part, text (the stored text in parts of
                 16,000 characters, since a VARCHAR holds at most 65,535 bytes; citations slice the
                 joined text)

``doc_id`` has an INVERTED scalar index in P_chunks and P_doctext (removing a document filters on it);
everything else is read by primary key.
    P_vocab      term (pk), df, _v: the live vocabulary with document frequencies, for query
                 planning (name variants, known words, idf of the evidence sentence). It is a term
                 list, not a second BM25 index: all BM25 scoring happens in Milvus.
    P_meta       key (pk), value (JSON text), _v: the "manifest" row (format version, settings,
                 counts, a version token changed by every save so other app instances reload) and,
                 while a writer holds it, the "lease" row.

BM25 in Milvus and our query weights: Milvus' BM25 search takes query *text*; a term that occurs
``c`` times in it counts ``c`` times. Our planner weights terms (1 for the question's own words,
0.8 spelling variants, 0.7 translations, 0.5 / 0.05 follow-up context; all multiples of 0.05), so
each term is repeated ``round(weight * 20)`` times and the scores divided by 20: the same weighted
BM25 as ``stores/lexical.py`` (k1=1.2, b=0.75, the same idf).

What still differs is the corpus statistics. Milvus Lite computes idf and the mean chunk length per
segment (one segment per save, merged four at a time); a Milvus server per shard. After a small
update (one changed article in a segment of its own) Lite's idf for that segment is computed over one
chunk and its words score almost nothing. So by default (``bm25=global``) the candidates Milvus' BM25
returns are rescored with corpus-wide statistics: document frequencies from ``P_vocab``, the chunk
count and total length from the manifest, the candidate's own ``terms``. That is the same formula
over the same numbers as the FAISS store, for at most a hundred candidates per query; retrieval stays
Milvus' full-text search. ``?bm25=milvus`` keeps Milvus' scores as they come.
"""

from assistant.stores.milvus.backend import TEXT_PART_CHARS, MilvusBackend
from assistant.stores.milvus.client import MIN_SERVER_VERSION, check_server_version
from assistant.stores.milvus.location import MilvusLocation, parse_location
from assistant.stores.milvus.schema import MilvusCollections
from assistant.stores.milvus.store import MILVUS_FORMAT_VERSION, MilvusStore
from assistant.stores.milvus.terms import WEIGHT_SCALE, MilvusVocabulary, query_text

__all__ = [
    "MILVUS_FORMAT_VERSION", "MIN_SERVER_VERSION", "TEXT_PART_CHARS", "WEIGHT_SCALE", "MilvusBackend", "MilvusCollections",
    "MilvusLocation", "MilvusStore", "MilvusVocabulary", "check_server_version", "parse_location", "query_text",
]
