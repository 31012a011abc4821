"""Faults the app survives: a killed training process or a killed app (the run resumes from its checkpoint), a
diverging run (the Train tab says what happened), an unwritable run folder, and the Hub lost mid-push."""

import functools
import os
import re
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import huggingface_hub.constants
import huggingface_hub.lfs
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from mnist_gan.atomic_files import TMP_PREFIX
from mnist_gan.model.generator import Generator
from mnist_gan.training.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from testing.app import AppProcess, wait_for
from testing.browser import browser, wait_for_grid, wait_for_text
from testing.hub_server import HubServer
from testing.system import wait_until

TOKEN = "hf_faultsWrite3Kq9sT2vX9mN0pL6z"


def connect(url: str, folder: Path) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, download_files=str(folder))


def stop_run(client: Client) -> dict:
    """Stop the run if one is active (tests share the session app) and wait until its process has ended."""
    status = client.predict(api_name="/train_status")
    if status["state"] in ("starting", "running", "pausing", "paused", "resuming"):
        client.predict(api_name="/train_stop")
    return wait_for(client, lambda s: s["state"] in ("idle", "stopped", "finished", "failed"), 600, "the stop")


@contextmanager
def browser_page(url: str):
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        wait_for_grid(page)
        page.get_by_role("tab", name="Train").click()
        yield page


# --- a killed training process, a killed app ----------------------------------------------------------------------

@pytest.mark.slow
def test_a_killed_worker_or_app_leaves_a_run_that_resumes_from_its_checkpoint(tmp_path):
    app = AppProcess(tmp_path / "app")
    try:
        client = connect(app.start().url, tmp_path)
        run = client.predict(architecture="classic", batch_size=16, steps=6000, data="sample",
                             api_name="/train_start")["run"]
        # 1. SIGKILL of the training process, at a random moment after its first checkpoint
        status = wait_for(client, lambda s: (s["saved_step"] or 0) >= 1000, 600, "the first checkpoint")
        time.sleep(0.5 + (time.time_ns() % 1000) / 1000)
        [worker] = app.children()
        os.kill(worker, signal.SIGKILL)
        failed = wait_for(client, lambda s: s["state"] == "failed" and s["resumable"], 30, "the app to notice")
        assert "exited (code -9)" in failed["message"]
        saved = failed["saved_step"]
        assert failed["step"] >= saved >= status["saved_step"] and failed["resumable"] == {
            "run": run, "step": saved, "steps": 6000, "data": "bundled sample, 2,000 images"}
        assert failed["resumable_runs"] == [failed["resumable"]]
        run_dir = app.runs / run
        _, meta = load_checkpoint(run_dir / CHECKPOINT_FILE)  # whole and readable
        assert meta.step == saved and len(meta.history) == saved // 10
        assert "classic" in [m["name"] for m in client.predict(api_name="/models")]  # the app serves on

        resumed = client.predict(api_name="/train_resume_run")
        assert resumed["run"] == run and resumed["step"] == saved and resumed["resumable"] is None
        assert resumed["history"] == failed["history"][:len(resumed["history"])]  # the curves up to the checkpoint
        assert resumed["history"][-1]["step"] == saved
        with pytest.raises(AppError, match="a training run is in progress"):
            client.predict(api_name="/train_resume_run")

        # 2. SIGKILL of the whole app (and its worker) while the resumed run trains on
        wait_for(client, lambda s: s["state"] == "running" and s["step"] > saved, 600, "the resumed run")
        app.kill()
        _, meta = load_checkpoint(run_dir / CHECKPOINT_FILE)
        saved = meta.step
        assert saved >= failed["saved_step"]
        assert [row["step"] for row in meta.history] == list(range(10, saved + 1, 10))
        Generator.load(run_dir).generate(0, 2)  # the exported weights load as well

        # 3. The restarted app offers the run, and the Train tab's "Resume run" continues it
        client = connect(app.start().url, tmp_path)
        idle = client.predict(api_name="/train_status")
        assert idle["state"] == "idle" and idle["resumable"]["run"] == run and idle["resumable"]["step"] == saved
        with browser_page(app.url) as page:
            wait_for_text(page, "#status", rf"{re.escape(run)} ended before it finished.* step {saved:,} of 6,000")
            page.locator("#resume-run").click()
            wait_for_text(page, "#status", r"running")
            assert not page.locator("#resume-run").is_visible()
        status = wait_for(client, lambda s: s["step"] > saved + 20 and s["state"] == "running", 600, "the resume")
        assert status["run"] == run and status["history"][0]["step"] == 10  # one run, its history whole
        client.predict(api_name="/train_stop")
        stopped = wait_for(client, lambda s: s["state"] == "stopped", 600, "the stop")
        assert stopped["saved_step"] == stopped["step"] > saved  # the resumed run checkpoints on
        assert [row["step"] for row in load_checkpoint(run_dir / CHECKPOINT_FILE)[1].history] == \
            list(range(10, stopped["step"] + 1, 10))
        assert not list(run_dir.glob(TMP_PREFIX + "*"))
        # 4. Asked (SIGUSR1), the app writes every thread's stack: what a Ctrl-C it did not act on would leave
        stacks = app.stacks()
        assert "Current thread" in stacks or "Thread 0x" in stacks, stacks
        assert "in block_thread" in stacks, stacks  # its main thread, in gradio's wait for Ctrl-C
    finally:
        app.stop()


