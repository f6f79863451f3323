"""Scanned-looking pages for the OCR benchmark and tests: news paragraphs drawn with Debian's fonts
(Pillow with libraqm shapes Arabic and lays it right to left), then degraded like a photocopy scan
(a slight rotation, blur, grey background, speckle noise), saved as image-only PDF pages (no text layer).

Nothing here is imported by the product.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = (Path("/usr/share/fonts/truetype/noto"), Path("/usr/share/fonts/truetype/dejavu"),
             Path("/usr/share/fonts/truetype/liberation"))
ARABIC_FONTS = ("NotoNaskhArabic-Regular.ttf", "NotoSansArabic-Regular.ttf", "DejaVuSans.ttf")
LATIN_FONTS = ("LiberationSerif-Regular.ttf", "NotoSerif-Regular.ttf", "DejaVuSerif.ttf", "DejaVuSans.ttf")
DPI = 300
PAGE_WIDTH = int(8.27 * DPI)  # A4


def find_font(names: Sequence[str]) -> Path:
    """The first of ``names`` installed in Debian's font folders."""
    for name in names:
        for folder in FONT_DIRS:
            if (folder / name).exists():
                return folder / name
    raise FileNotFoundError(f"none of the fonts {', '.join(names)} is installed (apt-get install fonts-noto-core fonts-dejavu-core)")


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int, direction: str) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font, direction=direction) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    if line:
        lines.append(line)
    return lines


def render_page(paragraphs: Sequence[str], *, rtl: bool, seed: int = 0, font_px: int = 46,
                degrade: bool = True) -> Image.Image:
    """A page image (greyscale, 300 dpi, A4 width) holding ``paragraphs``, degraded like a scan."""
    font = ImageFont.truetype(str(find_font(ARABIC_FONTS if rtl else LATIN_FONTS)), font_px)
    direction = "rtl" if rtl else "ltr"
    margin = int(0.9 * DPI)
    width = PAGE_WIDTH - 2 * margin
    probe = ImageDraw.Draw(Image.new("L", (10, 10)))
    laid = [_wrap(probe, p, font, width, direction) for p in paragraphs]
    line_h = int(font_px * 1.9)
    height = margin * 2 + sum(len(lines) * line_h + line_h // 2 for lines in laid)
    page = Image.new("L", (PAGE_WIDTH, height), 255)
    draw = ImageDraw.Draw(page)
    y = margin
    for lines in laid:
        for line in lines:
            if rtl:
                x = PAGE_WIDTH - margin - draw.textlength(line, font=font, direction=direction)
            else:
                x = margin
            draw.text((x, y), line, font=font, fill=0, direction=direction)
            y += line_h
        y += line_h // 2
    return degrade_scan(page, seed) if degrade else page


def degrade_scan(page: Image.Image, seed: int = 0) -> Image.Image:
    """Make a clean page look scanned: rotate by up to 0.8°, blur a little, grey the paper, add
    speckles (dust) and lighten the ink unevenly."""
    rng = random.Random(seed)
    page = page.rotate(rng.uniform(-0.8, 0.8), resample=Image.BICUBIC, expand=False, fillcolor=255)
    page = page.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.6, 1.0)))
    # Paper grey 225-240, ink 30-70: a photocopy, not a laser print.
    paper, ink = rng.randint(225, 240), rng.randint(30, 70)
    page = page.point(lambda v: ink + (paper - ink) * v // 255)
    pixels = page.load()
    w, h = page.size
    for _ in range(w * h // 400):  # speckle noise on 0.25% of the pixels
        x, y = rng.randrange(w), rng.randrange(h)
        pixels[x, y] = rng.choice((ink, paper, rng.randint(ink, paper)))
    return page


def save_pdf(pages: Sequence[Image.Image], path: Path) -> Path:
    """Image-only PDF pages (no text layer) at 300 dpi."""
    first, *rest = [p.convert("RGB") for p in pages]
    first.save(path, "PDF", resolution=DPI, save_all=True, append_images=rest)
    return path
