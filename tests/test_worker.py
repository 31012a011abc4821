"""The training worker: how the child's events become the run's state, and a real child process end to end."""

import time

import numpy as np
import pytest

from mnist_gan.config import GANConfig
from mnist_gan.data import TINY_DATA
from mnist_gan.weights import Generator
from mnist_gan.worker import IDLE, RunState, TrainingWorker, WorkerBusy, cadence, downsample


def step(n: int, acc: float = 0.5) -> dict:
    return {"event": "step", "step": n, "d_loss": 0.6, "g_loss": 1.0, "d_acc_real": acc, "d_acc_fake": acc,
            "images_per_sec": 100.0, "eta_s": 5.0}


def test_cadence_gives_about_40_grids_in_multiples_of_10():
    assert cadence(40, False) == {"sample_every": 10, "eval_every": 0}
    assert cadence(2000, True) == {"sample_every": 50, "eval_every": 250}
    assert cadence(1_000_000, False)["sample_every"] == 500


def test_downsample_keeps_first_and_last_and_bounds_the_count():
    rows = list(range(1001))
    thin = downsample(rows, 300)
    assert thin[0] == 0 and thin[-1] == 1000 and len(thin) <= 301 and thin == sorted(thin)
    assert downsample(rows[:10], 300) == rows[:10]


def test_run_state_folds_events_and_forgets_what_a_rollback_undid(tmp_path):
    run = RunState("r", tmp_path, GANConfig(steps=100), "sample")
    assert run.snapshot()["state"] == "starting" and run.active
    run.apply({"event": "state", "state": "running", "step": 0, "message": ""})
    for n in (10, 20, 30):
        run.apply(step(n, acc=n / 100))
        run.apply({"event": "samples", "step": n, "path": f"/grids/{n}.png"})
    run.apply({"event": "quality", "step": 20, "cfid": 50.0, "class_histogram": [0.1] * 10})
    run.apply({"event": "checkpoint", "step": 20})
    # divergence at 30: the trainer rolls back to its step-20 checkpoint and trains on
    run.apply({"event": "divergence", "step": 30, "reason": "a loss became NaN", "action": "rolled back to step 20"})
    run.apply(step(30, acc=0.9))
    s = run.snapshot()
    assert [r["step"] for r in s["history"]] == [10, 20, 30] and s["history"][-1]["d_acc_real"] == 0.9
    assert s["sample_steps"] == [10, 20] and s["saved_step"] == 20 and len(s["incidents"]) == 1
    assert s["quality"] == [{"step": 20, "cfid": 50.0}] and s["class_histogram"] == [0.1] * 10
    assert s["d_acc_real"] == s["d_acc_fake"] == 0.9 and s["progress"] == 0.3 and s["eta_s"] == 5.0

    run.expect("pausing")
    run.expect("resuming")  # a resume that overtook the pause: the child reports neither
    run.apply(step(40))
    assert run.snapshot()["state"] == "running"
    run.ended(-9)  # killed before it could say it stopped
    assert run.snapshot()["state"] == "failed" and "exited (code -9)" in run.snapshot()["message"]
    run.apply({"event": "state", "state": "stopped", "step": 40, "message": ""})
    run.ended(0)
    assert run.snapshot()["state"] == "stopped"
    assert set(run.snapshot()) == set(IDLE)  # before any run, the status has the same keys


def wait(worker, states, timeout=120) -> dict:
    deadline = time.monotonic() + timeout
    while (status := worker.status())["state"] not in states:
        assert time.monotonic() < deadline, f"still {status['state']} at step {status['step']}"
        time.sleep(0.2)
    return status


def test_a_child_run_finishes_saves_and_hands_its_weights_over(tmp_path):
    done = []
    worker = TrainingWorker(tmp_path, on_done=done.append)
    try:
        config = GANConfig(batch_size=8, steps=20, **cadence(20, False))
        worker.start(config, TINY_DATA, "sample")
        with pytest.raises(WorkerBusy, match="a training run is in progress"):
            worker.start(config, TINY_DATA, "sample")
        status = wait(worker, ("finished", "failed"))
        assert status["state"] == "finished", status["message"]
        assert status["step"] == status["saved_step"] == 20 and status["sample_steps"] == [10, 20]
        deadline = time.monotonic() + 30
        while not done:
            assert time.monotonic() < deadline, "on_done was never called"
            time.sleep(0.1)
        assert done[0].name == status["run"]
        assert Generator.load(status["run_dir"]).generate(0, 2).shape == (2, 28, 28)
        step, grid = worker.grid(-1)
        assert step == 20 and grid.dtype == np.uint8 and grid.shape == (8 * 30 + 2,) * 2
        assert len(worker.grids()) == 2
        with pytest.raises(WorkerBusy, match="cannot pause: the run is finished"):
            worker.pause()

        worker.start(config, tmp_path / "missing.npz", "a file that is not there")  # the next run may start
        status = wait(worker, ("failed",))
        assert "MNIST file not found" in status["message"] and status["saved_step"] is None
    finally:
        worker.close()