def test_an_app_that_does_not_stop_on_ctrl_c_is_killed_with_its_threads_stacks_in_a_warning(tmp_path):
    """The tests' AppProcess gives an app 60 s to stop on Ctrl-C, then kills it: a test passes all the same, so the
    warning (in pytest's summary) must say where the app's threads were. A stand-in app.py that ignores Ctrl-C."""
    root = tmp_path / "checkout"
    root.mkdir()
    (root / "app.py").write_text("import faulthandler, signal, time\n"
                                 "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                 "faulthandler.register(signal.SIGUSR1, all_threads=True)\n"
                                 "print('waiting', flush=True)\n"
                                 "def wait_for_ever():\n"
                                 "    time.sleep(600)\n"
                                 "wait_for_ever()\n")
    app = AppProcess(tmp_path / "app", root=root)
    try:
        app.launch()
        out = app.folder / "app-1.out"
        wait_until(lambda: out.exists() and "waiting" in out.read_text(), 30, "the stand-in app")
        with pytest.warns(UserWarning, match="did not stop within 1 s of Ctrl-C") as warned:
            app.stop(timeout=1)
        assert app.process.poll() is not None  # killed
        assert "in wait_for_ever" in str(warned[0].message), warned[0].message
    finally:
        app.kill()
        app.close()


# --- divergence -------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_diverging_run_is_rolled_back_and_the_train_tab_says_so(app_server, tmp_path):
    """The fault: a NaN in the run's checkpoint, as a bad disk could leave it (the trainer never saves one). Resumed
    from it, every step's loss is NaN: the run rolls back to its checkpoint, and pauses after the third time."""
    app, url = app_server
    client = connect(url, tmp_path)
    stop_run(client)
    client.predict(batch_size=16, steps=4000, data="sample", api_name="/train_start")
    try:
        wait_for(client, lambda s: s["state"] == "running" and s["step"] >= 20, 600, "the run")
        client.predict(api_name="/train_stop")
        stopped = wait_for(client, lambda s: s["state"] == "stopped" and s["resumable"], 600, "the stop")
        saved, path = stopped["saved_step"], app.service.training.worker.runs_dir / stopped["run"] / CHECKPOINT_FILE
        arrays, meta = load_checkpoint(path)
        arrays["discriminator/0"] = np.full_like(arrays["discriminator/0"], np.nan)
        save_checkpoint(path, arrays, meta)

        client.predict(api_name="/train_resume_run")
        status = wait_for(client, lambda s: s["state"] == "paused", 600, "the pause after repeated divergence")
        assert [(i["reason"], i["action"]) for i in status["incidents"]] == [
            ("a loss became NaN or infinite", f"rolled back to step {saved}")] * 2 + [
            ("a loss became NaN or infinite", f"rolled back to step {saved}; paused after repeated divergence")]
        assert all(i["step"] > saved for i in status["incidents"]) and status["step"] == saved
        with browser_page(url) as page:
            text = wait_for_text(page, "#status", r"paused after repeated divergence")
            assert re.search(r"^paused · ", text)
            step = status["incidents"][-1]["step"]
            assert f"Divergence at step {step:,}: a loss became NaN or infinite; rolled back to step {saved}; " \
                   "paused after repeated divergence." in text
    finally:
        stop_run(client)


# --- disk full / unwritable run folder --------------------------------------------------------------------------

