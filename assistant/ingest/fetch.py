"""The one place that opens network connections: ``Fetcher`` under a ``FetchPolicy`` (time and size limits,
robots.txt, per-host rate, redirects checked hop by hop, private addresses refused), and URL helpers.
The rules are described in :mod:`assistant.ingest.web`."""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
import unicodedata
import urllib.parse
import urllib.robotparser
from dataclasses import dataclass
from typing import Callable

from assistant.errors import FetchError, RefusedURLError


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("assistant")
    except Exception:  # noqa: BLE001 - running from a source tree that was never installed
        return "0"


USER_AGENT = f"assistant-news-ingest/{_version()} (bilingual news assistant; honours robots.txt)"
# The token robots.txt rules are matched against ("User-agent: assistant-news-ingest").
ROBOTS_TOKEN = "assistant-news-ingest"
HTML_TYPES = ("text/html", "application/xhtml+xml")
XML_TYPES = ("application/rss+xml", "application/atom+xml", "application/xml", "text/xml", "application/rdf+xml")
MB = 1024 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchPolicy:
    """How the fetcher behaves. The defaults are for the public web; tests shorten the timeout and
    set ``allow_private`` to reach their server on 127.0.0.1.

    Attributes:
        timeout: Seconds for one request, all included (connect, wait, read).
        max_bytes: Largest body read; a bigger page is refused.
        per_host_rate: Requests per second to one host, at most.
        allow_private: Also fetch private, loopback and link-local addresses (intranet, localhost).
        max_redirects: Redirect hops followed before giving up (a loop ends here too).
        max_urls: Most pages taken from one feed or sitemap.
        user_agent: Sent with every request; names the tool.
    """

    timeout: float = 20.0
    max_bytes: int = 5 * MB
    per_host_rate: float = 1.0
    allow_private: bool = False
    max_redirects: int = 5
    max_urls: int = 500
    user_agent: str = USER_AGENT


@dataclass(frozen=True)
class Response:
    """A fetched body: the final URL after redirects, its status, content type and bytes."""

    url: str
    status: int
    content_type: str
    body: bytes
    charset: str | None = None


def is_url(item: object) -> bool:
    """Whether ``item`` is a string that names a URL (``scheme://...`` or ``file:``), not a file path."""
    return isinstance(item, str) and bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://|^file:", item.strip()))


def normalize_url(url: str) -> str:
    """``url`` with the scheme and host lowercased and the fragment dropped (``#comments`` is the same page)."""
    parts = urllib.parse.urlsplit(url.strip())
    return urllib.parse.urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def url_doc_id(url: str) -> str:
    """A stable, shell- and markup-safe document id for a URL: host, the last path segments, and a
    short hash of the whole URL (two pages with the same slug on different paths stay apart).

        >>> url_doc_id("https://www.example.com/news/2020/06/port-reopens.html")
        'example.com-2020-06-port-reopens-ebb6adae'
    """
    url = normalize_url(url)
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "web").removeprefix("www.")
    if parts.port:
        host += f"_{parts.port}"
    path = urllib.parse.unquote(parts.path)
    path = re.sub(r"\.(?:html?|php|aspx?)$", "", path, flags=re.I)
    segments = [s for s in path.split("/") if s][-3:]
    slug = "-".join(segments)
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in unicodedata.normalize("NFC", slug)
                   if unicodedata.category(ch)[0] != "C")
    slug = re.sub(r"-{2,}", "-", slug).strip("-.")[:60].rstrip("-.")
    digest = hashlib.sha1(url.encode("utf-8")).hexdigest()[:8]
    return "-".join(p for p in (host, slug, digest) if p)


