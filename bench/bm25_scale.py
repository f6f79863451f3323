"""BM25 scoring at scale, alone: the scorer of ``assistant/bm25.py`` and the top-k selection of
``IndexData.lexical_search`` on a synthetic index of N rows (default 1M), no FAISS, no model.

Rows are ~45 distinct terms each, drawn from a Zipf law over a 300k-term vocabulary (news chunks of
~320 characters after stemming look like this: a few very common words, a long tail of names).
Queries are 4-8 terms taken from random rows (so they match), weighted like the planner's (1.0 for the
question's words, 0.8 for variants). Prints p50/p95 of the score and of score + top-k.

    python bench/bm25_scale.py [--rows 1000000] [--queries 200] [--before REV]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))



def synthetic(rows: int, vocab: int = 300_000, per_row: int = 45, seed: int = 0) -> tuple[list[str], tuple, np.ndarray]:
    """Vocabulary, CSR arrays (values, term ids, entries per row) and the sorted term ids per row."""
    rng = np.random.default_rng(seed)
    width = per_row * 2
    ids = ((rng.zipf(1.15, size=rows * width) - 1) % vocab).reshape(rows, width)
    ids.sort(axis=1)
    # Runs of equal ids in a sorted row are one term and its count; keep a row's first per_row terms.
    new = np.ones_like(ids, dtype=bool)
    new[:, 1:] = ids[:, 1:] != ids[:, :-1]
    rank = np.cumsum(new, axis=1) - 1
    starts = np.flatnonzero(new.ravel())
    lengths = np.diff(np.append(starts, ids.size))
    keep = rank.ravel()[starts] < per_row
    values = lengths[keep].astype(np.float32)
    term_ids = ids.ravel()[starts][keep].astype(np.int32)
    nnz = np.bincount(starts[keep] // width, minlength=rows).astype(np.int32)
    return [f"t{i}" for i in range(vocab)], (values, term_ids, nnz), ids


def _module(rev: str | None):
    """``assistant.bm25`` as it is, or as it was at git revision ``rev``."""
    if rev is None:
        import assistant.stores.lexical as current

        return current
    import importlib.util
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(["git", "show", f"{rev}:assistant/bm25.py"], cwd=root, capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "assistant_bm25_before.py"
    # The old module imports its siblings relatively: point those at the current package.
    path.write_text(source.replace("from .normalize", "from assistant.normalize"), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("assistant_bm25_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("-k", type=int, default=50)
    parser.add_argument("--before", metavar="REV", help="also time assistant/bm25.py as of this git revision")
    args = parser.parse_args(argv)
    t = time.perf_counter()
    terms, arrays, ids = synthetic(args.rows)
    print(f"built {args.rows} rows, {len(arrays[1])} postings in {time.perf_counter() - t:.1f} s", flush=True)
    live = np.ones(args.rows, dtype=bool)
    live[::97] = False  # some removed rows, as in a real index
    rng = np.random.default_rng(1)
    queries = []
    for _ in range(args.queries):
        row = ids[rng.integers(args.rows)]
        picked = rng.choice(np.unique(row), size=rng.integers(4, 9), replace=False)
        queries.append({f"t{t}": (1.0 if i % 3 else 0.8) for i, t in enumerate(picked)})
    results = {}
    for label, rev in (("before", args.before), ("now", None)) if args.before else (("now", None),):
        module = _module(rev)
        index = module.BM25Index.from_arrays(terms, *arrays)
        t = time.perf_counter()
        index.score(queries[0], live)
        prepare = time.perf_counter() - t
        score_ms, total_ms, tops = [], [], []
        for query in queries:
            t0 = time.perf_counter()
            scores = index.score(query, live)
            t1 = time.perf_counter()
            rows, _ = index.top(scores, args.k) if hasattr(index, "top") else _top(scores, args.k)
            t2 = time.perf_counter()
            score_ms.append((t1 - t0) * 1000)
            total_ms.append((t2 - t0) * 1000)
            tops.append(set(rows[: args.k // 2].tolist()))
        results[label] = tops
        print(f"{label:6s} ({rev or 'working tree'}): prepare {prepare:.2f} s; score p50 {statistics.median(score_ms):.2f} ms, "
              f"p95 {np.percentile(score_ms, 95):.2f} ms; score + top-{args.k} p50 {statistics.median(total_ms):.2f} ms, "
              f"p95 {np.percentile(total_ms, 95):.2f} ms", flush=True)
        del index
    if "before" in results:
        same = np.mean([len(a & b) / max(len(a), 1) for a, b in zip(results["before"], results["now"])])
        print(f"top-{args.k // 2} rows shared by both versions: {same:.1%} (ties at the cut may differ)")
    return 0


def _top(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``IndexData.lexical_search``'s selection before this change."""
    n = min(n, int((scores > 0).sum()))
    top = np.argpartition(-scores, n - 1)[:n]
    top = top[np.argsort(-scores[top], kind="stable")]
    return top, scores[top]


if __name__ == "__main__":
    sys.exit(main())
