"""The Train tab's laboratory, checked as numbers: steps by hand do what their names say on their own batch, live edits
take effect at the stated step and survive a resume, a fork continues its parent exactly, the atlas is drawn at each
sample step, and the collapse alarm fires on a provoked collapse but not on a healthy start."""

import shutil
import threading

import numpy as np
import pytest

from mnist_gan.access import ANONYMOUS
from mnist_gan.config import GANConfig, cadence, live_edit, recipe
from mnist_gan.data import SAMPLE_DATA
from mnist_gan.errors import ConfigError, InvalidInput
from mnist_gan.quality.metrics import near_duplicates
from mnist_gan.sweeps.spec import sweep_runs
from mnist_gan.training import alarms, atlas, manual_steps
from mnist_gan.training.checkpoint import CHECKPOINT_FILE, load_checkpoint, step_checkpoints
from mnist_gan.training.events import AtlasDrawn, Edited, Inspected, State, Step
from mnist_gan.training.laboratory import Laboratory, evidence_picture
from mnist_gan.training.process import TrainingWorker
from mnist_gan.training.trainer import Trainer
from testing.system import wait_until

QUICK = GANConfig(batch_size=32, steps=10_000, sample_every=10, checkpoint_every=10, seed=5)


def weights(model) -> list[np.ndarray]:
    return [np.array(w) for w in model.weights]


def trainable_layers(model) -> set[str]:
    return {layer.name for layer in model.layers if layer.trainable_weights}


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture
def trained(tiny_data):
    """A trainer 10 iterations in, with its events."""
    trainer = Trainer(QUICK, tiny_data)
    events = []
    trainer.subscribe(events.append)
    trainer.gan.iterate(*trainer.batches(10))
    return trainer, events


def test_a_d_step_raises_ds_accuracy_on_its_batch_and_leaves_g_alone(tiny_data):
    trainer = Trainer(QUICK, tiny_data)  # new: D cannot tell real from generated yet, so there is room to learn
    events = []
    trainer.subscribe(events.append)
    g_before = weights(trainer.gan.generator) + weights(trainer.gan.ema_generator or trainer.gan.generator)
    gains, separations = [], []
    for _ in range(6):
        trainer.step_by_hand("d")
        d = [e for e in events if isinstance(e, Inspected)][-1].summary["d"]
        gains.append(np.mean([d["accuracy_real"][1] - d["accuracy_real"][0],
                              d["accuracy_fake"][1] - d["accuracy_fake"][0]]))
        separations.append((d["score_real"][1] - d["score_fake"][1]) - (d["score_real"][0] - d["score_fake"][0]))
        assert set(d["gradient_norms"]) == trainable_layers(trainer.gan.discriminator)  # every layer of D
    assert np.mean(gains) > 0 and np.mean(separations) > 0  # D tells its own batch's real from fake better
    assert same(g_before, weights(trainer.gan.generator) + weights(trainer.gan.ema_generator or trainer.gan.generator))
    steps = [e for e in events if isinstance(e, Step)]
    assert [e.step for e in steps] == [1, 2, 3, 4, 5, 6] and all(e.manual == "d" and e.g_loss is None for e in steps)
    assert trainer.history[-1]["manual"] == "d" and trainer.step == 6  # real steps of the run


def test_a_g_step_raises_ds_score_of_the_same_images_and_leaves_d_alone(trained):
    trainer, events = trained
    d_before = weights(trainer.gan.discriminator)
    for _ in range(3):
        trainer.step_by_hand("g")
        g = [e for e in events if isinstance(e, Inspected)][-1].summary["g"]
        assert g["score"][1] > g["score"][0] and g["pixel_change"] > 0  # D finds the same z's images more real
        assert set(g["gradient_norms"]) == trainable_layers(trainer.gan.generator)
    assert same(d_before, weights(trainer.gan.discriminator))


