"""Image permalinks: GET /png (64 images) over one kept-alive connection, beside the Gradio REST path in the same run.

The app runs as `python app.py` in its own process. Both paths draw a new seed each call (a new grid, as a person
clicking sees) and are measured in alternating blocks of BLOCK calls, so the machine's load reaches both alike; a
304 revalidation (the browser or CDN already holds the grid) is measured too. Blocks, not single calls: each call
right after one of the other kind paid for the work the app still did after that call had answered (one by one,
GET /png 10.5 ms and the REST path 18.1 ms median; in blocks of 10 on the same quiet machine, 8.2 and 14.1 ms).
"""

from __future__ import annotations

import statistics
import time

from bench.appserver import App, met
from testing.app import GENERATE
from testing.system import summary

SESSION = "bench-permalink-client"
BLOCK = 10


def measure(rounds: int = 5, calls: int = 100, warmup: int = 10) -> list[dict]:
    with App() as app:
        app.wait_ready()
        model, _, n, digit, temperature = GENERATE

        def png(seed: int, etag: str | None = None) -> tuple[float, str]:
            headers = {"If-None-Match": etag} if etag else {}
            start = time.perf_counter()
            answer = app.http.get(f"{app.url}png", params={"model": model, "seed": seed, "n": n}, headers=headers)
            seconds = time.perf_counter() - start
            assert answer.status_code == (304 if etag else 200), answer.text[:300]
            return seconds, answer.headers["etag"]

        for seed in range(warmup):
            png(50_000 + seed)
        app.latencies(warmup, 60_000, SESSION)
        permalink, rest, revalidated = [], [], []
        for first in range(0, calls, BLOCK):  # alternating blocks
            drawn = [png(seed) for seed in range(first, first + BLOCK)]
            permalink += [seconds for seconds, _ in drawn]
            revalidated += [png(seed, etag)[0] for seed, (_, etag) in zip(range(first, first + BLOCK), drawn)]
            rest += app.latencies(BLOCK, 10_000 + first, SESSION)
    ratio = statistics.median(rest) / statistics.median(permalink)
    return [
        {"what": "GET /png, 64 images, kept-alive connection", **summary(permalink), "target": "<= 10 ms median",
         "met": met(statistics.median(permalink) <= 0.010)},
        {"what": "the same grid revalidated (If-None-Match: 304)", **summary(revalidated)},
        {"what": "generate, 64 images, Gradio REST path (one session)", **summary(rest)},
        {"what": "REST path / permalink (medians)", "median ms": f"{ratio:.1f}x"},
    ]
