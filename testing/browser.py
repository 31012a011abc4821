"""Headless Debian Chromium driven by Playwright (never a downloaded browser), and what the tests read from the page:
the pictures it draws itself, in canvases."""

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


# --- the pictures the page draws itself (ui/in_browser.py, ui/static/mnist-draw.js) ---------------------------------

DRAWN = "#grid-panel .mg-panel[data-drawn=browser], #grid img"  # the first grid, drawn in the browser or the server
_STATE = """(name) => { const p = window.mnistGan && window.mnistGan.panels[name];
  return p ? {done: p.done, drawn: p.drawn, busy: p.busy || p.pending !== null, last: p.last,
              values: p.values} : null; }"""
_GREY = """(selector) => { const c = document.querySelector(selector);
  const rgba = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let text = '';
  for (let i = 0; i < rgba.length; i += 4) text += String.fromCharCode(rgba[i]);
  return [c.width, c.height, btoa(text)]; }"""


def wait_for_grid(page, timeout: float = 60) -> None:
    """Until the Generate tab shows its first grid (drawn in the browser, or by the server)."""
    page.wait_for_selector(DRAWN, timeout=timeout * 1000)


def panel_state(page, name: str) -> dict | None:
    """A panel's counts (requests done, pictures drawn in the browser), whether it is busy, the settings it was
    last asked for (`values`: the tab's inputs, in order), and where and how its last picture was drawn:
    `last` = {"mode": "browser" | "server", "reason", "ms"}."""
    return page.evaluate(_STATE, name)


def wait_for_panel(page, name: str, since: int = 0, timeout: float = 60, model: str | None = None) -> dict:
    """A panel's state once it has answered a request after the `since`-th (for `model`, when given) and has
    nothing left to do."""
    from .system import wait_until

    def answered():
        state = panel_state(page, name)
        if not state or state["done"] <= since or state["busy"]:
            return None
        return state if model is None or state["values"][0] == model else None

    return wait_until(answered, timeout, f"the {name} picture", every=0.05,
                      describe=lambda: f"its state: {panel_state(page, name)}")


def canvas_grey(page, selector: str):
    """The grey levels (uint8 (H, W)) of a canvas the page drew."""
    import base64

    import numpy as np

    width, height, text = page.evaluate(_GREY, selector)
    return np.frombuffer(base64.b64decode(text), np.uint8).reshape(height, width)


def image_grey(page, selector: str):
    """The pixels (uint8) of the image an <img> shows, fetched as the page fetched it."""
    import io

    import numpy as np
    from PIL import Image

    src = page.locator(f"{selector} img").first.get_attribute("src")
    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())))


def label_clear_of_canvas(page, panel: str) -> bool:
    """A panel's label sits above its canvas, not over it."""
    label = box(page, f"{panel} .mg-label")
    return label["y"] + label["height"] <= box(page, f"{panel} canvas")["y"] + 0.5
