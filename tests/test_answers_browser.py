"""Issue 13 in the real app (``python app.py``) in headless Chromium: answers, partial answers, abstentions.

Starts the app with an empty temporary index (it indexes ``seeds/`` on first start with the real offline
model), then:

1. uploads an English wire article through the Documents tab and asks about it in English and in Arabic:
   each answer quotes the article with a ``[1]`` marker and lists it under Sources;
2. asks an Arabic question no document answers ("ما عدد سكان طوكيو؟"): the answer is declined (or
   partial), never framed as a normal answer, and the page shows it as such;
3. asks "When did he say it?" after "What did Guterres say about Libya?": the statement has no date in the
   sources, and the answer says so first.

Screenshots of each answer go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ui_support.browser import app_page, ask, open_tab, upload
from ui_support.server import CHROMIUM, ROOT, SCREENSHOTS, running_app

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

pytest.importorskip("playwright.sync_api")

FIRST_ANSWER_MS = 120_000  # the first question also loads the model's query side; the machine is busy
ANSWER_MS = 90_000

ARTICLE_ID = "zliten_bridge"
ARTICLE = """New bridge over Wadi Kaam opens in Zliten

ZLITEN, Libya (Coastal News Agency) - A new road bridge over Wadi Kaam opened to traffic on Sunday in Zliten, \
ending a detour of more than 40 minutes for drivers travelling between the town and the coastal highway.

The bridge was built by the Sahel Construction Company, a contractor from Misrata, at a cost of 38 million \
dinars, the municipal council said. It is 420 metres long and carries two lanes in each direction.

The old crossing was washed away by floods two winters ago, and since then trucks carrying produce to the \
markets of Zliten had to use a narrow farm track through the valley.

The head of the municipal council said the bridge would also carry a water pipeline to the eastern districts \
of the town, to be connected next year. Engineers will inspect the structure again before the next rainy season.
"""
# The sentence that answers both questions below.
ANSWER_SENTENCE = ("The bridge was built by the Sahel Construction Company, a contractor from Misrata, at a cost of "
                   "38 million dinars, the municipal council said.")
EN_QUESTION = "Which company built the new bridge in Zliten?"
AR_QUESTION = "ما الشركة التي بنت الجسر الجديد في زليتن؟"  # company, built, bridge, Zliten (زليتن ↔ Zliten)
UNANSWERABLE_AR = "ما عدد سكان طوكيو؟"  # no document mentions Tokyo

AR_INTRO = "وفقًا للمصادر المفهرسة"
EN_INTRO = "The indexed sources say"
AR_ABSTAIN = "لا يبدو أن الوثائق المفهرسة تجيب عن هذا السؤال"
EN_ABSTAIN = "The indexed documents do not appear to answer this question"
AR_PARTIAL = "إجابة جزئية"
NO_DATE = "Partial answer: the sources found do not give a date"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    base = tmp_path_factory.mktemp("answers_browser")
    with running_app(base / "index", ROOT / "artifacts" / "logs" / "answers_browser_app.log", timeout=300) as running:
        yield running


@pytest.fixture()
def page(app, browser):
    """A fresh page (own browser context: no stored conversation) on the app, once the seeds are indexed."""
    with app_page(browser, app.url, timeout=120_000) as page:
        yield page


# -- small helpers, as in test_ui_browser.py (screenshots only into artifacts/) --------------------------------
def shot(page, name: str, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def answer_text(turn) -> str:
    return turn.locator(".answer").inner_text().strip()


def assert_cited_answer_from_article(turn, intro: str, abstain: str) -> None:
    """A normal answer: intro, a [1] marker linked to a source, the article's sentence quoted and highlighted."""
    text = answer_text(turn)
    assert text.startswith(intro), text
    assert abstain not in text, text
    assert "[1]" in text, text
    assert "Sahel Construction Company" in text, f"the answer quotes the article's sentence:\n{text}"
    assert "abstained" not in (turn.get_attribute("class") or "")
    assert turn.locator(".notice.missing").count() == 0, "not a partial answer"
    assert turn.locator(".answer a.cite").count() >= 1, "[n] markers link to their sources"
    sources = turn.locator(".sources:not(.closest) .src")
    assert sources.count() >= 1
    from_article = turn.locator(".sources:not(.closest) .src", has=turn.page.locator("bdi.doc-id", has_text=ARTICLE_ID))
    assert from_article.count() >= 1, f"the uploaded article is among the sources:\n{turn.locator('.sources').inner_text()}"
    quotes = [m.strip() for m in from_article.locator("mark.evidence").all_inner_texts()]
    assert ANSWER_SENTENCE in quotes, f"a source shows the article's answering sentence as its quote: {quotes}"
    first = turn.locator(".answer a.cite").first.get_attribute("href")
    assert turn.locator(first).count() == 1, f"marker {first} has its source entry"


