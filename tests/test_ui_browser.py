"""End-to-end: the real app (``python app.py``) in headless Chromium.

Starts the app on a free port with an empty temporary index (it indexes ``seeds/`` on first start with
the real offline model), then asks English and Arabic questions, checks the sources and right-to-left
rendering, opens the document viewer, runs a citation lookup, uploads an Arabic PDF and asks about it,
and checks that markup inside a document is shown as text. Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ui_support.server import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, ROOT, make_arabic_pdf, running_app

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

playwright_api = pytest.importorskip("playwright.sync_api")

LAVROV_DOC = "004_dfbf6940fa5a6b70"
TARHUNA_DOC = "003_f657090a955ee483"
FIRST_ANSWER_MS = 90_000
ANSWER_MS = 60_000


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    base = tmp_path_factory.mktemp("ui_browser")
    with running_app(base / "index", ROOT / "artifacts" / "logs" / "ui_browser_app.log") as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture()
def page(app, browser):
    """A fresh page on the app; records every JavaScript dialog (there must be none)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.dialogs = []

    def on_dialog(dialog):
        page.dialogs.append((dialog.type, dialog.message))
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(app.url)
    page.wait_for_selector("#question textarea", timeout=60_000)
    page.wait_for_function("document.querySelector('#index-status') && /passages indexed/.test(document.querySelector('#index-status').innerText)",
                           timeout=60_000)
    yield page
    context.close()


