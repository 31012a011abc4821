"""Training images/s: the fast compiled trainer against the recipe's plain train_on_batch loop, same run; and what a
run folder's TensorBoard log costs the whole training loop."""

from __future__ import annotations

import numpy as np

from bench.common import interleaved


def measure(batch_sizes=(32, 256), rounds: int = 5, seconds: float = 2.0, architecture: str = "classic") -> list[dict]:
    from mnist_gan.config import GANConfig
    from mnist_gan.data import SAMPLE_DATA, load_mnist
    from mnist_gan.gan import GAN
    from mnist_gan.recipe_loop import RecipeLoop
    from mnist_gan.trainer import STEPS_PER_CALL, Trainer

    data = load_mnist(SAMPLE_DATA)  # pixel values do not change the cost; shapes do
    rows = []
    for batch in batch_sizes:
        config = GANConfig(architecture=architecture, batch_size=batch)
        trainer = Trainer(config, data)  # the product's loop: batches drawn, STEPS_PER_CALL iterations per call
        recipe = RecipeLoop(GAN(config))
        rng = np.random.default_rng(0)

        def fast():
            trainer.gan.iterate(*trainer._draw(STEPS_PER_CALL))

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
    """Trainer.run images/s with a run folder, with and without its TensorBoard log, in alternating rounds (the
    throughput above times the compiled step alone, which no subscriber reaches)."""
    import statistics
    import tempfile
    import time
    from pathlib import Path

    from mnist_gan.config import GANConfig
    from mnist_gan.data import SAMPLE_DATA, load_mnist
    from mnist_gan.events import StateChanged
    from mnist_gan.tensorboard import TensorBoardLog
    from mnist_gan.trainer import Trainer

    data = load_mnist(SAMPLE_DATA)
    # the Train tab's cadence for a long run: a grid every 500 steps; checkpoints left out (the same for both)
    config = GANConfig(architecture="classic", batch_size=batch, steps=10**8, sample_every=500,
                       checkpoint_every=10**7)
    with tempfile.TemporaryDirectory(prefix="bench-tb-") as tmp:
        trainers = {"with": Trainer(config, data, Path(tmp) / "with"),
                    "without": Trainer(config, data, Path(tmp) / "without")}
        trainers["without"]._subscribers.clear()  # the same run folder, without its TensorBoard log
        # A round's stop is the bench's, not the run's: the log stays open across rounds as in one long run (a
        # stop closes it, and reopening would trace its writer again in every round, which a real run does once).
        log = next(s for s in trainers["with"]._subscribers if isinstance(s, TensorBoardLog))
        trainers["with"]._subscribers = [lambda event: None if isinstance(event, StateChanged) and event.state.done
                                         else log(event)]

        def images_per_sec(trainer: Trainer, duration: float) -> float:
            start_step, start, seen = trainer.step, time.perf_counter(), {}

            def stop_later(event) -> None:
                if "end" not in seen and time.perf_counter() - start >= duration:
                    seen["end"] = (trainer.step, time.perf_counter())
                    trainer.stop()

            trainer.subscribe(stop_later)
            trainer._stop.clear()  # run() again after a stop: the same run goes on
            trainer.run()
            trainer._subscribers.remove(stop_later)
            step, end = seen["end"]
            return (step - start_step) * batch / (end - start)

        for trainer in trainers.values():
            images_per_sec(trainer, 2.0)  # trace, compile, warm caches
        samples = {name: [] for name in trainers}
        for _ in range(rounds):
            for name, trainer in trainers.items():
                samples[name].append(images_per_sec(trainer, seconds))
        log.close()
        assert not log.failed and any((Path(tmp) / "with").glob("events.out.tfevents.*")), "the log wrote nothing"
    with_tb, without = (statistics.median(samples[k]) for k in ("with", "without"))
    return {"model": "classic, Trainer.run in a run folder", "batch": batch, "with TensorBoard img/s": round(with_tb),
            "without img/s": round(without), "ratio": round(with_tb / without, 3)}
