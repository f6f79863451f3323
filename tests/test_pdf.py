"""Tests of ``assistant.pdf``: real Arabic PDFs (see ``tests/data/make_pdfs.py``) and the text repairs."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from assistant.errors import CorruptDocumentError, DocumentError, EmptyDocumentError, EncryptedDocumentError
from assistant.ingest.pdf import extract_pdf_pages, fix_arabic_visual_order, normalize_pdf_text

DATA = Path(__file__).parent / "data"

LIBREOFFICE_PAGE_1 = [
    "عقد المجلس البلدي اجتماعا طارئا يوم الأحد لمناقشة أزمة المياه في المدينة.",
    "وقال رئيس المجلس إن الشركة العامة للمياه ستبدأ أعمال الصيانة خلال 10 أيام.",
]
LIBREOFFICE_PAGE_2 = [
    "تبعد مدينة الزاوية 45 كيلومترا غرب طرابلس.",
    "ونشرت وكالة Reuters تقريرا عن ارتفاع أسعار الوقود بنسبة 15 بالمئة منذ بداية الشهر.",
]
CHROMIUM_PAGE_1 = [
    "أعلن وزير الصحة افتتاح مستشفى جديد في مدينة مصراتة.",
    "ويضم المستشفى 120 سريرا وقسما للطوارئ يعمل على مدار الساعة.",
]
CHROMIUM_PAGE_2 = [
    "وأكدت منظمة الصحة العالمية (WHO) أن الحملة الوطنية للتطعيم شملت أكثر من 300 ألف طفل خلال شهر واحد.",
]

PRESENTATION_FORMS = re.compile(r"[\uFB50-\uFDFF\uFE70-\uFEFF]")
BIDI_CONTROLS = re.compile(r"[\u200E\u200F\u202A-\u202E\u2066-\u2069]")


def flat(text: str) -> str:
    """Whitespace collapsed to single spaces (a sentence may wrap over lines in the PDF)."""
    return " ".join(text.split())


def visual(logical: str) -> str:
    """The visual (left-to-right drawing) order of a right-to-left line, as a PDF reader that follows glyph
    positions returns it: everything reversed, then each run of Latin letters/digits put back in order,
    and brackets mirrored. Independent of the module's own reordering code."""
    reversed_ = logical[::-1]
    ltr_run = r"[A-Za-z0-9\u0660-\u0669%](?:[A-Za-z0-9\u0660-\u0669%.,:/ -]*[A-Za-z0-9\u0660-\u0669%])?"
    reversed_ = re.sub(ltr_run, lambda m: m.group()[::-1], reversed_)
    return reversed_.translate(str.maketrans("()[]«»", ")(][»«"))


# --------------------------------------------------------------------------------------------------
# Real PDFs


@pytest.fixture(scope="module")
def libreoffice_pages() -> list[str]:
    return extract_pdf_pages(DATA / "arabic_libreoffice.pdf")


@pytest.fixture(scope="module")
def chromium_pages() -> list[str]:
    return extract_pdf_pages(DATA / "arabic_chromium.pdf")


def test_fixtures_are_small() -> None:
    for name in ["arabic_libreoffice.pdf", "arabic_chromium.pdf", "encrypted.pdf", "truncated.pdf", "scanned.pdf"]:
        size = (DATA / name).stat().st_size
        assert 0 < size < 100_000, name


def test_libreoffice_pdf_extracts_the_source_sentences(libreoffice_pages: list[str]) -> None:
    text = flat("\n".join(libreoffice_pages))
    for sentence in LIBREOFFICE_PAGE_1 + LIBREOFFICE_PAGE_2:
        assert sentence in text


def test_libreoffice_pdf_page_numbers(libreoffice_pages: list[str]) -> None:
    assert len(libreoffice_pages) == 2
    fact = "تبعد مدينة الزاوية 45 كيلومترا غرب طرابلس"
    assert fact in flat(libreoffice_pages[1])
    assert fact not in flat(libreoffice_pages[0])
    for sentence in LIBREOFFICE_PAGE_1:
        assert sentence in flat(libreoffice_pages[0])
    for sentence in LIBREOFFICE_PAGE_2:
        assert sentence in flat(libreoffice_pages[1])


def test_chromium_pdf_extracts_the_source_sentences(chromium_pages: list[str]) -> None:
    assert len(chromium_pages) == 2
    for sentence in CHROMIUM_PAGE_1:
        assert sentence in flat(chromium_pages[0])
    for sentence in CHROMIUM_PAGE_2:
        assert sentence in flat(chromium_pages[1])
    assert "أعلن وزير الصحة افتتاح مستشفى جديد في مدينة مصراتة" in flat(chromium_pages[0])


@pytest.mark.parametrize("name", ["arabic_libreoffice.pdf", "arabic_chromium.pdf"])
def test_extracted_text_is_clean(name: str) -> None:
    pages = extract_pdf_pages(DATA / name)
    for page in pages:
        assert not PRESENTATION_FORMS.search(page)
        assert not BIDI_CONTROLS.search(page)
        assert "  " not in page
        assert page == page.strip()
        assert page == unicodedata.normalize("NFKC", page)


