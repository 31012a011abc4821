"""The training worker: how the child's events become the run's status, and a real child process end to end."""

import numpy as np
import pytest

from mnist_gan.config import GANConfig, cadence
from mnist_gan.data import SAMPLE_DATA
from mnist_gan.errors import Busy
from mnist_gan.model.generator import Generator
from mnist_gan.training.events import (
    Checkpoint,
    Divergence,
    Quality,
    Samples,
    State,
    StateChanged,
    Step,
    from_json,
    to_json,
)
from mnist_gan.training.process import TrainingWorker
from mnist_gan.training.run_state import RunStatus, RunView, downsample
from testing.system import wait_until


def step(n: int, acc: float = 0.5) -> Step:
    return Step(step=n, d_loss_real=0.6, d_loss_fake=0.6, g_loss=1.0, d_acc_real=acc, d_acc_fake=acc, d_loss=0.6,
                images_per_sec=100.0, eta_s=5.0)


def test_cadence_gives_about_40_grids_in_multiples_of_10():
    assert cadence(40, False) == {"sample_every": 10, "eval_every": 0}
    assert cadence(2000, True) == {"sample_every": 50, "eval_every": 250}
    assert cadence(1_000_000, False)["sample_every"] == 500


def test_downsample_keeps_first_and_last_and_bounds_the_count():
    rows = list(range(1001))
    thin = downsample(rows, 300)
    assert thin[0] == 0 and thin[-1] == 1000 and len(thin) <= 301 and thin == sorted(thin)
    assert downsample(rows[:10], 300) == rows[:10]


def test_every_event_crosses_the_pipe_as_itself():
    grid = np.zeros((3, 3), np.uint8)
    for event in (step(10), Samples(10, "/runs/r/samples/0000010.png", grid), Quality(20, {"cfid": 1.5, "n": 2}),
                  Checkpoint(20, "/runs/r/checkpoint.npz"), Divergence(30, "a loss became NaN", "rolled back"),
                  StateChanged(State.PAUSED, 30, "")):
        back = from_json(to_json(event))
        assert back == event and type(back) is type(event)
    assert from_json(to_json(Samples(10, None, grid))).grid is None  # grids stay in the training process
    assert isinstance(from_json(to_json(StateChanged(State.FAILED, 0, "x"))).state, State)
    for line in ("Epoch 1/1", '{"event": "nope"}', '{"event": "step", "step": 1}', "[]"):
        with pytest.raises(ValueError):
            from_json(line)


def test_state_predicates():
    assert [s for s in State if s.active] == [State.STARTING, State.RUNNING, State.PAUSING, State.PAUSED,
                                             State.RESUMING, State.STOPPING]
    assert [s for s in State if s.done] == [State.STOPPED, State.FINISHED, State.FAILED]
    assert State.RUNNING.can_pause and not State.PAUSED.can_pause and State.PAUSING.can_resume
    assert State.RUNNING == "running" and f"{State.PAUSED}" == "paused"


def test_run_view_folds_events_and_forgets_what_a_rollback_undid(tmp_path):
    run = RunView("r", tmp_path, GANConfig(steps=100), "sample")
    assert run.status().state == State.STARTING and run.active
    run.apply(StateChanged(State.RUNNING, 0))
    for n in (10, 20, 30):
        run.apply(step(n, acc=n / 100))
        run.apply(Samples(n, f"/grids/{n}.png"))
    run.apply(Quality(20, {"cfid": 50.0, "class_histogram": [0.1] * 10}))
    run.apply(Checkpoint(20, "/ck"))
    # divergence at 30: the trainer rolls back to its step-20 checkpoint and trains on
    run.apply(Divergence(30, "a loss became NaN", "rolled back to step 20"))
    run.apply(step(30, acc=0.9))
    s = run.status()
    assert [r["step"] for r in s.history] == [10, 20, 30] and s.history[-1]["d_acc_real"] == 0.9
    assert s.sample_steps == [10, 20] and s.saved_step == 20 and len(s.incidents) == 1
    assert s.quality == [{"step": 20, "cfid": 50.0}] and s.class_histogram == [0.1] * 10
    assert s.d_acc_real == s.d_acc_fake == 0.9 and s.progress == 0.3 and s.eta_s == 5.0

    run.expect(State.PAUSING)
    run.expect(State.RESUMING)  # a resume that overtook the pause: the child reports neither
    run.apply(step(40))
    assert run.status().state == State.RUNNING
    run.ended(-9)  # killed before it could say it stopped
    assert run.status().state == State.FAILED and "exited (code -9)" in run.status().message
    run.apply(StateChanged(State.STOPPED, 40))
    run.ended(0)
    assert run.status().state == State.STOPPED
    as_json = run.status().to_json()
    assert as_json["state"] == "stopped" and set(as_json) == set(RunStatus.idle().to_json())  # same keys as idle


def test_a_child_run_finishes_saves_and_hands_its_weights_over(tmp_path):
    done = []
    worker = TrainingWorker(tmp_path, on_done=done.append)
    try:
        config = GANConfig(batch_size=8, steps=20, **cadence(20, False))
        worker.start(config, SAMPLE_DATA, "sample")
        with pytest.raises(Busy, match="a training run is in progress"):
            worker.start(config, SAMPLE_DATA, "sample")
        status = wait_until(lambda: (s := worker.status()).state.done and s, 600, "the run to end")
        assert status.state == State.FINISHED, status.message
        assert status.step == status.saved_step == 20 and status.sample_steps == [10, 20]
        wait_until(lambda: done, 30, "on_done")
        assert done[0].name == status.run
        assert Generator.load(status.run_dir).generate(0, 2).shape == (2, 28, 28)
        step_, grid = worker.grid(-1)
        assert step_ == 20 and grid.dtype == np.uint8 and grid.shape == (8 * 30 + 2,) * 2
        assert len(worker.grids()) == 2
        with pytest.raises(Busy, match="cannot pause: the run is finished"):
            worker.pause()

        worker.start(config, tmp_path / "missing.npz", "a file that is not there")  # the next run may start
        status = wait_until(lambda: (s := worker.status()).state == State.FAILED and s, 600, "the failure")
        assert "MNIST file not found" in status.message and status.saved_step is None
    finally:
        worker.close()
