#!/usr/bin/env bash
# Create .venv and install the assistant with everything it needs. Safe to re-run.
# torch is pinned and installed FIRST: pip then takes the CPU build from local disk; any other
# spelling (plain "torch", uv, poetry) pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip --disable-pip-version-check"
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> installing torch==2.13.0 (CPU) and the assistant"
  $PIP install -q --upgrade pip
  $PIP install -q torch==2.13.0
  $PIP install -q -e ".[st,llm,dev,milvus]"
  touch "$stamp"
fi
# OCR for scanned PDFs (optional: without it such PDFs are skipped with an install hint).
if { ! command -v tesseract >/dev/null || ! command -v pdftoppm >/dev/null; } && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "==> installing Tesseract OCR (Arabic, English) and poppler-utils"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-ara \
    tesseract-ocr-eng poppler-utils >/dev/null) || echo "warning: could not install tesseract-ocr; scanned PDFs will be skipped"
fi
