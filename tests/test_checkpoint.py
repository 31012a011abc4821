import numpy as np
import pytest

from mnist_gan import atomic_files
from mnist_gan.config import GANConfig
from mnist_gan.errors import CheckpointError
from mnist_gan.training.checkpoint import CHECKPOINT_FILE, RunMeta, load_checkpoint, save_checkpoint
from mnist_gan.training.events import Divergence, Samples, State, StateChanged, Step
from mnist_gan.training.trainer import Trainer

CONFIG = GANConfig(batch_size=16, steps=40, sample_every=20, checkpoint_every=20, ema_decay=0.9, seed=3)


def _weights(trainer):
    return {k: v for k, v in trainer.gan.state_arrays().items()}


@pytest.mark.slow
def test_stopped_and_resumed_run_equals_an_uninterrupted_one(tiny_data, tmp_path):
    straight = Trainer(CONFIG, tiny_data, tmp_path / "straight")
    assert straight.run() == "finished" and straight.step == 40

    first = Trainer(CONFIG, tiny_data, tmp_path / "split")
    first.subscribe(lambda e: first.stop() if isinstance(e, Step) and e.step >= 20 else None)
    assert first.run() == "stopped" and first.step == 20

    resumed = Trainer.resume_from(tmp_path / "split", tiny_data)
    assert resumed.step == 20 and len(resumed.history) == len(first.history)
    assert resumed.run() == "finished"
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for key in a:  # weights, BatchNorm statistics, EMA copy and both optimizers' moments
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert [h["step"] for h in resumed.history] == [h["step"] for h in straight.history]


def test_events_report_both_accuracies_and_samples(tiny_data, tmp_path):
    events = []
    trainer = Trainer(CONFIG.replace(steps=20), tiny_data, tmp_path)
    trainer.subscribe(events.append)
    trainer.run()
    steps = [e for e in events if isinstance(e, Step)]
    assert [e.step for e in steps] == [10, 20]
    for key in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake", "images_per_sec", "eta_s"):
        assert np.isfinite(getattr(steps[-1], key)), key
    assert 0 <= steps[-1].d_acc_real <= 1 and 0 <= steps[-1].d_acc_fake <= 1
    samples = [e for e in events if isinstance(e, Samples)]
    assert samples[-1].grid.dtype == np.uint8 and samples[-1].grid.shape == (8 * 30 + 2, 8 * 30 + 2)
    assert (tmp_path / "samples" / "0000020.png").is_file()
    assert [e.state for e in events if isinstance(e, StateChanged)] == [State.RUNNING, State.FINISHED]


@pytest.mark.slow
def test_pause_and_resume_from_another_thread(tiny_data, tmp_path):
    """A paused run takes no step until it is resumed: no Step event comes between "paused" and "running", however
    long the test takes to look at the paused run, and the pause wrote a checkpoint of the paused step."""
    import threading

    trainer = Trainer(CONFIG.replace(steps=1000), tiny_data, tmp_path)
    events = []
    paused, moved_on = threading.Event(), threading.Event()

    def watch(e):
        events.append(e)
        if isinstance(e, StateChanged) and e.state == State.PAUSED:
            paused.set()
        if isinstance(e, Step) and e.step == 20:
            trainer.pause()
        if isinstance(e, Step) and e.step > 20:
            moved_on.set()

    trainer.subscribe(watch)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    assert paused.wait(60)
    step_at_pause = trainer.step
    assert load_checkpoint(tmp_path / CHECKPOINT_FILE)[1].step == step_at_pause  # the pause saved the run
    assert thread.is_alive() and trainer.step == step_at_pause
    trainer.resume()
    assert moved_on.wait(60)
    trainer.stop()
    thread.join(60)
    assert not thread.is_alive()
    states = [(i, e.state) for i, e in enumerate(events) if isinstance(e, StateChanged)]
    assert [state for _, state in states[:3]] == [State.RUNNING, State.PAUSED, State.RUNNING]
    assert states[-1][1] == State.STOPPED
    (at_pause, _), (at_resume, _) = states[1], states[2]
    assert not any(isinstance(e, Step) for e in events[at_pause:at_resume])  # nothing trained while paused
    assert next(e.step for e in events[at_resume:] if isinstance(e, Step)) == step_at_pause + 10


