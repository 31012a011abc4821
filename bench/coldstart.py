"""Cold start: `python app.py` (a new process, as a Space starts it) to the first successful API response.

The first response is a `generate` of 64 images through the raw REST path, polled every 50 ms from the moment
the process is started; each start is a fresh process with an empty runs folder. Median of the starts.
"""

from __future__ import annotations

import statistics

from bench.appserver import App, met


def measure(rounds: int = 5) -> list[dict]:
    seconds = []
    for _ in range(max(3, rounds)):
        with App() as app:
            seconds.append(app.wait_ready())
    median = statistics.median(seconds)
    return [{"what": "python app.py to the first generate answered", "median s": round(median, 2),
             "starts": " ".join(f"{s:.1f}" for s in seconds), "target": "<= 12 s", "met": met(median <= 12)}]