def test_an_iteration_and_ten_by_hand_are_real_steps_with_their_evidence(tiny_data, tmp_path):
    trainer = Trainer(QUICK.replace(steps=100), tiny_data, tmp_path)
    events = []
    trainer.subscribe(events.append)
    trainer.step_by_hand("10")
    trainer.step_by_hand("iteration")
    inspected = [e for e in events if isinstance(e, Inspected)]
    assert [(e.kind, e.step) for e in inspected] == [("10", 10), ("iteration", 11)]
    assert set(inspected[1].summary) == {"d", "g"} and inspected[1].summary["d"]["loss_real"] > 0
    assert inspected[0].summary["score_after"] != inspected[0].summary["score_before"]
    picture = evidence_picture(manual_steps.load(inspected[1].path))
    assert picture.dtype == np.uint8 and picture.shape[0] == 5 * 30 * 3 + 2 * 3  # real, fake, G before/after/change
    assert load_checkpoint(tmp_path / CHECKPOINT_FILE)[1].step == 11  # saved: a resume or fork includes them
    assert (tmp_path / "samples" / "0000010.png").is_file()  # the cadence holds for steps by hand too


@pytest.mark.slow
def test_live_edits_take_effect_at_the_stated_step_and_survive_a_resume(tiny_data, tmp_path):
    trainer = Trainer(QUICK.replace(steps=400, ema_decay=0.99), tiny_data, tmp_path)
    seen = []  # (step, lr_d, ema decay, d_steps) as each compiled call finished: what it trained with

    def watch(event):
        if isinstance(event, Step):
            gan = trainer.gan
            seen.append((event.step, float(gan.d_optimizer.learning_rate), float(gan.ema_decay), gan.config.d_steps))
            if event.step == 30:
                trainer.edit({"lr_d": 5e-5, "ema_decay": 0.9, "d_steps": 2})
            if event.step >= 60:
                trainer.stop()

    trainer.subscribe(watch)
    edited = []
    trainer.subscribe(lambda e: edited.append(e) if isinstance(e, Edited) else None)
    trainer.run()
    [edit] = edited
    assert edit.step == 30 and edit.before == {"lr_d": 2e-4, "ema_decay": 0.99, "d_steps": 1}
    for step, lr_d, decay, d_steps in seen:
        expected = (pytest.approx(5e-5), pytest.approx(0.9), 2) if step > 30 else (pytest.approx(2e-4),
                                                                                    pytest.approx(0.99), 1)
        assert (lr_d, decay, d_steps) == expected, step
    resumed = Trainer.resume_from(tmp_path, tiny_data)
    assert resumed.config.lr_d == 5e-5 and resumed.config.d_steps == 2
    assert float(resumed.gan.d_optimizer.learning_rate) == pytest.approx(5e-5) and resumed.edits[0]["step"] == 30
    assert resumed.record()["edits"] == resumed.edits


def test_what_cannot_change_live_is_refused_by_name():
    config = QUICK.replace(ema_decay=0.99)
    assert live_edit(config, {"lr_g": 1e-4}).lr_g == 1e-4
    for changes, message in [({"batch_size": 64}, "batch_size: cannot change while a run trains"),
                             ({"ema_decay": 0.0}, "ema_decay: a run with an EMA keeps one"),
                             ({"lr_d": 5.0}, "lr_d: must be a learning rate"),
                             ({"d_steps": 0}, "d_steps: must be between 1 and 10")]:
        with pytest.raises(ConfigError, match=message):
            live_edit(config, changes)
    with pytest.raises(ConfigError, match="this run has no EMA generator"):
        live_edit(QUICK, {"ema_decay": 0.5})


def test_more_d_updates_per_g_update_train_and_draw_their_own_batches(tiny_data):
    trainer = Trainer(QUICK.replace(d_steps=3), tiny_data)
    real, real_labels, z_fake, fake_labels, z_gen, gen_labels = trainer.batches(2)
    assert real.shape == (2, 3, 32, 28, 28, 1) and z_fake.shape == (2, 3, 32, 100) and z_gen.shape == (2, 32, 100)
    assert not np.array_equal(real[0, 0], real[0, 1])
    values = trainer.gan.iterate(real, real_labels, z_fake, fake_labels, z_gen, gen_labels)
    assert values.shape == (2, 5) and np.all(np.isfinite(values))
    assert int(trainer.gan.d_optimizer.iterations) == 2 * 3 * 2  # two optimizer updates per D step
    assert int(trainer.gan.g_optimizer.iterations) == 2


