"""Where a Milvus index lives: ``*.db`` (Milvus Lite) or ``milvus://`` / ``http(s)://`` (a server),
parsed with its query parameters into a ``MilvusLocation``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from assistant.errors import ConfigError

DEFAULT_PREFIX = "assistant"


@dataclass(frozen=True)
class MilvusLocation:
    """A parsed store location."""

    display: str  # what the user wrote (shown in messages)
    lite_path: Path | None  # Milvus Lite: the local *.db folder
    uri: str  # what MilvusClient connects to (the *.db path for Lite)
    token: str = ""
    db_name: str = ""
    prefix: str = DEFAULT_PREFIX
    lock: str = "auto"
    bm25: str = "global"
    vector_index: str = "FLAT"

    @property
    def is_lite(self) -> bool:
        return self.lite_path is not None


_PREFIX_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")


def parse_location(location: str | os.PathLike[str], *, prefix: str | None = None, bm25: str | None = None,
                   vector_index: str | None = None) -> MilvusLocation:
    """Parse ``*.db``, ``milvus://[user:pw@]host[:port][/db][?token=&prefix=&lock=]`` or ``http(s)://...``;
    ``prefix``, ``bm25`` and ``vector_index`` given here override the query parameters."""
    loc = _parse(location)
    if prefix is not None:
        loc = replace(loc, prefix=_prefix({"prefix": prefix}, loc.display))
    if bm25 is not None:
        loc = replace(loc, bm25=_bm25_mode({"bm25": bm25}, loc.display))
    if vector_index is not None:
        loc = replace(loc, vector_index=_vector_index({"vector_index": vector_index}, loc.display))
    return loc


def _parse(location: str | os.PathLike[str]) -> MilvusLocation:
    text = str(location)
    # A URI that went through pathlib.Path lost one slash of "://".
    text = re.sub(r"^(milvus|milvuss|https?|tcp):/(?!/)", r"\1://", text)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in ("milvus", "milvuss", "http", "https", "tcp"):
        path_text, _, query = text.partition("?")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        if not path_text.endswith(".db"):
            raise ConfigError(f"{text!r} is not a Milvus location: use a path ending in .db or milvus://host:19530")
        path = Path(path_text).expanduser().resolve()
        return MilvusLocation(text, path, str(path), prefix=_prefix(params, text), lock=_lock_mode(params, text),
                              bm25=_bm25_mode(params, text), vector_index=_vector_index(params, text))
    parts = urlsplit(text)
    params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    token = params.get("token", "")
    if not token and parts.username:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    token = token or os.environ.get("MILVUS_TOKEN", "")
    host = parts.hostname or "localhost"
    port = parts.port or (443 if scheme in ("https", "milvuss") else 19530)
    http = "https" if scheme in ("https", "milvuss") else "http"
    db_name = parts.path.strip("/") or params.get("db", "")
    shown = re.sub(r"token=[^&]*", "token=***", re.sub(r"//[^/@]*@", "//***@", text))
    return MilvusLocation(shown, None, f"{http}://{host}:{port}", token, db_name, _prefix(params, text), _lock_mode(params, text),
                          _bm25_mode(params, text), _vector_index(params, text))


def _prefix(params: dict[str, str], text: str) -> str:
    prefix = params.get("prefix", DEFAULT_PREFIX)
    if not _PREFIX_OK.match(prefix):
        raise ConfigError(f"prefix={prefix!r} in {text!r}: a collection prefix is letters, digits and _ (not first a digit)")
    return prefix


def _lock_mode(params: dict[str, str], text: str) -> str:
    mode = params.get("lock", "auto")
    if mode not in ("auto", "file", "lease", "none"):
        raise ConfigError(f"lock={mode!r} in {text!r}: use auto, file, lease or none")
    return mode


def _bm25_mode(params: dict[str, str], text: str) -> str:
    mode = params.get("bm25", "global")
    if mode not in ("global", "milvus"):
        raise ConfigError(f"bm25={mode!r} in {text!r}: use global (rescore with corpus-wide statistics) or milvus")
    return mode


def _vector_index(params: dict[str, str], text: str) -> str:
    kind = params.get("vector_index", "FLAT").upper()
    if kind not in ("FLAT", "AUTOINDEX", "HNSW"):
        raise ConfigError(f"vector_index={kind!r} in {text!r}: use FLAT (exact, the default), AUTOINDEX or HNSW")
    return kind