def test_extract_accepts_a_string_path() -> None:
    assert extract_pdf_pages(str(DATA / "arabic_chromium.pdf")) == extract_pdf_pages(DATA / "arabic_chromium.pdf")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Errors


def test_encrypted_pdf() -> None:
    with pytest.raises(EncryptedDocumentError, match=r"encrypted\.pdf: the PDF is encrypted; remove the password"):
        extract_pdf_pages(DATA / "encrypted.pdf")


def test_encrypted_pdf_with_empty_user_password_is_read(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(DATA / "arabic_chromium.pdf"))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    target = tmp_path / "owner_only.pdf"
    writer.write(target)
    pages = extract_pdf_pages(target)
    assert CHROMIUM_PAGE_1[0] in flat(pages[0])


def test_truncated_pdf() -> None:
    with pytest.raises(CorruptDocumentError, match=r"truncated\.pdf: the PDF is truncated"):
        extract_pdf_pages(DATA / "truncated.pdf")


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
@pytest.mark.parametrize("name", ["arabic_libreoffice.pdf", "arabic_chromium.pdf"])
def test_cut_off_pdfs_are_corrupt(tmp_path: Path, name: str, fraction: float) -> None:
    data = (DATA / name).read_bytes()
    target = tmp_path / f"cut_{name}"
    target.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CorruptDocumentError, match=re.escape(target.name)):
        extract_pdf_pages(target)


def test_scanned_pdf_without_text_layer() -> None:
    with pytest.raises(EmptyDocumentError, match=r"scanned\.pdf: the PDF has no text layer .*ocrmypdf"):
        extract_pdf_pages(DATA / "scanned.pdf")


def test_text_file_renamed_to_pdf(tmp_path: Path) -> None:
    target = tmp_path / "notes.pdf"
    target.write_text("هذا ملف نصي وليس ملف PDF\n", encoding="utf-8")
    with pytest.raises(CorruptDocumentError, match=r"notes\.pdf: not a PDF file"):
        extract_pdf_pages(target)


def test_garbage_after_pdf_header(tmp_path: Path) -> None:
    target = tmp_path / "garbage.pdf"
    target.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20 + b"\n%%EOF\n")
    with pytest.raises(CorruptDocumentError, match=r"garbage\.pdf: the PDF is damaged and cannot be read"):
        extract_pdf_pages(target)


def test_empty_file(tmp_path: Path) -> None:
    target = tmp_path / "empty.pdf"
    target.write_bytes(b"")
    with pytest.raises(EmptyDocumentError, match=r"empty\.pdf: the file is empty"):
        extract_pdf_pages(target)