def test_uploaded_english_article_is_answered_with_citations_in_english_and_arabic(page, tmp_path):
    article = tmp_path / f"{ARTICLE_ID}.txt"
    article.write_text(ARTICLE, encoding="utf-8")
    status = upload(page, [article], timeout=180_000)
    assert f"Added: {ARTICLE_ID}" in status, status
    page.locator("#docs-table").get_by_text(ARTICLE_ID, exact=True).wait_for(timeout=30_000)

    open_tab(page, "Ask")
    en = ask(page, EN_QUESTION, 1, timeout=FIRST_ANSWER_MS)
    assert en.get_attribute("lang") == "en" and en.get_attribute("dir") == "ltr"
    assert_cited_answer_from_article(en, EN_INTRO, EN_ABSTAIN)
    shot(page, "30_uploaded_article_english_answer")

    ar = ask(page, AR_QUESTION, 2, timeout=ANSWER_MS)
    assert ar.get_attribute("lang") == "ar" and ar.get_attribute("dir") == "rtl"
    assert_cited_answer_from_article(ar, AR_INTRO, AR_ABSTAIN)
    shot(page, "31_uploaded_article_arabic_answer")


def test_arabic_question_no_document_answers_is_declined_not_answered(page):
    turn = ask(page, UNANSWERABLE_AR, 1, timeout=FIRST_ANSWER_MS)
    shot(page, "32_unanswerable_arabic_question")
    assert turn.get_attribute("lang") == "ar" and turn.get_attribute("dir") == "rtl"
    text = answer_text(turn)
    assert text, "an answer is shown"
    assert not text.startswith(AR_INTRO), f"framed as a normal answer:\n{text}"
    classes = turn.get_attribute("class") or ""
    if "abstained" in classes:  # declined: the abstention text, and only the closest passages, unhighlighted
        assert text.startswith(AR_ABSTAIN), text
        assert turn.locator(".sources:not(.closest)").count() == 0, "no cited sources under an abstention"
        assert turn.locator(".answer a.cite").count() == 0, "no [n] markers"
        if turn.locator(".sources.closest").count():
            closest = turn.locator(".sources.closest")
            assert "أقرب المقاطع" in closest.locator(".sources-title").inner_text()
            assert closest.locator("mark.evidence").count() == 0, "nothing highlighted as evidence"
    else:  # partial: says first what the sources lack, and the page names it
        assert text.startswith(AR_PARTIAL), f"neither declined nor partial:\n{text}"
        notice = turn.locator(".notice.missing")
        assert notice.count() == 1, "a partial answer shows what is missing"
        assert "لم يرد في المصادر" in notice.inner_text() and "طوكيو" in notice.inner_text(), notice.inner_text()


def test_when_followup_on_undated_statement_says_no_date_is_given(page):
    first = ask(page, "What did Guterres say about Libya?", 1, timeout=FIRST_ANSWER_MS)
    assert answer_text(first).startswith(EN_INTRO), answer_text(first)
    assert first.locator(".sources:not(.closest) .src").count() >= 1
    shot(page, "33_guterres_libya_answer")

    followup = ask(page, "When did he say it?", 2, timeout=ANSWER_MS)
    page.wait_for_timeout(300)
    shot(page, "34_when_followup_no_date")
    text = answer_text(followup)
    assert text.startswith(NO_DATE), f"the follow-up should say first that no date is given:\n{text}"
    assert "abstained" not in (followup.get_attribute("class") or "")
    notice = followup.locator(".notice.missing")
    assert notice.count() == 1 and "Not found in the sources" in notice.inner_text(), \
        "the page marks the answer as partial"
    assert "date" in notice.inner_text(), notice.inner_text()
    # what the sources do say about the statement is still quoted and cited
    assert "[1]" in text
    assert followup.locator(".sources:not(.closest) .src").count() >= 1
    assert "002_2e4142b64e532d54" in followup.locator(".sources:not(.closest)").inner_text(), \
        "the Guterres article is cited"
