"""Fit the ranking constants of the mixed corpus on the fit questions of ``bench/english_set.py``.

    python bench/fit_ranking.py                       # the grid below, fit questions only
    python bench/fit_ranking.py --title-credit 0.9 1.0

For every triple of ``search.TITLE_CREDIT`` (what a question's concept held only by a document's title
counts for its sentences), ``search.SENTENCE_MIX`` (how much of the lexical side reads a passage's best
sentence under its document's title) and ``search.CROSS_LANGUAGE_DENSE`` (what a passage in the other
language than the question's gets added to its cosine), the fit questions are asked as ``assistant
eval`` asks them, and scored the same way (hit@k over the answer's passages, which lead with the quoted
ones). The fit questions are the answerable ones of the fit split of ``bench/data/wire/qa.jsonl`` and
all of ``bench/data/wire/seed_fit.jsonl`` (questions over the Arabic seeds, written without reading any
other question set). The rule: the highest hit@1 + hit@5; on a tie the higher citation precision, then
the smaller constants and the credit nearest 1 (the nearest to the ranking without them). Neither the
test split, the seeds' held-out questions nor ``shared/eval/dev_qa.jsonl`` is read.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys

from common import cached_embedder

import assistant.retrieval.search as search
from assistant.core import Assistant
from assistant.evaluate import score_item
from english_set import WIRE, load_items, mixed_corpus

TITLE_CREDITS = (0.7, 0.8, 0.9, 1.0)
SENTENCE_MIXES = (0.0, 0.25, 0.5, 0.75, 1.0)
CROSS_LANGUAGE = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1)


def evaluate(assistant: Assistant, items) -> tuple[float, float, float]:
    """(hit@1, hit@5, citation precision) of ``items`` asked as ``assistant eval`` asks them."""
    hit1 = hit5 = cited = gold_cited = 0
    for item in items:
        history: list[dict] = []
        for turn in item.turns[:-1]:
            previous = assistant.ask(turn, history)
            history += [{"role": "user", "content": turn}, {"role": "assistant", "content": previous.text}]
        result = score_item(item, assistant.ask(item.turns[-1], history), 0.0)
        hit1 += bool(result.hit1)
        hit5 += bool(result.hit5)
        cited += result.citations
        gold_cited += result.citations_in_gold
    n = max(len(items), 1)
    return hit1 / n, hit5 / n, gold_cited / cited if cited else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--title-credit", type=float, nargs="*", default=list(TITLE_CREDITS),
                        help=f"values of search.TITLE_CREDIT to try (default: {' '.join(map(str, TITLE_CREDITS))})")
    args = parser.parse_args()
    embedder = cached_embedder()
    assistant, _, index = mixed_corpus("fit_ranking", embedder)
    items = [item for item, split, _ in load_items(WIRE / "qa.jsonl") + load_items(WIRE / "seed_fit.jsonl")
             if split == "fit" and item.type != "unanswerable"]
    saved = (search.SENTENCE_MIX, search.CROSS_LANGUAGE_DENSE, search.TITLE_CREDIT)
    rows = []
    try:
        for credit, mix, offset in itertools.product(args.title_credit, SENTENCE_MIXES, CROSS_LANGUAGE):
            search.SENTENCE_MIX, search.CROSS_LANGUAGE_DENSE = mix, offset
            search.TITLE_CREDIT = credit
            hit1, hit5, precision = evaluate(assistant, items)
            rows.append((credit, mix, offset, hit1, hit5, precision))
            print(f"title_credit={credit:<5} sentence_mix={mix:<5} cross_language_dense={offset:<5} "
                  f"hit@1={hit1:.3f} hit@5={hit5:.3f} citation_precision={precision:.3f}", flush=True)
    finally:
        search.SENTENCE_MIX, search.CROSS_LANGUAGE_DENSE, search.TITLE_CREDIT = saved
        embedder.cache.flush()
        shutil.rmtree(index, ignore_errors=True)
    best = max(rows, key=lambda r: (round(r[3] + r[4], 6), round(r[5], 6), -r[1], -r[2], -abs(r[0] - 1.0)))
    print(f"\nchosen ({len(items)} fit questions): TITLE_CREDIT={best[0]} SENTENCE_MIX={best[1]} CROSS_LANGUAGE_DENSE={best[2]} "
          f"(hit@1 {best[3]:.3f}, hit@5 {best[4]:.3f}, citation precision {best[5]:.3f})")
    shipped = next((r for r in rows if (r[0], r[1], r[2]) == (saved[2], saved[0], saved[1])), None)
    if shipped is not None:
        print(f"shipped: TITLE_CREDIT={shipped[0]} SENTENCE_MIX={shipped[1]} CROSS_LANGUAGE_DENSE={shipped[2]} "
              f"(hit@1 {shipped[3]:.3f}, hit@5 {shipped[4]:.3f}, citation precision {shipped[5]:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
