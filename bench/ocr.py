"""OCR quality and extraction speed of the ingestion sources (issue 15).

    python bench/ocr.py                 # 6 Arabic + 6 English scanned pages, web/docx/pdf speed
    python bench/ocr.py --pages 2       # quicker
    python bench/ocr.py --json          # one JSON object

OCR: Arabic news paragraphs (the seed articles' own text) and English news paragraphs (written for
this benchmark) are drawn on A4 pages with Debian's fonts and degraded like a photocopy scan
(``bench/scanpage.py``: rotation up to 0.8°, blur, grey paper, speckles), saved as image-only PDFs,
and read back through the product's OCR path (``pdftoppm`` at 300 dpi + Tesseract ``ara+eng``). The
character error rate is the edit distance between the recognized and the true text divided by the
true text's length, after NFKC and collapsing whitespace; "folded" also applies the retrieval
normalizer (``assistant.normalize.fold``: hamza/alef forms, ta marbuta, diacritics), which is what
search sees. Pages/s is end to end (rasterize + OCR), on one Tesseract thread.

Extraction speed: web articles through ``load_web_page`` against a local server on 127.0.0.1 (fetch +
trafilatura), .docx files through ``load_document``, and text-layer PDF pages (``tests/data``).

Nothing here is run by the tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

ENGLISH_PARAGRAPHS = [
    "The United Nations envoy said on Tuesday that talks between the two delegations would resume in Geneva next "
    "week, after a pause of nearly a month caused by fighting south of the capital.",
    "Officials at the central bank said the new banknotes would enter circulation in March, replacing the old "
    "notes that had become scarce in western cities during the summer.",
    "The port authority reported that 214 ships docked in the first half of the year, an increase of 18 per cent "
    "on the same period last year, mostly carrying grain, fuel and building materials.",
    "Residents of the coastal town complained of power cuts lasting up to ten hours a day, and the electricity "
    "company blamed damage to two transmission lines and a shortage of spare parts.",
    "Health workers began a vaccination campaign against measles in schools on Sunday, aiming to reach 1.2 million "
    "children before the end of the month, the ministry said in a statement.",
    "The oil corporation said production had returned to 1.1 million barrels a day after the reopening of two "
    "fields in the south-west, which had been shut for six weeks by a local protest.",
    "A court in the eastern city sentenced three men to prison for smuggling fuel across the border, and ordered "
    "the confiscation of the trucks and the storage depot used in the operation.",
    "Farmers in the southern oases said the date harvest was the best in a decade, thanks to late rains, but "
    "warned that the lack of cold storage meant much of the crop would be sold cheaply.",
    "The football federation announced that the national league would restart in October with sixteen clubs, "
    "and that matches would be played without spectators for the first three rounds.",
    "Engineers inspecting the old bridge found cracks in two of its pillars, and the municipality closed it to "
    "heavy vehicles until repairs, expected to cost 4.5 million dinars, are completed.",
    "The education ministry said the national exams would be held a week later than planned, to give students "
    "in areas affected by the floods more time to prepare.",
    "Aid agencies delivered tents, blankets and food parcels to about 900 families displaced by the clashes, "
    "and appealed for more funding as winter approaches.",
]


def arabic_paragraphs() -> list[str]:
    """Paragraph-sized pieces of the seed articles (real Arabic news text)."""
    pieces = []
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        text = " ".join(path.read_text(encoding="utf-8").split())
        words = text.split()
        for i in range(0, min(len(words), 180), 45):
            pieces.append(" ".join(words[i : i + 45]))
    return pieces


def _normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), O(len(a) * len(b)) time, O(len(b)) memory."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(recognized: str, truth: str) -> float:
    truth_n, recognized_n = _normalize(truth), _normalize(recognized)
    return edit_distance(recognized_n, truth_n) / max(len(truth_n), 1)


def bench_ocr(pages_per_language: int) -> dict:
    from assistant.text.normalize import fold
    from assistant.ingest.ocr import ocr_pdf_pages, ocr_unavailable_reason
    from bench.scanpage import render_page, save_pdf

    reason = ocr_unavailable_reason()
    if reason:
        return {"error": reason}
    results: dict = {}
    corpora = {"ar": (arabic_paragraphs(), True), "en": (ENGLISH_PARAGRAPHS, False)}
    with tempfile.TemporaryDirectory() as tmp:
        for language, (paragraphs, rtl) in corpora.items():
            per_page = 3
            truths = [paragraphs[(i * per_page) % len(paragraphs):][:per_page] for i in range(pages_per_language)]
            images = [render_page(truth, rtl=rtl, seed=100 + i) for i, truth in enumerate(truths)]
            pdf = save_pdf(images, Path(tmp) / f"{language}.pdf")
            started = time.perf_counter()
            texts = ocr_pdf_pages(pdf, list(range(1, len(images) + 1)))
            seconds = time.perf_counter() - started
            rates = [cer(texts.get(i + 1, ""), " ".join(truth)) for i, truth in enumerate(truths)]
            folded = [cer(fold(texts.get(i + 1, "")), fold(" ".join(truth))) for i, truth in enumerate(truths)]
            chars = sum(len(" ".join(t)) for t in truths)
            results[language] = {
                "pages": len(images), "characters": chars,
                "cer_mean": round(statistics.mean(rates), 4), "cer_max": round(max(rates), 4),
                "cer_folded_mean": round(statistics.mean(folded), 4),
                "seconds": round(seconds, 2), "pages_per_s": round(len(images) / seconds, 3),
                "sample": {"truth": " ".join(truths[0])[:160], "ocr": texts.get(1, "")[:160]},
            }
            print(f"OCR {language}: {len(images)} pages, CER {results[language]['cer_mean']:.2%} "
                  f"(max {results[language]['cer_max']:.2%}, folded {results[language]['cer_folded_mean']:.2%}), "
                  f"{results[language]['pages_per_s']:.3f} pages/s", file=sys.stderr)
    return results


def bench_extraction(repeats: int) -> dict:
    from assistant.ingest.loaders import load_document
    from assistant.ingest.web import FetchPolicy, Fetcher, WebPage, load_web_page
    from web_support.server import AR_ARTICLE, EN_ARTICLE, start_site
    from test_docx import make_docx

    out: dict = {}
    site, server = start_site()
    try:
        fetcher = Fetcher(FetchPolicy(per_host_rate=10_000, allow_private=True))
        urls = [site.url(EN_ARTICLE), site.url(AR_ARTICLE)]
        load_web_page(WebPage(urls[0], fetcher))  # warm-up: imports, robots.txt
        started = time.perf_counter()
        for _ in range(repeats):
            for url in urls:
                load_web_page(WebPage(url, fetcher))
        seconds = time.perf_counter() - started
        out["web_articles_per_s"] = round(2 * repeats / seconds, 1)
    finally:
        server.shutdown()
        server.server_close()
    with tempfile.TemporaryDirectory() as tmp:
        docx = make_docx(Path(tmp) / "bulletin.docx")
        load_document(docx)
        started = time.perf_counter()
        for _ in range(repeats):
            load_document(docx)
        out["docx_files_per_s"] = round(repeats / (time.perf_counter() - started), 1)
    pdfs = [ROOT / "tests" / "data" / "arabic_chromium.pdf", ROOT / "tests" / "data" / "arabic_libreoffice.pdf"]
    pages = 0
    started = time.perf_counter()
    for _ in range(max(1, repeats // 4)):
        for pdf in pdfs:
            pages += len(load_document(pdf).pages)
    out["text_pdf_pages_per_s"] = round(pages / (time.perf_counter() - started), 1)
    print(f"extraction: {out}", file=sys.stderr)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=6, help="scanned pages per language (default 6)")
    parser.add_argument("--repeats", type=int, default=20, help="repetitions of each extraction (default 20)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {"ocr": bench_ocr(args.pages), "extraction": bench_extraction(args.repeats)}
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        for language, row in result["ocr"].items():
            if isinstance(row, dict):
                print(f"| OCR {language} | {row['pages']} pages | CER {row['cer_mean']:.1%} (max {row['cer_max']:.1%}; "
                      f"folded {row['cer_folded_mean']:.1%}) | {row['pages_per_s']:.2f} pages/s |")
        for name, value in result["extraction"].items():
            print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
