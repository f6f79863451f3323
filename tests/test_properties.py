"""Property-based tests (hypothesis) over every loader, the normalizer and the segmenter.

Inputs: arbitrary Unicode mixed with Arabic, Latin, digits in both sets, bidi controls, zero-width and
control characters, combining marks and line breaks; arbitrary bytes under every supported suffix;
valid files (text, HTML, PDF, .docx, a web page) truncated or with bytes flipped at arbitrary places.

Properties: nothing raises except a ``DocumentError`` (with the file and a reason); every chunk of
every document that loads satisfies ``document.text[chunk.start:chunk.end] == chunk.text``, with its
sentences inside it, and a search over the indexed result quotes exactly ``text[start:end]``.

How many inputs a run tries: each test's ``max_examples`` (below, ``EXAMPLES``): 4,740 generated
inputs per run (the "segment" budget serves two tests), in about 30 s on this machine. The
database of failing examples is off (``database=None``) so runs do not write into the tree.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from assistant.text.dates import date_from_text, parse_date  # noqa: E402
from assistant.errors import DocumentError  # noqa: E402
from assistant.ingest.html import html_to_text  # noqa: E402
from assistant.ingest.loaders import load_document  # noqa: E402
from assistant.text.normalize import clean_for_embedding, detect_language, fold, tokenize  # noqa: E402
from assistant.ingest.ocr import clean_ocr_text, tsv_to_text  # noqa: E402
from assistant.records import Document  # noqa: E402
from assistant.ingest.chunking import chunk_document
from assistant.text.sentences import split_sentences  # noqa: E402
from assistant.ingest.web import Fetcher, Response, WebPage, load_web_page, url_doc_id  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"

EXAMPLES = {
    "segment": 800, "normalize": 500, "html": 400, "dates": 400, "ocr_text": 200, "url_ids": 300,
    "bytes": 400, "truncated": 400, "web": 200, "citations": 40, "url_checks": 300,
}
assert sum(EXAMPLES.values()) == 3940  # "segment" runs twice (two tests): 4,740 generated inputs in all


@pytest.fixture(scope="module", autouse=True)
def _no_ocr():
    """A damaged PDF page often loses its text; with OCR installed each such page would cost seconds of
    Tesseract. OCR has its own tests (test_ocr.py), so here it is reported as not installed."""
    import assistant.ingest.ocr

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assistant.ingest.ocr, "ocr_unavailable_reason", lambda: "OCR is not available (disabled in this test)")
        yield


def _settings(name: str):
    return settings(max_examples=EXAMPLES[name], deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


# Text that exercises what news text throws at us: both scripts, both digit sets, punctuation of both,
# bidi marks/embeddings/isolates, zero-width joiners, tatweel and harakat, C0 controls, CR/LF/U+2028.
SPECIAL = list("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d\ufeff\u0640"
               "\u064b\u064e\u0651\u0652\u0670\x00\x01\x07\x0b\x0c\x1b\x7f\r\n\t\u2028\u2029\u00a0.؟?!،,؛:«»\"'()[]")
NEWS_WORDS = ["الأمم", "المتحدة", "طرابلس", "وقف", "إطلاق", "النار", "٢٠٢٠", "95", "كيلومترا", "Tripoli", "UN",
              "ceasefire", "said", "Dr.", "U.S.", "km", "5 June 2020", "الجمعة 5 حزيران 2020", "...", "—"]
text_strategy = st.lists(
    st.one_of(st.sampled_from(NEWS_WORDS), st.sampled_from(SPECIAL), st.text(min_size=1, max_size=12),
              st.sampled_from([" ", " ", "\n", "\n\n", ". ", "؟ "])),
    max_size=120,
).map("".join)


def _check_chunks(doc: Document, target: int = 120, max_chars: int = 200) -> None:
    for chunk in chunk_document(doc, target, max_chars):
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert chunk.text.strip()
        for start, end in chunk.sentences:
            assert chunk.start <= start < end <= chunk.end
        if doc.pages:
            assert chunk.page is not None and 1 <= chunk.page <= len(doc.pages)


def _doc(text: str, pages: tuple[tuple[int, int], ...] = ()) -> Document:
    return Document(doc_id="d", title="t", source="s", text=text, content_hash="h", pages=pages)


@_settings("segment")
@given(text=text_strategy, target=st.integers(20, 400))
def test_every_chunk_is_its_exact_span(text, target):
    _check_chunks(_doc(text), target, target + 150)
    for sentence in split_sentences(text):
        start, end = sentence.start, sentence.end
        assert 0 <= start <= end <= len(text)


@_settings("segment")
@given(parts=st.lists(text_strategy, min_size=1, max_size=4))
def test_chunks_of_paged_documents_know_their_page(parts):
    text = "\n\n".join(parts)
    spans, offset = [], 0
    for part in parts:
        spans.append((offset, offset + len(part)))
        offset += len(part) + 2
    _check_chunks(_doc(text, tuple(spans)))


@_settings("normalize")
@given(text=text_strategy)
def test_normalizer_takes_anything(text):
    folded = fold(text)
    assert isinstance(folded, str)
    assert all(isinstance(t, str) and t for t in tokenize(text))
    assert detect_language(text) in ("ar", "en")
    assert isinstance(clean_for_embedding(text), str)


@_settings("html")
@given(body=st.lists(st.one_of(text_strategy, st.sampled_from(
    ["<p>", "</p>", "<div hidden>", "</div>", "<script>", "</script>", "<!--", "-->", "<br/>", "<h1>", "</h1>",
     "<nav>", "</nav>", "<", ">", "&amp;", "&#x202E;", "<![CDATA[", "]]>", "<style>", "<td>", "</tr>"])), max_size=60))
def test_html_to_text_takes_any_markup(body):
    text, title = html_to_text("".join(body))
    assert isinstance(text, str) and isinstance(title, str)
    _check_chunks(_doc(text))


@_settings("dates")
@given(text=text_strategy)
def test_dates_are_valid_or_empty(text):
    for found in (parse_date(text), date_from_text(text)):
        assert found == "" or (len(found) == 10 and found[4] == found[7] == "-")


@_settings("ocr_text")
@given(raw=text_strategy, rows=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 3), st.integers(-5, 3000),
                                                  st.integers(-5, 3000), text_strategy), max_size=30))
def test_ocr_text_cleaning_takes_anything(raw, rows):
    assert "\n\n" not in clean_ocr_text(raw)
    tsv = "level\tpage\tblock\tpar\tline\tword\tleft\ttop\twidth\theight\tconf\ttext\n" + "\n".join(
        f"5\t1\t{b}\t{p}\t{b * 10 + p}\t1\t{left}\t0\t{width}\t10\t90\t{word.replace(chr(9), ' ').replace(chr(10), ' ')}"
        for b, p, left, width, word in rows)
    assert isinstance(clean_ocr_text(tsv_to_text(tsv)), str)


@_settings("url_ids")
@given(url=st.text(max_size=80).map(lambda s: "https://example.com/" + s))
def test_url_ids_are_safe(url):
    doc_id = url_doc_id(url)
    assert doc_id and not set(doc_id) & set(";|&$`<>*?'\"!\\ \n\t")


# -- loaders ---------------------------------------------------------------------------------------------


def _load_or_refuse(path: Path) -> None:
    try:
        doc = load_document(path)
    except DocumentError as exc:
        assert exc.path == str(path) and exc.reason and "\n" not in exc.reason
        return
    _check_chunks(doc)


SUFFIXES = [".txt", ".md", ".html", ".pdf", ".docx"]


@_settings("bytes")
@given(data=st.one_of(st.binary(max_size=3000), text_strategy.map(lambda t: t.encode("utf-8", "surrogatepass")),
                      text_strategy.map(lambda t: t.encode("utf-16"))),
       suffix=st.sampled_from(SUFFIXES))
def test_any_bytes_under_any_suffix_load_or_are_refused(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("bytes") / f"input{suffix}"
    path.write_bytes(data)
    _load_or_refuse(path)


def _docx_bytes() -> bytes:
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_heading("عنوان الخبر", level=1)
    document.add_paragraph("وقال المتحدث إن الاجتماع سيعقد في طرابلس. The meeting is in Tripoli.")
    table = document.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text = "مدينة"
    table.rows[1].cells[1].text = "95 km"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


VALID = {
    ".txt": (SEEDS / "004_dfbf6940fa5a6b70.txt").read_bytes(),
    ".html": (DATA / "arabic_chromium.html").read_bytes(),
    ".pdf": (DATA / "arabic_chromium.pdf").read_bytes(),
}


@_settings("truncated")
@given(suffix=st.sampled_from([".txt", ".html", ".pdf", ".docx"]), cut=st.floats(0.0, 1.0),
       flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=4))
def test_truncated_or_damaged_files_load_or_are_refused(tmp_path_factory, suffix, cut, flips):
    original = _docx_bytes() if suffix == ".docx" else VALID[suffix]
    data = bytearray(original[: int(len(original) * cut)])
    for where, value in flips:
        if data:
            data[min(int(len(data) * where), len(data) - 1)] = value
    path = tmp_path_factory.mktemp("cut") / f"input{suffix}"
    path.write_bytes(bytes(data))
    _load_or_refuse(path)


class _CannedFetcher(Fetcher):
    """A fetcher that answers every URL with the given HTML: the network is the only thing faked; the
    extraction (trafilatura, dates, offsets) is the real one."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def fetch(self, url: str, **kwargs) -> Response:
        return Response(url, 200, "text/html", self.body, None)


