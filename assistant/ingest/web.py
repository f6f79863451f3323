"""Web articles, RSS/Atom feeds and sitemaps as ingest sources.

``Fetcher`` is the only code that opens a network connection. It is polite and safe by default:

* a total time limit per request (``timeout``: connecting, waiting and reading, so a page that
  trickles bytes is cut off too) and a size cap (``max_bytes``, checked on ``Content-Length`` and
  while reading);
* a user agent that names the tool (``USER_AGENT``), and robots.txt honoured for it (RFC 9309: a
  missing robots.txt allows everything, one that fails with a server error disallows everything);
* at most ``per_host_rate`` requests per second to one host (or the host's ``Crawl-delay``, if slower);
* redirects followed by hand, at most ``max_redirects``, each hop checked again: only ``http``/``https``,
  and never to a private, loopback, link-local or reserved address unless ``allow_private`` (so a
  public page cannot bounce the fetcher onto the newsroom's intranet or a cloud metadata service).
  The check is on the addresses the host name resolves to when the request is made.

``WebPage``, ``Feed`` and ``Sitemap`` are the items ``Assistant.ingest`` accepts next to file paths
(a plain ``"https://..."`` string becomes a ``WebPage`` with the default policy); ``expand_web``
turns a feed or a sitemap into the pages it lists, and ``load_web_page`` fetches one page and
extracts it with trafilatura (body without navigation, share buttons, comments or "read also"
lists; title, author, site, and the publication date from the markup through htmldate, else a dated
first line, else the date the feed gave) into a
``Document`` whose ``source`` is the URL and whose ``content_hash`` is the hash of the fetched HTML,
so re-fetching an unchanged article changes nothing.

Every failure is a ``FetchError``/``RefusedURLError`` (``DocumentError`` subclasses) whose ``path``
is the URL and whose ``reason`` is one line, so a batch skips the page and reports it.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
import urllib.parse
import urllib.robotparser
from dataclasses import dataclass, field
from typing import Union

from assistant.text.dates import date_from_text, iso_date_or_empty
from assistant.errors import EmptyDocumentError, FetchError, MissingDependencyError
from assistant.records import Document
from assistant.ingest.fetch import (
    HTML_TYPES,
    MB,
    USER_AGENT,
    XML_TYPES,
    FetchPolicy,
    Fetcher,
    Response,
    default_fetcher,
    is_url,
    normalize_url,
    url_doc_id,
)

__all__ = [
    "USER_AGENT", "FetchPolicy", "Fetcher", "Response", "WebPage", "Feed", "Sitemap", "WebItem",
    "is_url", "url_doc_id", "expand_web", "load_web_page", "default_fetcher",
]


@dataclass(frozen=True)
class WebPage:
    """One article URL to ingest. ``hints`` are metadata from the feed that listed it (used when the
    page itself lacks them): ``published``, ``author``, ``title``."""

    url: str
    fetcher: Fetcher = field(default_factory=default_fetcher, compare=False, repr=False)
    hints: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True)
class Feed:
    """An RSS or Atom feed: every item's link is ingested."""

    url: str
    fetcher: Fetcher = field(default_factory=default_fetcher, compare=False, repr=False)

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True)
class Sitemap:
    """An XML sitemap (or sitemap index): every page it lists is ingested."""

    url: str
    fetcher: Fetcher = field(default_factory=default_fetcher, compare=False, repr=False)

    def __str__(self) -> str:
        return self.url


WebItem = Union[WebPage, Feed, Sitemap]


def expand_web(item: WebItem | str) -> tuple[list[WebPage], list[tuple[str, str]]]:
    """The pages an item stands for, plus ``(url, reason)`` for what could not be used.

    A URL string or a ``WebPage`` is itself; a ``Feed`` or ``Sitemap`` is fetched and its links listed
    (at most ``max_urls``, duplicates dropped, each link later checked like any URL).
    """
    if isinstance(item, str):
        item = WebPage(item.strip())
    if isinstance(item, WebPage):
        return [item], []
    try:
        if isinstance(item, Feed):
            pages = _feed_pages(item)
        else:
            pages = _sitemap_pages(item, item.url, depth=0)
    except FetchError as exc:
        return [], [(exc.path, exc.reason)]
    unique: dict[str, WebPage] = {}
    for page in pages:
        unique.setdefault(normalize_url(page.url), page)
    pages = list(unique.values())
    problems: list[tuple[str, str]] = []
    limit = item.fetcher.policy.max_urls
    if len(pages) > limit:
        problems.append((item.url, f"lists {len(pages)} pages; only the first {limit} were taken (--max-urls)"))
        pages = pages[:limit]
    if not pages:
        problems.append((item.url, "lists no pages"))
    return pages, problems


def _feed_pages(item: Feed) -> list[WebPage]:
    try:
        import feedparser
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingDependencyError("feedparser", purpose="reading RSS/Atom feeds") from exc
    response = item.fetcher.fetch(item.url, accept=XML_TYPES + HTML_TYPES + ("text/plain",), what="a feed")
    parsed = feedparser.parse(response.body, response_headers={"content-location": response.url,
                                                                "content-type": response.content_type})
    if not parsed.entries:
        detail = f" ({parsed.bozo_exception})" if parsed.get("bozo") and parsed.get("bozo_exception") else ""
        raise FetchError(item.url, f"not an RSS or Atom feed, or a feed with no items{detail}")
    pages = []
    for entry in parsed.entries:
        link = entry.get("link") or ""
        if not link:
            continue
        published = ""
        for key in ("published_parsed", "updated_parsed"):
            value = entry.get(key)
            if value:
                published = time.strftime("%Y-%m-%d", value)
                break
        hints = tuple((k, v) for k, v in (("published", published), ("author", entry.get("author", "")),
                                            ("title", entry.get("title", ""))) if v)
        pages.append(WebPage(urllib.parse.urljoin(response.url, link), item.fetcher, hints))
    return pages


