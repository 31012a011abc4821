"""Memory: peak resident set size (RSS) of `python app.py` serving, and of the app and its worker while a run trains.

Serving means every public endpoint a visitor's page uses, and a page load in headless Chromium (the latent
explorer's directions are computed then): peaks are the kernel's (VmHWM). While training, the app and the
worker process are also sampled every 50 ms for the peak of their sum.
"""

from __future__ import annotations

import time

from bench.appserver import App, PeakMemory, met
from testing.app import GENERATE
from testing.browser import browser


def measure(rounds: int = 5, calls: int = 50, train_s: float = 20.0) -> list[dict]:
    with App() as app:
        app.wait_ready()
        with browser() as chromium:
            page = chromium.new_page()
            page.goto(app.url)
            page.get_by_role("tab", name="Latent explorer").click()
            page.wait_for_selector("#latent img", timeout=60_000)
            page.close()
        for seed in range(calls):
            app.call("generate", GENERATE[0], seed, 100, *GENERATE[3:])
            app.call("latent", "classic", seed, "0", "directions", [1.0, -1.0])
            app.call("interpolate", "classic", seed, seed + 1, 32, "0")
        serving = app.rss()[app.process.pid][1]
        with PeakMemory(app) as peaks:
            app.start_training()
            deadline = time.monotonic() + train_s
            seed = 0
            while time.monotonic() < deadline:  # a visitor keeps generating while the run trains
                app.call("generate", GENERATE[0], 10_000 + seed, *GENERATE[2:])
                seed += 1
            status = app.stop_training()
        worker = max((peak for pid, peak in peaks.peaks.items() if pid != app.process.pid), default=0.0)
        app_training = app.rss()[app.process.pid][1]
    return [
        {"what": "app serving (peak RSS)", "MB": round(serving), "target": "<= 1,536 MB",
         "met": met(serving <= 1536)},
        {"what": f"app while a run trains (peak RSS; run reached step {status['step']:,})", "MB": round(app_training)},
        {"what": "training worker process (peak RSS)", "MB": round(worker)},
        {"what": "app + worker together (peak of the sum, sampled every 50 ms)", "MB": round(peaks.peak_sum)},
    ]
