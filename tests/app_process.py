"""The app as its own process (`python app.py` on 127.0.0.1), for tests that kill it, restart it or read its output.

Everything it writes goes under one folder: runs, gradio's cache, the Hub cache, HF_HOME and its stdout/stderr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.appserver import children, free_port

ROOT = Path(__file__).resolve().parent.parent


class AppProcess:
    """`with AppProcess(folder, env) as app:` serves on app.url; `kill()` is SIGKILL of the app and its worker."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None):
        self.folder, self.extra_env = Path(folder), dict(env or {})
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def runs(self) -> Path:
        return self.folder / "runs"

    @property
    def gradio_cache(self) -> Path:
        return self.folder / "gradio"

    def start(self, timeout: float = 180) -> AppProcess:
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1",
               "PYTHONUNBUFFERED": "1", "GRADIO_SERVER_PORT": str(self.port), "GRADIO_SERVER_NAME": "127.0.0.1",
               "MNIST_GAN_RUNS": str(self.runs), "GRADIO_TEMP_DIR": str(self.gradio_cache),
               "MNIST_GAN_HUB_CACHE": str(self.folder / "hub-cache"), "HF_HOME": str(self.folder / "hf"),
               **self.extra_env}
        for name in ("MNIST_GAN_REPO", "MNIST_GAN_DATA", "HF_TOKEN"):
            if name not in self.extra_env:
                env.pop(name, None)
        self.starts += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"app-{self.starts}.out", "wb") as out, \
                open(self.folder / f"app-{self.starts}.err", "wb") as err:
            # its own session: kill() reaches the worker child too, as when a machine kills the whole app
            self.process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=err,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"the app exited ({self.process.returncode}):\n{self.output()[-3000:]}"
            try:
                if httpx.get(self.url + "gradio_api/info", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the app did not start in {timeout} s:\n{self.output()[-3000:]}"
            time.sleep(0.3)

    def kill(self) -> None:
        """SIGKILL the app and everything it started: nothing gets to save or say goodbye."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self, timeout: float = 60) -> None:
        """Ctrl-C: the app closes and its worker saves; SIGKILL after `timeout` seconds."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.process:  # the worker child, if it outlived the app
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if self.process.poll() is None:
                self.process.wait(30)

    def children(self) -> list[int]:
        """Pids of the app's live child processes (its training worker)."""
        return children(self.process.pid) if self.process else []

    def output(self) -> str:
        """Everything the app printed so far, stdout and stderr of every start."""
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.folder.glob("app-*.*")))

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_for(client, condition, timeout: float, what: str) -> dict:
    """Poll train_status until condition(status); fail after `timeout` seconds with the last status."""
    deadline = time.monotonic() + timeout
    while not condition(status := client.predict(api_name="/train_status")):
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {status['state']} at step " \
                                            f"{status['step']} ({status['message']})"
        time.sleep(0.3)
    return status


def folder_mib(folder: Path) -> float:
    """Bytes of the files under `folder` (files deleted meanwhile count as gone), MiB."""
    total = 0
    for path in Path(folder).rglob("*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except OSError:
            continue
    return total / 2**20


def rest_call(http: httpx.Client, url: str, endpoint: str, body: str | list, headers: dict | None = None,
              timeout: float = 120) -> tuple[str, object]:
    """One call through gradio's raw REST path: ("complete", outputs) or ("error", message). `body` is the data
    list, or its JSON text when it must hold what JSON cannot (NaN, Infinity: gradio_client refuses those)."""
    content = body if isinstance(body, str) else json.dumps(body)
    answer = http.post(f"{url}gradio_api/call/{endpoint}", content='{"data": %s}' % content, timeout=timeout,
                       headers={"content-type": "application/json", **(headers or {})})
    if answer.status_code != 200:
        return "http", f"{answer.status_code}: {answer.text[:300]}"
    event_id = answer.json()["event_id"]
    stream = http.get(f"{url}gradio_api/call/{endpoint}/{event_id}", timeout=timeout, headers=headers or {}).text
    events = [block for block in stream.split("\n\n") if block.startswith("event: ")]
    for block in reversed(events):
        kind, _, data = block.partition("\ndata: ")
        kind = kind.removeprefix("event: ").strip()
        if kind == "complete":
            return "complete", json.loads(data)
        if kind == "error":
            error = json.loads(data) if data.strip() not in ("", "null") else None
            return "error", error.get("error") if isinstance(error, dict) else error
    return "none", stream[-300:]
