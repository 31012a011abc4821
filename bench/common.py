"""Shared helpers: environment set-up, timing rounds, tables."""

from __future__ import annotations

import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def rate(fn, seconds: float, units_per_call: float) -> float:
    """Calls fn repeatedly for about `seconds`; returns units per second."""
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * units_per_call / elapsed


def interleaved(contenders: dict, rounds: int, seconds: float, units_per_call: float) -> dict[str, float]:
    """Median rate of each contender, measured in alternating rounds so machine noise hits all alike."""
    samples = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name].append(rate(fn, seconds, units_per_call))
    return {name: statistics.median(values) for name, values in samples.items()}


def print_table(rows: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(columns)]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for t in text:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(t, widths)) + " |")
