"""The Milvus clients: one per location and process, shared by every store that opens it and closed
at exit; a server is checked for a version with BM25 full-text search on connect."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import re
import threading
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError, IndexLockedError, MissingDependencyError
from assistant.stores.milvus.location import MilvusLocation

log = logging.getLogger("assistant.milvus")


class _IteratorNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:  # Milvus Lite has no mvcc timestamps: harmless
        return "mvccTs" not in record.getMessage()


logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_IteratorNoise())

_CLIENTS: dict[tuple[str, str, str], list[Any]] = {}  # key -> [client, users]
_CLIENTS_LOCK = threading.Lock()


def load_pymilvus():
    """The pymilvus module, or a ``MissingDependencyError`` naming the extra to install."""
    try:
        import pymilvus
    except ImportError as exc:
        raise MissingDependencyError("pymilvus", extra="milvus", purpose="the Milvus store") from exc
    return pymilvus


def connect(loc: MilvusLocation):
    """One MilvusClient per location and process, shared by every store that opens it."""
    key = (loc.uri, loc.token, loc.db_name)
    with _CLIENTS_LOCK:
        entry = _CLIENTS.get(key)
        if entry is not None:
            entry[1] += 1
            return entry[0]
        pymilvus = load_pymilvus()
        kwargs: dict[str, Any] = {"uri": loc.uri}
        if loc.token:
            kwargs["token"] = loc.token
        if loc.db_name:
            kwargs["db_name"] = loc.db_name
        if loc.is_lite:
            try:
                import milvus_lite  # noqa: F401  (only: is it installed?)
            except ImportError as exc:
                raise MissingDependencyError("milvus-lite", extra="milvus", purpose=f"the embedded Milvus Lite file {loc.display}") from exc
            assert loc.lite_path is not None
            loc.lite_path.parent.mkdir(parents=True, exist_ok=True)
            # pymilvus pings every 10 s; the embedded server answers an idle client's pings with
            # GOAWAY "too_many_pings" (logged as an error). In-process, keepalive is pointless.
            kwargs["grpc_options"] = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": False}
        try:
            client = pymilvus.MilvusClient(**kwargs)
        except Exception as exc:
            if loc.is_lite and _lite_locked_elsewhere(loc.lite_path):
                raise IndexLockedError(
                    f"The Milvus Lite index {loc.display} is open in another process; Milvus Lite lets one process "
                    f"open a .db at a time. Stop that process (the app or another command), or share the index "
                    f"through a Milvus server (--store milvus://host:19530)."
                ) from exc
            where = f"the Milvus Lite file {loc.display}" if loc.is_lite else f"the Milvus server at {loc.display}"
            raise ConfigError(f"Cannot open {where} ({exc.__class__.__name__}: {exc})") from exc
        if not loc.is_lite:
            try:
                check_server_version(str(client.get_server_version()), loc.display)
            except Exception:
                with contextlib.suppress(Exception):
                    client.close()
                raise
        _CLIENTS[key] = [client, 1]
        return client


# BM25 full-text search (a Function turning text into a sparse vector, and the BM25 metric) came in 2.5.
MIN_SERVER_VERSION = (2, 5)


def check_server_version(version: str, where: str) -> None:
    """Refuse a Milvus server older than ``MIN_SERVER_VERSION``, naming the version found and the one
    needed. A version string that cannot be read is let through: the collection calls then fail
    with Milvus' own message."""
    match = re.match(r"^\s*v?(\d+)\.(\d+)", version)
    if match is None:
        log.warning("the Milvus server at %s reports an unreadable version %r; assuming it is recent", where, version)
        return
    found = (int(match[1]), int(match[2]))
    if found < MIN_SERVER_VERSION:
        raise ConfigError(
            f"The Milvus server at {where} runs Milvus {version.strip()}; the assistant needs Milvus "
            f"{'.'.join(map(str, MIN_SERVER_VERSION))} or later (BM25 full-text search functions). Upgrade the server, "
            "or keep the index in a Milvus Lite file (--store index.db) or a folder (--store ./index)."
        )


def release(loc: MilvusLocation) -> None:
    """One user fewer of the location's client; the last one closes it (and frees a Milvus Lite file)."""
    key = (loc.uri, loc.token, loc.db_name)
    with _CLIENTS_LOCK:
        entry = _CLIENTS.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _CLIENTS[key]
    with contextlib.suppress(Exception):
        entry[0].close()
    if loc.is_lite:
        with contextlib.suppress(Exception):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(loc.uri)  # frees the .db for other processes


def _lite_locked_elsewhere(path: Path | None) -> bool:
    lock = path / "LOCK" if path else None
    if lock is None or not lock.exists():
        return False
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return False


@atexit.register
def _close_all() -> None:
    with _CLIENTS_LOCK:
        entries = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client, _ in entries:
        with contextlib.suppress(Exception):
            client.close()
