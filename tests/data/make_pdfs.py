"""Regenerate the PDF fixtures used by ``tests/test_pdf.py``.

Run from anywhere::

    python tests/data/make_pdfs.py            # (re)build every fixture
    python tests/data/make_pdfs.py --only chromium encrypted

What each file is and how it is made:

``arabic_libreoffice.pdf``
    ``soffice --headless --convert-to pdf arabic_libreoffice.fodt`` (Debian ``libreoffice-writer``,
    font Noto Naskh Arabic from ``fonts-noto-core``).  Two pages: two Arabic sentences on page 1;
    the paragraph style of the third sentence has ``fo:break-before="page"``, so page 2 holds
    "تبعد مدينة الزاوية 45 كيلومترا غرب طرابلس." and a sentence with the Latin word "Reuters".

``arabic_chromium.pdf``
    ``chromium --headless --print-to-pdf=... arabic_chromium.html`` (Debian ``chromium``).  An RTL page
    (``<html dir="rtl" lang="ar">``); the third paragraph has ``break-before: page`` so the PDF has
    two pages.  Contains "أعلن وزير الصحة افتتاح مستشفى جديد في مدينة مصراتة." and the Latin word "WHO".

``encrypted.pdf``
    ``arabic_libreoffice.pdf`` re-written with ``pypdf.PdfWriter.encrypt(user_password="secret")``
    (RC4-128: pypdf can write and read that without the optional ``cryptography`` package).

``truncated.pdf``
    The first half of the bytes of ``arabic_chromium.pdf`` (no trailer, no cross-reference table).

``scanned.pdf``
    A one-page PDF made with fpdf2 that holds only a grey raster image (drawn with Pillow) of a
    "scanned page": no text operators at all, so there is no text layer.

Tools that are missing are reported and their fixtures are skipped; the existing files are kept.
Chromium and LibreOffice stamp creation dates and ids into their output, so re-running changes the
bytes but not the extracted text.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

LIBREOFFICE_SOURCE = HERE / "arabic_libreoffice.fodt"
CHROMIUM_SOURCE = HERE / "arabic_chromium.html"


def _skip(name: str, why: str) -> bool:
    print(f"skip {name}: {why}", file=sys.stderr)
    return False


def make_libreoffice() -> bool:
    target = HERE / "arabic_libreoffice.pdf"
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        return _skip(target.name, "soffice not found (apt-get install libreoffice-writer-nogui)")
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "profile"
        out = Path(tmp) / "out"
        subprocess.run(
            [
                soffice,
                f"-env:UserInstallation={profile.as_uri()}",
                "--headless",
                "--norestore",
                "--convert-to",
                "pdf:writer_pdf_Export",
                "--outdir",
                str(out),
                str(LIBREOFFICE_SOURCE),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        produced = out / (LIBREOFFICE_SOURCE.stem + ".pdf")
        if not produced.exists():
            return _skip(target.name, "soffice produced no PDF")
        shutil.copyfile(produced, target)
    print(f"wrote {target.name} ({target.stat().st_size} bytes)")
    return True


def make_chromium() -> bool:
    target = HERE / "arabic_chromium.pdf"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return _skip(target.name, "chromium not found (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        produced = Path(tmp) / "out.pdf"
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-pdf-header-footer",
                f"--user-data-dir={Path(tmp) / 'profile'}",
                f"--print-to-pdf={produced}",
                CHROMIUM_SOURCE.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        if not produced.exists():
            return _skip(target.name, "chromium produced no PDF")
        shutil.copyfile(produced, target)
    print(f"wrote {target.name} ({target.stat().st_size} bytes)")
    return True


def make_encrypted() -> bool:
    target = HERE / "encrypted.pdf"
    source = HERE / "arabic_libreoffice.pdf"
    if not source.exists():
        return _skip(target.name, f"{source.name} is missing")
    try:
        from pypdf import PdfReader, PdfWriter
    except ImportError:
        return _skip(target.name, "pypdf is not installed")
    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password="secret", owner_password="owner-secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    target.write_bytes(buffer.getvalue())
    print(f"wrote {target.name} ({target.stat().st_size} bytes)")
    return True


def make_truncated() -> bool:
    target = HERE / "truncated.pdf"
    source = HERE / "arabic_chromium.pdf"
    if not source.exists():
        return _skip(target.name, f"{source.name} is missing")
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    print(f"wrote {target.name} ({target.stat().st_size} bytes)")
    return True


def make_scanned() -> bool:
    target = HERE / "scanned.pdf"
    try:
        from fpdf import FPDF
        from PIL import Image, ImageDraw
    except ImportError:
        return _skip(target.name, "fpdf2 / Pillow are not installed")
    # A small grey "photo of a page": light paper with dark bars where lines of text would be.
    image = Image.new("L", (300, 420), color=235)
    draw = ImageDraw.Draw(image)
    for row in range(8):
        y = 40 + row * 40
        draw.rectangle((40 + (row % 3) * 20, y, 260, y + 12), fill=60)
    pdf = FPDF(unit="mm", format="A4")
    pdf.add_page()
    pdf.image(image, x=10, y=10, w=190)
    pdf.output(str(target))
    print(f"wrote {target.name} ({target.stat().st_size} bytes)")
    return True


MAKERS = {
    "libreoffice": make_libreoffice,
    "chromium": make_chromium,
    "encrypted": make_encrypted,  # needs the LibreOffice PDF
    "truncated": make_truncated,  # needs the Chromium PDF
    "scanned": make_scanned,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(MAKERS), help="build only these fixtures")
    args = parser.parse_args(argv)
    names = args.only or list(MAKERS)
    for name in names:
        try:
            MAKERS[name]()
        except Exception as exc:  # noqa: BLE001 - one broken tool must not stop the others
            _skip(name, f"{type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
