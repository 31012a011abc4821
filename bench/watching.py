"""Cost of watching: a training run's images/s with three browser tabs open on the Train tab, over none.

The run is the classic recipe (batch 32, the bundled 2,000 images) in the app's worker process; its throughput
is read from the app's status (steps gained over wall time, evaluations and sample grids included). Windows
without tabs and with three (headless Chromium, one browser context each: three sessions, each polling the run
on the Train tab's timer) alternate, so the machine's other load reaches both; each side is the median of its
windows. The CPU that the app process and the browser used in each window is measured too: it is what the tabs
cost.
"""

from __future__ import annotations

import os
import statistics
import time

from bench.appserver import TRAINING, App, met
from testing.browser import browser
from testing.system import cpu_seconds, descendants

TABS = 3


def measure(rounds: int = 5, window_s: float = 10.0, settle_s: float = 3.0) -> list[dict]:
    windows = {"none": [], "tabs": []}
    with App() as app, browser() as chromium:
        app.wait_ready()
        first = app.start_training()["step"]
        app.wait_for(lambda s: s["step"] >= first + 100, 120, "100 steps (compilation over)")
        for _ in range(max(3, rounds)):
            windows["none"].append(_window(app, window_s))
            contexts = [chromium.new_context(viewport={"width": 1280, "height": 900}) for _ in range(TABS)]
            for context in contexts:
                page = context.new_page()
                page.goto(app.url)
                page.get_by_role("tab", name="Train").click()
                page.wait_for_selector("#status progress", timeout=60_000)  # the run is on screen
            time.sleep(settle_s)  # page loads over: measure the polling alone
            windows["tabs"].append(_window(app, window_s))
            for context in contexts:
                context.close()
        app.stop_training()
    rows = []
    for name, what in (("none", "no tab open"), ("tabs", f"{TABS} tabs on the Train tab")):
        rate, app_cpu, browser_cpu = (statistics.median(w[i] for w in windows[name]) for i in range(3))
        rows.append({"what": f"training images/s, {what}", "images/s": round(rate),
                     "windows": " ".join(f"{w[0]:.0f}" for w in windows[name]),
                     "app CPU (cores)": f"{app_cpu:.2f}", "browser CPU (cores)": f"{browser_cpu:.2f}"})
    ratio = statistics.median(w[0] for w in windows["tabs"]) / statistics.median(w[0] for w in windows["none"])
    rows.append({"what": f"with {TABS} tabs / none (medians)", "images/s": f"{ratio:.2f}", "target": ">= 0.9",
                 "met": met(ratio >= 0.9)})
    return rows


def _window(app: App, seconds: float) -> tuple[float, float, float]:
    """(the run's images/s, cores the app process used, cores the browser used) over about `seconds`."""
    app_pids, browser_pids = [app.process.pid], _browser(app)
    step, started = app.status()["step"], time.perf_counter()
    app_cpu, browser_cpu = cpu_seconds(app_pids), cpu_seconds(browser_pids)
    time.sleep(seconds)
    steps, elapsed = app.status()["step"] - step, time.perf_counter() - started
    return (steps * TRAINING["batch_size"] / elapsed, _used(app_cpu, cpu_seconds(app_pids)) / elapsed,
            _used(browser_cpu, cpu_seconds(browser_pids)) / elapsed)


def _browser(app: App) -> list[int]:
    """Chromium's processes (and Playwright's driver): all below this process but the app and its worker."""
    app_tree = {app.process.pid, *descendants(app.process.pid)}
    return [pid for pid in descendants(os.getpid()) if pid not in app_tree]


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(after[pid] - before[pid] for pid in before if pid in after)
