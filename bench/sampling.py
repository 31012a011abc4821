"""In-process sampling latency: a 64-image grid from the default shipped model, after warm-up."""

from __future__ import annotations

import statistics
import time

from testing.system import percentile


def measure(rounds: int = 5, calls: int = 200, n: int = 64) -> list[dict]:
    from mnist_gan.images import make_grid
    from mnist_gan.model.generator import DEFAULT_MODEL, Generator, shipped_models

    rows = []
    for name, folder in shipped_models().items():
        generator = Generator.load(folder)
        for _ in range(10):
            generator.generate(0, n)
        timings = {"generate": [], "generate + grid": []}
        for seed in range(calls):
            start = time.perf_counter()
            images = generator.generate(seed, n)
            middle = time.perf_counter()
            make_grid(images)
            end = time.perf_counter()
            timings["generate"].append(middle - start)
            timings["generate + grid"].append(end - start)
        for what, values in timings.items():
            rows.append({"model": name + (" (default)" if name == DEFAULT_MODEL else ""), "what": f"{what}, {n} images",
                         "median ms": round(1000 * statistics.median(values), 2),
                         "p90 ms": round(1000 * percentile(values, 0.9), 2), "calls": calls})
    return rows
