"""Is a sweep worth it here? The same 4 trials (2 learning rates x 2 seeds) run one after another as plain
`python -m mnist_gan train` processes (each with every core), then as one `python -m mnist_gan sweep` with 2 trials
at a time (each pinned to its share of the cores). Wall times include everything a person waits for: process and
TensorFlow start-up, evaluations, checkpoints, and for the sweep Ray's own start.

Per-trial images/s is training throughput (steps x batch over the trainer's own training seconds, from each run's
training.json): what one trial gets while it trains. A sweep pays off only when its wall-time ratio is clearly
below 1. One round takes minutes; rounds (default 5) // 5 rounds are run, alternating.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import bench.common  # noqa: F401  (its environment: quiet TensorFlow, no telemetry)
from mnist_gan.data import SAMPLE_DATA
from testing.system import cli

BASE = {"batch_size": 32, "steps": 2000, "eval_every": 1000, "sample_every": 500, "checkpoint_every": 1000}
GRID = {"lr_d": [2e-4, 4e-4]}
SEEDS = [0, 1]
CONCURRENT = 2


def _trials() -> list[dict]:
    return [{**BASE, "lr_d": lr_d, "seed": seed} for lr_d in GRID["lr_d"] for seed in SEEDS]


def _throughput(run_dir: Path) -> float:
    record = json.loads((run_dir / "training.json").read_text())
    return record["steps"] * record["batch_size"] / record["wall_time_s"]


def one_after_another(folder: Path) -> tuple[float, list[float]]:
    """Wall seconds for the 4 trials as sequential `train` runs; their images/s."""
    started, rates = time.perf_counter(), []
    for i, trial in enumerate(_trials()):
        run_dir = folder / f"trial{i}"
        flags = [x for k, v in trial.items() for x in (f"--{k.replace('_', '-')}", v)]
        out = cli("train", "--data", SAMPLE_DATA, "--run-dir", run_dir, "--quiet", *flags, timeout=1800)
        if out.returncode:
            raise RuntimeError(f"train failed: {out.stderr[-2000:]}")
        rates.append(_throughput(run_dir))
    return time.perf_counter() - started, rates


def as_sweep(folder: Path) -> tuple[float, list[float]]:
    """Wall seconds for the same 4 trials as a sweep, CONCURRENT at a time; their images/s."""
    spec = folder / "spec.json"
    spec.write_text(json.dumps({"base": BASE, "grid": GRID, "seeds": SEEDS}))
    started = time.perf_counter()
    out = cli("sweep", spec, "--out", folder / "sweep", "--data", SAMPLE_DATA, "--max-concurrent", CONCURRENT,
              timeout=3600)
    wall = time.perf_counter() - started
    if out.returncode:
        raise RuntimeError(f"sweep failed: {out.stdout[-2000:]} {out.stderr[-2000:]}")
    rows = json.loads((folder / "sweep" / "results.json").read_text())["trials"]
    return wall, [_throughput(folder / "sweep" / "runs" / row["trial"]) for row in rows]


def measure(rounds: int = 5) -> list[dict]:
    walls: dict[str, list[float]] = {"seq": [], "sweep": []}
    rates: dict[str, list[float]] = {"seq": [], "sweep": []}
    for _ in range(max(1, rounds // 5)):
        with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
            for name, run in (("seq", one_after_another), ("sweep", as_sweep)):
                folder = Path(tmp) / name
                folder.mkdir()
                wall, per_trial = run(folder)
                walls[name].append(wall)
                rates[name] += per_trial
    seq, sweep = statistics.median(walls["seq"]), statistics.median(walls["sweep"])
    trials = f"4 trials x {BASE['steps']:,} steps, batch {BASE['batch_size']}, cFID every {BASE['eval_every']:,}"
    return [
        {"what": f"one after another ({trials})", "wall s": round(seq, 1),
         "per-trial img/s (median, min-max)": _spread(rates["seq"]), "ratio": ""},
        {"what": f"sweep, {CONCURRENT} at a time, 1 thread each", "wall s": round(sweep, 1),
         "per-trial img/s (median, min-max)": _spread(rates["sweep"]), "ratio": ""},
        {"what": "sweep / one after another (wall)", "wall s": "", "per-trial img/s (median, min-max)": "",
         "ratio": f"{sweep / seq:.2f}"},
    ]


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"
