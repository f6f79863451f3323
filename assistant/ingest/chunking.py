"""Chunking documents into passages with exact character offsets: sentences packed up to a target size,
overlong sentences cut at clause boundaries."""

from __future__ import annotations

from assistant.records import Chunk, Document
from assistant.text.sentences import split_sentences, strip_span

CHUNKER_VERSION = "3"


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut a sentence longer than ``max_chars`` at clause boundaries (، , ; :) or spaces."""
    if end - start <= max_chars:
        return [(start, end)]
    pieces = []
    while end - start > max_chars:
        window = text[start : start + max_chars]
        cut = max(window.rfind("، "), window.rfind(", "), window.rfind("; "), window.rfind(": "))
        if cut < max_chars // 3:
            cut = window.rfind(" ")
        if cut < max_chars // 3:
            cut = max_chars - 1
        pieces.append((start, start + cut + 1))
        start = start + cut + 1
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        pieces.append((start, end))
    return pieces


def chunk_document(document: Document, target_chars: int = 320, max_chars: int = 520) -> list[Chunk]:
    """Group a document's sentences into chunks of about ``target_chars``.

    Chunks never cross a debris sentence or a PDF page boundary, never split a sentence unless it is
    longer than ``max_chars``, and carry the spans of the sentences they hold.
    """
    if target_chars <= 0 or max_chars < target_chars:
        raise ValueError(f"bad chunk sizes: target_chars={target_chars}, max_chars={max_chars}")
    text = document.text
    units: list[tuple[int, int, bool, bool]] = []  # start, end, debris, heading
    for sentence in split_sentences(text):
        if sentence.debris:
            units.append((sentence.start, sentence.end, True, False))
            continue
        for piece in _split_long(text, sentence.start, sentence.end, max_chars):
            units.append((*strip_span(text, *piece), False, sentence.heading))

    chunks: list[Chunk] = []
    group: list[tuple[int, int]] = []

    def flush() -> None:
        if not group:
            return
        start, end = group[0][0], group[-1][1]
        chunks.append(
            Chunk(
                chunk_id=f"{document.doc_id}#{len(chunks)}",
                doc_id=document.doc_id,
                start=start,
                end=end,
                text=text[start:end],
                sentences=tuple(group),
                page=document.page_at(start),
            )
        )
        group.clear()

    for start, end, debris, heading in units:
        if debris or heading:
            # A heading opens the chunk of the text it heads; debris belongs to no chunk.
            flush()
            if debris:
                continue
        if group:
            same_page = document.page_at(group[0][0]) == document.page_at(start)
            too_long = end - group[0][0] > target_chars and group[-1][1] - group[0][0] >= target_chars // 3
            if not same_page or too_long or end - group[0][0] > max_chars:
                flush()
        group.append((start, end))
    flush()
    return chunks
