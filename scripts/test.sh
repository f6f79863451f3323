#!/usr/bin/env bash
# Set up and run the test suite. Extra arguments go to pytest (e.g. -m "not browser").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser tests drive Debian's Chromium (Playwright cannot download browsers here).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing Debian chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-core >/dev/null) \
      || echo "warning: could not install chromium; browser tests will be skipped"
  else
    echo "warning: /usr/bin/chromium missing (run: sudo apt-get install chromium); browser tests will be skipped"
  fi
fi
# OCR of scanned PDFs: Tesseract with the Arabic and English models, pdftoppm to rasterize pages, and
# the Noto fonts the OCR tests draw their scanned pages with. Without them the OCR tests are skipped.
if ! command -v tesseract >/dev/null || ! command -v pdftoppm >/dev/null \
   || ! tesseract --list-langs 2>/dev/null | grep -qx ara || [ ! -e /usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing Tesseract OCR (Arabic, English) and poppler-utils"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-ara \
      tesseract-ocr-eng poppler-utils fonts-noto-core >/dev/null) \
      || echo "warning: could not install tesseract-ocr; OCR tests will be skipped"
  else
    echo "warning: OCR tools missing (run: sudo apt-get install tesseract-ocr tesseract-ocr-ara tesseract-ocr-eng poppler-utils); OCR tests will be skipped"
  fi
fi
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