def test_a_write_killed_before_rename_leaves_the_last_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / CHECKPOINT_FILE
    save_checkpoint(path, {"w": np.arange(3.0)}, RunMeta(GANConfig(), 1))

    def killed(*args):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(atomic_files.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"w": np.arange(5.0)}, RunMeta(GANConfig(), 2))
    monkeypatch.undo()
    arrays, meta = load_checkpoint(path)
    assert meta.step == 1 and arrays["w"].tolist() == [0.0, 1.0, 2.0]
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_FILE]  # no temporary file left behind


@pytest.mark.slow
def test_corrupt_checkpoint_and_wrong_model(tiny_data, tmp_path):
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / CHECKPOINT_FILE)
    trainer = Trainer(CONFIG.replace(steps=10), tiny_data, tmp_path / "run")
    trainer.run()
    with pytest.raises(CheckpointError, match=r"classic generator \(latent_dim=100\).*dcgan generator \(latent_dim=64\)"):
        Trainer.resume_from(tmp_path / "run", tiny_data, changes={"architecture": "dcgan", "latent_dim": 64})


def test_divergence_watch():
    from mnist_gan.training.trainer import DivergenceWatch

    ok = {"d_loss_real": 0.6, "d_loss_fake": 0.6, "g_loss": 1.0, "d_acc_real": 0.7, "d_acc_fake": 0.6}
    watch = DivergenceWatch(patience=100)
    assert watch.check({"step": 10, **ok}) is None
    assert "NaN" in watch.check({"step": 20, **ok, "g_loss": float("nan")})
    perfect = {**ok, "d_acc_real": 1.0, "d_acc_fake": 1.0}
    assert [watch.check({"step": s, **perfect}) for s in (30, 80)] == [None, None]
    assert watch.check({"step": 90, **ok}) is None  # the streak is broken
    reasons = [watch.check({"step": s, **perfect}) for s in (100, 150, 200)]
    assert reasons[:2] == [None, None] and "perfect on real and generated" in reasons[2]


@pytest.mark.slow
def test_a_nan_run_rolls_back_to_its_last_good_checkpoint(tiny_data, tmp_path):
    import tensorflow as tf

    trainer = Trainer(CONFIG.replace(steps=60, ema_decay=0.0), tiny_data, tmp_path)
    events = []

    def poison(e):  # a real fault: one generator weight becomes NaN right after step 30
        events.append(e)
        if isinstance(e, Step) and e.step == 30 and not trainer.incidents:
            w = trainer.gan.generator.weights[0]
            w.assign(tf.tensor_scatter_nd_update(w, [[0, 0]], [float("nan")]))

    trainer.subscribe(poison)
    assert trainer.run() == "finished"
    divergences = [e for e in events if isinstance(e, Divergence)]
    assert len(divergences) == 1 and divergences[0].action == "rolled back to step 20"
    assert "NaN" in divergences[0].reason
    arrays, meta = load_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert meta.step == 60 and all(np.isfinite(a).all() for a in arrays.values())
    assert meta.incidents[0]["step"] == 40 and trainer.record()["incidents"] == meta.incidents


@pytest.mark.slow
def test_a_nan_run_without_checkpoint_pauses_and_never_saves_nan(tiny_data, tmp_path):
    import threading

    import tensorflow as tf

    trainer = Trainer(CONFIG.replace(steps=1000, checkpoint_every=1000, ema_decay=0.0), tiny_data, tmp_path)
    paused = threading.Event()

    def poison(e):
        if isinstance(e, Step) and e.step == 10:
            trainer.gan.discriminator.weights[0].assign(tf.fill(trainer.gan.discriminator.weights[0].shape, float("nan")))
        if isinstance(e, StateChanged) and e.state == State.PAUSED:
            paused.set()

    trainer.subscribe(poison)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    assert paused.wait(60)
    trainer.stop()
    thread.join(60)
    assert trainer.incidents[0]["action"] == "paused: no checkpoint to roll back to"
    assert not (tmp_path / CHECKPOINT_FILE).exists()  # the NaN state was never written
