"""Headless Debian Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@contextmanager
def browser():
    """A launched Chromium (playwright's Browser), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def wait_for_text(page, selector: str, pattern: str, timeout: float = 60) -> str:
    """The inner text of `selector` on `page` once it matches the regular expression `pattern`."""
    import re

    from .system import wait_until

    def matched() -> str | None:
        text = page.locator(selector).inner_text()
        return text if re.search(pattern, text) else None

    return wait_until(matched, timeout, f"{selector} to show {pattern!r}",
                      describe=lambda: f"it shows {page.locator(selector).inner_text()!r}")


def box(page, selector: str) -> dict:
    """The bounding box of the first element matching `selector`."""
    return page.locator(selector).first.bounding_box()


def label_clear_of_image(page, block: str) -> bool:
    """The image's label sits above the image, not over it."""
    return box(page, f"{block} label[data-testid=block-label]")["y"] + \
        box(page, f"{block} label[data-testid=block-label]")["height"] <= box(page, f"{block} img")["y"] + 0.5