def test_the_atlas_is_drawn_at_each_sample_step_on_a_fixed_slice(tiny_data, tmp_path):
    trainer = Trainer(QUICK.replace(steps=20), tiny_data, tmp_path)
    drawn = []
    trainer.subscribe(lambda e: drawn.append(e) if isinstance(e, AtlasDrawn) else None)
    trainer.run()
    assert [e.step for e in drawn] == [10, 20]
    first, last = atlas.load(drawn[0].path), atlas.load(drawn[1].path)
    assert first["images"].shape == (atlas.SIZE ** 2, 28, 28) and first["scores"].shape == (atlas.SIZE ** 2,)
    assert set(np.unique(first["digits"])) <= set(range(10))  # the shipped judge read every tile
    assert not np.array_equal(first["images"], last["images"])  # G moved; the slice did not
    np.testing.assert_array_equal(atlas.latents(5, 100), atlas.latents(5, 100))
    picture = atlas.render(last)
    assert picture.shape == (atlas.SIZE * (28 * 3 + 1) + 1,) * 2 + (3,)
    realness = atlas.realness(last)
    assert np.all((realness >= 0) & (realness <= 1))


@pytest.mark.slow
def test_a_fork_with_nothing_changed_continues_its_parent_exactly(tmp_path):
    """Parent: 40 steps with checkpoints kept at 20 and 40. Fork at 20 with no change, trained to 40: the same
    weights, BatchNorm statistics, EMA and optimizer moments as the parent's at 40, bit for bit."""
    worker = TrainingWorker(tmp_path / "runs")
    lab_ = Laboratory(worker)
    config = GANConfig(batch_size=16, steps=40, sample_every=10, checkpoint_every=20, ema_decay=0.9, seed=3)
    try:
        parent = worker.start(config, SAMPLE_DATA, "sample").run
        wait_until(lambda: worker.status().state.done, 300, "the parent run")
        assert worker.status().state == State.FINISHED
        parent_dir = tmp_path / "runs" / parent
        assert sorted(step_checkpoints(parent_dir)) == [20, 40]
        assert [r["fork_steps"] for r in lab_.runs()] == [[20, 40]]
        with pytest.raises(InvalidInput, match="has no checkpoint at step 30; it can be forked at steps 20, 40"):
            lab_.fork(ANONYMOUS, parent, 30, {})
        with pytest.raises(InvalidInput, match="a fork keeps its parent's models"):
            lab_.fork(ANONYMOUS, parent, 20, {"conditional": True})
        fork = lab_.fork(ANONYMOUS, parent, 20, {})
        assert fork.step == 20 and fork.origin == {"run": parent, "step": 20, "changes": {}}
        assert [row["step"] for row in fork.history] == [10, 20]  # the parent's history up to the fork
        wait_until(lambda: worker.status().state.done, 300, "the fork")
        assert worker.status().state == State.FINISHED, worker.status().message
        theirs = load_checkpoint(step_checkpoints(parent_dir)[40])[0]
        ours = load_checkpoint(tmp_path / "runs" / fork.run / CHECKPOINT_FILE)[0]
        assert theirs.keys() == ours.keys()
        for key in theirs:
            np.testing.assert_array_equal(theirs[key], ours[key], err_msg=key)
        rows, picture = lab_.compare([parent, fork.run], step=30)
        assert [r["grid_step"] for r in rows] == [30, 30] and picture.dtype == np.uint8
        changed = lab_.fork(ANONYMOUS, parent, 20, {"lr_g": 1e-4, "steps": 60})
        assert changed.config["lr_g"] == 1e-4 and changed.config["steps"] == 60 and changed.origin["step"] == 20
        worker.stop()
        # a sweep's trial (its folder as a sweep lays it out) can be compared, though not forked
        shutil.copytree(parent_dir, tmp_path / "sweep-a" / "runs" / "t0")
        with_sweep = Laboratory(worker, lambda: sweep_runs((str(tmp_path / "sweep-a"),)))
        assert {r["run"]: r["fork_steps"] for r in with_sweep.runs()}["sweep-a/t0"] == []
        rows, _ = with_sweep.compare(["sweep-a/t0", fork.run], step=40)
        assert [r["grid_step"] for r in rows] == [40, 40] and rows[0]["step"] == rows[1]["step"] == 40
    finally:
        worker.close()


