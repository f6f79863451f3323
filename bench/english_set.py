"""The mixed corpus (Arabic seeds + English and Arabic wire articles) with questions in both languages:
``assistant eval`` figures per split and direction beside the LangChain tutorial retriever.

    python bench/english_set.py                 # this tree
    python bench/english_set.py --split test    # only the held-out half
    PYTHONPATH=/path/to/old/checkout python bench/english_set.py --json old.json   # another version

The QA files are ``bench/data/wire/qa.jsonl`` (132 questions over the wire articles, fit/test split by
article) and ``bench/data/wire/seed_heldout.jsonl`` (30 questions over the seeds, of the dev set's kind,
never used for tuning). Scoring is ``assistant.evaluate.run_eval``, the code behind ``assistant eval``:
hit@k counts a passage from a gold document holding the gold evidence; abstention counts unanswerable
questions not given a plain answer.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from common import CACHE, ROOT, cached_embedder, log, write_result

from assistant.core import Assistant
from assistant.evaluate import QAItem, eval_normalize, run_eval

WIRE = ROOT / "bench" / "data" / "wire"


def load_items(path: Path) -> list[tuple[QAItem, str, str]]:
    """(item, split, direction) for each line."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        item = QAItem(row["id"], row["lang"], row.get("type", "factoid"), list(row["turns"]), list(row.get("gold", [])),
                      dict(row.get("answer_any") or {}))
        gold_docs = {g["doc"] for g in item.gold}
        if not gold_docs:
            direction = f"none/{item.lang}_q"
        else:
            doc_lang = "ar" if all(d.startswith(("khabar", "0")) for d in gold_docs) else "en"
            direction = f"{doc_lang}_docs/{item.lang}_q"
        out.append((item, row.get("split", "heldout"), direction))
    return out


def mixed_corpus(name: str, embedder) -> tuple[Assistant, Path, Path]:
    """A fresh index (under ``bench/cache/NAME``) of the seeds and the wire articles, answering
    extractively: the assistant, the folder of documents and the index folder (removed by the caller)."""
    folder = CACHE / name
    docs = folder / "docs"
    if docs.exists():
        shutil.rmtree(docs)
    docs.mkdir(parents=True)
    for source in [*(ROOT / "seeds").glob("*.txt"), *(WIRE / "en").glob("*.txt"), *(WIRE / "ar").glob("*.txt")]:
        shutil.copy(source, docs / source.name)
    index = folder / f"index-{int(time.time())}"
    assistant = Assistant(index, embedder=embedder)
    assistant.llm = None
    log(f"{name}: {assistant.ingest([docs]).summary()}")
    return assistant, docs, index


def tutorial_hits(tutorial, item: QAItem) -> tuple[bool, bool]:
    hits = tutorial.invoke(item.turns[-1], k=5)
    flags = []
    for doc in hits:
        folded = eval_normalize(doc.page_content)
        flags.append(any(g["doc"] == doc.metadata["doc"] and eval_normalize(g["evidence"]) in folded for g in item.gold))
    return any(flags[:1]), any(flags[:5])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=["all", "fit", "test"], default="all", help="wire questions of one split only")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-baseline", action="store_true", help="skip the LangChain tutorial retriever")
    args = parser.parse_args()
    embedder = cached_embedder()
    assistant, docs, index = mixed_corpus("english_set", embedder)
    tutorial = None
    if not args.no_baseline:
        sys.path.insert(0, str(ROOT / "bench"))
        from baseline import TutorialRetriever
        from assistant.adapters.langchain.embeddings import LangChainEmbeddings
        from assistant.ingest.loaders import load_document
        from langchain_core.documents import Document as LCDocument

        tutorial = TutorialRetriever(LangChainEmbeddings(embedder))
        tutorial.add_documents([LCDocument(page_content=load_document(p).text, metadata={"doc": p.stem}) for p in sorted(docs.glob("*.txt"))])

    rows = load_items(WIRE / "qa.jsonl") + [(i, "heldout", d) for i, _, d in load_items(WIRE / "seed_heldout.jsonl")]
    if args.split != "all":
        rows = [r for r in rows if r[1] in (args.split, "heldout")]
    items = [r[0] for r in rows]
    summary, results = run_eval(lambda q, h: assistant.ask(q, h), items)
    by_id = {r.id: r for r in results}
    groups: dict[str, list] = {}
    for item, split, direction in rows:
        groups.setdefault(f"{split}:{direction}", []).append(item)
        groups.setdefault(f"{split}:all", []).append(item)
        if split in ("fit", "test"):
            groups.setdefault("wire:all", []).append(item)  # fit and test together: the target
    from assistant.evaluate import summarize

    out = {"overall": summary, "groups": {}}
    for name, members in sorted(groups.items()):
        entry = summarize([by_id[i.id] for i in members])
        entry = {k: entry[k] for k in ("questions", "answerable", "hit@1", "hit@5", "citation_precision", "answer_accuracy",
                                       "abstention", "false_abstention") if k in entry}
        answerable = [i for i in members if i.type != "unanswerable"]
        if tutorial is not None and answerable:
            flags = [tutorial_hits(tutorial, i) for i in answerable]
            entry["langchain_hit@1"] = round(sum(a for a, _ in flags) / len(flags), 4)
            entry["langchain_hit@5"] = round(sum(b for _, b in flags) / len(flags), 4)
        out["groups"][name] = entry
    embedder.cache.flush()
    shutil.rmtree(index, ignore_errors=True)
    print(f"{'group':<28}{'n':>4}{'hit@1':>8}{'hit@5':>8}{'LC@1':>7}{'LC@5':>7}{'prec':>7}{'acc':>7}{'abst':>7}{'f.abst':>7}")
    for name, e in out["groups"].items():
        def f(key):
            value = e.get(key)
            return "-" if value is None else f"{value:.2f}"
        print(f"{name:<28}{e['questions']:>4}{f('hit@1'):>8}{f('hit@5'):>8}{f('langchain_hit@1'):>7}{f('langchain_hit@5'):>7}"
              f"{f('citation_precision'):>7}{f('answer_accuracy'):>7}{f('abstention'):>7}{f('false_abstention'):>7}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    try:
        write_result("english_set", out)
    except Exception:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
