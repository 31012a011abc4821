"""Training runs the tests compare: one run straight through against the same run stopped halfway and resumed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_gan.config import GANConfig
from mnist_gan.training.events import Step
from mnist_gan.training.trainer import Trainer


def straight_and_resumed(config: GANConfig, data: np.ndarray, folder: Path, stop_at: int = 20) -> tuple[dict, dict]:
    """The GAN's state arrays after `config.steps` steps straight, and after the same run stopped at `stop_at` and
    resumed from its run folder (`folder / "split"`, left for more resumes)."""
    straight = Trainer(config, data, folder / "straight")
    straight.run()
    first = Trainer(config, data, folder / "split")
    first.subscribe(lambda e: first.stop() if isinstance(e, Step) and e.step >= stop_at else None)
    assert first.run() == "stopped"
    resumed = Trainer.resume_from(folder / "split", data)
    assert resumed.run() == "finished"
    return straight.gan.state_arrays(), resumed.gan.state_arrays()