def test_the_alarm_rules_on_their_own_numbers():
    healthy = [{"step": s, "d_acc_real": 0.7, "d_acc_fake": 0.6} for s in range(10, 2010, 10)]
    assert alarms.check(healthy, [{"step": 2000, "class_histogram": [0.1] * 10, "duplicates": 0.01}], QUICK) is None
    dominated = healthy + [{"step": s, "d_acc_real": 0.99, "d_acc_fake": 1.0} for s in range(2010, 2600, 10)]
    found = alarms.check(dominated, [], QUICK)
    assert found.kind == "d_dominates" and found.remedy(QUICK) == {"lr_d": 1e-4}
    diverse = {"step": 1000, "class_histogram": [0.1] * 10, "duplicates": 0.01}
    lost = {"step": 2000, "class_histogram": [0.9, 0.1] + [0.0] * 8, "duplicates": 0.02}
    found = alarms.check(healthy, [diverse, lost], QUICK)
    assert found.kind == "mode_collapse" and found.remedy(QUICK) == {"lr_g": 1e-4} and "0: 90%" in found.message
    assert alarms.check(healthy, [{**lost, "step": 250}], QUICK) is None  # a young run's blobs: nothing to lose
    duplicated = {"step": 2000, "class_histogram": [0.1] * 10, "duplicates": 0.3}
    assert alarms.check(healthy, [diverse, duplicated], QUICK).kind == "mode_collapse"
    assert alarms.check(healthy, [{**duplicated, "step": 250}], QUICK) is None
    rate, pairs = near_duplicates(np.array([[0, 0], [0, 0.01], [5, 5], [9, 9]], float), threshold=0.1)
    assert rate == 0.5 and pairs[0] == [0, 1]


@pytest.mark.slow
def test_the_alarm_fires_on_a_provoked_collapse_and_not_on_a_healthy_start(tiny_data, tmp_path):
    from mnist_gan.quality.metrics import Evaluator

    evaluator = Evaluator(n=2000)
    raised = {}
    for name, config in (("healthy", recipe(steps=2000, seed=1, **cadence(2000, True))),
                         ("starved G", recipe("classic", steps=1500, seed=1, d_steps=5, lr_d=2e-3, lr_g=1e-5,
                                              **cadence(1500, True)))):
        trainer = Trainer(config, tiny_data, tmp_path / name.replace(" ", "-"), evaluator=evaluator)
        alarms_seen = []
        trainer.subscribe(lambda e, seen=alarms_seen: seen.append(e) if type(e).__name__ == "Alarm" else None)
        trainer.run()
        raised[name] = alarms_seen
    assert raised["healthy"] == []
    assert raised["starved G"] and raised["starved G"][0].kind == "d_dominates"
    assert raised["starved G"][0].remedy["lr_d"] == 1e-3 and raised["starved G"][0].remedy["d_steps"] == 1


def test_steps_by_hand_wait_for_a_pause(tiny_data):
    trainer = Trainer(QUICK.replace(steps=100_000), tiny_data)
    events, started = [], threading.Event()

    def watch(e):
        events.append(e)
        if isinstance(e, Step):
            started.set()

    trainer.subscribe(watch)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    try:
        assert started.wait(120)
        trainer.take("d")
        wait_until(lambda: any(isinstance(e, Inspected) for e in events), 600, "the refusal")
        refusal = [e for e in events if isinstance(e, Inspected)][0]
        assert refusal.summary == {"refused": "the run is not paused"} and refusal.path is None
        with pytest.raises(ValueError, match="a step is one of d, g, iteration, 10"):
            trainer.take("sideways")
    finally:
        trainer.stop()
        thread.join(60)
