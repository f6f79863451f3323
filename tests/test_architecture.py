"""The layers of ARCHITECTURE.md hold: import-linter's contracts (pyproject.toml), no import cycle between any
two modules, and no module so long that it does several jobs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "assistant"
# "No module over about 500 lines": past this a module is asked to split.
MAX_LINES = 520


def test_import_linter_contracts_pass():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(lint).exists():
        pytest.fail("lint-imports is missing: pip install -e '.[dev]' (import-linter)")
    proc = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycle_between_modules():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("assistant")
    assert len(graph.modules) > 40  # the package was found and read
    cycles = _cycles(graph)
    assert not cycles, "import cycles (function-level imports count):\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    grimp = pytest.importorskip("grimp")
    graph = grimp.ImportGraph()
    for module in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(module)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.z")
    graph.add_import(importer="a.z", imported="a.x")
    assert _cycles(graph) == [["a.x", "a.y", "a.z"]]


def test_no_module_over_about_500_lines():
    long = {str(path.relative_to(ROOT)): n for path in sorted(PACKAGE.rglob("*.py"))
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


def test_every_module_imports():
    """A module no test happens to load (an optional backend, a door) still imports: a moved name is caught here."""
    import importlib
    import pkgutil

    import assistant

    failures = {}
    for module in pkgutil.walk_packages(assistant.__path__, "assistant."):
        try:
            importlib.import_module(module.name)
        except Exception as exc:  # noqa: BLE001 - reported below with the module's name
            failures[module.name] = repr(exc)
    assert not failures, failures


def test_import_paths_of_earlier_versions_still_work():
    from assistant import Answer, Assistant, AssistantError, Citation  # noqa: F401
    from assistant.adapters.langchain import LangChainEmbeddings as Canonical
    from assistant.embeddings import LangChainEmbeddings, make_embedder  # noqa: F401
    from assistant.ingest.web import Fetcher as CanonicalFetcher
    from assistant.lc import AssistantRetriever, AssistantVectorStore  # noqa: F401
    from assistant.llm import llm_from_settings  # noqa: F401
    from assistant.web import Feed, FetchPolicy, Fetcher  # noqa: F401

    assert LangChainEmbeddings is Canonical and Fetcher is CanonicalFetcher  # the same classes, not copies
    assert {"index_dir", "embedder", "k"} <= set(AssistantRetriever.model_fields)