def test_pdf_without_pages(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    target = tmp_path / "no_pages.pdf"
    PdfWriter().write(target)
    with pytest.raises(CorruptDocumentError, match=r"no_pages\.pdf: the PDF has no pages"):
        extract_pdf_pages(target)


def test_errors_are_document_errors_with_the_path() -> None:
    with pytest.raises(DocumentError) as info:
        extract_pdf_pages(DATA / "truncated.pdf")
    assert info.value.path == str(DATA / "truncated.pdf")


def test_pypdf_logger_is_silenced_and_restored(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    level = logging.getLogger("pypdf").level
    with caplog.at_level(logging.DEBUG, logger="pypdf"), pytest.raises(CorruptDocumentError):
        extract_pdf_pages(DATA / "truncated.pdf")
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]
    assert logging.getLogger("pypdf").level == level


# --------------------------------------------------------------------------------------------------
# Normalization without PDFs


def test_presentation_forms_become_base_letters() -> None:
    assert normalize_pdf_text("ﻣﺪﻳﻨﺔ ﻃﺮاﺑﻠﺲ") == "مدينة طرابلس"
    assert normalize_pdf_text("ﺃﻋﻠﻦ ﻭﺯﻳﺮ ﺍﻟﺼﺤﺔ") == "أعلن وزير الصحة"


@pytest.mark.parametrize(("ligature", "letters"), [("ﻻ", "لا"), ("ﻷ", "لأ"), ("ﻹ", "لإ"), ("ﻵ", "لآ"), ("ﻼ", "لا")])
def test_lam_alef_ligatures(ligature: str, letters: str) -> None:
    assert normalize_pdf_text(ligature) == letters


def test_lam_alef_ligature_inside_a_word() -> None:
    assert normalize_pdf_text("ﻻ ﻳﻮﺟﺪ ﺳﻼﻡ") == "لا يوجد سلام"


def test_reversed_presentation_forms_with_ligature_are_restored() -> None:
    # "السلام في البلاد" drawn left to right with contextual forms: the lam-alef ligature is one glyph,
    # so it must be reversed as one unit before NFKC expands it.
    logical_glyphs = "ﺍﻟﺴﻼﻡ ﻓﻲ ﺍﻟﺒﻼﺩ"
    assert normalize_pdf_text(logical_glyphs) == "السلام في البلاد"
    assert normalize_pdf_text(logical_glyphs[::-1]) == "السلام في البلاد"


def test_bidi_and_zero_width_controls_are_removed() -> None:
    text = "\u202bفي\u200f المدينة\u202c \u2067Libya\u2069 \u200e2024\u200b"
    assert normalize_pdf_text(text) == "في المدينة Libya 2024"


def test_spaces_collapse_and_lines_are_kept() -> None:
    text = "  في   المدينة\t القديمة  \n\n\n\nمن   طرابلس \u00a0 إلى مصراتة  \n"
    assert normalize_pdf_text(text) == "في المدينة القديمة\n\nمن طرابلس إلى مصراتة"


def test_no_dehyphenation() -> None:
    assert normalize_pdf_text("state-of-\nthe-art") == "state-of-\nthe-art"


def test_real_chromium_layout_line_is_restored() -> None:
    # What pypdf's layout mode returns for the first line of arabic_chromium.pdf.
    raw = ".ﺔﺗاﺮﺼﻣ ﺔﻨﻳﺪﻣ ﻲﻓ ﺪﻳﺪﺟ ﻰﻔﺸﺘﺴﻣ حﺎﺘﺘﻓا ﺔﺤﺼﻟا ﺮﻳزو ﻦﻠﻋأ"
    assert normalize_pdf_text(raw) == "أعلن وزير الصحة افتتاح مستشفى جديد في مدينة مصراتة."


def test_real_libreoffice_layout_line_is_restored() -> None:
    # What pypdf's layout mode returns for a line of arabic_libreoffice.pdf (base letters, visual order).
    raw = ".اريرقت Reuters ةلاكو ترشنو"
    assert fix_arabic_visual_order(raw) == "ونشرت وكالة Reuters تقريرا."


REVERSIBLE = [
    "أعلن وزير الصحة افتتاح مستشفى جديد في مدينة مصراتة.",
    "تبعد مدينة الزاوية 45 كيلومترا غرب طرابلس.",
    "أعلنت شركة Apple عن هاتف iPhone 15 بسعر 999 دولارا في 2024.",
    "وأكدت منظمة الصحة العالمية (WHO) أن الحملة شملت 300 ألف طفل.",
    "في عام ٢٠٢٤ افتتح الرئيس (المنتخب) مستشفى جديدا.",
    "قال «الرئيس» إن الاجتماع سيعقد يوم 2024/05/12 في طرابلس",
    "بلغت نسبة النمو 3.5% في الربع الأول",
    "من 10 إلى 20 كيلومترا",
    "لا يوجد أي تأثير على الاقتصاد",
    "ذهب محمد إلى السوق",
    "وزارة الصحة",
    "المقدمة",
]


@pytest.mark.parametrize("logical", REVERSIBLE)
def test_visually_reversed_line_is_restored(logical: str) -> None:
    reversed_line = visual(logical)
    assert reversed_line != logical
    assert fix_arabic_visual_order(reversed_line) == logical
    assert normalize_pdf_text(reversed_line) == logical


@pytest.mark.parametrize(
    "logical",
    REVERSIBLE
    + [
        "ونشرت وكالة Reuters تقريرا عن ارتفاع أسعار الوقود بنسبة 15 بالمئة",
        "The mayor of مصراتة said on Monday that 45 people were hurt.",
        "Report 2024: وزارة الصحة الليبية, page 3",
        "هل له أن يأتي",
        "محمد",
        "ليبيا 2024",
        "Hello world 123",
        "12345",
        "",
    ],
)
def test_logical_line_is_left_unchanged(logical: str) -> None:
    assert fix_arabic_visual_order(logical) == logical
    assert normalize_pdf_text(logical) == logical


def test_reversed_arabic_inside_an_english_line() -> None:
    assert fix_arabic_visual_order("The mayor of ةتارصم said on Monday") == "The mayor of مصراتة said on Monday"
    assert fix_arabic_visual_order("the ministry of ةحصلا ةرازو today") == "the ministry of وزارة الصحة today"


def test_paragraph_direction() -> None:
    assert fix_arabic_visual_order("Microsoft ةكرش", base_rtl=True) == "شركة Microsoft"
    assert fix_arabic_visual_order("Microsoft ةكرش", base_rtl=False) == "Microsoft شركة"


def test_lines_without_evidence_follow_the_page() -> None:
    # "محمد" / "طرابلس" read as words either way; the rest of the page shows it is reversed.
    page = "\n".join([visual("قال رئيس المجلس البلدي إن المياه ستعود"), "دمحم", visual("في مدينة طرابلس"), "سلبارط"])
    assert normalize_pdf_text(page) == "قال رئيس المجلس البلدي إن المياه ستعود\nمحمد\nفي مدينة طرابلس\nطرابلس"
    # On a page in logical order they stay as they are.
    page = "قال رئيس المجلس البلدي إن المياه ستعود\nمحمد"
    assert normalize_pdf_text(page) == page
