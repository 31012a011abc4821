"""Inside the GAN: `discriminate` (score, heatmap, histogram) and `invert` (default restarts), in process and as a
client sees them (`python app.py`, PNGs uploaded through gradio's upload route, then raw REST calls).

In process: the service's own time, each call a different held-out test digit, after one warm-up call per model
(its discriminator loaded, its score distributions and its XLA-compiled inversion loop built: the first call's
seconds are reported apart). Through the app: uploads timed apart, calls with one session_hash, as gradio_client.
"""

from __future__ import annotations

import io
import statistics
import time

import numpy as np
from PIL import Image

from bench.appserver import App, met
from mnist_gan.inside.actions import DEFAULT_RESTARTS
from mnist_gan.inside.inversion import Search
from testing.app import rest_call
from testing.system import summary

SESSION = "bench-inside"
STEPS = Search().steps  # the inversion steps the app uses


def models() -> list[str]:
    """The shipped models saved with their discriminator (D's verdict needs it; the others are skipped)."""
    from mnist_gan.model.generator import DISCRIMINATOR_FILE, shipped_models

    return [name for name, folder in shipped_models().items() if (folder / DISCRIMINATOR_FILE).exists()]


def _service():
    import tempfile
    from pathlib import Path

    from mnist_gan.service import AppSettings, Service

    return Service(AppSettings(runs_dir=Path(tempfile.mkdtemp(prefix="bench-inside-"))))


def _timed(service, call, model: str, calls: int) -> tuple[float, list[float]]:
    """The first call's seconds (on test digit 0) and each later call's, every one on another held-out digit."""
    seconds = []
    for index in range(calls + 1):
        digit = service.inside.digit(model, "test", index=index)
        started = time.perf_counter()
        call(model, digit)
        seconds.append(time.perf_counter() - started)
    return seconds[0], seconds[1:]


def in_process(calls: int, inversions: int) -> list[dict]:
    service = _service()
    rows = []
    for model in models():
        first, seconds = _timed(service, service.inside.discriminate, model, calls)
        rows.append({"what": f"discriminate + heatmap + histogram, {model}, in process", **summary(seconds),
                     "first call s": round(first, 2), "target": "<= 50 ms median",
                     "met": met(statistics.median(seconds) <= 0.05)})
        first, seconds = _timed(service, service.inside.invert, model, inversions)
        rows.append({"what": f"invert, {DEFAULT_RESTARTS} restarts x {STEPS} steps, {model}, in process",
                     **summary(seconds), "first call s": round(first, 2), "target": "<= 3 s median",
                     "met": met(statistics.median(seconds) <= 3.0)})
    service.close()
    return rows


def _png(index: int) -> bytes:
    from mnist_gan.data import SAMPLE_DATA

    with np.load(SAMPLE_DATA) as sample:
        digit = 255 - sample["x_test"][index]  # black on white, 10x: as a drawing would come
    buffer = io.BytesIO()
    Image.fromarray(np.repeat(np.repeat(digit, 10, 0), 10, 1)).save(buffer, format="PNG")
    return buffer.getvalue()


def through_the_app(calls: int, inversions: int, pictures: int = 20) -> list[dict]:
    """The app as a client sees it. Uploads are limited per client (30 a minute, ui/limits.py), so `pictures`
    PNGs are uploaded once, timed apart, and the calls take turns with them."""
    rows = []
    with App() as app:
        app.wait_ready()
        uploads, seconds = [], []
        for index in range(pictures):
            started = time.perf_counter()
            response = app.http.post(app.url + "gradio_api/upload",
                                     files=[("files", (f"{index}.png", _png(index), "image/png"))])
            response.raise_for_status()
            seconds.append(time.perf_counter() - started)
            uploads.append({"path": response.json()[0], "meta": {"_type": "gradio.FileData"}})
        rows.append({"what": "upload a 280x280 PNG (gradio's upload route)", **summary(seconds)})

        def call(endpoint: str, index: int, model: str) -> float:
            started = time.perf_counter()
            kind, value = rest_call(app.http, app.url, endpoint, [model, uploads[index % pictures], "auto"] +
                                    ([DEFAULT_RESTARTS] if endpoint == "invert" else []), session=SESSION)
            assert kind == "complete", value
            return time.perf_counter() - started

        for model in models():
            call("discriminate", 0, model), call("invert", 0, model)  # warm-up: D, distributions, compilation
            seconds = [call("discriminate", i, model) for i in range(1, calls + 1)]
            median = statistics.median(seconds)
            rows.append({"what": f"discriminate, {model}: call with an uploaded PNG (REST)", **summary(seconds),
                         "target": "<= 50 ms median", "met": met(median <= 0.05)})
            seconds = [call("invert", i, model) for i in range(1, inversions + 1)]
            median = statistics.median(seconds)
            rows.append({"what": f"invert, {model}: call with an uploaded PNG (REST)", **summary(seconds),
                         "target": "<= 3 s median", "met": met(median <= 3.0)})
    return rows


def measure(rounds: int = 5, calls: int = 50, inversions: int = 10) -> list[dict]:
    return in_process(calls, inversions) + through_the_app(calls, inversions)

