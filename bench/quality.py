"""Time to quality: cFID and recognisable digits against training wall time, classic recipe vs the default config.

One run trains, one after the other on the same machine: the classic recipe on the plain train_on_batch loop, the
classic recipe on the fast trainer, and the default Train-tab configuration on the fast trainer. Every
`eval_every_s` seconds of training (evaluation time excluded) each is scored on the same 2,000 latents; the
target line is the shipped classic model's cFID (30,000 iterations) at the same N.

    python -m bench quality                                    # long: 10 minutes per fast contender
    python -m bench.quality --budget 120 --plain 60 --png q.png  # short
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import print_table

ROOT = Path(__file__).resolve().parent.parent
FULL_DATA = ROOT.parent / "shared" / "data" / "mnist.npz"
CLASSIC_STEPS = 30_000  # the recipe's length


def _curve(name: str, train_chunk, evaluate, budget_s: float, eval_every_s: float) -> list[dict]:
    """Alternate training chunks and evaluations until `budget_s` seconds of training; one row per evaluation."""
    rows, trained, steps, next_eval = [], 0.0, 0, eval_every_s
    while trained < budget_s:
        started = time.perf_counter()
        steps += train_chunk()
        trained += time.perf_counter() - started
        if trained >= next_eval or trained >= budget_s:
            q = evaluate()
            rows.append({"run": name, "wall_s": round(trained, 1), "step": steps, "cfid": round(q["cfid"], 3),
                         "recognisable": round(q["recognisable"], 3), "class_min": round(q["class_min"], 3),
                         "class_max": round(q["class_max"], 3)})
            print(f"  {name}: {trained:6.0f} s, step {steps}, cFID {q['cfid']:.2f}, "
                  f"recognisable {q['recognisable']:.3f}", file=sys.stderr)
            next_eval += eval_every_s
    return rows


def _fast(config, data, evaluator) -> tuple:
    from mnist_gan.training.trainer import STEPS_PER_CALL, Trainer

    trainer = Trainer(config, data)

    def chunk() -> int:  # the trainer's own compiled multi-step call, as Trainer.run uses it
        trainer.gan.iterate(*trainer.batches(STEPS_PER_CALL))
        return STEPS_PER_CALL

    chunk()  # trace and compile outside the clock: the plain loop below is warmed up the same way
    return chunk, lambda: evaluator(trainer.sampler)


def _plain(data, evaluator, seed: int = 0) -> tuple:
    from mnist_gan.config import GANConfig
    from mnist_gan.model.gan import GAN
    from mnist_gan.model.generator import Generator
    from mnist_gan.model.recipe_loop import RecipeLoop

    gan = GAN(GANConfig(seed=seed))
    loop, rng, b = RecipeLoop(gan), np.random.default_rng(seed), gan.config.batch_size

    def chunk() -> int:
        for _ in range(10):
            idx = rng.integers(0, len(data.x_train), b)
            loop.iteration(data.x_train[idx], rng.standard_normal((b, 100), np.float32),
                      rng.standard_normal((b, 100), np.float32))
        return 10

    chunk()
    sampler = Generator(gan.config, gan.generator)
    return chunk, lambda: evaluator(sampler)


def measure(rounds: int = 1, budget_s: float = 600.0, plain_s: float = 300.0, eval_every_s: float = 30.0,
            n: int = 2_000, config_dir: str | None = None, data_path: str | None = None,
            png: str | None = "bench/quality.png") -> list[dict]:
    """The curves (rows) of every contender, plus a summary row; draws them into `png`."""
    from mnist_gan.config import GANConfig, recipe
    from mnist_gan.data import load_mnist
    from mnist_gan.model.generator import Generator, shipped_models
    from mnist_gan.quality.metrics import Classifier, Evaluator

    data = load_mnist(data_path or os.environ.get("MNIST_GAN_DATA") or FULL_DATA)
    evaluator = Evaluator(Classifier.load(), n=n)
    classic = Generator.load(shipped_models()["classic"])
    target = evaluator(classic)["cfid"]
    default = (GANConfig.load(config_dir) if config_dir else recipe()).replace(steps=10_000_000)  # the Train tab's
    print(f"target: shipped classic ({CLASSIC_STEPS} it) cFID {target:.2f} at N={n}; "
          f"default config: {default}", file=sys.stderr)

    curves = {"classic, plain loop": _curve("classic, plain loop", *_plain(data, evaluator), plain_s, eval_every_s)}
    for name, config in (("classic, fast trainer", GANConfig(steps=10_000_000)), ("default config", default)):
        curves[name] = _curve(name, *_fast(config, data, evaluator), budget_s, eval_every_s)

    plain = curves["classic, plain loop"][-1]
    plain_30k_s = plain["wall_s"] / plain["step"] * CLASSIC_STEPS  # measured rate, extrapolated to the recipe
    reached = next((r for r in curves["default config"] if r["cfid"] <= target), None)
    summary = {"run": "summary", "target_cfid": round(target, 3), "plain_loop_30k_s": round(plain_30k_s),
               "default_reaches_target_s": reached["wall_s"] if reached else None,
               "ratio": round(reached["wall_s"] / plain_30k_s, 4) if reached else None,
               "default_recognisable_at_end": curves["default config"][-1]["recognisable"]}
    if png:
        Path(png).write_bytes(draw(curves, target, plain_30k_s / 10))
        print(f"wrote {png}", file=sys.stderr)
    return [row for rows in curves.values() for row in rows] + [summary]


def draw(curves: dict[str, list[dict]], target: float, deadline_s: float, size=(900, 520)) -> bytes:
    """A PNG line chart of cFID (log scale) against wall time, with the target cFID and the 1/10 deadline."""
    from PIL import Image, ImageDraw

    from mnist_gan.images import encode_png

    width, height = size
    left, right, top, bottom = 70, 20, 20, 60
    points = [(r["wall_s"], r["cfid"]) for rows in curves.values() for r in rows]
    x_max = max(max(x for x, _ in points), deadline_s) * 1.02
    y_lo = math.log10(min(min(y for _, y in points), target) * 0.8)
    y_hi = math.log10(max(y for _, y in points) * 1.2)

    def xy(x: float, y: float) -> tuple[float, float]:
        return (left + x / x_max * (width - left - right),
                top + (y_hi - math.log10(y)) / (y_hi - y_lo) * (height - top - bottom))

    image = Image.new("RGB", size, "white")
    pen = ImageDraw.Draw(image)
    pen.rectangle([left, top, width - right, height - bottom], outline="black")
    for exponent in range(math.floor(y_lo), math.ceil(y_hi) + 1):
        for mantissa in (1, 2, 5):
            y = mantissa * 10.0 ** exponent
            if y_lo <= math.log10(y) <= y_hi:
                _, py = xy(0, y)
                pen.line([left, py, width - right, py], fill=(225, 225, 225))
                pen.text((8, py - 6), f"{y:g}", fill="black")
    tick = min(m * 10 ** math.floor(math.log10(x_max / 5)) for m in (1, 2, 5, 10)
               if m * 10 ** math.floor(math.log10(x_max / 5)) >= x_max / 6)
    for i in range(int(x_max // tick) + 1):
        px, _ = xy(i * tick, 10 ** y_hi)
        pen.text((px - 10, height - bottom + 6), f"{i * tick:g}", fill="black")
    pen.text((width // 2 - 60, height - 25), "training wall time (s)", fill="black")
    pen.text((8, 2), "cFID (log)", fill="black")
    _, ty = xy(0, target)
    pen.line([left, ty, width - right, ty], fill=(120, 120, 120), width=1)
    pen.text((left + 6, ty - 14), "shipped classic, 30,000 it", fill=(90, 90, 90))
    dx, _ = xy(deadline_s, 10 ** y_hi)
    pen.line([dx, top, dx, height - bottom], fill=(200, 120, 0))
    pen.text((dx - 150 if dx > width - 200 else dx + 4, height - bottom - 16), "1/10 of plain-loop time",
             fill=(200, 120, 0))
    colours = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
    for (name, rows), colour in zip(curves.items(), colours):
        line = [xy(r["wall_s"], r["cfid"]) for r in rows]
        if len(line) > 1:
            pen.line(line, fill=colour, width=2)
        for px, py in line:
            pen.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
        ly = top + 8 + 16 * list(curves).index(name)
        pen.line([width - right - 200, ly + 6, width - right - 180, ly + 6], fill=colour, width=3)
        pen.text((width - right - 175, ly), name, fill="black")
    return encode_png(np.asarray(image))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds per fast contender")
    parser.add_argument("--plain", type=float, default=300.0, help="training seconds for the plain loop")
    parser.add_argument("--eval-every", type=float, default=30.0, help="seconds of training between evaluations")
    parser.add_argument("--n", type=int, default=2_000, help="samples per evaluation")
    parser.add_argument("--config", help="weights folder whose gan_config.json is the default configuration")
    parser.add_argument("--data", help="full MNIST .npz (default $MNIST_GAN_DATA or ../shared/data/mnist.npz)")
    parser.add_argument("--png", default="bench/quality.png", help="where to draw the curves")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    print_table(measure(budget_s=args.budget, plain_s=args.plain, eval_every_s=args.eval_every, n=args.n,
                        config_dir=args.config, data_path=args.data, png=args.png), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