def shot(page, name: str, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def ask(page, question: str, turn: int, timeout: int = ANSWER_MS):
    """Type ``question``, press Ask, wait for assistant turn number ``turn`` to be final."""
    page.locator("#question textarea").fill(question)
    page.locator("#ask-btn").click()
    answer = page.locator(f"#conversation #turn-{turn}")
    answer.wait_for(timeout=timeout)
    page.wait_for_selector(f"#conversation #turn-{turn}:not(.pending) .answer p", timeout=timeout)
    page.wait_for_function(f"!document.querySelector('#conversation #turn-{turn} .typing')", timeout=timeout)
    return answer


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def upload(page, paths: list[Path]) -> str:
    """Add files in the Documents tab; returns the status text."""
    open_tab(page, "Documents")
    page.locator("#upload input[type=file]").set_input_files([str(p) for p in paths])
    for p in paths:  # wait for the browser-to-server upload of each file
        page.locator("#upload").get_by_text(p.stem).first.wait_for(timeout=30_000)
    page.wait_for_timeout(300)
    status = "#ingest-status .ingest-status"
    before = page.locator(status).inner_text() if page.locator(status).count() else ""
    page.locator("#ingest-btn").click()
    page.wait_for_function(
        "([sel, before]) => { const s = document.querySelector(sel); return s && s.innerText.trim() && s.innerText !== before; }",
        arg=[status, before], timeout=120_000,
    )
    return page.locator(status).inner_text()


def test_start_page(page, app):
    assert "passages indexed" in page.locator("#index-status").inner_text()
    assert page.get_by_text("What did Lavrov announce?").first.is_visible()
    assert page.get_by_text("ماذا أعلن لافروف؟").first.is_visible()
    shot(page, "01_start")
    print(f"app ready {app.seconds_to_ready:.1f} s after start (empty index, seeds indexed)")


def test_english_and_arabic_questions(page):
    en = ask(page, "What did Lavrov announce?", 1, timeout=FIRST_ANSWER_MS)
    assert en.get_attribute("dir") == "ltr" and en.get_attribute("lang") == "en"
    assert en.locator(".answer").inner_text().strip()
    en_sources = en.locator(".src")
    assert en_sources.count() >= 1
    assert LAVROV_DOC in en.inner_text(), "the Lavrov article should be among the English answer's sources"
    shot(page, "02_english_answer")

    box = page.locator("#question textarea")
    box.fill("ماذا أعلن لافروف؟")  # the question box follows what is typed
    assert box.get_attribute("dir") == "auto"
    assert box.evaluate("t => t.matches(':dir(rtl)')")
    ar = ask(page, "ماذا أعلن لافروف؟", 2)
    # right-to-left per message: attribute and computed style, on both the question and the answer
    assert ar.get_attribute("dir") == "rtl" and ar.get_attribute("lang") == "ar"
    assert ar.evaluate("e => getComputedStyle(e).direction") == "rtl"
    question = page.locator("#conversation .turn.user").nth(1)
    assert question.get_attribute("dir") == "rtl"
    assert question.evaluate("e => getComputedStyle(e).direction") == "rtl"
    assert page.locator("#conversation .turn.user").nth(0).evaluate("e => getComputedStyle(e).direction") == "ltr"
    answer_text = ar.locator(".answer").inner_text()
    assert "لافروف" in answer_text
    # every [n] of the answer links to its source entry, which exists and names the document
    links = ar.locator(".answer a.cite")
    assert links.count() >= 1
    first_target = links.first.get_attribute("href")
    assert re.fullmatch(r"#src-2-\d+", first_target)
    assert ar.locator(first_target).count() == 1
    cited = ar.locator(".sources .src")
    assert cited.count() == links.count() or cited.count() >= 1
    assert LAVROV_DOC in ar.locator(".sources").inner_text()
    assert ar.locator(".sources mark.evidence").count() >= 1, "the evidence sentence is highlighted"
    assert ar.locator(".sources .src .src-text").first.get_attribute("dir") == "rtl"
    links.first.click()  # scrolls to the source entry and flashes it
    page.wait_for_timeout(800)
    assert ar.locator(first_target).is_visible()
    shot(page, "03_arabic_answer")

    # retrieved but uncited passages are there on request
    page.locator("#show-all input[type=checkbox]").check()
    page.wait_for_function("document.querySelectorAll('#conversation details.more[open]').length >= 1", timeout=15_000)

    # follow-up question uses the conversation
    follow = ask(page, "من سيقودها؟", 3)
    assert follow.locator(".answer").inner_text().strip()
    assert follow.get_attribute("dir") == "rtl"
    page.wait_for_timeout(300)
    assert follow.evaluate("e => { const r = e.getBoundingClientRect(); return r.top < window.innerHeight && r.bottom > 0; }"), \
        "the conversation scrolls to the newest turn"
    shot(page, "04_followup", full_page=False)

    # open the whole document at the cited place
    ar.locator(".sources .src button.open-doc").first.click()
    mark = page.locator("#doc-viewer mark#doc-cite")
    mark.wait_for(timeout=20_000)
    page.wait_for_timeout(800)
    assert LAVROV_DOC in page.locator("#doc-viewer .viewer-head").inner_text()
    assert mark.is_visible()
    assert mark.evaluate("""m => { const r = m.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; }"""), \
        "the cited span is scrolled into view"
    assert page.locator("#doc-viewer .viewer-body").get_attribute("dir") == "rtl"
    shot(page, "05_document_viewer", full_page=False)
    assert not page.dialogs


def test_citation_lookup(page):
    open_tab(page, "Citation lookup")
    page.locator("#lookup-input textarea").fill("Tarhuna is 95 km from Tripoli")
    page.locator("#lookup-btn").click()
    page.wait_for_selector("#lookup-results .src", timeout=ANSWER_MS)
    results = page.locator("#lookup-results")
    assert TARHUNA_DOC in results.locator(".src").first.inner_text()
    assert results.locator("mark.evidence").count() >= 1
    assert results.locator(".turn").count() == 0  # passages only, no generated answer
    shot(page, "06_citation_lookup")


def test_upload_arabic_pdf_and_ask(page, tmp_path):
    pdf = make_arabic_pdf(tmp_path / "arabic_chromium.pdf")
    status = upload(page, [pdf])
    assert "Added: arabic_chromium" in status, status
    table = page.locator("#docs-table")
    table.get_by_text("arabic_chromium", exact=True).wait_for(timeout=15_000)
    shot(page, "07_documents_after_pdf_upload")

    open_tab(page, "Ask")
    answer = ask(page, "ماذا افتتح وزير الصحة؟", 1)
    assert answer.get_attribute("dir") == "rtl"
    assert "مستشفى" in answer.inner_text()
    assert "arabic_chromium" in answer.locator(".sources").inner_text()
    shot(page, "08_pdf_answer")


def test_markup_in_documents_is_shown_as_text(page, tmp_path):
    probe = tmp_path / "markup_probe.txt"
    script = "<script>alert('xss-script')</script>"
    img = "<img src=x onerror=alert('xss-img')>"
    probe.write_text(
        f"Harbour notice {script}\n\n"
        f"The port of Zuwara reopened for fishing boats {img} after the storm damage was repaired.\n",
        encoding="utf-8",
    )
    status = upload(page, [probe])
    assert "Added: markup_probe" in status, status
    table = page.locator("#docs-table")
    assert script in table.inner_text()  # the title, as text

    open_tab(page, "Citation lookup")
    page.locator("#lookup-input textarea").fill("port of Zuwara reopened for fishing boats")
    page.locator("#lookup-btn").click()
    page.wait_for_selector("#lookup-results .src", timeout=ANSWER_MS)
    results = page.locator("#lookup-results")
    assert img in results.inner_text()
    assert results.locator("img, script").count() == 0
    results.locator(".src", has_text="markup_probe").first.locator("button.open-doc").click()
    page.locator("#doc-viewer mark#doc-cite").wait_for(timeout=20_000)
    viewer = page.locator("#doc-viewer")
    assert script in viewer.inner_text() and img in viewer.inner_text()
    assert viewer.locator(".viewer-body img, .viewer-body script").count() == 0
    page.wait_for_timeout(500)
    shot(page, "09_markup_shown_as_text", full_page=False)
    assert not page.dialogs, f"a script in a document ran: {page.dialogs}"


def test_bad_file_is_rejected_and_changes_nothing(page, app, tmp_path):
    fake = tmp_path / "not_really.pdf"
    fake.write_text("this is plain text pretending to be a PDF", encoding="utf-8")
    before = page.locator("#index-status").inner_text()
    status = upload(page, [fake])
    assert "not_really.pdf" in status and "PDF" in status, status
    assert "Not added" in status
    assert page.locator("#index-status").inner_text() == before
    assert not (app.index_dir / "uploads" / "not_really.pdf").exists()
    assert "not_really" not in page.locator("#docs-table").inner_text()
    shot(page, "10_bad_file_rejected")


def test_oversized_upload_is_refused(page, tmp_path):
    big = tmp_path / "too_big.txt"
    with open(big, "wb") as fh:
        fh.truncate(21 * 1024 * 1024)  # over the 20 MB limit
    open_tab(page, "Documents")
    page.locator("#upload input[type=file]").set_input_files([str(big)])
    message = page.get_by_text(re.compile("exceed the maximum allowed size")).first
    message.wait_for(timeout=30_000)
    page.wait_for_timeout(800)  # the toast fades in
    shot(page, "10b_oversized_upload_refused", full_page=False)
    assert "too_big.txt" in message.inner_text()
    assert page.locator("#upload").get_by_text("too_big").count() == 0


def test_remove_document(page, app):
    open_tab(page, "Documents")
    page.locator("#docs-table").get_by_text("markup_probe", exact=True).wait_for(timeout=15_000)
    dropdown = page.locator("#remove-choice input")
    dropdown.click()
    dropdown.fill("markup_probe")
    page.get_by_role("option", name=re.compile("markup_probe")).first.click()
    page.locator("#remove-btn").click()
    page.wait_for_function("document.querySelector('#ingest-status') && /Removed markup_probe/.test(document.querySelector('#ingest-status').innerText)",
                           timeout=30_000)
    page.wait_for_function("!/markup_probe/.test(document.querySelector('#docs-table').innerText)", timeout=15_000)
    assert not (app.index_dir / "uploads" / "markup_probe.txt").exists()
    page.mouse.click(5, 5)
    page.wait_for_timeout(600)  # let the dropdown list fade out
    shot(page, "11_documents_after_remove")
