"""Latent slider: a slider moved (a key press on it) to the new digit shown, in headless Chromium.

Timed inside the page: from the slider's `input` event to the new image decoded and the next frame drawn. One
move at a time, each to a latent not seen before (so no image comes from a cache); the app is `python app.py`.
"""

from __future__ import annotations

import statistics

from bench.appserver import App, met
from testing.browser import browser
from testing.system import percentile

# Records, per new #latent image, the milliseconds since the last slider input event.
WATCH = """() => {
  const root = document.querySelector('#latent');
  let last = root.querySelector('img')?.src, t0 = null;
  window.__shown = [];
  document.addEventListener('input', e => { if (e.target.type === 'range') t0 = performance.now(); }, true);
  new MutationObserver(() => {
    const img = root.querySelector('img');
    if (!img || img.src === last || t0 === null) return;
    last = img.src;
    const start = t0;
    img.decode().then(() => requestAnimationFrame(() => window.__shown.push(performance.now() - start)), () => {});
  }).observe(root, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}"""


def measure(rounds: int = 5, moves: int = 60, warmup: int = 5, timeout_ms: int = 5_000) -> list[dict]:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with App() as app, browser() as chromium:
        app.wait_ready()
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.goto(app.url)
        page.get_by_role("tab", name="Latent explorer").click()
        page.wait_for_selector("#latent img", timeout=60_000)
        page.evaluate(WATCH)
        missed, sliders = 0, 0
        for i in range(warmup + moves):
            if i % 30 == 0:  # 30 steps of 0.1 along one direction, then the next slider: every latent is new
                page.locator(f"#slider-{sliders} input[type=range]").focus()
                sliders += 1
            shown = page.evaluate("window.__shown.length")
            page.keyboard.press("ArrowRight")
            try:
                page.wait_for_function(f"window.__shown.length > {shown}", timeout=timeout_ms)
            except PlaywrightTimeout:
                missed += 1  # no new image: the same pixels as before, or a lost update
        times = page.evaluate("window.__shown")[warmup:]
    median = statistics.median(times)
    return [{"what": "slider moved to new image shown (Chromium)", "median ms": round(median, 1),
             "p90 ms": round(percentile(times, 0.9), 1), "moves": len(times), "no new image": missed,
             "target": "<= 100 ms median", "met": met(median <= 100)}]
