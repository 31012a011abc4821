"""The server's event loop and HTTP parser: gradio's uvicorn on uvloop + httptools (what requirements.txt installs:
uvicorn picks them when they import) against asyncio + h11 (what it falls back to), in alternating rounds.

Each round starts `python app.py` both ways (the fallback with the two made unimportable by a sitecustomize on its
PYTHONPATH) and sends it what a class sends most, from THREADS kept-alive clients for `seconds`: GET /draw/latents
(a new seed each), a page file of gradio's, and for 3 in 10 of them a REST generate (a cached grid: the server's
own path, not the model). Reported: requests a second, the app's CPU per request, and each kind's latency.
"""

from __future__ import annotations

import random
import re
import tempfile
import threading
import time
from pathlib import Path

import httpx

from testing.app import GENERATE, AppProcess, rest_call
from testing.system import cpu_seconds, percentile

THREADS = 12
BLOCKED = "import sys\nsys.modules['uvloop'] = None\nsys.modules['httptools'] = None\n"


def _load(url: str, seconds: float, files: list[str]) -> dict[str, list[float]]:
    took: dict[str, list[float]] = {"GET /draw/latents": [], "a page file": [], "REST generate": []}
    until = time.monotonic() + seconds
    model, _, n, digit, temperature = GENERATE

    def client(index: int) -> None:
        rng = random.Random(index)
        with httpx.Client(timeout=60) as http:
            while time.monotonic() < until:
                start = time.perf_counter()
                http.get(f"{url}draw/latents?seed={rng.randrange(10**6)}&n=64").raise_for_status()
                took["GET /draw/latents"].append(time.perf_counter() - start)
                start = time.perf_counter()
                http.get(url + rng.choice(files), headers={"accept-encoding": "br, gzip"}).raise_for_status()
                took["a page file"].append(time.perf_counter() - start)
                if rng.random() < 0.3:
                    start = time.perf_counter()
                    kind, value = rest_call(http, url, "generate", [model, rng.randrange(50), n, digit, temperature])
                    assert kind == "complete", value
                    took["REST generate"].append(time.perf_counter() - start)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    return took


def _round(env: dict, seconds: float) -> tuple[float, float, dict]:
    """(requests a second, app CPU ms per request, each kind's latencies) of one app."""
    with AppProcess(env=env) as app:
        html = httpx.get(app.url, timeout=60).text
        files = sorted({m.lstrip("./") for m in re.findall(r'(?:src|href)="(\./assets/[^"]+)"', html)})
        _load(app.url, 3, files)  # warm: the page files read once, the grids made once
        pid = app.process.pid
        before = cpu_seconds([pid])[pid]
        took = _load(app.url, seconds, files)
        used = cpu_seconds([pid])[pid] - before
    calls = sum(len(t) for t in took.values())
    return calls / seconds, 1000 * used / calls, took


def ways(folder: str) -> dict[str, dict]:
    """The two servers: the app's environment for each (the fallback's sitecustomize written into `folder`)."""
    (Path(folder) / "sitecustomize.py").write_text(BLOCKED)
    return {"uvloop + httptools": {}, "asyncio + h11": {"PYTHONPATH": folder}}


def measure(rounds: int = 2, seconds: float = 20) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="mnist-gan-h11-") as folder:
        servers = ways(folder)
        runs = {way: [] for way in servers}
        for _ in range(rounds):
            for way, env in servers.items():
                runs[way].append(_round(env, seconds))

    def ms(seconds: list[float]) -> str:
        return f"{1000 * percentile(seconds, 0.5):.1f} / {1000 * percentile(seconds, 0.99):.1f}"

    return [{"server": way, "requests/s": round(rate), "app CPU ms a request": round(cpu, 2),
             **{f"{kind} p50 / p99 ms": ms(t) for kind, t in took.items()}}
            for way, measured in runs.items() for rate, cpu, took in measured]
