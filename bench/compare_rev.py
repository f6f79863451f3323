"""Speed and memory of an earlier commit next to the current tree, measured now, on this machine.

    python bench/compare_rev.py 1674f4c                 # the 100k probe of that commit, then the table
    python bench/compare_rev.py 1674f4c --sizes 10000,100000
    python bench/compare_rev.py 1674f4c --busy          # both commits again, each with one core kept busy
    python bench/compare_rev.py --table                 # print the table from the saved results again

Checks the commit out as a git worktree under bench/cache/ (sharing the vector cache), runs that
commit's own ``bench/run.py --parts scale`` there, saves its results as
``bench/results/scale_baseline.json`` and prints before / after / ratio for each size measured by both
(the current numbers come from ``bench/results/scale.json``: run ``python bench/run.py --parts scale``
first). Both runs should be close in time: the machine's load moves latencies (BENCHMARKS.md).

``--busy`` measures what a shared server sees: a second process spins on one of the two cores during
each run, and both the earlier commit and HEAD are measured that way (``scale_baseline_busy.json``,
``scale_current_busy.json``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import CACHE, RESULTS, ROOT, log, read_result

BASELINE = "scale_baseline"

# (label, path into a size's result, unit, lower is better)
METRICS = [
    ("retrieval p50, no query embedding", ("latency", "hybrid_no_embed", "p50_ms"), "ms"),
    ("retrieval p95, no query embedding", ("latency", "hybrid_no_embed", "p95_ms"), "ms"),
    ("search p50 with query embedding", ("latency", "search_with_embed", "p50_ms"), "ms"),
    ("ask p50 (extractive)", ("latency", "ask", "p50_ms"), "ms"),
    ("ask p95 (extractive)", ("latency", "ask", "p95_ms"), "ms"),
    ("index load", ("load_seconds",), "s"),
    ("RSS after load", ("rss_after_load_mb",), "MB"),
    ("RSS after queries", ("rss_after_queries_mb",), "MB"),
    ("add one article", ("add_article", "seconds"), "s"),
    ("index on disk", ("disk_bytes",), "MiB"),
]


def _get(row: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(row, dict) or key not in row:
            return None
        row = row[key]
    return row


def table(before: dict, after: dict) -> str:
    rev = before.get("baseline_rev", "?")
    now = after.get("baseline_rev", "the current tree")
    lines = [f"Commit {rev} (measured {before.get('finished_at', '?')}, load {before.get('load_average_before_after', '?')}) "
             f"vs {now} (measured {after.get('finished_at', '?')}, load {after.get('load_average_before_after', '?')})"
             + (", each with a second process spinning on one of the two cores" if before.get("busy_core") else "") + ":", "",
             "| passages | metric | before | after | after / before |", "|---|---|---:|---:|---:|"]
    for size in sorted(set(before.get("sizes", {})) & set(after.get("sizes", {})), key=int):
        b_row, a_row = before["sizes"][size], after["sizes"][size]
        for label, path, unit in METRICS:
            b, a = _get(b_row, path), _get(a_row, path)
            if b is None or a is None:
                continue
            if unit == "MiB":
                b, a = b / 2**20, a / 2**20
            ratio = f"{a / b:.2f}x" if b else "n/a"
            lines.append(f"| {int(size):,} | {label} | {b:,.1f} {unit} | {a:,.1f} {unit} | {ratio} |")
    return "\n".join(lines)


def run(rev: str, sizes: str, busy: bool = False, name: str = BASELINE) -> Path:
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    tree = CACHE / f"rev-{sha}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=ROOT, check=True, capture_output=True)
    cache = tree / "bench" / "cache"
    if not cache.exists():
        cache.symlink_to(CACHE.resolve(), target_is_directory=True)
    log(f"{sha}: running its scale part for {sizes} in {tree}" + (" with one core kept busy" if busy else ""))
    started = time.perf_counter()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        subprocess.run([sys.executable, "bench/run.py", "--parts", "scale", "--sizes", sizes, "--no-report"], cwd=tree, check=True)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    result = json.loads((tree / "bench" / "results" / "scale.json").read_text(encoding="utf-8"))
    result["baseline_rev"] = sha
    result["busy_core"] = busy
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    log(f"{sha}: done in {time.perf_counter() - started:.0f} s -> {out.relative_to(ROOT)}")
    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    shutil.rmtree(tree, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", nargs="?", help="the commit to measure (e.g. 1674f4c)")
    parser.add_argument("--sizes", default="100000", help="comma-separated sizes (default 100000)")
    parser.add_argument("--busy", action="store_true", help="keep one core busy; measure REV and HEAD that way")
    parser.add_argument("--table", action="store_true", help="only print the table from the saved results")
    args = parser.parse_args(argv)
    if not args.table:
        if not args.rev:
            parser.error("give the commit to measure, or --table")
        if args.busy:
            run(args.rev, args.sizes, busy=True, name=f"{BASELINE}_busy")
            run("HEAD", args.sizes, busy=True, name="scale_current_busy")
        else:
            run(args.rev, args.sizes)
    if args.busy:
        before, after = read_result(f"{BASELINE}_busy"), read_result("scale_current_busy")
    else:
        before, after = read_result(BASELINE), read_result("scale")
    if not before or not after:
        print("need bench/results/scale_baseline.json and bench/results/scale.json", file=sys.stderr)
        return 2
    print(table(before, after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
