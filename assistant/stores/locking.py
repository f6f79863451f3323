"""The writer lock both stores hold while they change an index: an exclusive ``flock`` on a file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Iterator

from assistant.errors import IndexLockedError

LOCK_WAIT_SECONDS = 30.0


@contextlib.contextmanager
def writer_lock(lock_file: Path, label: str, wait_seconds: float | None = None) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock_file``, waited for up to ``wait_seconds`` (default
    ``$ASSISTANT_LOCK_WAIT_SECONDS`` or 30), then ``IndexLockedError`` naming ``label`` and the holder's pid.

    The kernel releases the lock when the holder exits or is killed, so a crashed writer never leaves
    the index locked; each call opens its own file description, so threads serialize too. Only the
    pid is written into the file (command lines can hold passwords).
    """
    if wait_seconds is None:
        wait_seconds = float(os.environ.get("ASSISTANT_LOCK_WAIT_SECONDS") or LOCK_WAIT_SECONDS)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fh = open(lock_file, "a+")
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = ""
                    with contextlib.suppress(OSError, ValueError, IndexError):
                        holder = f" (pid {int(lock_file.read_text().split()[0])} holds the lock)"
                    raise IndexLockedError(
                        f"Another process is writing to the index {label}{holder}; waited {wait_seconds:g} s. "
                        "Try again when it has finished."
                    ) from None
                time.sleep(0.1)
        with contextlib.suppress(OSError):
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()
