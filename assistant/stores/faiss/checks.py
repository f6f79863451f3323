"""Checks of a snapshot: its manifest's document table and file sizes, and whether its chunks,
vectors, BM25 rows, documents and manifest agree (``consistency_problems``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.stores.base import DocInfo
from assistant.stores.faiss.logs import LOG_FILES_V2
from assistant.stores.faiss.memory import IndexData


def doc_table(manifest: dict[str, Any]) -> dict[str, DocInfo]:
    """The manifest's document table by document id; ``ValueError`` when it is malformed."""
    table = manifest.get("documents")
    if not isinstance(table, dict):
        raise ValueError("the manifest's document table is not a mapping")
    out = {}
    for doc_id, entry in table.items():
        if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], str) and isinstance(entry[1], str)
                and all(isinstance(x, int) and x >= 0 for x in entry[2:])):
            raise ValueError(f"the manifest's entry for document {doc_id!r} is malformed")
        out[doc_id] = DocInfo(doc_id, entry[0], entry[1], entry[2], entry[3])
    return out


def check_name(name: Any) -> str:
    """``name`` when it is a plain file name inside the snapshot folder, else ``ValueError``."""
    if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith(".") or not name:
        raise ValueError(f"the manifest lists an invalid file name {name!r}")
    return name


def file_problems(snap: Path, manifest: dict[str, Any], log_files: tuple[str, ...] = LOG_FILES_V2) -> list[str]:
    """Files missing from a snapshot, shorter than their committed log length, or of another size
    (``log_files``: the logs its format has)."""
    problems = []
    logs, files = manifest.get("logs"), manifest.get("files")
    if not isinstance(logs, dict) or not isinstance(files, dict):
        return ["the manifest's file lists are missing or not mappings"]
    if set(logs) != set(log_files):
        return [f"the manifest lists the logs {sorted(logs)}, expected {sorted(log_files)}"]
    crcs = manifest.get("crc32")
    if not isinstance(crcs, dict) or set(crcs) != set(log_files) or not all(isinstance(v, int) for v in crcs.values()):
        return ["the manifest's checksums are missing or malformed"]
    for table, exact in ((logs, False), (files, True)):
        for name, size in table.items():
            try:
                check_name(name)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if not isinstance(size, int) or size < 0:
                problems.append(f"the manifest gives {name} the size {size!r}")
                continue
            try:
                actual = (snap / name).stat().st_size
            except OSError:
                problems.append(f"{name} is missing")
                continue
            if actual < size or (exact and actual != size):
                problems.append(f"{name} has {actual} bytes, the manifest says {size} (truncated or replaced?)")
    return problems


def consistency_problems(data: IndexData, manifest: dict[str, Any] | None = None,
                         table: dict[str, DocInfo] | None = None) -> list[str]:
    """Every way the parts of a snapshot disagree (empty when consistent); ``table``: the manifest's
    document table when the caller has parsed it already."""
    problems = []
    n = len(data.chunks)
    if data.n_vectors != n:
        problems.append(f"FAISS holds {data.n_vectors} rows for {n} chunk rows")
    expected = 0
    for part in data.parts:
        if part.start != expected and part.index.ntotal:
            problems.append(f"a FAISS part starts at row {part.start}, expected {expected}")
            break
        if part.index.d != data.settings.dim:
            problems.append(f"FAISS has dimension {part.index.d}, manifest says {data.settings.dim}")
            break
        expected = part.end if part.index.ntotal else expected
    if data.bm25.n_rows != n:
        problems.append(f"BM25 holds {data.bm25.n_rows} rows for {n} chunk rows")
    ids, owners = data.chunks.ids, data.chunks.doc_ids
    live_rows = [i for i, c in enumerate(ids) if c is not None]
    live_ids = {ids[i] for i in live_rows}
    rows_of: dict[str, list[int]] = {}
    if len(live_ids) != len(live_rows):
        seen: set[str] = set()
        twice = next(ids[i] for i in live_rows if ids[i] in seen or seen.add(ids[i]))  # type: ignore[func-returns-value]
        problems.append(f"chunk id {twice} appears twice")
    else:
        unknown = {owners[i] for i in live_rows} - data.documents.keys()
        if unknown:
            doc_id = min(unknown)
            problems.append(f"chunk {next(ids[i] for i in live_rows if owners[i] == doc_id)} belongs to unknown document {doc_id}")
        else:
            for i in live_rows:
                rows_of.setdefault(owners[i], []).append(i)
            orphans = sorted(data.documents.keys() - rows_of.keys())
            if orphans:
                problems.append(f"{len(orphans)} document(s) without chunks (e.g. {orphans[0]})")
    if manifest is not None:
        try:
            table = doc_table(manifest) if table is None else table
        except ValueError as exc:
            problems.append(str(exc))
            table = {}
        if set(table) != set(data.documents):
            problems.append("manifest document list differs from documents.jsonl")
        else:
            for doc_id, info in table.items():
                rows = rows_of.get(doc_id, [])
                if data.documents[doc_id].content_hash != info.content_hash:
                    problems.append(f"manifest content hash of {doc_id} differs from documents.jsonl")
                    break
                if rows and (rows[0] != info.first_row or len(rows) != info.n_rows):
                    problems.append(f"manifest rows of {doc_id} ({info.first_row}, {info.n_rows}) differ from the chunks "
                                    f"({rows[0]}, {len(rows)})")
                    break
        counts = manifest.get("counts")
        if isinstance(counts, dict):
            wanted = {"documents": len(data.documents), "rows": n, "live_chunks": data.n_live}
            for key, value in wanted.items():
                if key in counts and counts[key] != value:
                    problems.append(f"manifest counts {counts[key]} {key.replace('_', ' ')}, the snapshot holds {value}")
    return problems