class Fetcher:
    """Fetches URLs under a ``FetchPolicy`` (see the module docstring). Thread-safe.

    Args:
        policy: Limits and permissions.
        clock, sleep: Injected for tests of the rate limit; ``time.monotonic``/``time.sleep`` otherwise.
    """

    def __init__(self, policy: FetchPolicy | None = None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.policy = policy or FetchPolicy()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot: dict[str, float] = {}
        # site -> (parsed robots.txt, or None with the reason it could not be had and whether that allows all)
        self._robots: dict[str, tuple[urllib.robotparser.RobotFileParser | None, bool, str]] = {}
        self._robots_delay: dict[str, float] = {}

    # -- checks -------------------------------------------------------------------------------------
    def check_url(self, url: str) -> urllib.parse.SplitResult:
        """Refuse what must not be fetched: another scheme, no host, or a private address.

        Raises:
            RefusedURLError: with the reason and, for private addresses, how to allow them.
        """
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "file":
            raise RefusedURLError(url, "file: URLs are not fetched (a web page could use one to read local files); "
                                       "give the file's path instead")
        if scheme not in ("http", "https"):
            raise RefusedURLError(url, f"only http and https URLs are fetched, not {scheme or 'a URL without a scheme'}:")
        if not parts.hostname:
            raise RefusedURLError(url, "the URL has no host name")
        try:
            parts.port
        except ValueError:
            raise RefusedURLError(url, "the URL has an invalid port") from None
        if not self.policy.allow_private:
            for address in self._addresses(url, parts.hostname):
                if _is_private(address):
                    raise RefusedURLError(
                        url, f"{parts.hostname} is a private or loopback address ({address}); such addresses are "
                             "refused so a link cannot reach internal services. Use --allow-private if you mean it")
        return parts

    def _addresses(self, url: str, host: str) -> list[str]:
        try:
            return [ipaddress.ip_address(host).compressed]
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(url, f"the host {host} cannot be found ({exc})") from exc
        return sorted({info[4][0] for info in infos})

    def robots_verdict(self, url: str) -> str | None:
        """None when robots.txt of the URL's site lets ``ROBOTS_TOKEN`` fetch it (read once per site),
        else the reason it may not be fetched."""
        parts = urllib.parse.urlsplit(url)
        site = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            cached = self._robots.get(site)
        if cached is None:
            parser: urllib.robotparser.RobotFileParser | None = None
            allow_all, why = True, ""
            try:
                response = self._get(site + "/robots.txt", robots=False)
                parser = urllib.robotparser.RobotFileParser()
                parser.parse(response.body.decode("utf-8", "replace").splitlines())
            except FetchError as exc:
                # RFC 9309 section 2.3.1: "unavailable" (4xx) allows everything; "unreachable" (5xx,
                # network errors) means assume everything is disallowed.
                allow_all, why = bool(re.search(r"HTTP 4\d\d", exc.reason)), exc.reason
            cached = (parser, allow_all, why)
            with self._lock:
                self._robots[site] = cached
                delay = parser.crawl_delay(ROBOTS_TOKEN) if parser is not None else None
                if delay:
                    self._robots_delay[parts.netloc] = float(delay)
        parser, allow_all, why = cached
        if parser is None:
            return None if allow_all else f"robots.txt of {parts.netloc} could not be read ({why}), so the site is not fetched"
        if parser.can_fetch(ROBOTS_TOKEN, url):
            return None
        return f"robots.txt of {parts.netloc} disallows this page for {ROBOTS_TOKEN}"

    # -- requests -----------------------------------------------------------------------------------
    def fetch(self, url: str, *, accept: tuple[str, ...] = HTML_TYPES, what: str = "a web page") -> Response:
        """GET ``url`` under the policy and robots.txt; the body must be one of the ``accept`` types.

        Raises:
            RefusedURLError: scheme, private address or robots.txt.
            FetchError: network error, timeout, HTTP error status, redirect loop, too large, wrong type.
        """
        url = url.strip()
        self.check_url(url)
        refusal = self.robots_verdict(url)
        if refusal:
            raise RefusedURLError(url, refusal)
        response = self._get(url, robots=True)
        if accept and not response.content_type.startswith(accept):
            shown = response.content_type or "none given"
            raise FetchError(url, f"not {what} (content type {shown})")
        return response

    def _get(self, url: str, *, robots: bool) -> Response:
        seen: list[str] = []
        current = url
        for _ in range(self.policy.max_redirects + 1):
            parts = self.check_url(current)
            if current != url and robots:
                refusal = self.robots_verdict(current)
                if refusal:
                    raise RefusedURLError(url, f"redirected to {current}: {refusal}")
            seen.append(current)
            status, headers, body = self._request(url, parts)
            if status in (301, 302, 303, 307, 308):
                location = headers.get("location")
                if not location:
                    raise FetchError(url, f"HTTP {status} redirect without a Location header")
                target = urllib.parse.urljoin(current, location.strip())
                scheme = urllib.parse.urlsplit(target).scheme.lower()
                if scheme not in ("http", "https"):
                    raise RefusedURLError(url, f"redirected to a {scheme}: URL ({target}); only http(s) redirects are followed")
                if target in seen:
                    raise FetchError(url, f"redirect loop ({' -> '.join(seen + [target])})")
                current = target
                continue
            if status >= 400:
                raise FetchError(url, f"HTTP {status} {http.client.responses.get(status, 'error')}")
            if status != 200:
                raise FetchError(url, f"HTTP {status}: expected 200 OK")
            content_type, charset = _content_type(headers.get("content-type", ""))
            return Response(current, status, content_type, body, charset)
        raise FetchError(url, f"more than {self.policy.max_redirects} redirects ({' -> '.join(seen)})")

    def _wait_turn(self, host: str) -> None:
        """Sleep until this host may be asked again (``per_host_rate`` or its robots.txt Crawl-delay)."""
        interval = 1.0 / self.policy.per_host_rate if self.policy.per_host_rate > 0 else 0.0
        with self._lock:
            interval = max(interval, self._robots_delay.get(host, 0.0))
            now = self._clock()
            slot = max(now, self._next_slot.get(host, now))
            self._next_slot[host] = slot + interval
        if slot > now:
            self._sleep(slot - now)

    def _request(self, url: str, parts: urllib.parse.SplitResult) -> tuple[int, dict[str, str], bytes]:
        """One GET without following redirects: ``(status, lowercased headers, body)``."""
        policy = self.policy
        self._wait_turn(parts.netloc)
        deadline = time.monotonic() + policy.timeout
        host = parts.hostname or ""
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")) or "/"
        if parts.scheme.lower() == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, parts.port, timeout=policy.timeout, context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, parts.port, timeout=policy.timeout)
        try:
            conn.request("GET", target, headers={
                "User-Agent": policy.user_agent,
                "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.5",
                "Accept-Encoding": "identity",
            })
            response = conn.getresponse()
            headers = {k.lower(): v for k, v in response.getheaders()}
            if response.status in (301, 302, 303, 307, 308) or response.status >= 400:
                return response.status, headers, b""
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > policy.max_bytes:
                raise FetchError(url, f"the page is {int(length) / MB:.1f} MB, over the {policy.max_bytes / MB:g} MB "
                                      "limit (--max-page-mb)")
            chunks: list[bytes] = []
            size = 0
            while True:
                if time.monotonic() > deadline:
                    raise FetchError(url, f"timed out after {policy.timeout:g} s (the server is too slow)")
                chunk = response.read1(_CHUNK) if hasattr(response, "read1") else response.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > policy.max_bytes:
                    raise FetchError(url, f"the page is over the {policy.max_bytes / MB:g} MB limit (--max-page-mb)")
                chunks.append(chunk)
            return response.status, headers, b"".join(chunks)
        except FetchError:
            raise
        except (socket.timeout, TimeoutError) as exc:
            raise FetchError(url, f"timed out after {policy.timeout:g} s (the server is too slow)") from exc
        except ssl.SSLError as exc:
            raise FetchError(url, f"TLS error ({exc.reason or exc})") from exc
        except (OSError, http.client.HTTPException) as exc:
            detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise FetchError(url, f"cannot connect or read ({detail})") from exc
        finally:
            conn.close()


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _content_type(header: str) -> tuple[str, str | None]:
    main, _, params = header.partition(";")
    charset = re.search(r"charset\s*=\s*\"?([\w.:-]+)", params, re.I)
    return main.strip().lower(), charset.group(1) if charset else None


_default_lock = threading.Lock()
_default: Fetcher | None = None


def default_fetcher() -> Fetcher:
    """The fetcher plain URL strings use: the default (public web only) policy, shared so the per-host
    rate limit holds across calls."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Fetcher()
        return _default


# --------------------------------------------------------------------------------------------------
# Ingest items
