"""The app as people run it: `python app.py` in its own process on 127.0.0.1, called through Gradio's raw REST
path (POST /gradio_api/call/NAME, then the SSE result), stopped with Ctrl-C or killed with its training child.

Everything it writes goes under one folder: runs, gradio's cache, the Hub cache, HF_HOME and its stdout/stderr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import httpx

from .system import children, free_port, rss_mb, wait_until

ROOT = Path(__file__).resolve().parent.parent
QUIET = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
         "PYTHONUNBUFFERED": "1"}
GENERATE = ["classic", 0, 64, "all digits", 1.0]  # model, seed, n, digit, temperature: a 64-image grid
SAMPLE_RUN = {"architecture": "classic", "batch_size": 32, "steps": 200_000, "data": "sample", "recipe": "classic"}


class AppError(RuntimeError):
    """The app answered an API call with an error, or did not answer."""


def rest_call(http: httpx.Client, url: str, endpoint: str, body: str | list, headers: dict | None = None,
              session: str | None = None, timeout: float = 120) -> tuple[str, object]:
    """One call through gradio's raw REST path: ("complete", outputs), ("error", message), or ("http" | "none",
    what came back). `body` is the data list, or its JSON text when it must hold what JSON cannot (NaN, Infinity:
    gradio_client refuses those). session: a session_hash, as gradio_client and the page send; None, as a bare curl
    does, makes gradio set up a new session for the call."""
    content = body if isinstance(body, str) else json.dumps(body)
    if session:
        content = '{"data": %s, "session_hash": %s}' % (content, json.dumps(session))
    else:
        content = '{"data": %s}' % content
    answer = http.post(f"{url.rstrip('/')}/gradio_api/call/{endpoint}", content=content, timeout=timeout,
                       headers={"content-type": "application/json", **(headers or {})})
    return call_outcome(http, url, endpoint, answer, headers, timeout)


def call_outcome(http: httpx.Client, url: str, endpoint: str, answer: httpx.Response, headers: dict | None,
                 timeout: float) -> tuple[str, object]:
    """The outcome of a call gradio accepted with `answer` (its event id), read from the SSE stream."""
    if answer.status_code != 200:
        return "http", f"{answer.status_code}: {answer.text[:300]}"
    event_id = answer.json()["event_id"]
    kind = None
    with http.stream("GET", f"{url.rstrip('/')}/gradio_api/call/{endpoint}/{event_id}", timeout=timeout,
                     headers=headers or {}) as stream:
        for line in stream.iter_lines():  # returns at the result, without waiting for the stream to close
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                data = line[5:].strip()
                if kind == "complete":
                    return "complete", json.loads(data)
                error = json.loads(data) if data not in ("", "null") else None
                return "error", error.get("error") if isinstance(error, dict) else error
    return "none", f"the result stream ended without a result (last event {kind!r})"


class AppProcess:
    """`with AppProcess(folder, env) as app:` serves `python app.py` on app.url; `kill()` is SIGKILL of the app and
    its worker, `stop()` is Ctrl-C. folder None: a temporary folder, removed at the end. root: the checkout whose
    app.py runs (another one: a benchmark's "before"). cpus: the CPUs the app and its worker may run on (default:
    those this process may)."""

    def __init__(self, folder: str | Path | None = None, env: dict[str, str] | None = None, root: Path = ROOT,
                 cpus: set[int] | None = None):
        self.root, self.cpus = Path(root), cpus
        self._tmp = None if folder else tempfile.TemporaryDirectory(prefix="mnist-gan-app-")
        self.folder = Path(folder or self._tmp.name)
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.started_at = 0.0
        self.http = httpx.Client(timeout=120)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def runs(self) -> Path:
        return self.folder / "runs"

    @property
    def gradio_cache(self) -> Path:
        return self.folder / "gradio"

    def launch(self) -> AppProcess:
        """Start `python app.py` without waiting for it."""
        env = {**os.environ, **QUIET, "GRADIO_SERVER_PORT": str(self.port), "GRADIO_SERVER_NAME": "127.0.0.1",
               "MNIST_GAN_RUNS": str(self.runs), "GRADIO_TEMP_DIR": str(self.gradio_cache),
               "MNIST_GAN_HUB_CACHE": str(self.folder / "hub-cache"), "HF_HOME": str(self.folder / "hf"),
               **self.extra_env}
        for name in ("MNIST_GAN_REPO", "MNIST_GAN_DATA", "HF_TOKEN", "SPACE_ID", "SYSTEM", "MNIST_GAN_ADMINS"):
            if name not in self.extra_env:
                env.pop(name, None)
        self.starts += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"app-{self.starts}.out", "wb") as out, \
                open(self.folder / f"app-{self.starts}.err", "wb") as err:
            # its own session: kill() reaches the worker child too, as when a machine kills the whole app
            self.started_at = time.perf_counter()
            pinned = ["taskset", "--cpu-list", ",".join(map(str, sorted(self.cpus)))] if self.cpus else []
            self.process = subprocess.Popen([*pinned, sys.executable, "app.py"], cwd=self.root, env=env, stdout=out,
                                            stderr=err, start_new_session=True)
        return self

    def start(self, timeout: float = 180) -> AppProcess:
        """Start the app and wait until its API answers."""
        self.launch()

        def answers() -> bool:
            if self.process.poll() is not None:
                raise AppError(f"the app exited ({self.process.returncode}):\n{self.output()[-3000:]}")
            try:
                return self.http.get(self.url + "gradio_api/info", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answers, timeout, "the app to answer", every=0.1, describe=lambda: self.output()[-3000:])
        return self

    def call(self, endpoint: str, *data, session: str | None = None, headers: dict | None = None):
        """One API call through the raw REST path; the outputs (a list), or AppError with the app's message."""
        kind, value = rest_call(self.http, self.url, endpoint, list(data), headers=headers, session=session)
        if kind != "complete":
            raise AppError(f"{endpoint}: {value}")
        return value

    def status(self) -> dict:
        return self.call("train_status")[0]

    def wait_for(self, condition, timeout: float, what: str) -> dict:
        """train_status once condition(status) holds."""
        return wait_for_run(self.status, condition, timeout, what)

    def start_training(self, timeout: float = 120.0, **settings) -> dict:
        """Start a run (SAMPLE_RUN changed by `settings`) and wait until it has taken steps."""
        self.named("train_start", **{**SAMPLE_RUN, **settings})
        return self.wait_for(lambda s: s["state"] == "running" and s["step"] > 0, timeout, "the run's first steps")

    def stop_training(self, timeout: float = 60.0) -> dict:
        self.call("train_stop")
        return self.wait_for(lambda s: s["state"] in ("stopped", "finished", "failed"), timeout, "the stop")

    def named(self, endpoint: str, **values):
        """A call by parameter name (gradio's v2 path); the outputs, or AppError."""
        answer = self.http.post(f"{self.url}gradio_api/call/v2/{endpoint}", json=values)
        kind, value = call_outcome(self.http, self.url, endpoint, answer, None, 120)
        if kind != "complete":
            raise AppError(f"{endpoint}: {value}")
        return value

    def children(self) -> list[int]:
        """Pids of the app's live child processes (its training worker)."""
        return children(self.process.pid) if self.process else []

    def rss(self) -> dict[int, tuple[float, float]]:
        """pid -> (current MB, peak MB) of the app and each child process."""
        return {pid: rss_mb(pid) for pid in [self.process.pid, *self.children()]}

    def output(self) -> str:
        """Everything the app printed so far, stdout and stderr of every start."""
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.folder.glob("app-*.*")))

    def kill(self) -> None:
        """SIGKILL the app and everything it started: nothing gets to save or say goodbye."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self, timeout: float = 60) -> None:
        """Ctrl-C: the app closes and its worker saves; its process group is killed after `timeout` seconds, and a
        warning then carries every thread's stack in the app at that moment (app.py writes them on SIGUSR1): a
        Ctrl-C the app did not act on is a bug to find, and pytest's summary shows warnings of passing tests too."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                warnings.warn(f"the app did not stop within {timeout:g} s of Ctrl-C; its threads then:\n"
                              f"{self.stacks()}", stacklevel=2)
        if self.process:  # the worker child, if it outlived the app
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if self.process.poll() is None:
                self.process.wait(30)

    def stacks(self, wait: float = 5.0) -> str:
        """Every thread's stack in the running app, as it writes them to its stderr on SIGUSR1."""
        err = self.folder / f"app-{self.starts}.err"
        size = err.stat().st_size if err.exists() else 0
        try:
            os.kill(self.process.pid, signal.SIGUSR1)
        except ProcessLookupError:
            return "(it had exited meanwhile)"
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and err.exists() and err.stat().st_size == size:
            time.sleep(0.1)
        time.sleep(0.2)  # the rest of the dump
        return err.read_bytes()[size:].decode(errors="replace")[-8000:] if err.exists() else "(no stderr file)"

    def close(self) -> None:
        self.stop()
        self.http.close()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def wait_for_run(status, condition, timeout: float, what: str) -> dict:
    """Poll status() (a train_status dict) until condition(it) holds; a timeout says what the run said last."""
    seen = {}

    def check():
        seen["status"] = s = status()
        return s if condition(s) else None

    return wait_until(check, timeout, what, every=0.3, describe=lambda: "last status: {state} at step {step} "
                      "({message})".format(**seen["status"]) if seen else "no status")


