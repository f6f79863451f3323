"""HTML to text for local .html files: visible text only (scripts, styles, hidden elements and comments
dropped), the title, and the publication date the markup declares."""

from __future__ import annotations

import re
from html.parser import HTMLParser



_VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


def _is_hidden(attrs: list[tuple[str, str | None]]) -> bool:
    """Whether an element is not rendered: ``hidden``, ``aria-hidden="true"``, ``display:none``, ``visibility:hidden``."""
    for name, value in attrs:
        name = name.lower()
        if name == "hidden":
            return True
        if name == "aria-hidden" and (value or "").strip().lower() == "true":
            return True
        if name == "style" and value and _HIDDEN_STYLE.search(value):
            return True
    return False


class _TextExtractor(HTMLParser):
    """HTML to text: drops scripts, styles, page chrome and hidden elements, keeps block structure as line breaks.

    Only text content is kept: tags and attributes (event handlers such as ``onerror``, ``javascript:``
    links) never reach the output. Text a browser would not show (``hidden``, ``aria-hidden="true"``,
    inline ``display:none`` / ``visibility:hidden``) is dropped too, so invisible instructions planted in
    a page do not become indexed passages.
    """

    _SKIP = {"script", "style", "noscript", "template", "svg", "iframe", "nav", "footer", "form", "button", "head",
             "object", "embed", "math", "select", "textarea"}
    _BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
              "article", "header", "blockquote", "pre", "hr", "dd", "dt", "figcaption"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.title = ""
        self.h1 = ""
        self._in_title = False
        self._in_h1 = False
        self._hidden: list[list] = []  # [tag, nesting] of each open hidden element

    def handle_starttag(self, tag, attrs):
        if self._hidden:
            top = self._hidden[-1]
            if tag == top[0]:
                if tag in ("p", "li") and top[1] == 0:  # a new <p>/<li> implicitly closes the hidden one
                    self._hidden.pop()
                else:
                    top[1] += 1
        if tag not in _VOID_TAGS and _is_hidden(attrs):
            self._hidden.append([tag, 0])
        if tag in self._SKIP and tag != "head":
            self.skip_depth += 1
        if tag == "title":
            self._in_title = True
        if tag == "h1":
            self._in_h1 = True
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if self._hidden:
            top = self._hidden[-1]
            if tag == top[0]:
                if top[1]:
                    top[1] -= 1
                else:
                    self._hidden.pop()
            elif tag in ("body", "html"):
                self._hidden.clear()
        if tag in self._SKIP and tag != "head" and self.skip_depth:
            self.skip_depth -= 1
        if tag == "title":
            self._in_title = False
        if tag == "h1":
            self._in_h1 = False
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if self.skip_depth or self._hidden:
            return
        if self._in_title:
            self.title += data
            return
        if self._in_h1:
            self.h1 += data
        self.parts.append(data)


# A "<" that reaches the next "<" (or the end) without a ">" cannot open a tag. Python's HTMLParser
# searches to the end of the input for each of them, so a file of "</</</..." or "<?<?<?..." takes
# time quadratic in its size (minutes for a few MB). Escaping them first keeps parsing linear.
_STRAY_LT = re.compile(r"<(?=[^<>]*(?:<|\Z))")
_STRAY_LT_MAX = 100  # a few stray "<" cost little; past this many they are escaped


_COMMENT_OPEN = re.compile(r"<!(?:--|\[)")


def _drop_comments(markup: str) -> str:
    """``markup`` without comments: ``<!-- ... -->``, and ``<![...>`` (CDATA and marked sections, which
    browsers treat as comments ending at the first ">"). An unterminated one runs to the end, as in a
    browser. Done before parsing because HTMLParser searches to the end of the input for the close of
    each unterminated one, which is quadratic.
    """
    out = []
    i = 0
    while True:
        match = _COMMENT_OPEN.search(markup, i)
        if match is None:
            out.append(markup[i:])
            break
        out.append(markup[i : match.start()])
        if match.group() == "<!--":
            end, width = markup.find("-->", match.start() + 2), 3
        else:
            end, width = markup.find(">", match.end()), 1
        if end < 0:
            break
        i = end + width
    return "".join(out)


def html_to_text(markup: str) -> tuple[str, str]:
    """Return ``(text, title)`` of an HTML page."""
    parser = _TextExtractor()
    markup = _drop_comments(markup)
    if sum(1 for _ in zip(range(_STRAY_LT_MAX + 1), _STRAY_LT.finditer(markup))) > _STRAY_LT_MAX:
        markup = _STRAY_LT.sub("&lt;", markup)
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts)
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines()]
    text = "\n".join(line for line in lines if line)
    title = " ".join((parser.title or parser.h1).split())
    return text, title

def html_meta_date(markup: str) -> str:
    """The publication date an HTML page declares in its markup (meta tags, JSON-LD, ``<time>``), by
    htmldate without guessing from the text; "" when it declares none or htmldate is missing."""
    try:
        from htmldate import find_date
    except ImportError:  # optional here: dates are a bonus for local files
        return ""
    try:
        return find_date(markup, extensive_search=False, original_date=True) or ""
    except Exception:  # noqa: BLE001 - a page htmldate cannot parse simply has no date
        return ""
