"""Publication dates: datelines in either language and digit set, file dates as a fallback, and the
``since``/``until`` filter on search and ask."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest

from assistant.text.dates import date_from_text, parse_date
from assistant.errors import ConfigError
from assistant.ingest.loaders import load_document

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


@pytest.mark.parametrize(
    "line, expected",
    [
        ("2020-06-05", "2020-06-05"),
        ("Published 2020/6/5 10:42", "2020-06-05"),
        ("05/06/2020 - Tripoli", "2020-06-05"),
        ("5 June 2020", "2020-06-05"),
        ("Friday, 5th Jun. 2020", "2020-06-05"),
        ("June 5, 2020", "2020-06-05"),
        ("٥ يونيو ٢٠٢٠", "2020-06-05"),
        ("الجمعة 5 حزيران 2020", "2020-06-05"),
        ("الجمعة ٥ حزيران ٢٠٢٠", "2020-06-05"),
        ("نشر في ۱۲ أيار، ۲۰۱۹", "2019-05-12"),  # Persian digits, a comma before the year
        ("طرابلس - 7 تشرين الأول 2023", "2023-10-07"),
        ("1 كانون الثاني (يناير) 2021", "2021-01-01"),
        ("12 جويلية 2022", "2022-07-12"),
        ("٢٠٢٠-٠٦-٠٥", "2020-06-05"),
        ("31/02/2020", ""),  # not a date
        ("Tripoli, 5 June", ""),  # no year
        ("in 2020 the port was closed", ""),  # a year alone is not a date
    ],
)
def test_datelines_in_either_language_and_digit_set(line, expected):
    assert parse_date(line) == expected
    assert date_from_text(f"A headline\n{line}\nThe body of the article goes on here.") == expected


def test_only_the_top_of_a_document_dates_it():
    body = "\n".join(f"Paragraph {i} of the story." for i in range(10))
    assert date_from_text(f"Headline\n{body}\nThe truce of 5 June 2020 held.") == ""


def test_the_seed_articles_state_no_date_and_get_none(seed_copy):
    # Checked: none of the five seeds carries a date line, so none may get a made-up date.
    for path in sorted(seed_copy.glob("*.txt")):
        doc = load_document(path)
        assert doc.published == "", (path.name, doc.published)
        assert re.match(r"\d{4}-\d\d-\d\dT", doc.added_at)


def test_a_seed_with_a_dateline_gets_its_date(seed_copy):
    path = sorted(seed_copy.glob("*.txt"))[3]
    lines = path.read_text(encoding="utf-8").split("\n", 1)
    path.write_text(f"{lines[0]}\nالسبت ٦ حزيران ٢٠٢٠\n{lines[1]}", encoding="utf-8")
    assert load_document(path).published == "2020-06-06"


def _pdf(path: Path, text_lines: list[str], created: tuple[int, int, int] | None) -> Path:
    fpdf = pytest.importorskip("fpdf")
    import datetime as dt

    pdf = fpdf.FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    for line in text_lines:
        pdf.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    if created:
        pdf.set_creation_date(dt.datetime(*created, tzinfo=dt.timezone.utc))
    pdf.output(str(path))
    return path


def test_pdf_dateline_wins_over_the_creation_date(tmp_path):
    dated = _pdf(tmp_path / "dated.pdf", ["Ministry statement", "14 March 2019", "The ministry said the road is open."],
                 (2023, 1, 2))
    assert load_document(dated).published == "2019-03-14"
    undated = _pdf(tmp_path / "undated.pdf", ["Ministry statement", "The ministry said the road is open."], (2023, 1, 2))
    assert load_document(undated).published == "2023-01-02"


def test_html_file_date_from_its_markup(tmp_path):
    page = tmp_path / "page.html"
    page.write_text('<html><head><meta property="article:published_time" content="2022-11-03T08:00:00Z">'
                    "<title>t</title></head><body><p>The council met on Monday to vote the budget.</p></body></html>",
                    encoding="utf-8")
    assert load_document(page).published == "2022-11-03"


# -- since / until -------------------------------------------------------------------------------


def _dated_corpus(folder: Path) -> Path:
    folder.mkdir()
    # The same subject in every file, so every document competes for the same query.
    (folder / "old.txt").write_text("أخبار الميناء\n2019-05-01\n" + "استقبل ميناء مصراتة سفن القمح. " * 40, encoding="utf-8")
    (folder / "mid.txt").write_text("أخبار الميناء\n٣ مارس ٢٠٢٠\nاستقبل ميناء مصراتة سفن القمح في مارس.", encoding="utf-8")
    (folder / "new.txt").write_text("أخبار الميناء\n12 July 2021\nاستقبل ميناء مصراتة سفن القمح مجددا.", encoding="utf-8")
    (folder / "undated.txt").write_text("أخبار الميناء\nاستقبل ميناء مصراتة سفن القمح دون تاريخ.", encoding="utf-8")
    return folder


def test_since_and_until_keep_only_documents_published_in_the_range(hash_assistant, tmp_path):
    hash_assistant.ingest([_dated_corpus(tmp_path / "c")])
    docs = {d.doc_id: d.published for d in hash_assistant.documents()}
    assert docs == {"old": "2019-05-01", "mid": "2020-03-03", "new": "2021-07-12", "undated": ""}
    query = "ميناء مصراتة سفن القمح"
    everything = hash_assistant.search(query, k=5)
    assert {h.chunk.doc_id for h in everything.hits} >= {"old"}
    in_2020 = hash_assistant.search(query, k=5, since="2020-01-01", until="2020-12-31")
    assert {h.chunk.doc_id for h in in_2020.hits} == {"mid"} and [h.rank for h in in_2020.hits] == [1, 2][: len(in_2020.hits)]
    assert {h.chunk.doc_id for h in hash_assistant.search(query, k=5, since="2020-01-01").hits} == {"mid", "new"}
    assert {h.chunk.doc_id for h in hash_assistant.search(query, k=5, until="2019-12-31").hits} == {"old"}
    answer = hash_assistant.ask("ماذا استقبل ميناء مصراتة؟", since="2021-01-01")
    assert answer.citations and {c.doc_id for c in answer.citations} == {"new"}
    assert all(c.published == "2021-07-12" for c in answer.citations)


def test_the_range_is_filled_from_deep_in_the_ranking(hash_assistant, tmp_path):
    """Over-fetching: the only in-range passages rank below many out-of-range ones, and k still come back."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(30):
        (folder / f"old{i:02d}.txt").write_text(f"2018-01-{i % 28 + 1:02d}\n" + "ميناء مصراتة سفن القمح. " * 3, encoding="utf-8")
    for i in range(3):
        (folder / f"new{i}.txt").write_text(f"2022-02-0{i + 1}\nملاحظة تذكر مصراتة مرة واحدة.", encoding="utf-8")
    hash_assistant.ingest([folder])
    plain = hash_assistant.search("ميناء مصراتة سفن القمح", k=3)
    assert all(h.chunk.doc_id.startswith("old") for h in plain.hits)
    ranged = hash_assistant.search("ميناء مصراتة سفن القمح", k=3, since="2022-01-01")
    assert sorted(h.chunk.doc_id for h in ranged.hits) == ["new0", "new1", "new2"]


