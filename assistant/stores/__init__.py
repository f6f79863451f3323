"""Index stores: the FAISS folder (default) and Milvus, behind the protocols of :mod:`assistant.stores.base`."""

from __future__ import annotations

import os
import re
from pathlib import Path

from assistant.stores.base import IndexStoreLike


def open_store(location: str | os.PathLike[str]) -> IndexStoreLike:
    """The store for an index location: a folder (FAISS), ``*.db`` (Milvus Lite) or ``milvus://...``."""
    text = re.sub(r"^(milvus|milvuss|https?|tcp):/(?!/)", r"\1://", str(location))  # pathlib.Path ate a slash
    if text.startswith(("milvus://", "milvuss://", "http://", "https://", "tcp://")) or text.split("?")[0].endswith(".db"):
        from assistant.stores.milvus import MilvusStore

        return MilvusStore(text)
    from assistant.stores.faiss import IndexStore

    return IndexStore(Path(text))
