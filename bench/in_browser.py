"""The generator in the visitor's browser, in headless Chromium against `python app.py`: Resample to a new 64-digit
grid shown, and the page's first visit (bytes downloaded for the runtime and the model, time to the first grid
drawn in the browser) and a second one; each beside the server path (the runtime blocked: the page falls back).

Timed inside the page: from the click (or the slider's `input` event, bench/slider.py) to the next animation frame
after the new picture is on the page: the canvas drawn (its `mnist-drawn` event), or, on the server path, the new
image decoded. One action at a time, each to a picture not seen before.
"""

from __future__ import annotations

import statistics

from bench.appserver import App, met
from testing.browser import browser, wait_for_grid, wait_for_panel
from testing.system import percentile

# Records, per new picture, the milliseconds since the last slider move or Resample click (in window.__shown).
WATCH = """() => {
  let t0 = null;
  window.__shown = [];
  window.__drawing = [];  // of those, the page's own work: from its request to the canvas drawn
  const shown = () => {
    if (t0 === null) return;
    const start = t0;
    t0 = null;
    requestAnimationFrame(() => window.__shown.push(performance.now() - start));
  };
  // on the window, capturing: before any listener of the page (its generator can draw within the same event)
  window.addEventListener('input', e => { if (e.target.type === 'range') t0 = performance.now(); }, true);
  window.addEventListener('click', e => { if (e.target.closest('#resample')) t0 = performance.now(); }, true);
  document.addEventListener('mnist-drawn', e => {
    if (t0 !== null) window.__drawing.push(e.detail.ms);
    shown();
  }, true);
  // the server path: a new image in #grid or #latent (built when its tab is first shown), decoded
  new MutationObserver(records => {
    for (const r of records) {
      const nodes = r.type === 'attributes' ? [r.target] : [...r.addedNodes];
      for (const node of nodes) {
        const images = node.tagName === 'IMG' ? [node] : [...(node.querySelectorAll ? node.querySelectorAll('img') : [])];
        for (const img of images) if (img.src && img.closest('#grid, #latent')) img.decode().then(shown, () => {});
      }
    }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}"""
RESOURCES = """() => performance.getEntriesByType('resource').map(e => [e.name, e.transferSize, e.encodedBodySize,
  e.decodedBodySize])"""


def block_runtime(page) -> None:
    """The server path: the page cannot load onnxruntime-web, so the server draws (as for a browser without it)."""
    page.route("**/ort*", lambda route: route.abort())


def open_page(chromium, url: str, server: bool):
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    if server:
        block_runtime(page)
    page.goto(url)
    wait_for_grid(page)
    wait_for_panel(page, "grid")
    page.evaluate(WATCH)
    return page


def timed(page, act, count: int, warmup: int, timeout_ms: int = 5_000) -> tuple[list[float], int, list[float]]:
    """(ms per shown picture after `warmup`, how many actions showed none in time, ms of the page's own drawing of
    each picture it drew): act(i) starts one."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    missed = 0
    for i in range(warmup + count):
        shown = page.evaluate("window.__shown.length")
        act(i)
        try:
            page.wait_for_function(f"window.__shown.length > {shown}", timeout=timeout_ms)
        except PlaywrightTimeout:
            missed += 1
    return page.evaluate("window.__shown")[warmup:], missed, page.evaluate("window.__drawing")[warmup:]


def row(what: str, times: list[float], missed: int, target: float | None, drawing: list[float]) -> dict:
    median = statistics.median(times) if times else float("nan")
    return {"what": what, "median ms": round(median, 1), "p90 ms": round(percentile(times, 0.9), 1) if times else "",
            "actions": len(times), "none shown": missed,
            "of it, the page drawing (median ms)": round(statistics.median(drawing), 1) if drawing else "",
            "target": f"<= {target:g} ms median" if target else "", "met": met(median <= target) if target else ""}


def resample(chromium, url: str, server: bool, clicks: int) -> dict:
    page = open_page(chromium, url, server)
    try:
        times, missed, drawing = timed(page, lambda i: page.locator("#resample").click(), clicks, warmup=3)
    finally:
        page.close()
    where = "server (runtime blocked)" if server else "browser"
    return row(f"Resample -> 64-digit grid shown, drawn in the {where}", times, missed, None if server else 50,
               drawing)


def first_visit(chromium, url: str) -> dict:
    """A fresh profile (nothing cached): bytes of the runtime and the model, time to the first in-browser grid;
    then a second visit in the same profile."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    found = {}
    try:
        for visit in ("first", "second"):
            page = context.new_page()
            page.goto(url)
            wait_for_grid(page)
            state = wait_for_panel(page, "grid")
            ready = page.evaluate("""() => new Promise(resolve => {
                const p = window.mnistGan.panels.grid;
                const done = () => resolve(performance.now());
                if (p.last && p.last.mode === 'browser') return done();
                p.root.addEventListener('mnist-drawn', done, {once: true}); })""")
            entries = page.evaluate(RESOURCES)
            runtime = [e for e in entries if "/ort" in e[0] or "onnxruntime-web" in e[0]]
            model = [e for e in entries if e[0].endswith(".onnx")]
            found[visit] = {"grid_ms": ready, "runtime": sum(e[1] for e in runtime),
                            "runtime_raw": sum(e[3] for e in runtime), "model": sum(e[1] for e in model),
                            "model_raw": sum(e[3] for e in model), "mode": state["last"]["mode"],
                            "timings": page.evaluate("window.mnistGan.runtime.timings")}
            page.close()
    finally:
        context.close()
    return found


def measure(rounds: int = 5, clicks: int = 30) -> list[dict]:
    rows = []
    with App() as app, browser() as chromium:
        app.wait_ready()
        open_page(chromium, app.url, server=False).close()  # the app warm: models loaded, directions found
        visits = [first_visit(chromium, app.url) for _ in range(max(1, (rounds + 1) // 2))]
        rows.append(resample(chromium, app.url, False, clicks))
        rows.append(resample(chromium, app.url, True, clicks))
    first = visits[0]["first"]
    grid_ms = statistics.median(v["first"]["grid_ms"] for v in visits)
    again_ms = statistics.median(v["second"]["grid_ms"] for v in visits)
    rows.append({"what": "first visit: runtime downloaded (ort.wasm.min.js, .mjs, .wasm; gzip)",
                 "bytes": f"{first['runtime']:,} ({first['runtime_raw']:,} unpacked)"})
    rows.append({"what": "first visit: model downloaded (the default model's .onnx)",
                 "bytes": f"{first['model']:,} ({first['model_raw']:,} unpacked)"})
    rows.append({"what": "first visit: page opened -> first grid drawn in the browser", "median ms": round(grid_ms),
                 "visits": len(visits), "runtime script / first session (ms)":
                 f"{first['timings'].get('script', 0):.0f} / {first['timings'].get('session', 0):.0f}"})
    rows.append({"what": "second visit (same profile): bytes of runtime and model, first grid",
                 "bytes": f"{visits[0]['second']['runtime'] + visits[0]['second']['model']:,}",
                 "median ms": round(again_ms), "visits": len(visits)})
    return rows
