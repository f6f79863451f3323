"""Playwright helpers shared by the browser tests: open the app, ask, switch tabs, upload."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ANSWER_MS = 60_000


def ask(page, question: str, turn: int, timeout: int = ANSWER_MS):
    """Type ``question``, press Ask, wait for assistant turn number ``turn`` to be final."""
    page.locator("#question textarea").fill(question)
    page.locator("#ask-btn").click()
    answer = page.locator(f"#conversation #turn-{turn}")
    answer.wait_for(timeout=timeout)
    page.wait_for_selector(f"#conversation #turn-{turn}:not(.pending) .answer p", timeout=timeout)
    page.wait_for_function(f"!document.querySelector('#conversation #turn-{turn} .typing')", timeout=timeout)
    return answer


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def upload(page, paths: list[Path], timeout: int = 120_000) -> str:
    """Add files in the Documents tab (#upload, then #ingest-btn); returns the status text."""
    open_tab(page, "Documents")
    page.locator("#upload input[type=file]").set_input_files([str(p) for p in paths])
    for p in paths:  # wait for the browser-to-server upload of each file
        page.locator("#upload").get_by_text(p.stem).first.wait_for(timeout=30_000)
    page.wait_for_timeout(300)
    status = "#ingest-status .ingest-status"
    before = page.locator(status).inner_text() if page.locator(status).count() else ""
    page.locator("#ingest-btn").click()
    page.wait_for_function(
        "([sel, before]) => { const s = document.querySelector(sel); return s && s.innerText.trim() && s.innerText !== before; }",
        arg=[status, before], timeout=timeout,
    )
    return page.locator(status).inner_text()


@contextmanager
def chromium():
    """Debian's Chromium, headless, driven by Playwright (which cannot download browsers here)."""
    from playwright.sync_api import sync_playwright

    from .server import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def app_page(browser, url: str, timeout: int = 60_000) -> Iterator:
    """A fresh page (its own context: no stored conversation) once the app has indexed its documents.

    ``page.dialogs`` records every JavaScript dialog (the app must open none)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.dialogs = []

    def on_dialog(dialog):
        page.dialogs.append((dialog.type, dialog.message))
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(url)
    page.wait_for_selector("#question textarea", timeout=timeout)
    page.wait_for_function("/passages indexed/.test(document.querySelector('#index-status')?.innerText || '')", timeout=timeout)
    try:
        yield page
    finally:
        context.close()