_SITEMAP_NS = re.compile(r"^\{[^}]*\}")
_GZIP_TYPES = ("application/gzip", "application/x-gzip", "application/octet-stream")


def _gunzip(url: str, data: bytes, limit: int) -> bytes:
    """Decompress a gzipped sitemap, refusing one that inflates past ``limit`` bytes (a gzip bomb)."""
    import gzip
    import io
    import zlib

    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise FetchError(url, f"the gzipped sitemap is damaged ({exc})") from exc
    if len(out) > limit:
        raise FetchError(url, f"the gzipped sitemap unpacks to more than {limit / MB:g} MB (--max-page-mb)")
    return out


def _sitemap_pages(item: Sitemap, url: str, depth: int) -> list[WebPage]:
    import xml.etree.ElementTree as ET

    response = item.fetcher.fetch(url, accept=XML_TYPES + _GZIP_TYPES + ("text/plain",), what="a sitemap")
    body = response.body
    if body[:2] == b"\x1f\x8b":  # sitemap.xml.gz, as the sitemaps protocol allows
        body = _gunzip(url, body, item.fetcher.policy.max_bytes)
    if b"<!ENTITY" in body[:4096]:  # entity tricks (billion laughs) have no place in a sitemap
        raise FetchError(url, "the sitemap declares XML entities; refused")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise FetchError(url, f"not an XML sitemap ({exc})") from exc
    tag = _SITEMAP_NS.sub("", root.tag)
    locs = [(el.text or "").strip() for el in root.iter() if _SITEMAP_NS.sub("", el.tag) == "loc"]
    locs = [urllib.parse.urljoin(response.url, loc) for loc in locs if loc]
    if tag == "sitemapindex":
        if depth >= 2:
            raise FetchError(url, "sitemap indexes nested too deep")
        pages: list[WebPage] = []
        for child in locs:
            pages.extend(_sitemap_pages(item, child, depth + 1))
            if len(pages) > item.fetcher.policy.max_urls:
                break
        return pages
    if tag != "urlset":
        raise FetchError(url, f"not an XML sitemap (root element <{tag}>, expected <urlset> or <sitemapindex>)")
    return [WebPage(loc, item.fetcher) for loc in locs]


# --------------------------------------------------------------------------------------------------
# Extraction


def load_web_page(page: WebPage | str) -> Document:
    """Fetch one article and extract it into a ``Document`` (source = the URL, kind ``web``).

    Raises:
        RefusedURLError, FetchError: the page could not be fetched (the reason says why).
        EmptyDocumentError: the page holds no article text.
    """
    if isinstance(page, str):
        page = WebPage(page.strip())
    try:
        import trafilatura
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingDependencyError("trafilatura", purpose="extracting web articles") from exc
    url = page.url
    response = page.fetcher.fetch(url)
    markup = _decode(response)
    extracted = trafilatura.bare_extraction(markup, url=response.url, with_metadata=True, include_comments=False,
                                            include_tables=True, include_images=False, include_links=False,
                                            favor_precision=True,
                                            # Dates from markup only (meta tags, JSON-LD, <time>, the URL):
                                            # htmldate's extensive search guesses from any year in the page,
                                            # e.g. "2020-01-01" from a footer's "© 2020".
                                            date_extraction_params={"extensive_search": False, "original_date": True})
    body = (getattr(extracted, "text", None) or "") if extracted is not None else ""
    body = unicodedata.normalize("NFC", body).replace("\r\n", "\n").replace("\r", "\n")
    lines = [" ".join(line.split()) for line in body.split("\n")]
    body = "\n".join(line for line in lines if line)
    if not any(ch.isalnum() for ch in body):
        raise EmptyDocumentError(url, "the page has no article text that could be extracted")
    hints = dict(page.hints)
    title = " ".join((getattr(extracted, "title", None) or hints.get("title") or "").split())
    # The headline is part of what a reader cites; trafilatura usually keeps the <h1> in the body.
    text = body if not title or body.startswith(title) else f"{title}\n{body}"
    published = (iso_date_or_empty(getattr(extracted, "date", None)) or date_from_text(body)
                 or hints.get("published", ""))
    host = urllib.parse.urlsplit(response.url).hostname or ""
    return Document(
        doc_id=url_doc_id(url),
        title=title or _first_line(body),
        source=url,
        text=text,
        content_hash=hashlib.sha256(response.body).hexdigest(),
        added_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        kind="web",
        published=published,
        author=" ".join((getattr(extracted, "author", None) or hints.get("author") or "").split()),
        site=" ".join((getattr(extracted, "sitename", None) or host).split()),
    )


def _decode(response: Response) -> str:
    """The page's text: the header's charset, else the ``<meta charset>``, else UTF-8 (then cp1256 for
    old Arabic sites)."""
    body = response.body
    charsets = [response.charset] if response.charset else []
    meta = re.search(rb"<meta[^>]+charset\s*=\s*[\"']?([\w.:-]+)", body[:4096], re.I)
    if meta:
        charsets.append(meta.group(1).decode("ascii", "replace"))
    for charset in charsets + ["utf-8"]:
        try:
            return body.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("cp1256", "replace")


def _first_line(text: str) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= 120 else line[:100].rsplit(" ", 1)[0] + "…"
