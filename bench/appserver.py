"""The app as people run it, for the app benchmarks: `python app.py` in a subprocess on 127.0.0.1, called through
Gradio's raw REST path (POST /gradio_api/call/NAME, then the SSE result), its memory read from /proc."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import bench.common  # noqa: F401  (sets the quiet, no-telemetry environment before anything else)

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"  # Debian's (never `playwright install`)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
GENERATE = ["classic", 0, 64, "all digits", 1.0]  # model, seed, n, digit, temperature: the 64-image grid
TRAINING = {"architecture": "classic", "batch_size": 32, "steps": 200_000, "data": "sample"}  # the classic recipe


class AppError(RuntimeError):
    """The app answered an API call with an error, or did not answer in time."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def summary(seconds: list[float]) -> dict:
    """Median and p90 in milliseconds."""
    return {"median ms": round(1000 * statistics.median(seconds), 1),
            "p90 ms": round(1000 * percentile(seconds, 0.9), 1), "calls": len(seconds)}


def met(ok: bool) -> str:
    """The table's verdict on a target."""
    return "yes" if ok else "NO"


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of one process in MB, from /proc (0, 0 once it has gone)."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return 0.0, 0.0
    return tuple(int(fields.get(key, "0 kB").split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """pid -> user + system CPU seconds used so far, for each of pids still running."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def descendants(pid: int) -> list[int]:
    """Every process below pid."""
    found = children(pid)
    for child in list(found):
        found += descendants(child)
    return found


def children(pid: int) -> list[int]:
    """Live direct child processes of pid (zombies, already dead, are left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except (OSError, IndexError, ValueError):
                continue
            if int(parent) == pid and state != "Z":
                found.append(int(entry.name))
    return found


class App:
    """One `python app.py` process; use as a context manager (it is stopped, with its training child, on exit)."""

    def __init__(self, env: dict | None = None):
        """env: more environment for the app (e.g. GRADIO_PROFILING=1 to profile it)."""
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-app-")  # its runs and gradio's cache: a fresh start
        environment = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port),
                       "MNIST_GAN_RUNS": str(Path(self._tmp.name) / "runs"),
                       "GRADIO_TEMP_DIR": str(Path(self._tmp.name) / "gradio"), **(env or {})}
        environment.pop("MNIST_GAN_REPO", None)  # the shipped model: no Hub pull at start-up
        self.started = time.perf_counter()
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=environment,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.http = httpx.Client(base_url=self.url, timeout=60)

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds from process start to the first successful `generate` (the cold start)."""
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AppError(f"app.py exited with code {self.process.returncode} before answering")
            try:
                self.call("generate", *GENERATE)
                return time.perf_counter() - self.started
            except (httpx.TransportError, AppError):
                if time.monotonic() > deadline:
                    raise AppError(f"app.py did not answer within {timeout:.0f} s") from None
                time.sleep(0.05)

    def call(self, name: str, *data, session: str | None = None, **named):
        """One API call through the raw REST path; returns the output data (a list) or raises AppError.

        Arguments go by position, or by name (the v2 path). session: a session_hash, as gradio_client and the
        page send (one per client); None, as a bare curl does, makes gradio set up a new session for the call.
        """
        if named:
            response = self.http.post(f"/gradio_api/call/v2/{name}", json=named)
        else:
            body = {"data": list(data), **({"session_hash": session} if session else {})}
            response = self.http.post(f"/gradio_api/call/{name}", json=body)
        if response.status_code != 200:
            raise AppError(f"{name}: HTTP {response.status_code}")
        event_id = response.json()["event_id"]
        event = None
        with self.http.stream("GET", f"/gradio_api/call/{name}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    if event == "error":
                        raise AppError(f"{name}: {line[5:].strip()}")
                    return json.loads(line[5:])
        raise AppError(f"{name}: the result stream ended without a result")

    def latencies(self, calls: int, first_seed: int = 0, session: str | None = None) -> list[float]:
        """Seconds per `generate` of 64 images, each call a new seed (a new grid, as a person clicking sees)."""
        seconds = []
        for seed in range(first_seed, first_seed + calls):
            start = time.perf_counter()
            self.call("generate", GENERATE[0], seed, *GENERATE[2:], session=session)
            seconds.append(time.perf_counter() - start)
        return seconds

    def status(self) -> dict:
        return self.call("train_status")[0]

    def start_training(self, timeout: float = 120.0, **settings) -> dict:
        """Start a run (TRAINING, changed by `settings`) and wait until it has taken steps."""
        self.call("train_start", **{**TRAINING, **settings})
        return self.wait_for(lambda st: st["state"] == "running" and st["step"] > 0, timeout, "the run's first steps")

    def stop_training(self, timeout: float = 60.0) -> dict:
        self.call("train_stop")
        return self.wait_for(lambda st: st["state"] in ("stopped", "finished", "failed"), timeout, "the stop")

    def wait_for(self, condition, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while not condition(status := self.status()):
            if status["state"] == "failed":
                raise AppError(f"the training run failed: {status['message']}")
            if time.monotonic() > deadline:
                raise AppError(f"timed out waiting for {what} (state {status['state']}, step {status['step']})")
            time.sleep(0.2)
        return status

    def rss(self) -> dict[int, tuple[float, float]]:
        """pid -> (current MB, peak MB) of the app and each child process (the training worker)."""
        return {pid: rss_mb(pid) for pid in [self.process.pid, *children(self.process.pid)]}

    def close(self) -> None:
        """Ctrl-C, as a person stops it (the app stops its run); the process group is killed if that hangs."""
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # anything left in its group: a worker that hung
        except ProcessLookupError:
            pass
        self.process.wait(10)
        self._tmp.cleanup()


class PeakMemory:
    """Samples the RSS of the app and its children every `interval` s; keeps per-process and summed peaks."""

    def __init__(self, app: App, interval: float = 0.05):
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


@contextmanager
def browser():
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
