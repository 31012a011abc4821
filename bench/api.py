"""API latency: `generate` (64 images) through Gradio's raw REST path, idle and while a training run is in progress.

The app runs as `python app.py` in its own process; the client is this process. Calls carry one session_hash,
as gradio_client and the page do; calls without one (a bare curl) are measured alongside, alternating, because
gradio then builds a new session for every call. Idle calls are made before the run starts and after it stops,
so drift in the machine's load reaches both sides of the ratio.
"""

from __future__ import annotations

import statistics
import time

from bench.appserver import TRAINING, App, met
from testing.system import summary

SESSION = "bench-api-client"


def measure(rounds: int = 5, calls: int = 100, warmup: int = 10) -> list[dict]:
    with App() as app:
        app.wait_ready()
        app.latencies(warmup, 10_000, SESSION), app.latencies(warmup, 20_000)
        idle, bare = [], []
        for seed in range(calls // 2):  # alternating, so the same machine load reaches both
            idle += app.latencies(1, seed, SESSION)
            bare += app.latencies(1, 100_000 + seed)
        first = app.start_training()["step"]
        start = app.wait_for(lambda s: s["step"] >= first + 100, 120, "100 steps (compilation over)")
        started = time.perf_counter()
        training = app.latencies(calls, 1_000, SESSION)
        end = app.status()
        rate = (end["step"] - start["step"]) * TRAINING["batch_size"] / (time.perf_counter() - started)
        app.stop_training()
        for seed in range(calls // 2, calls):
            idle += app.latencies(1, seed, SESSION)
            bare += app.latencies(1, 100_000 + seed)
    ratio = statistics.median(training) / statistics.median(idle)
    return [
        {"what": "generate, 64 images, idle", **summary(idle), "target": "<= 25 ms median",
         "met": met(statistics.median(idle) <= 0.025)},
        {"what": "same, a new session per call (curl without session_hash)", **summary(bare),
         "target": "<= 25 ms median", "met": met(statistics.median(bare) <= 0.025)},
        {"what": f"generate, 64 images, while training (run at {rate:,.0f} images/s)", **summary(training)},
        {"what": "while training / idle (medians)", "median ms": f"{ratio:.2f}x", "target": "<= 2x",
         "met": met(ratio <= 2)},
    ]
