"""Latent slider: a slider moved (a key press on it) to the new digit shown, in headless Chromium: drawn in the
browser (the page's own generator), and drawn by the server (the runtime blocked: the page's fallback), same run.

Timed inside the page (bench/in_browser.py's WATCH): from the slider's `input` event to the next animation frame
after the new picture is on the page. One move at a time, each to a latent not seen before (so no image comes from
a cache); the app is `python app.py`.
"""

from __future__ import annotations

from bench.appserver import App
from bench.in_browser import open_page, row, timed
from testing.browser import browser, wait_for_panel


def moves(chromium, url: str, server: bool, count: int, warmup: int) -> dict:
    page = open_page(chromium, url, server)
    try:
        page.get_by_role("tab", name="Latent explorer").click()
        wait_for_panel(page, "latent")
        sliders = []

        def move(i: int) -> None:
            if i % 30 == 0:  # 30 steps of 0.1 along one direction, then the next slider: every latent is new
                page.locator(f"#slider-{len(sliders)} input[type=range]").focus()
                sliders.append(i)
            page.keyboard.press("ArrowRight")

        times, missed, drawing = timed(page, move, count, warmup)
    finally:
        page.close()
    where = "server (runtime blocked)" if server else "browser"
    return row(f"slider moved -> new digit shown, drawn in the {where}", times, missed, 100 if server else 20,
               drawing)


def measure(rounds: int = 5, count: int = 60, warmup: int = 5) -> list[dict]:
    with App() as app, browser() as chromium:
        app.wait_ready()
        return [moves(chromium, app.url, False, count, warmup), moves(chromium, app.url, True, count, warmup)]
