"""The lexical side of a Milvus index: the live vocabulary with document frequencies (for query
planning) and the BM25 query text that carries our term weights as repetitions."""

from __future__ import annotations

import re
from typing import Any

from assistant.stores.lexical import BM25Index

# Query-term weights become repetitions of the term in the BM25 query text (see the package docstring).
WEIGHT_SCALE = 20
_WORD = re.compile(r"\w+")


class MilvusVocabulary(BM25Index):
    """The live terms with their document frequencies (the ``Vocabulary`` protocol).

    A ``BM25Index`` without a matrix: ``variants`` is BM25Index's own consonant-skeleton lookup over
    ``terms``, so name variants are found exactly as on the FAISS store.
    """

    def __init__(self, df: dict[str, int] | None = None) -> None:
        super().__init__()
        self.df: dict[str, int] = {}
        self.apply(df or {})

    def apply(self, delta: dict[str, int]) -> dict[str, int]:
        """Add ``delta`` to the frequencies; returns the new value of each changed term (0 = gone)."""
        changed = {}
        for term, d in delta.items():
            value = self.df.get(term, 0) + d
            if value > 0:
                self.df[term] = value
            else:
                self.df.pop(term, None)
                value = 0
            changed[term] = value
        if changed:
            self.terms = list(self.df)
            self.vocab = {t: i for i, t in enumerate(self.terms)}
            self._skeletons = None
        return changed

    def document_frequency(self, term: str) -> int:
        return self.df.get(term, 0)


def query_text(terms: dict[str, float], known: Any = None) -> str:
    """The BM25 query text for weighted terms: each term repeated ``round(weight * 20)`` times."""
    words = []
    for term, weight in terms.items():
        if known is not None and term not in known:
            continue  # in no chunk: adds nothing to any score
        if not _WORD.fullmatch(term):
            continue
        words.extend([term] * int(round(weight * WEIGHT_SCALE)))
    return " ".join(words)

