"""The app as the benchmarks use it: testing's AppProcess (`python app.py` on 127.0.0.1, the raw REST path), plus
timed calls, the cold start and a memory sampler."""

from __future__ import annotations

import threading
import time

import httpx

import bench.common  # noqa: F401  (sets the quiet, no-telemetry environment before anything else)
from testing.app import GENERATE, SAMPLE_RUN, AppError, AppProcess

TRAINING = SAMPLE_RUN  # the classic recipe on the bundled sample: what the app benchmarks train while measuring


def met(ok: bool) -> str:
    """The table's verdict on a target."""
    return "yes" if ok else "NO"


class App(AppProcess):
    """A fresh `python app.py` (its own temporary folder: runs, caches), launched at once; stopped on exit."""

    def __init__(self, env: dict | None = None):
        """env: more environment for the app (e.g. GRADIO_PROFILING=1 to profile it)."""
        super().__init__(env=env)
        self.launch()

    def __enter__(self) -> App:
        return self

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds from process start to the first successful `generate` (the cold start), polled every 50 ms."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AppError(f"app.py exited with code {self.process.returncode} before answering")
            try:
                self.call("generate", *GENERATE)
                return time.perf_counter() - self.started_at
            except (httpx.TransportError, AppError):
                if time.monotonic() > deadline:
                    raise AppError(f"app.py did not answer within {timeout:.0f} s") from None
                time.sleep(0.05)

    def latencies(self, calls: int, first_seed: int = 0, session: str | None = None) -> list[float]:
        """Seconds per `generate` of 64 images, each call a new seed (a new grid, as a person clicking sees)."""
        seconds = []
        for seed in range(first_seed, first_seed + calls):
            start = time.perf_counter()
            self.call("generate", GENERATE[0], seed, *GENERATE[2:], session=session)
            seconds.append(time.perf_counter() - start)
        return seconds


class PeakMemory:
    """Samples the RSS of the app and its children every `interval` s; keeps per-process and summed peaks."""

    def __init__(self, app: AppProcess, interval: float = 0.05):
        self.app, self.interval = app, interval
        self.peak_sum = 0.0
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self.app.rss()
            for pid, (_, peak) in sample.items():
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), peak)
            self.peak_sum = max(self.peak_sum, sum(current for current, _ in sample.values()))
            self._stop.wait(self.interval)
