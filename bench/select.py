"""Choose a run's checkpoint by quality *and* memorisation, after training (memorisation needs the training images).

    python -m bench.select RUN_DIR [RUN_DIR ...] --data mnist.npz [--n 10000] [--seeds 0 1] [--targets 25] [--json]

Scores every sampler a run kept (RUN_DIR/snapshots/STEP, written with --snapshot-every; RUN_DIR/best; RUN_DIR
itself, the last one) with `evaluate`'s metrics at N samples per latent seed, and picks: among the samplers that
meet issue 15's targets other than cFID at every seed (memorisation: nn_ratio >= 0.97 and near copies <= 1.3%;
recognisable >= 97%; class shares within 9%-11%) the lowest mean cFID; when none does, the lowest mean cFID x real
plus a penalty for the shortfall (see `rank`).

--targets 25 ranks by issue 25's targets instead, which weigh variety (recall, coverage) and memorisation as much
as cleanliness: recall >= 0.80 with precision >= 0.85, coverage >= 0.93, cFID <= 1.5x held-out real, recognisable
>= 97%, class shares 9-11%, nn_ratio >= 0.95 and near copies <= 1.5%, each at the worst seed (see `penalty25`).
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


# Issue 25's targets, at the worst seed: (row key, the target, +1 for "at least" / -1 for "at most", one unit of
# shortfall). A unit is a step that matters on that scale, so a recall 0.05 short weighs as much as 0.5 points too
# many near copies or a cFID 1.5x real too high.
TARGETS_25 = (
    ("recall_min", 0.80, +1, 0.05),
    ("precision_min", 0.85, +1, 0.05),
    ("coverage_min", 0.93, +1, 0.02),
    ("cfid_x_real_max", 1.5, -1, 1.5),
    ("recognisable_min", 0.97, +1, 0.01),
    ("class_min", 0.09, +1, 0.01),
    ("class_max", 0.11, -1, 0.01),
    ("nn_ratio", 0.95, +1, 0.03),
    ("near_copies", 0.015, -1, 0.005),
)


def shortfalls25(row: dict) -> dict[str, float]:
    """Issue 25's targets a row misses, each by how many units (see TARGETS_25)."""
    missed = {}
    for key, target, sense, unit in TARGETS_25:
        gap = sense * (target - row[key]) / unit
        if gap > 0:
            missed[key] = gap
    return missed


def penalty25(row: dict) -> float:
    """How far a row misses issue 25's targets, in units (0 when all are met)."""
    return sum(shortfalls25(row).values())


def rank(rows: dict[str, dict], targets: str = "15") -> list[str]:
    """Labels best first: the targets met (by cFID), then by cFID x real + penalty (issue 15's targets), or by the
    penalty alone (issue 25's, which include cFID)."""
    if targets == "25":
        return sorted(rows, key=lambda k: (penalty25(rows[k]) > 0, penalty25(rows[k]), rows[k]["cfid_x_real"]))
    return sorted(rows, key=lambda k: (penalty(rows[k]) > 0, rows[k]["cfid_x_real"] + penalty(rows[k])))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.select", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", required=True, help="MNIST .npz (memorisation needs the training images)")
    parser.add_argument("--n", type=int, default=10_000, help="samples per seed (cFID x real needs 2,000 or 10,000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--min-step", type=int, default=0, help="skip snapshots before this step")
    parser.add_argument("--targets", choices=("15", "25"), default="15", help="whose targets rank the samplers")
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
                        class_min=min(r["class_min"] for r in rows), class_max=max(r["class_max"] for r in rows),
                        recall_min=min(r["recall"] for r in rows), precision_min=min(r["precision"] for r in rows),
                        coverage_min=min(r["coverage"] for r in rows),
                        cfid_x_real_max=max(r["cfid_x_real"] for r in rows))
            name = f"{run.name}: {label}"
            table[name] = {**mean, "folder": str(folder), "seeds": args.seeds}
            print(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in mean.items() if isinstance(v, float)),
                  file=sys.stderr, flush=True)
    order = rank(table, args.targets)
    if args.json:
        print(json.dumps({"chosen": order[0], "rows": {k: table[k] for k in order}}, indent=2))
        return 0
    columns = ["cfid", "cfid_x_real", "recognisable_min", "class_min", "class_max", "nn_ratio", "near_copies",
               "precision", "recall", "density", "coverage"]
    print(f"N = {args.n:,} per seed, seeds {args.seeds}; nn_ratio: lowest seed, near copies: highest seed\n")
    if args.targets == "25":
        columns += ["recall_min", "precision_min", "coverage_min", "cfid_x_real_max"]
    print("| sampler | " + " | ".join(columns) + (" | missed (units) | penalty |" if args.targets == "25"
                                                   else " | targets met |"))
    print("|---" * (len(columns) + (3 if args.targets == "25" else 2)) + "|")
    for name in order:
        row = table[name]
        cells = " | ".join(f"{row[c]:.4g}" for c in columns)
        if args.targets == "25":
            missed = ", ".join(f"{k} {v:.2f}" for k, v in shortfalls25(row).items()) or "none"
            print(f"| {name} | {cells} | {missed} | {penalty25(row):.2f} |")
        else:
            print(f"| {name} | {cells} | {'all but cFID' if penalty(row) == 0 else ''} |")
    print(f"\nchosen: {order[0]} ({table[order[0]]['folder']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