def test_bad_ranges_are_refused_with_the_value(hash_assistant, tmp_path):
    hash_assistant.ingest([_dated_corpus(tmp_path / "c")])
    with pytest.raises(ConfigError, match=re.escape("since must be a date like 2020-06-05, got '5/6/2020'")):
        hash_assistant.search("port", since="5/6/2020")
    with pytest.raises(ConfigError, match=re.escape("since (2021-01-01) is after until (2020-01-01)")):
        hash_assistant.ask("ماذا استقبل ميناء مصراتة؟", since="2021-01-01", until="2020-01-01")


def test_cli_ask_since_until(tmp_path, capsys):
    from assistant.cli import main

    index = str(tmp_path / "ix")
    assert main(["ingest", str(_dated_corpus(tmp_path / "c")), "--index", index, "--embedder", "hash", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["ask", "ماذا استقبل ميناء مصراتة؟", "--since", "2021-01-01", "--index", index,
                 "--embedder", "hash"]) == 0
    out = capsys.readouterr().out
    assert "(new, published 2021-07-12, chars" in out and "(old," not in out and "(mid," not in out
    with pytest.raises(SystemExit) as info:
        main(["ask", "port?", "--until", "June 2020", "--index", index])
    assert info.value.code == 2
    assert "--until: the date must be a date like 2020-06-05, got 'June 2020'" in capsys.readouterr().err


def test_the_chat_ui_filters_by_publication_date(hash_assistant, tmp_path):
    from assistant.ui import AssistantUI

    hash_assistant.ingest([_dated_corpus(tmp_path / "c")])
    ui = AssistantUI(hash_assistant)
    *_, last = ui.on_ask("ماذا استقبل ميناء مصراتة؟", [], False, None, "2021-01-01", "")
    answer = last[1][-1]["answer"]
    assert answer.passages and {h.chunk.doc_id for h in answer.passages} == {"new"}
    *_, last = ui.on_ask("ماذا استقبل ميناء مصراتة؟", [], False, None, "", "2019-12-31")
    assert {h.chunk.doc_id for h in last[1][-1]["answer"].passages} == {"old"}
    *_, last = ui.on_ask("ماذا استقبل ميناء مصراتة؟", [], False, None, "June 2020", "")
    assert last[1][-1]["error"] == "From date 'June 2020' is not a date like 2020-06-05 (year-month-day)."
