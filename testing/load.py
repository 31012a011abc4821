"""A crowd of scripted visitors for the app: each calls generate and latent through the raw REST path (and downloads
the image, as a browser would) while a training run trains; the figures of the run (latency, throughput, memory,
gradio's cache). Used by the load test (correctness) and `python -m bench load` (the figures)."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
from gradio_client import Client

from mnist_gan.serving.served_files import MIN_AGE_S, TRIM_EVERY_S

from .app import AppProcess, rest_call, wait_for
from .crowd import address
from .system import folder_mib, percentile, rss_mb

CLIENTS, SECONDS = 20, 60.0
MAX_CALLS = 5_000  # per client: the loop is bounded in count as well as in time
CACHE_MB = 2  # the app's gradio-cache cap under load (MNIST_GAN_CACHE_MB), small so the load must exercise it


def _client(url: str, index: int, deadline: float, calls: list, lock: threading.Lock) -> None:
    """One visitor: alternately a grid and a latent image, each downloaded as a browser would. Each from an address
    of its own, as visitors of a Space are: the app's per-client bounds see 20 visitors, not one script."""
    rng = random.Random(index)
    with httpx.Client(timeout=120, transport=httpx.HTTPTransport(local_address=address(index))) as http:
        for n in range(MAX_CALLS):
            if time.monotonic() >= deadline:
                return
            if n % 2 == 0:
                endpoint = "generate"
                data = ["classic", rng.randrange(2**32), rng.randint(1, 100), "all digits", rng.uniform(0.5, 1.5)]
            else:
                endpoint = "latent"
                data = ["classic", rng.randrange(2**32), "0", rng.choice(["directions", "raw"]),
                        [round(rng.uniform(-4, 4), 1) for _ in range(rng.randint(0, 16))]]
            started = time.perf_counter()
            try:
                kind, value = rest_call(http, url, endpoint, data)
                size = 0
                if kind == "complete":
                    image = http.get(value[0]["url"])
                    kind, size = ("complete", len(image.content)) if image.status_code == 200 else \
                        ("download", f"{image.status_code} for {value[0]['url']}")
            except httpx.HTTPError as e:
                kind, value = "transport", f"{type(e).__name__}: {e}"
            seconds = time.perf_counter() - started
            with lock:
                calls.append({"endpoint": endpoint, "seconds": seconds, "ok": kind == "complete", "bytes": size,
                              "error": None if kind == "complete" else f"{kind}: {str(value)[:200]}"})


def run_load(folder: Path, clients: int = CLIENTS, seconds: float = SECONDS, cache_mb: float = CACHE_MB) -> dict:
    """Start the app, start a training run, load it, and return the figures."""
    with AppProcess(folder, {"MNIST_GAN_CACHE_MB": str(cache_mb)}) as app:
        api = Client(app.url, verbose=False, analytics_enabled=False, download_files=str(folder / "downloads"))
        api.predict(batch_size=32, steps=200_000, data="sample", recipe="classic", api_name="/train_start")
        status = wait_for(api, lambda s: s["state"] == "running" and s["step"] >= 50, 180, "the run's first steps")
        with httpx.Client(timeout=120) as http:  # warm up: the first latent call finds the explorer's directions
            for endpoint, data in (("generate", ["classic", 0, 4, "all digits", 1.0]),
                                   ("latent", ["classic", 0, "0", "directions", [1.0]])):
                assert rest_call(http, app.url, endpoint, data)[0] == "complete"
        step_before, pid = status["step"], app.process.pid
        samples, calls, lock, stop = [], [], threading.Lock(), threading.Event()

        def watch() -> None:
            while not stop.wait(1.0):
                samples.append((rss_mb(pid)[0], folder_mib(app.gradio_cache), len(calls)))

        watcher = threading.Thread(target=watch, daemon=True)
        rss_start, cache_start = rss_mb(pid)[0], folder_mib(app.gradio_cache)
        watcher.start()
        started = time.monotonic()
        threads = [threading.Thread(target=_client, args=(app.url, i, started + seconds, calls, lock), daemon=True)
                   for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 180)
        wall = time.monotonic() - started
        stop.set()
        watcher.join(5)
        status = api.predict(api_name="/train_status")
        rss_end, cache_end = rss_mb(pid)[0], folder_mib(app.gradio_cache)
        api.predict(api_name="/train_stop")

    half = samples[len(samples) // 2]
    ok = [c["seconds"] * 1000 for c in calls if c["ok"]]
    written_mb = sum(c["bytes"] for c in calls) / 2**20
    figures = {
        "clients": clients, "seconds": round(wall, 1), "calls": len(calls), "errors": [c["error"] for c in calls
                                                                                          if not c["ok"]],
        "calls_per_s": round(len(calls) / wall, 1), "p50_ms": round(percentile(ok, 0.5)), "p99_ms":
            round(percentile(ok, 0.99)),
        "training": {"state": status["state"], "steps_during_load": status["step"] - step_before},
        "rss_mib": {"start": round(rss_start), "peak": round(max([rss_start, rss_end, *(s[0] for s in samples)])),
                    "end": round(rss_end), "every_10_s": [round(s[0]) for s in samples[9::10]],
                    "second_half_mib": round(rss_end - half[0], 1), "second_half_calls": len(calls) - half[2]},
        "cache_mib": {"start": round(cache_start, 1), "peak": round(max([cache_end, *(s[1] for s in samples)]), 1),
                      "end": round(cache_end, 1), "cap": cache_mb, "images_served": round(written_mb, 1)},
    }
    for endpoint in ("generate", "latent"):
        times = [c["seconds"] * 1000 for c in calls if c["ok"] and c["endpoint"] == endpoint]
        figures[endpoint] = {"calls": len(times), "p50_ms": round(percentile(times, 0.5)),
                             "p99_ms": round(percentile(times, 0.99))}
    # What may sit in the cache at a sweep: the cap, plus what arrived since files became old enough to delete.
    window = MIN_AGE_S + TRIM_EVERY_S + 1.0  # +1: the watcher's sampling interval
    figures["cache_mib"]["bound"] = round(cache_mb + cache_start + 1.25 * written_mb / wall * window, 1)
    return figures
