"""Load: 20 concurrent clients call generate and latent for 60 s while a training run is in progress, all on
127.0.0.1. Zero server errors; p50/p99 latency and throughput reported; the app's memory and gradio's temp folder
stay bounded (the folder by the app's size cap, set small here so the load must exercise it).

`python -m tests.test_load [--clients N] [--seconds S]` prints the figures.
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # also when run as a script: nothing phones home
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import argparse  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402
import pytest  # noqa: E402
from gradio_client import Client  # noqa: E402

from mnist_gan.serving.served_files import MIN_AGE_S, TRIM_EVERY_S  # noqa: E402
from testing.app import AppProcess, rest_call, wait_for  # noqa: E402
from testing.system import folder_mib, percentile, rss_mb  # noqa: E402

CLIENTS, SECONDS = 20, 60.0
MAX_CALLS = 5_000  # per client: the loop is bounded in count as well as in time
CACHE_MB = 2  # the app's gradio-cache cap for this test (MNIST_GAN_CACHE_MB)
MEMORY_GROWTH_MB = 300  # allowed RSS growth of the app from the start of the load to its peak
LEAK_MB_PER_CALL = 0.05  # allowed growth per call over the second half (gradio's sessions: ~0.27 MB per call)


def _client(url: str, index: int, deadline: float, calls: list, lock: threading.Lock) -> None:
    """One visitor: alternately a grid and a latent image, each downloaded as a browser would."""
    rng = random.Random(index)
    with httpx.Client(timeout=120) as http:
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


def run_load(folder: Path, clients: int = CLIENTS, seconds: float = SECONDS) -> dict:
    """Start the app, start a training run, load it, and return the figures."""
    with AppProcess(folder, {"MNIST_GAN_CACHE_MB": str(CACHE_MB)}) as app:
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
                    "second_half_mib_per_call": round((rss_end - half[0]) / max(1, len(calls) - half[2]), 4)},
        "cache_mib": {"start": round(cache_start, 1), "peak": round(max([cache_end, *(s[1] for s in samples)]), 1),
                      "end": round(cache_end, 1), "cap": CACHE_MB, "images_served": round(written_mb, 1)},
    }
    for endpoint in ("generate", "latent"):
        times = [c["seconds"] * 1000 for c in calls if c["ok"] and c["endpoint"] == endpoint]
        figures[endpoint] = {"calls": len(times), "p50_ms": round(percentile(times, 0.5)),
                             "p99_ms": round(percentile(times, 0.99))}
    # What may sit in the cache at a sweep: the cap, plus what arrived since files became old enough to delete.
    window = MIN_AGE_S + TRIM_EVERY_S + 1.0  # +1: the watcher's sampling interval
    figures["cache_mib"]["bound"] = round(CACHE_MB + cache_start + 1.25 * written_mb / wall * window, 1)
    return figures


@pytest.mark.slow
def test_twenty_clients_for_a_minute_while_training(tmp_path):
    figures = run_load(tmp_path)
    print(figures)
    assert figures["errors"] == [], figures["errors"][:5]
    assert figures["generate"]["calls"] >= 100 and figures["latent"]["calls"] >= 100, figures
    assert figures["training"]["state"] == "running" and figures["training"]["steps_during_load"] > 0
    rss = figures["rss_mib"]
    assert rss["peak"] - rss["start"] < MEMORY_GROWTH_MB, rss
    assert rss["second_half_mib_per_call"] < LEAK_MB_PER_CALL, rss  # it levels off
    cache = figures["cache_mib"]
    assert cache["images_served"] > 1.5 * cache["bound"], "too little load to exercise the cache cap"
    assert cache["peak"] <= cache["bound"], cache  # without the cap it holds every image served


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.test_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mnist-gan-load-") as folder:
        figures = run_load(Path(folder), args.clients, args.seconds)
    errors = figures.pop("errors")
    for key, value in figures.items():
        print(f"{key:>10}: {value}")
    print(f"{'errors':>10}: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))


if __name__ == "__main__":
    main()