@_settings("web")
@given(body=st.lists(st.one_of(text_strategy, st.sampled_from(
    ["<html>", "<body>", "<article>", "</article>", "<p>", "</p>", "<nav>", "</nav>", "<h1>", "</h1>",
     '<meta property="article:published_time" content="2020-06-05">', "<div class=comments>", "</div>"])),
    max_size=60).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")))
def test_any_web_page_loads_or_is_refused(body):
    try:
        doc = load_web_page(WebPage("https://news.example/a", _CannedFetcher(body)))
    except DocumentError as exc:
        assert exc.path == "https://news.example/a" and exc.reason
        return
    assert doc.source == "https://news.example/a" and doc.kind == "web"
    _check_chunks(doc)


def test_truncated_zip_that_claims_to_be_docx_names_the_file(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<not-xml")
    path = tmp_path / "broken.docx"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DocumentError) as info:
        load_document(path)
    assert info.value.path == str(path) and "damaged" in info.value.reason


@_settings("citations")
@given(text=text_strategy.filter(lambda t: any(ch.isalpha() for ch in t)), suffix=st.sampled_from([".txt", ".md"]))
def test_search_over_any_ingested_text_quotes_exact_spans(tmp_path_factory, text, suffix):
    from assistant import Assistant

    folder = tmp_path_factory.mktemp("cite")
    path = folder / f"doc{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    assistant = Assistant(folder / "index", embedder="hash")
    report = assistant.ingest([path])
    if not report.added:
        assert report.skipped and report.skipped[0][0] == str(path)
        return
    word = next((t for t in text.split() if any(ch.isalpha() for ch in t)), "x")
    try:
        hits = assistant.search(word, k=3).hits
    except Exception as exc:  # a query of only punctuation is refused with a QuestionError
        from assistant.errors import QuestionError

        assert isinstance(exc, QuestionError)
        return
    document = assistant.document("doc")
    for hit in hits:
        assert document.text[hit.chunk.start : hit.chunk.end] == hit.chunk.text
        assert document.text[hit.best_start : hit.best_end] == hit.best_text


@_settings("url_checks")
@given(scheme=st.sampled_from(["http", "https", "HTTP", "file", "ftp", "javascript", "data", "gopher"]),
       address=st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
                         st.sampled_from(["localhost", "", "127.1", "0", "[::ffff:127.0.0.1]"])),
       rest=st.text(max_size=30))
def test_the_url_check_lets_through_only_public_http(scheme, address, rest):
    """No DNS here: hosts are address literals or localhost (from /etc/hosts)."""
    import ipaddress

    from assistant.errors import FetchError
    from assistant.ingest.web import FetchPolicy

    url = f"{scheme}://{address}/{rest}"
    try:
        parts = Fetcher(FetchPolicy()).check_url(url)
    except FetchError as exc:
        assert exc.path == url and exc.reason
        return
    assert parts.scheme.lower() in ("http", "https")
    ip = ipaddress.ip_address(parts.hostname)
    assert ip.is_global and not ip.is_multicast
