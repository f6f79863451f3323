"""Uploaded files into the uploads folder and out again: each file checked and read before it can touch
the index, the older copy of a file kept until the index took the new one (and put back when it did not),
and a removed upload kept aside for a while so that the removal can be undone.

``Assistant.add_uploads``, ``remove_with_undo`` and ``undo_removal`` drive these with the index's
``ingest`` and ``remove``; nothing here knows the index.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from assistant.errors import AssistantError, DocumentError
from assistant.ingest.loaders import SUPPORTED_SUFFIXES, load_document, sanitize_filename
from assistant.records import Document

# Removed uploads are kept this long so a removal can be undone (re-ingested from the kept file).
KEEP_REMOVED_SECONDS = 7 * 24 * 3600
STAGING_FOLDER = ".staging"  # a batch's copies while they are checked (hidden from the uploads listing)
REMOVED_FOLDER = ".removed"  # removed uploads waiting for a possible undo

ProgressCallback = Callable[[str, int, int], None]


@dataclass
class UploadReport:
    """What adding uploaded files did.

    Attributes:
        ingest: The index's ``IngestReport`` for the files that reached it; None when none did or the
            index refused the batch (the reason is then in ``problems``).
        problems: ``(file name as stored, reason)`` for every file not added, in upload order.
    """

    ingest: Any = None
    problems: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Removal:
    """A removed document and how to bring it back.

    Attributes:
        path: The file to ingest again on undo (an upload kept aside in ``uploads/.removed/``, or any
            other file where it is); None when there is nothing to undo.
        restore_to: Where a kept upload goes back before it is ingested again; None for other files.
        chunks: How many passages the removal took out of the index.
    """

    doc_id: str
    title: str = ""
    path: str | None = None
    restore_to: str | None = None
    chunks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Removal":
        return cls(**{k: data[k] for k in ("doc_id", "title", "path", "restore_to", "chunks") if k in data})


def check_upload(src: Path, shown: str, seen: set[str], max_bytes: int) -> str | None:
    """Why the upload ``src`` (to be stored as ``shown``) cannot be added, or None when it may be."""
    suffix = Path(shown).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        return f"unsupported file type {suffix or '(no extension)'!r}; supported: .txt, .md, .html, .pdf, .docx"
    try:
        size = src.stat().st_size
    except OSError:
        return "the upload did not arrive; try again"
    if size > max_bytes:
        shown_limit = f"{max_bytes / (1024 * 1024):g} MB" if max_bytes >= 1024 * 1024 else f"{max_bytes} bytes"
        return f"the file is {size / (1024 * 1024):.1f} MB, over the {shown_limit} limit"
    if shown.lower() in seen:
        return "another file in this upload has the same name"
    return None


def add_uploads(files: Sequence[Path], uploads_dir: Path, ingest: Callable[[list[Path]], Any], *, max_bytes: int,
                progress: ProgressCallback | None = None) -> UploadReport:
    """Copy ``files`` into ``uploads_dir`` under safe names and ``ingest`` them; undo what did not take.

    Each file is checked (type, size, a name twice in the batch) and read once in a staging folder
    first, so a bad file never reaches the uploads folder or the index. A file replacing an upload of
    the same name moves the old copy aside; when the index skips the new one (or refuses the batch)
    the old copy is put back and a new file is deleted. ``progress("checking", n, total)`` is called
    before the n-th file (0-based) is checked. Call with the index's writer lock held.
    """
    result = UploadReport()
    staging = uploads_dir / STAGING_FOLDER / uuid.uuid4().hex
    placed: dict[Path, tuple[str, Path | None]] = {}  # target -> (shown name, backup of the old file)
    try:
        staging.mkdir(parents=True, exist_ok=True)
        seen: set[str] = set()
        for number, src in enumerate(files, 1):
            shown = sanitize_filename(src.name)
            if progress:
                progress("checking", number - 1, len(files))
            problem = check_upload(src, shown, seen, max_bytes)
            if problem:
                result.problems.append((shown, problem))
                continue
            staged = staging / str(number) / shown
            staged.parent.mkdir(parents=True)
            shutil.copyfile(src, staged)
            try:  # read it once before it touches the index: bad files never get in
                load_document(staged, max_bytes=max_bytes)
            except DocumentError as exc:
                result.problems.append((shown, exc.reason))
                continue
            except Exception as exc:
                result.problems.append((shown, f"could not be read ({exc.__class__.__name__}: {exc})"))
                continue
            seen.add(shown.lower())
            target = uploads_dir / shown
            backup = None
            if target.exists():
                backup = staged.parent / (shown + ".previous")
                os.replace(target, backup)
            os.replace(staged, target)
            placed[target] = (shown, backup)
        if placed:
            _ingest_placed(placed, ingest, result)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _ingest_placed(placed: dict[Path, tuple[str, Path | None]], ingest: Callable[[list[Path]], Any],
                   result: UploadReport) -> None:
    try:
        result.ingest = ingest(list(placed))
    except AssistantError as exc:
        result.problems.append(("index", str(exc)))
    failed = set()
    if result.ingest is None:
        failed = set(placed)
    else:
        for path, reason in result.ingest.skipped:
            match = next((t for t in placed if _same_path(t, path)), None)
            if match is not None:
                failed.add(match)
                result.problems.append((placed[match][0], reason))
            else:
                result.problems.append((Path(path).name, reason))
    for target, (_shown, backup) in placed.items():
        if target in failed:  # put things back as they were
            if backup is not None:
                os.replace(backup, target)
            else:
                target.unlink(missing_ok=True)


def keep_removed(doc: Document, chunks: int, uploads_dir: Path) -> Removal:
    """After ``doc`` left the index: move its file aside when it is our own copy of an upload (kept
    ``KEEP_REMOVED_SECONDS``, older ones forgotten now); any other file is left where it is."""
    path: Path | None = Path(doc.source)
    restore_to = None
    if _inside(path, uploads_dir):
        aside = uploads_dir / REMOVED_FOLDER / uuid.uuid4().hex / path.name
        try:
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, aside)
            restore_to, path = str(doc.source), aside
        except OSError:
            path.unlink(missing_ok=True)
            path = None
    purge_removed(uploads_dir)
    return Removal(doc.doc_id, doc.title, str(path) if path is not None else None, restore_to, chunks)


def put_back(removal: Removal) -> Path:
    """The file to ingest again to undo ``removal``, a kept upload moved back in place first.

    Raises:
        AssistantError: a new file took the upload's place since, or the file is gone.
    """
    if removal.path is None:
        raise AssistantError("there is no removal to undo")
    path = Path(removal.path)
    if removal.restore_to:
        target = Path(removal.restore_to)
        if target.exists():
            raise AssistantError(f"a new file {target.name} was uploaded since; remove it first")
        if not path.is_file():
            raise AssistantError("the removed file is no longer kept")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        shutil.rmtree(path.parent, ignore_errors=True)
        return target
    if not path.is_file():
        raise AssistantError(f"its source file {path} is gone; add it again with Add to index")
    return path


def purge_removed(uploads_dir: Path) -> None:
    """Forget removed uploads older than ``KEEP_REMOVED_SECONDS``."""
    removed_dir = uploads_dir / REMOVED_FOLDER
    if not removed_dir.is_dir():
        return
    cutoff = time.time() - KEEP_REMOVED_SECONDS
    for folder in removed_dir.iterdir():
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def _same_path(a: Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except (OSError, ValueError):
        return False