@contextmanager
def unwritable(folder: Path):
    """Make `folder` refuse new files for real: chmod for a user, the immutable attribute for root."""
    folder.chmod(0o555)
    immutable = False
    try:
        if _writable(folder) and shutil.which("chattr"):
            immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        if _writable(folder):
            pytest.skip("cannot make a folder read-only here (root without chattr +i)")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def _writable(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


@pytest.mark.slow
def test_an_unwritable_run_folder_gets_a_clear_message_and_the_app_keeps_serving(app_server, tmp_path):
    app, url = app_server
    client = connect(url, tmp_path)
    stop_run(client)
    runs = app.service.training.worker.runs_dir
    runs.mkdir(parents=True, exist_ok=True)
    generate = dict(model="classic", seed=3, n=4, digit="all digits", temperature=1.0, api_name="/generate")
    with unwritable(runs):
        with pytest.raises(AppError, match=rf"cannot write the run folder {re.escape(runs.name)}: .*Free some disk "
                                           "space or make the folder writable") as error:
            client.predict(data="sample", api_name="/train_start")
        assert "Traceback" not in str(error.value)
        assert Path(client.predict(**generate)).stat().st_size > 0  # the app keeps serving

    # mid-run: the run folder becomes read-only after a checkpoint; the next checkpoint cannot be written
    client.predict(batch_size=16, steps=4000, data="sample", api_name="/train_start")
    try:
        wait_for(client, lambda s: s["state"] == "running" and s["step"] >= 20, 600, "the run")
        client.predict(api_name="/train_pause")  # a pause saves a checkpoint
        paused = wait_for(client, lambda s: s["state"] == "paused", 600, "the pause")
        run_dir = runs / paused["run"]
        (run_dir / "samples").mkdir(exist_ok=True)
        with unwritable(run_dir), unwritable(run_dir / "samples"):  # the next sample grid cannot be written
            client.predict(api_name="/train_resume")
            failed = wait_for(client, lambda s: s["state"] == "failed" and s["resumable"], 600,
                              "the failed checkpoint")
            assert failed["message"].startswith(f"cannot write the run folder {run_dir.name}: ")
            assert str(runs) not in failed["message"]  # the path is for the admin's log, not for visitors
            assert failed["message"].endswith(f"Its checkpoint of step {paused['step']} is intact: resume the run "
                                              "once fixed")
            assert failed["resumable"]["step"] == paused["step"]
            assert Path(client.predict(**generate)).stat().st_size > 0
        # the last good checkpoint is whole, and offered for resuming (the resume itself: the test above)
        assert load_checkpoint(run_dir / CHECKPOINT_FILE)[1].step == paused["step"]
        assert client.predict(api_name="/train_status")["resumable"]["run"] == paused["run"]
    finally:
        stop_run(client)


# --- the Hub lost mid-push --------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("route, when", [("commit", "before"), ("commit", "after"), ("lfs_upload", "before")])
def test_a_push_that_loses_the_hub_is_not_reported_as_pushed_and_a_retry_works(app_server, tmp_path, monkeypatch,
                                                                               route, when):
    _, url = app_server
    client = connect(url, tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)  # the local server offers no Xet
    monkeypatch.delenv("HF_TOKEN", raising=False)
    # the client retries a lost LFS upload 5 times with waits of 1 to 8 s; the same retries, without the waits
    monkeypatch.setattr(huggingface_hub.lfs, "http_backoff", functools.partial(
        huggingface_hub.lfs.http_backoff, base_wait_time=0.01, max_wait_time=0.05))
    with HubServer({TOKEN: ("alice", True)}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        repo = f"alice/lost-{route.replace('_', '-')}-{when}"
        hub.drop = {route: when}
        with pytest.raises(AppError, match=rf"the Hub at {re.escape(hub.url)} is unreachable: the connection failed "
                                           f"during the push to {repo}, so the push was not completed") as error:
            client.predict(model="classic", repo_id=repo, token=TOKEN, api_name="/push")
        assert TOKEN not in str(error.value)
        head = hub.repos[repo].commits[hub.repos[repo].branches["main"]]
        if when == "before":  # nothing of the model reached the repo
            assert set(head) == {".gitattributes"}
        else:  # the commit went through but its answer was lost: whole, and still not reported as a success
            assert {"mnist_gan.json", "generator.weights.h5", "gan_config.json"} <= set(head)

        hub.drop = {}
        pushed = client.predict(model="classic", repo_id=repo, token=TOKEN, api_name="/push")
        pulled = client.predict(repo_id=repo, revision=pushed["commit_sha"], api_name="/pull")
        assert pulled["commit_sha"] == pushed["commit_sha"]


# --- a slow first page ----------------------------------------------------------------------------------------------

def test_the_app_starts_when_gradios_own_look_at_the_page_is_slow(tmp_path, monkeypatch):
    """launch() once looked at the page with one 3 s HEAD after the server had answered, and gave up the start when
    that answer was slow (a busy 2-core machine): the app's start must not depend on it."""
    import gradio.networking
    from testing.app import served_app

    monkeypatch.setattr(gradio.networking, "url_ok", lambda url: False)  # the HEAD timed out
    with served_app(tmp_path) as (demo, url), httpx.Client(timeout=60) as http:
        assert http.get(f"{url}png?seed=1&n=1").status_code == 200