def wait_for(client, condition, timeout: float, what: str) -> dict:
    """wait_for_run over a gradio_client Client's train_status."""
    return wait_for_run(lambda: client.predict(api_name="/train_status"), condition, timeout, what)


def _built(folder: str | Path, env: dict[str, str] | None = None):
    """app.build over a service of its own, its runs and Hub cache under `folder`; the service reads the
    environment plus `env`."""
    import app
    from mnist_gan.service import AppSettings, Service

    folder = Path(folder)
    environ = {key: value for key, value in os.environ.items() if key != "MNIST_GAN_REPO"}
    environ |= {"MNIST_GAN_RUNS": str(folder / "runs"), "MNIST_GAN_HUB_CACHE": str(folder / "hub-cache"), **(env or {})}
    return app.build(Service(AppSettings.from_env(environ)))


@contextmanager
def built_app(folder: str | Path, env: dict[str, str] | None = None):
    """The app built in this process (`_built`) and not served: yields the demo, whose events a test calls
    directly."""
    demo = _built(folder, env)
    try:
        yield demo
    finally:
        demo.mnist_gan_page.service.close()


@contextmanager
def served_app(folder: str | Path, env: dict[str, str] | None = None):
    """The app in this process (`_built`), launched on a free port of 127.0.0.1: yields (demo, url)."""
    import app

    demo = _built(folder, env)
    _, url, _ = app.launch(demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                           quiet=True)
    try:
        yield demo, url
    finally:
        app.close(demo)
