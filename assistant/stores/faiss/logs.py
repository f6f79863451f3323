"""The append-only log files of a snapshot: their names, the line formats written to them, and the
checked reads and flushed writes of their bytes."""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np


# Format 3's logs (its documents and chunk rows are in SQLite: tables.py); format 2 also had two
# JSON-lines logs for them, still read (reading.py).
LOG_FILES = ("vectors.f32", "bm25_data.f32", "bm25_indices.i32", "bm25_rownnz.i32", "bm25_vocab.txt")
LOG_FILES_V2 = ("documents.jsonl", "chunks.jsonl", *LOG_FILES)
DEAD_FILE = "dead.i32"
ANN_FILE = "ann.faiss"


def vocab_line(term: str) -> str:
    # Terms come from \w+ tokens; a line break would shift every later id, so none may get through.
    return term.replace("\n", " ").replace("\r", " ") + "\n"


def fsync(path: Path) -> None:
    """Flush a file or a folder (its entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, payload: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


def append_log(path: Path, committed: int, payload: bytes) -> int:
    """Cut ``path`` back to its committed length, append ``payload``, flush; the new length."""
    with open(path, "r+b") as fh:
        fh.truncate(committed)
        fh.seek(committed)
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    return committed + len(payload)


def read_range(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(start)
        payload = fh.read(end - start)
    if len(payload) != end - start:
        raise ValueError(f"{path.name} ends before the manifest's length {end}")
    return payload


def raw_array(payload: bytes, dtype: str, what: str) -> np.ndarray:
    """Raw little-endian numbers (never a pickle: these files have no header to trust)."""
    size = np.dtype(dtype).itemsize
    if len(payload) % size:
        raise ValueError(f"{what} holds {len(payload)} bytes, not a whole number of {np.dtype(dtype).name} values")
    return np.frombuffer(payload, dtype=dtype).astype(dtype[1:], copy=True)


def split_lines(payload: bytes, what: str) -> list[str]:
    if payload and not payload.endswith(b"\n"):
        raise ValueError(f"{what} does not end with a complete line")
    text = payload.decode("utf-8")
    return text.split("\n")[:-1] if text else []


class LogReader:
    """Reads bytes ``[lo, hi)`` of a log in pieces, and checks their CRC-32 once all are read
    (``crc0``: the checksum of everything before ``lo``, or None when it is not known)."""

    def __init__(self, path: Path, lo: int, hi: int, crc0: int | None, expected: int) -> None:
        self.path, self.lo, self.hi, self.crc0, self.expected = path, lo, hi, crc0, expected
        self.crc = crc0 or 0
        self.fh = None

    def __enter__(self) -> "LogReader":
        self.fh = open(self.path, "rb")
        self.fh.seek(self.lo)
        self.left = self.hi - self.lo
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.fh.close()
        if kind is None:
            if self.left:
                raise ValueError(f"{self.path.name} was not read to its committed length")
            if self.crc0 is not None and self.crc != self.expected:
                raise ValueError(f"{self.path.name} does not match its checksum (changed after it was written?)")

    def _take(self, n: int) -> bytes:
        payload = self.fh.read(min(n, self.left))
        if not payload and self.left:
            raise ValueError(f"{self.path.name} ends before the manifest's length {self.hi}")
        self.left -= len(payload)
        self.crc = zlib.crc32(payload, self.crc)
        return payload

    def read_all(self) -> bytes:
        parts = []
        while self.left:
            parts.append(self._take(self.left))
        return b"".join(parts)

    def lines(self, block: int = 1 << 24) -> Iterator[str]:
        """Complete lines, decoded, read ``block`` bytes at a time."""
        rest = b""
        while self.left:
            rest += self._take(block)
            cut = rest.rfind(b"\n") + 1
            if cut:
                yield from rest[:cut].decode("utf-8").split("\n")[:-1]
                rest = rest[cut:]
        if rest:
            raise ValueError(f"{self.path.name} does not end with a complete line")

    def arrays(self, dtype: str, values: int) -> Iterator[np.ndarray]:
        """Raw little-endian numbers (never a pickle: these files have no header to trust), in blocks."""
        size = np.dtype(dtype).itemsize
        if self.left % size:
            raise ValueError(f"{self.path.name} holds {self.left} bytes, not a whole number of {np.dtype(dtype).name} values")
        while self.left:
            yield np.frombuffer(self._take(values * size), dtype=dtype).astype(dtype[1:])

    def array(self, dtype: str) -> np.ndarray:
        blocks = list(self.arrays(dtype, max(1, self.left // np.dtype(dtype).itemsize)))
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks) if blocks else np.zeros(0, dtype=dtype[1:])


def test_pause() -> None:
    """Test hook: sleep ``$ASSISTANT_TEST_SLOW_SAVE`` seconds between the steps of a commit."""
    delay = os.environ.get("ASSISTANT_TEST_SLOW_SAVE")
    if delay:
        time.sleep(float(delay))
