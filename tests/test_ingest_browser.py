"""The new ingestion sources through the real app in headless Chromium: a feed and a web article added by
URL in the Documents tab, a Word file and a scanned PDF uploaded, then a question about each answered
with a citation to it. Screenshots go to ``artifacts/screenshots/``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from assistant.ingest.ocr import ocr_unavailable_reason
from assistant.ingest.web import url_doc_id
from ui_support.browser import app_page, ask, open_tab, upload
from ui_support.server import CHROMIUM, ROOT, running_app
from web_support.server import AR_ARTICLE, start_site

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
pytest.importorskip("playwright.sync_api")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from test_docx import make_docx  # noqa: E402
from test_ocr import EN_PARAGRAPHS, make_scanned_statement  # noqa: E402
from test_ui_browser import shot  # noqa: E402

ZAWIYA = ["أعلنت الشركة العامة للكهرباء تشغيل الوحدة الثالثة في محطة الزاوية الغازية بقدرة مئة وخمسين ميغاواط، "
          "بعد أعمال صيانة استمرت أربعة أشهر.",
          "وقال مدير المحطة إن الوحدة الجديدة ستخفف ساعات انقطاع الكهرباء في المنطقة الغربية خلال الصيف."]


@pytest.fixture(scope="module")
def site():
    site, server = start_site()
    yield site
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    base = tmp_path_factory.mktemp("ingest_browser")
    # The test site is on 127.0.0.1, which the app refuses to fetch unless told otherwise.
    previous = os.environ.get("ASSISTANT_ALLOW_PRIVATE_URLS")
    os.environ["ASSISTANT_ALLOW_PRIVATE_URLS"] = "1"
    try:
        with running_app(base / "index", ROOT / "artifacts" / "logs" / "ingest_browser_app.log") as running:
            yield running
    finally:
        if previous is None:
            os.environ.pop("ASSISTANT_ALLOW_PRIVATE_URLS", None)
        else:
            os.environ["ASSISTANT_ALLOW_PRIVATE_URLS"] = previous


@pytest.fixture()
def page(app, browser):
    with app_page(browser, app.url, timeout=120_000) as page:
        yield page


def add_urls(page, text: str, kind_label: str) -> str:
    open_tab(page, "Documents")
    status = "#ingest-status .ingest-status"
    before = page.locator(status).inner_text() if page.locator(status).count() else ""
    page.locator("#url-input textarea").fill(text)
    page.locator("#url-kind").get_by_text(kind_label, exact=True).click()
    page.locator("#url-btn").click()
    page.wait_for_function(
        "([sel, before]) => { const s = document.querySelector(sel); return s && s.innerText.trim() && s.innerText !== before; }",
        arg=[status, before], timeout=120_000)
    return page.locator(status).inner_text()


def test_feed_url_docx_and_scan_each_end_in_a_cited_answer(page, site, tmp_path):
    status = add_urls(page, site.url("/feed.xml"), "RSS/Atom feed")
    assert "2 added" in status, status
    status = add_urls(page, f"{site.url('/status/404')}\n{site.url(AR_ARTICLE)}", "Articles")
    assert "unchanged" in status and "HTTP 404 Not Found" in status, status
    shot(page, "20_documents_by_url")
    files = [make_docx(tmp_path / "bulletin.docx")]
    if ocr_unavailable_reason() is None:
        files.append(make_scanned_statement(tmp_path / "statement.pdf", ZAWIYA, EN_PARAGRAPHS))
    status = upload(page, files)
    assert f"{len(files)} added" in status, status
    open_tab(page, "Ask")
    turn = 1
    checks = [("ما الطاقة الإنتاجية لمحطة تحلية المياه في طبرق؟", url_doc_id(site.url(AR_ARTICLE))),
              ("كم سريرا في مستشفى الأطفال الجديد في بنغازي؟", "bulletin")]
    if len(files) == 2:
        checks.append(("ما قدرة الوحدة الثالثة في محطة الزاوية الغازية؟", "statement"))
    for question, doc_id in checks:
        answer = ask(page, question, turn, timeout=90_000)
        assert answer.locator(".src").count() >= 1
        assert doc_id in answer.inner_text(), (question, answer.inner_text())
        turn += 1
    shot(page, "21_answers_from_url_docx_scan")
