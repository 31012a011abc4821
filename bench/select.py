"""Choose a run's checkpoint by quality *and* memorisation, after training (memorisation needs the training images).

    python -m bench.select RUN_DIR [RUN_DIR ...] --data mnist.npz [--n 10000] [--seeds 0 1] [--json]

Scores every sampler a run kept (RUN_DIR/snapshots/STEP, written with --snapshot-every; RUN_DIR/best; RUN_DIR
itself, the last one) with `evaluate`'s metrics at N samples per latent seed, and picks: among the samplers that
meet issue 15's targets other than cFID at every seed (memorisation: nn_ratio >= 0.97 and near copies <= 1.3%;
recognisable >= 97%; class shares within 9%-11%) the lowest mean cFID; when none does, the lowest mean cFID x real
plus a penalty for the shortfall (see `rank`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

NN_RATIO_MIN = 0.97  # issue 15's memorisation targets
NEAR_COPIES_MAX = 0.013
RECOGNISABLE_MIN = 0.97  # and its targets for what the samples look like
CLASS_SHARES = (0.09, 0.11)
KEYS = ("cfid", "cfid_x_real", "recognisable", "class_min", "class_max", "nn_ratio", "near_copies", "precision",
        "recall", "density", "coverage")


def candidates(run_dir: Path, min_step: int = 0) -> dict[str, Path]:
    """Label -> weights folder of every sampler the run kept (snapshots from `min_step` on, best, last)."""
    from mnist_gan.model.generator import WEIGHTS_FILE
    from mnist_gan.training.trainer import BEST_DIR, SNAPSHOTS_DIR

    found = {f"step {int(p.name):,}": p for p in sorted((run_dir / SNAPSHOTS_DIR).glob("[0-9]*"))
             if (p / WEIGHTS_FILE).is_file() and int(p.name) >= min_step}
    # best (by cFID during training) and last, unless a snapshot of the same step is already there
    if (run_dir / BEST_DIR / WEIGHTS_FILE).is_file():
        step = json.loads((run_dir / BEST_DIR / "training.json").read_text())["best"]["step"]
        if f"step {step:,}" not in found:
            found[f"best (step {step:,})"] = run_dir / BEST_DIR
    if (run_dir / WEIGHTS_FILE).is_file():
        step = json.loads((run_dir / "training.json").read_text())["steps"]
        if f"step {step:,}" not in found and f"best (step {step:,})" not in found:
            found[f"last (step {step:,})"] = run_dir
    return found


def penalty(row: dict) -> float:
    """How far a row misses the targets, each in units of its gap to perfection (0 when all are met): a sampler
    that copies less but is no longer recognisable is not the better one."""
    low, high = CLASS_SHARES
    return (max(0.0, NN_RATIO_MIN - row["nn_ratio"]) / (1 - NN_RATIO_MIN)
            + max(0.0, row["near_copies"] - NEAR_COPIES_MAX) / NEAR_COPIES_MAX
            + max(0.0, RECOGNISABLE_MIN - row["recognisable_min"]) / (1 - RECOGNISABLE_MIN)
            + (max(0.0, low - row["class_min"]) + max(0.0, row["class_max"] - high)) / 0.01)  # per point


def rank(rows: dict[str, dict]) -> list[str]:
    """Labels best first: the targets met (by cFID), then by cFID x real + penalty."""
    return sorted(rows, key=lambda k: (penalty(rows[k]) > 0, rows[k]["cfid_x_real"] + penalty(rows[k])))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.select", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", required=True, help="MNIST .npz (memorisation needs the training images)")
    parser.add_argument("--n", type=int, default=10_000, help="samples per seed (cFID x real needs 2,000 or 10,000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--min-step", type=int, default=0, help="skip snapshots before this step")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from mnist_gan.data import load_mnist
    from mnist_gan.model.generator import Generator
    from mnist_gan.quality import metrics

    classifier = metrics.Classifier.load()
    data = load_mnist(args.data)
    reals = metrics.real_features(classifier, data, args.n)
    real_distances = metrics.nearest_distances(data.x_test[:args.n], data.x_train)  # once, for every sampler
    table = {}
    for run in args.runs:
        for label, folder in candidates(run, args.min_step).items():
            generator = Generator.load(folder)
            rows = []
            for seed in args.seeds:
                z, labels = metrics.sample_inputs(seed, args.n, generator.config.latent_dim, generator.config.conditional)
                images = generator.images(z, labels)
                row = metrics.score(classifier, images, labels, reals=reals)
                row.update(metrics.memorisation(metrics.nearest_distances(images, data.x_train), real_distances))
                rows.append(row)
            mean = {k: float(np.mean([r[k] for r in rows])) for k in KEYS if k in rows[0]}
            # the worst seed for the targets that must hold at every seed
            mean.update(recognisable_min=min(r["recognisable"] for r in rows),
                        nn_ratio=min(r["nn_ratio"] for r in rows), near_copies=max(r["near_copies"] for r in rows),
                        class_min=min(r["class_min"] for r in rows), class_max=max(r["class_max"] for r in rows))
            name = f"{run.name}: {label}"
            table[name] = {**mean, "folder": str(folder), "seeds": args.seeds}
            print(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in mean.items() if isinstance(v, float)),
                  file=sys.stderr, flush=True)
    order = rank(table)
    if args.json:
        print(json.dumps({"chosen": order[0], "rows": {k: table[k] for k in order}}, indent=2))
        return 0
    columns = ["cfid", "cfid_x_real", "recognisable_min", "class_min", "class_max", "nn_ratio", "near_copies",
               "precision", "recall", "density", "coverage"]
    print(f"N = {args.n:,} per seed, seeds {args.seeds}; nn_ratio: lowest seed, near copies: highest seed\n")
    print("| sampler | " + " | ".join(columns) + " | targets met |")
    print("|---" * (len(columns) + 2) + "|")
    for name in order:
        row = table[name]
        cells = " | ".join(f"{row[c]:.4g}" for c in columns)
        print(f"| {name} | {cells} | {'all but cFID' if penalty(row) == 0 else ''} |")
    print(f"\nchosen: {order[0]} ({table[order[0]]['folder']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
