"""A small news site on 127.0.0.1 for the web ingest tests: two saved articles (with navigation, share
buttons, comments and "read also" lists), a feed, a sitemap, robots.txt, and pages that misbehave."""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
EN_ARTICLE = "/en/2021/03/benghazi-bridge-reopens.html"
AR_ARTICLE = "/ar/2020/06/tobruk-desalination.html"
OLD_AR_ARTICLE = "/archive/2009/04/ghadames-festival.html"
SLOW_SECONDS = 3.0
HUGE_BYTES = 3 * 1024 * 1024


@dataclass
class Site:
    """The running site: its base URL, the pages it serves (editable by a test), and the request log."""

    base: str
    pages: dict[str, tuple[str, bytes]]
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, user agent)

    def url(self, path: str) -> str:
        return self.base + path


def _feed(base: str) -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>{base}{path}</link><pubDate>{date}</pubDate></item>"
        for title, path, date in [
            ("Benghazi bridge reopens to traffic after two years", EN_ARTICLE, "Thu, 18 Mar 2021 07:30:00 GMT"),
            ("تشغيل محطة تحلية المياه الجديدة في طبرق", AR_ARTICLE, "Fri, 05 Jun 2020 08:00:00 GMT"),
        ]
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Coastal news</title>'
            f"<link>{base}/</link><description>test feed</description>{items}</channel></rss>").encode("utf-8")


def _sitemap(base: str) -> bytes:
    urls = "".join(f"<url><loc>{base}{p}</loc></url>" for p in (EN_ARTICLE, AR_ARTICLE, "/private/memo.html"))
    return (f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{urls}</urlset>").encode("utf-8")


def _old_arabic_page() -> bytes:
    html = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1256">'
            "<title>مهرجان غدامس السياحي</title></head><body><div id=menu><a href=/>الرئيسية</a></div>"
            "<h1>مهرجان غدامس السياحي يستقبل زواره</h1><p>الأحد 12 نيسان 2009</p>"
            "<p>انطلقت فعاليات مهرجان غدامس السياحي في دورته الثانية والعشرين بمشاركة فرق فنية من تونس والجزائر "
            "والنيجر، وسط حضور لافت من الزوار الأجانب الذين قدموا لمشاهدة المدينة القديمة.</p>"
            "<p>وقال رئيس اللجنة المنظمة إن المهرجان يستمر ثلاثة أيام ويتضمن عروضا للفروسية وسباقات للهجن.</p>"
            "</body></html>")
    return html.encode("cp1256")


class _Handler(BaseHTTPRequestHandler):
    site: Site
    protocol_version = "HTTP/1.0"  # close-delimited bodies: the huge page sends no Content-Length

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        site = self.site
        site.requests.append((self.path, self.headers.get("User-Agent", "")))
        path = self.path
        if path == "/status/404":
            return self._send(404, "text/html", b"<h1>Not found</h1>")
        if path == "/status/500":
            return self._send(500, "text/html", b"<h1>Internal error</h1>")
        if path in ("/loop/a", "/loop/b"):
            return self._redirect("/loop/b" if path == "/loop/a" else "/loop/a")
        if path == "/to-file":
            return self._redirect("file:///etc/passwd")
        if path == "/moved":
            return self._redirect(EN_ARTICLE, 301)
        if path == "/slow":
            time.sleep(SLOW_SECONDS)
            return self._send(200, "text/html", b"<p>too late</p>")
        if path == "/huge":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            block = b"<p>" + b"filler words " * 1000 + b"</p>\n"
            sent = 0
            try:
                while sent < HUGE_BYTES:
                    self.wfile.write(block)
                    sent += len(block)
            except (BrokenPipeError, ConnectionResetError):  # the client stopped reading at its cap
                pass
            return None
        if path in site.pages:
            content_type, body = site.pages[path]
            return self._send(200, content_type, body)
        return self._send(404, "text/html", b"<h1>Not found</h1>")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _redirect(self, location: str, status: int = 302) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


def start_site() -> tuple[Site, ThreadingHTTPServer]:
    """Start the site on a free port of 127.0.0.1; the caller shuts the server down."""
    handler = type("Handler", (_Handler,), {})  # one class per server, so two sites never share pages
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    html = "text/html; charset=utf-8"
    site = Site(base, {
        "/robots.txt": ("text/plain", b"User-agent: *\nDisallow: /private/\n"),
        EN_ARTICLE: (html, (HERE / "en_article.html").read_bytes()),
        AR_ARTICLE: (html, (HERE / "ar_article.html").read_bytes()),
        "/private/memo.html": (html, b"<html><body><p>An internal memo nobody should crawl.</p></body></html>"),
        "/feed.xml": ("application/rss+xml", _feed(base)),
        "/sitemap.xml": ("application/xml", _sitemap(base)),
        "/report.pdf": ("application/pdf", b"%PDF-1.4\n%%EOF\n"),
        "/not-a-feed.xml": ("application/xml", b"<html><body>hello</body></html>"),
        "/sitemap.xml.gz": ("application/gzip", gzip.compress(_sitemap(base))),
        # An old Arabic site: Windows-1256 bytes, the charset only in a <meta> tag, not in the header.
        OLD_AR_ARTICLE: ("text/html", _old_arabic_page()),
    })
    handler.site = site
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return site, server
