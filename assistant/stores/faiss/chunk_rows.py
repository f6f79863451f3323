"""``ChunkRows``: the chunk rows of an index held as arrays, each ``Chunk`` made on access."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Iterable, Iterator

from assistant.records import Chunk, Document


class ChunkRows(Sequence):
    """The chunk rows of an index, held as arrays; ``rows[i]`` makes the ``Chunk`` (or None for a
    removed row) on access, its text sliced from its document's text.

    100k ``Chunk`` objects with their own copy of the text take ~90 MB; these arrays ~10 MB, and a
    query only ever makes the few chunks it returns.
    """

    def __init__(self, documents: dict[str, Document]) -> None:
        self.documents = documents
        self.ids: list[str | None] = []
        self.doc_ids: list[str] = []
        self._bounds = array("q")     # start, end per row
        self._pages = array("i")      # page per row, -1 for none
        self._sent_ptr = array("q", [0])
        self._sents = array("q")      # sentence start, end pairs, all rows one after the other

    @classmethod
    def of(cls, chunks: Iterable[Chunk | None], documents: dict[str, Document]) -> "ChunkRows":
        rows = cls(documents)
        rows.extend(chunks)
        return rows

    def copy(self, documents: dict[str, Document]) -> "ChunkRows":
        """An independent copy reading its texts from ``documents``."""
        out = ChunkRows(documents)
        out.ids, out.doc_ids = list(self.ids), list(self.doc_ids)
        out._bounds, out._pages = array("q", self._bounds), array("i", self._pages)
        out._sent_ptr, out._sents = array("q", self._sent_ptr), array("q", self._sents)
        return out

    def append_row(self, chunk_id: str | None, doc_id: str, start: int, end: int,
                   sentences: Iterable[Iterable[int]] = (), page: int | None = None) -> None:
        """Append one row (``chunk_id`` None: a removed row). Offsets must fall inside the document."""
        if chunk_id is not None:
            doc = self.documents.get(doc_id)
            if doc is None:
                raise ValueError(f"chunk {chunk_id} belongs to unknown document {doc_id!r}")
            if not 0 <= start < end <= len(doc.text):
                raise ValueError(f"chunk {chunk_id} offsets {start}..{end} fall outside its document")
        self.ids.append(chunk_id)
        self.doc_ids.append(doc_id)
        self._bounds.extend((start, end))
        self._pages.append(-1 if page is None else int(page))
        for pair in sentences:
            a, b = pair
            self._sents.extend((int(a), int(b)))
        self._sent_ptr.append(len(self._sents))

    def append(self, chunk: Chunk | None) -> None:
        if chunk is None:
            self.append_row(None, "", 0, 0)
            return
        doc = self.documents.get(chunk.doc_id)
        if doc is not None and doc.text[chunk.start : chunk.end] != chunk.text:
            raise ValueError(f"chunk {chunk.chunk_id} text does not match its document offsets")
        self.append_row(chunk.chunk_id, chunk.doc_id, chunk.start, chunk.end, chunk.sentences, chunk.page)

    def extend(self, chunks: Iterable[Chunk | None]) -> None:
        for chunk in chunks:
            self.append(chunk)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        chunk_id = self.ids[i]
        if chunk_id is None:
            return None
        if i < 0:
            i += len(self.ids)
        doc_id = self.doc_ids[i]
        start, end = self._bounds[2 * i], self._bounds[2 * i + 1]
        lo, hi = self._sent_ptr[i], self._sent_ptr[i + 1]
        sents = self._sents
        page = self._pages[i]
        return Chunk(chunk_id=chunk_id, doc_id=doc_id, start=start, end=end, text=self.documents[doc_id].text[start:end],
                     sentences=tuple((sents[j], sents[j + 1]) for j in range(lo, hi, 2)), page=None if page < 0 else page)

    def __setitem__(self, i: int, value: None) -> None:
        if value is not None:
            raise TypeError("a chunk row can only be removed (set to None)")
        self.ids[i] = None

    def __iter__(self) -> Iterator[Chunk | None]:
        for i in range(len(self.ids)):
            yield self[i]
