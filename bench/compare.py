"""Runs side by side at equal steps, from the N = 2,000 evaluations they logged while training.

    python -m bench.compare RUN_DIR|TRAIN_LOG [...] [--steps 4000 8000 20000] [--keys cfid recall precision]

Reads each run's checkpoint header (its quality log: every `--eval-every` evaluation), or the output of a running
`train` (its "step N: cfid=..." lines, newer than the last checkpoint), and prints a markdown table: one row per
run, one column per step, each cell the chosen figures at that step ("-" where the run has none), then the run's
best cFID and where, its last step and its median images/s (from a checkpoint only: it depends on what else ran
beside it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

FORMATS = {"cfid": "{:.3g}", "recall": "{:.3f}", "precision": "{:.3f}", "coverage": "{:.3f}", "density": "{:.3f}",
           "recognisable": "{:.3f}", "duplicates": "{:.4f}", "class_min": "{:.3f}", "class_max": "{:.3f}"}


def quality_log(path: Path) -> tuple[dict[int, dict], int, list[dict]]:
    """(step -> evaluation row, the last step, the history's rows) of a run folder or a train log (which has no
    history: its speeds depend on what else ran beside it)."""
    from mnist_gan.run_folder import CHECKPOINT_FILE
    from mnist_gan.training.checkpoint import load_meta

    path = Path(path)
    if path.is_file():
        rows = {}
        for line in path.read_text(errors="replace").splitlines():
            found = re.match(r"step (\d+): (.*)$", line.strip())
            if found:
                pairs = (item.split("=", 1) for item in found.group(2).split(", ") if "=" in item)
                rows[int(found.group(1))] = {"step": int(found.group(1)), **{k: float(v) for k, v in pairs}}
        return rows, max(rows, default=0), []
    meta = load_meta(path / CHECKPOINT_FILE)
    return {row["step"]: row for row in meta.quality}, meta.step, meta.history


def table(runs: list[Path], steps: list[int] | None, keys: list[str]) -> str:
    logs = {run: quality_log(run) for run in runs if run.exists()}  # a run not started yet has no row
    if not logs:
        return "no run has started yet"
    if not steps:
        steps = sorted(set.intersection(*(set(log) for log, _, _ in logs.values()))) or \
            sorted(set.union(*(set(log) for log, _, _ in logs.values())))
    lines = [f"| run | {' | '.join(f'@ {s:,}' for s in steps)} | best cFID (step) | steps | images/s |",
             "|---" * (len(steps) + 4) + "|",
             f"| ({' / '.join(keys)}) |" + " |" * (len(steps) + 3)]
    for run, (log, last, history) in logs.items():
        cells = []
        for step in steps:
            row = log.get(step)
            cells.append("-" if row is None else " / ".join(FORMATS.get(k, "{:.3g}").format(row[k]) for k in keys))
        best = min(log.values(), key=lambda r: r["cfid"]) if log else None
        best_cell = "-" if best is None else f"{best['cfid']:.3g} ({best['step']:,})"
        speeds = [h["images_per_sec"] for h in history if h.get("images_per_sec")]
        speed = f"{np.median(speeds):.0f}" if speeds else "-"
        lines.append(f"| {run.stem} | {' | '.join(cells)} | {best_cell} | {last:,} | {speed} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--steps", type=int, nargs="+", help="the steps to show (default: those every run reached)")
    parser.add_argument("--keys", nargs="+", default=["cfid", "recall", "precision"])
    args = parser.parse_args(argv)
    print(table(args.runs, args.steps, args.keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
