"""A run's TensorBoard event files, read back with TensorBoard's own reader (its EventAccumulator)."""

import io
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from mnist_gan.config import GANConfig
from mnist_gan.run_folder import tensorboard_files
from mnist_gan.training.events import Quality, Samples, Step
from mnist_gan.training.tensorboard import STEP_TAGS, TensorBoardLog
from mnist_gan.training.trainer import Trainer

CONFIG = GANConfig(batch_size=16, steps=60, sample_every=20, checkpoint_every=30, eval_every=30, seed=5)
QUALITY = {"n": 100, "cfid": 2.5, "recognisable": 0.75, "class_histogram": [0.1] * 10, "seed": 0}


def _read(folder) -> EventAccumulator:
    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})  # 0: keep every point
    accumulator.Reload()
    return accumulator


def _values(accumulator: EventAccumulator, tag: str) -> dict[int, object]:
    return {e.step: tensor_util.make_ndarray(e.tensor_proto) for e in accumulator.Tensors(tag)}


def test_a_run_writes_its_scalars_grids_and_config(tiny_data, tmp_path):
    events = []
    trainer = Trainer(CONFIG, tiny_data, tmp_path / "run", evaluator=lambda sampler: dict(QUALITY))
    trainer.subscribe(events.append)
    assert trainer.run() == "finished"
    assert len(tensorboard_files(tmp_path / "run")) == 1
    tb = _read(tmp_path / "run")
    tags = set(tb.Tags()["tensors"])
    assert set(STEP_TAGS.values()) | {"quality/cfid", "quality/recognisable", "samples", "config"} <= tags
    assert not {"quality/n", "quality/seed", "quality/class_histogram"} & tags  # counts and lists are not scores

    steps = [e for e in events if isinstance(e, Step)]
    for field, tag in STEP_TAGS.items():  # every Step event, every field, at its step
        written = _values(tb, tag)
        assert sorted(written) == [e.step for e in steps] == list(range(10, 61, 10)), tag
        for e in steps:
            assert float(written[e.step]) == np.float32(getattr(e, field)), (tag, e.step)
    assert {step: float(v) for step, v in _values(tb, "quality/cfid").items()} == {30: 2.5, 60: 2.5}

    grids = {e.step: e.grid for e in events if isinstance(e, Samples)}
    images = _values(tb, "samples")
    assert sorted(images) == sorted(grids) == [20, 40, 60]
    for step, value in images.items():  # [width, height, PNG]: the PNG holds the grid's exact pixels
        width, height, png = value
        assert (int(width), int(height)) == grids[step].shape[::-1]
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("L")), grids[step])

    config = _values(tb, "config")[0].item().decode()  # at the run's start
    assert "| batch_size | 16 |" in config and "| seed | 5 |" in config


@pytest.mark.slow
def test_a_resumed_run_adds_a_file_and_goes_on(tiny_data, tmp_path):
    first = Trainer(CONFIG.replace(eval_every=0), tiny_data, tmp_path)
    first.subscribe(lambda e: first.stop() if isinstance(e, Step) and e.step >= 30 else None)
    assert first.run() == "stopped"
    assert Trainer.resume_from(tmp_path, tiny_data).run() == "finished"
    assert len(tensorboard_files(tmp_path)) == 2
    assert sorted(_values(_read(tmp_path), "loss/g")) == list(range(10, 61, 10))


@dataclass(frozen=True)
class Edited:  # the shape of the Train lab's live-edit event: duck-typed, this module does not import it
    step: int
    changes: dict


@dataclass(frozen=True)
class Unknown:
    step: int
    what: str


def test_edits_are_text_and_unknown_events_are_ignored(tmp_path):
    log = TensorBoardLog(tmp_path, CONFIG)
    log(Step(10, 0.5, 0.5, 1.0, 0.9, 0.8, 0.5, 1000.0))
    log(Unknown(15, "something new"))
    log(Edited(20, {"lr_g": 0.0001, "ema_decay": 0.999}))
    log(Quality(30, {"cfid": float("nan"), "recognisable": 1}))
    log.close()
    assert not log.failed
    tb = _read(tmp_path)
    edits = _values(tb, "edits")
    assert list(edits) == [20] and "| lr_g | 0.0001 |" in edits[20].item().decode()
    assert list(_values(tb, "quality/recognisable")) == [30] and "quality/cfid" not in tb.Tags()["tensors"]
    assert list(_values(tb, "loss/g")) == [10]


def test_a_write_failure_ends_the_logging_not_the_run(tiny_data, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the run folder should be")
    log = TensorBoardLog(blocked / "run", CONFIG)
    log(Samples(10, None, np.zeros((4, 4), np.uint8)))
    assert log.failed
    log(Step(10, 0.5, 0.5, 1.0, 0.9, 0.8, 0.5, 1000.0))  # ignored from then on
