"""TensorBoard event files for a training run, written with tf.summary by a subscriber of the trainer's events.

Only TensorFlow's own tf.summary.create_file_writer and tf.summary.write are used, with the metadata that tells
TensorBoard's plugins what a summary holds: tf.summary.scalar, image and text need the tensorboard package, which
the app does not install (viewing the files does: `pip install tensorboard`).

Every run with a folder (CLI, Train tab, sweeps) gets one: `tensorboard --logdir runs` shows each run by its folder
name. Scalars: both D accuracies, the D losses, G's loss and images/s from each Step event, and every numeric
quality metric from each Quality event; the fixed-noise grid as an image at each Samples event; the run's config
(and any live edit of it) as text. Step rows are buffered and written in one traced call per flush (at each grid,
evaluation, checkpoint or state change, or every FLUSH_ROWS rows): written one by one in eager mode they cost
~2 ms each, a few percent of a training call (measured); batched, ~0.2 ms a row, off the hot path. The file itself
is flushed at each grid, evaluation, checkpoint, incident and state change, so a process killed in between (a
sweep's trial stopped early may be) loses at most the Step rows since the last of them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from mnist_gan.config import GANConfig
from mnist_gan.errors import log
from mnist_gan.images import encode_png

from .events import Checkpoint, Divergence, Quality, Samples, StateChanged, Step

FLUSH_ROWS = 100
# Step field -> TensorBoard tag (grouped by the part before the slash)
STEP_TAGS = {
    "d_acc_real": "discriminator/accuracy_on_real",
    "d_acc_fake": "discriminator/accuracy_on_generated",
    "d_loss_real": "loss/d_real",
    "d_loss_fake": "loss/d_fake",
    "d_loss": "loss/d",
    "g_loss": "loss/g",
    "images_per_sec": "speed/images_per_sec",
}
SAMPLES_TAG, CONFIG_TAG, EDITS_TAG, INCIDENTS_TAG = "samples", "config", "edits", "incidents"


class TensorBoardLog:
    """Subscribe it to a Trainer: it writes the run's events into `run_dir` as TensorBoard event files.

    Events it does not know are ignored, except that any event with a `changes` mapping (a live edit of the
    hyperparameters) is written as text. A failure to write (a full disk) is logged once and ends the logging,
    never the run.
    """

    def __init__(self, run_dir: str | Path, config: GANConfig):
        self.run_dir, self.config = Path(run_dir), config
        self._writer = None
        self._write_rows = None
        self._rows: list[tuple[int, list[float]]] = []
        self._step = 0
        self.failed = False

    def __call__(self, event) -> None:
        if self.failed:
            return
        try:
            self._handle(event)
        except Exception as e:  # TensorBoard is a view of the run: it must never stop it
            self.failed = True
            log.warning("TensorBoard logging of %s stopped: %s: %s", self.run_dir.name, type(e).__name__, e)

    def _handle(self, event) -> None:
        step = getattr(event, "step", None)
        if isinstance(step, int):
            self._step = step
        if isinstance(event, Step):
            self._rows.append((event.step, [float(getattr(event, key)) for key in STEP_TAGS]))
            if len(self._rows) >= FLUSH_ROWS:
                self._flush_rows()
        elif isinstance(event, Samples):
            self._flush_rows()
            if event.grid is not None:
                self._image(event.step, event.grid)
            self._open().flush()  # a grid every few hundred steps: what a live `tensorboard` shows is that fresh
        elif isinstance(event, Quality):
            self._flush_rows()
            self._quality(event.step, event.metrics)
            self._open().flush()  # rare, and a sweep may end the trial's process right after reporting it
        elif isinstance(event, Checkpoint):
            self._flush_rows()
            self._open().flush()
        elif isinstance(event, Divergence):
            self._flush_rows()
            self._text(INCIDENTS_TAG, event.step, f"step {event.step:,}: {event.reason}; {event.action}")
            self._open().flush()
        elif isinstance(event, StateChanged):
            self._flush_rows()
            if event.state.done:
                self.close()
            else:  # the run (re)starts: the file opens now, with the config at the run's first step
                self._open().flush()
        elif isinstance(getattr(event, "changes", None), dict) and event.changes:  # a live hyperparameter edit
            self._flush_rows()
            self._text(EDITS_TAG, self._step, _table(event.changes))

    def close(self) -> None:
        """Write what is buffered and close the file (a later event opens a new one)."""
        self._flush_rows()
        if self._writer is not None:
            self._writer.close()
            self._writer = self._write_rows = None

    # --- writing ----------------------------------------------------------------------------------------------

    def _open(self):
        if self._writer is None:
            import tensorflow as tf

            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._writer = tf.summary.create_file_writer(str(self.run_dir))
            writer, tags, scalars = self._writer, list(STEP_TAGS.values()), _metadata("scalars")

            @tf.function(reduce_retracing=True)
            def write_rows(steps, values):
                with writer.as_default():
                    for i in tf.range(tf.shape(steps)[0]):
                        for k, tag in enumerate(tags):
                            tf.summary.write(tag, values[i, k], step=steps[i], metadata=scalars)

            self._write_rows = write_rows
            self._text(CONFIG_TAG, self._step, _table(self.config.to_dict()))
        return self._writer

    def _flush_rows(self) -> None:
        if not self._rows:
            return
        self._open()
        steps = np.array([step for step, _ in self._rows], np.int64)
        values = np.array([values for _, values in self._rows], np.float32)
        self._rows = []
        self._write_rows(steps, values)

    def _image(self, step: int, grid: np.ndarray) -> None:
        import tensorflow as tf

        height, width = grid.shape  # the image plugin's layout: [width, height, PNG, ...]
        value = tf.constant([str(width).encode(), str(height).encode(), encode_png(grid, compress_level=1)])
        with self._open().as_default():
            tf.summary.write(SAMPLES_TAG, value, step=step, metadata=_metadata("images"))

    def _quality(self, step: int, metrics: dict) -> None:
        import tensorflow as tf

        with self._open().as_default():
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                        and key not in ("n", "seed"):
                    tf.summary.write(f"quality/{key}", tf.constant(value, tf.float32), step=step,
                                     metadata=_metadata("scalars"))

    def _text(self, tag: str, step: int, text: str) -> None:
        import tensorflow as tf

        with self._open().as_default():
            tf.summary.write(tag, tf.constant(text), step=step, metadata=_metadata("text"))


def _metadata(plugin: str) -> bytes:
    """What tells TensorBoard which of its plugins shows a summary: "scalars", "images" or "text" (the layouts of
    their values are the plugins' own, as tf.summary.scalar, image and text write them)."""
    import tensorflow as tf

    metadata = tf.compat.v1.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin
    return metadata.SerializeToString()


def _table(values: dict) -> str:
    """A Markdown table of settings (TensorBoard's text tab renders Markdown)."""
    return "| setting | value |\n| --- | --- |\n" + "\n".join(
        f"| {key} | {json.dumps(value) if not isinstance(value, str) else value} |" for key, value in values.items())
