"""Training images/s: the fast compiled trainer against the recipe's plain train_on_batch loop, same run; and what a
run folder's TensorBoard log costs the whole training loop."""

from __future__ import annotations

import numpy as np

from bench.common import interleaved


def measure(batch_sizes=(32, 256), rounds: int = 5, seconds: float = 2.0, architecture: str = "classic") -> list[dict]:
    from mnist_gan.config import GANConfig
    from mnist_gan.data import SAMPLE_DATA, load_mnist
    from mnist_gan.model.gan import GAN
    from mnist_gan.model.recipe_loop import RecipeLoop
    from mnist_gan.training.trainer import STEPS_PER_CALL, Trainer

    data = load_mnist(SAMPLE_DATA)  # pixel values do not change the cost; shapes do
    rows = []
    for batch in batch_sizes:
        config = GANConfig(architecture=architecture, batch_size=batch)
        trainer = Trainer(config, data)  # the product's loop: batches drawn, STEPS_PER_CALL iterations per call
        recipe = RecipeLoop(GAN(config))
        rng = np.random.default_rng(0)

        def fast():
            trainer.gan.iterate(*trainer.batches(STEPS_PER_CALL))

        def plain():  # the recipe: random real batch, fresh noise, predict + 2 D steps + combined step
            idx = rng.integers(0, len(data.x_train), batch)
            recipe.iteration(data.x_train[idx], rng.standard_normal((batch, config.latent_dim), np.float32),
                           rng.standard_normal((batch, config.latent_dim), np.float32))

        fast(), plain(), fast(), plain()  # trace, compile, warm caches
        speed = interleaved({"fast": fast, "plain": lambda: plain()}, rounds, seconds, 1)
        fast_ips = speed["fast"] * STEPS_PER_CALL * batch
        plain_ips = speed["plain"] * batch
        rows.append({"model": architecture, "batch": batch, "fast img/s": round(fast_ips),
                     "plain img/s": round(plain_ips), "ratio": round(fast_ips / plain_ips, 2)})
    rows.append(tensorboard_cost(rounds))
    return rows


def tensorboard_cost(rounds: int = 5, seconds: float = 5.0, batch: int = 32) -> dict:
    """Trainer.run images/s in a run folder with and without its TensorBoard log, in alternating rounds of one run
    (the throughput above times the compiled step alone, which no subscriber reaches), and the share of those
    rounds' wall time spent inside the log, which the machine's load moves far less than images/s."""
    import statistics
    import tempfile
    import time
    from pathlib import Path

    from mnist_gan.config import GANConfig
    from mnist_gan.data import SAMPLE_DATA, load_mnist
    from mnist_gan.run_folder import tensorboard_files
    from mnist_gan.training.events import StateChanged
    from mnist_gan.training.tensorboard import TensorBoardLog
    from mnist_gan.training.trainer import Trainer

    data = load_mnist(SAMPLE_DATA)
    # the Train tab's cadence for a long run: a grid every 500 steps; checkpoints left out (the same for both)
    config = GANConfig(architecture="classic", batch_size=batch, steps=10**7, sample_every=500,
                       checkpoint_every=10**7)
    with tempfile.TemporaryDirectory(prefix="bench-tb-") as tmp:
        # One trainer for both: the same compiled step and run folder, only the log differs between rounds.
        trainer = Trainer(config, data, Path(tmp) / "run")
        [log] = [s for s in trainer._subscribers if isinstance(s, TensorBoardLog)]
        inside = [0.0]

        def logged(event) -> None:
            # A round's stop is the bench's, not the run's: the log stays open across rounds as in one long run
            # (reopening would trace its writer again in every round, which a real run does once).
            if isinstance(event, StateChanged) and event.state.done:
                return
            started = time.perf_counter()
            log(event)
            inside[0] += time.perf_counter() - started

        def images_per_sec(with_log: bool, duration: float) -> tuple[float, float, float]:
            """images/s of one round, its seconds, and the seconds of it spent inside the log."""
            seen = {}

            def stop_later(event) -> None:
                if "end" not in seen and time.perf_counter() - start >= duration:
                    seen["end"] = (trainer.step, time.perf_counter(), inside[0])
                    trainer.stop()

            trainer._subscribers = [logged, stop_later] if with_log else [stop_later]
            trainer._stop.clear()  # run() again after a stop: the same run goes on
            start_step, start, start_inside = trainer.step, time.perf_counter(), inside[0]
            trainer.run()
            step, end, end_inside = seen["end"]
            return (step - start_step) * batch / (end - start), end - start, end_inside - start_inside

        images_per_sec(True, 3.0), images_per_sec(False, 2.0)  # trace, compile, open the log, warm caches
        samples = {True: [], False: []}
        for _ in range(rounds):
            for with_log in (True, False):
                samples[with_log].append(images_per_sec(with_log, seconds))
        log.close()
        assert not log.failed and tensorboard_files(Path(tmp) / "run"), "the log wrote nothing"
    with_tb, without = (statistics.median(ips for ips, _, _ in samples[k]) for k in (True, False))
    # over all rounds, not a median: a grid (one every 500 steps) is the log's main cost and falls in few rounds
    share = sum(inside for _, _, inside in samples[True]) / sum(seconds for _, seconds, _ in samples[True])
    return {"model": "classic, Trainer.run in a run folder", "batch": batch, "with TensorBoard img/s": round(with_tb),
            "without img/s": round(without), "ratio": round(with_tb / without, 3),
            "time in the log": f"{share:.2%}"}
