"""Sweeps without Ray: the spec (read, checked, expanded into trials), the results files, and the sweep's models.

A spec is JSON: {"base": {GANConfig fields}, "grid": {field: [values]}, "seeds": [...], "sample": {field:
{"loguniform": [lo, hi]}}, "num_samples": N, "sample_seed": S, "early_stopping": {"grace_period": ...,
"reduction_factor": ...}, "rank_by": "cfid"}. Every trial's config is built and checked here, before anything
starts: random-search values are drawn here too, from `sample_seed`, so a sweep run again (resumed) has exactly
the same trials.
`sweep_ray` runs the trials; this module never imports Ray, so the app can read a sweep's results without it.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from mnist_gan.atomic_files import read_json, write_json
from mnist_gan.config import GANConfig
from mnist_gan.errors import ConfigError, MnistGanError, shown
from mnist_gan.run_folder import TRIAL_FILE, checkpointed

SPEC_FILE = "spec.json"  # the sweep's spec, as first run: a rerun with the same DIR must bring the same one
RESULTS_FILE = "results.json"
RESULTS_TABLE = "results.md"
RUNS_DIR = "runs"  # DIR/runs/<trial>: each trial's run folder (checkpoints, samples, best/)
SWEEPS_ENV = "MNIST_GAN_SWEEPS"  # sweep folders whose trials the app offers as models (comma-separated)
MAX_TRIALS = 1_000
DISTRIBUTIONS = ("loguniform", "uniform", "choice")
KEYS = ("base", "grid", "seeds", "sample", "num_samples", "sample_seed", "early_stopping", "rank_by")
# The figures of a training evaluation a sweep can rank its trials by (ASHA too), and which way is better: cFID
# alone favours clean digits, and a search for the ways people write them (recall, coverage) needs its own
RANKINGS = {"cfid": "min", "cfid_x_real": "min", "recall": "max", "coverage": "max", "precision": "max",
            "density": "max", "recognisable": "max"}
# A trial's status once it has ended; "failed" is retried (from its checkpoint) when the sweep runs again.
FINISHED, STOPPED_EARLY, DIVERGED, FAILED = "finished", "stopped early", "diverged", "failed"
FINAL = (FINISHED, STOPPED_EARLY, DIVERGED)


def best_of(rank_by: str, values) -> float | None:
    """The best of these values of a ranking figure, None and NaN aside (None when none is left)."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    return (min if RANKINGS[rank_by] == "min" else max)(values) if values else None


class SweepError(MnistGanError):
    """A sweep cannot start or go on: a bad spec (the message names the field), a DIR holding another sweep,
    Ray missing or unreachable."""


@dataclass(frozen=True)
class EarlyStopping:
    """ASHA on the spec's ranking figure (cFID by default): a trial is stopped at a rung (grace_period x
    reduction_factor^k steps) when its figure is in the worst 1 - 1/reduction_factor of the trials that reached
    that rung before it."""

    grace_period: int
    reduction_factor: float = 2.0


@dataclass(frozen=True)
class Trial:
    """One run of the sweep: its name (its run folder's), its whole config, and the values that make it differ."""

    name: str
    config: GANConfig
    varied: dict = field(default_factory=dict)  # the grid and sampled values (not the seed)

    @property
    def group(self) -> str:
        """The configuration it shares with its other seeds, in words ("lr_d=0.0002, loss=hinge")."""
        return ", ".join(f"{k}={_short(v)}" for k, v in self.varied.items()) or "base"


@dataclass(frozen=True)
class Spec:
    """A checked sweep spec and its trials."""

    raw: dict
    trials: tuple[Trial, ...]
    early_stopping: EarlyStopping | None
    rank_by: str = "cfid"  # a key of RANKINGS

    @property
    def max_steps(self) -> int:
        return max(t.config.steps for t in self.trials)

    @property
    def mode(self) -> str:
        """"min" or "max": which way rank_by is better."""
        return RANKINGS[self.rank_by]


def load_spec(path: str | Path) -> Spec:
    """Read and check a spec file; SweepError names the field of the first problem."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SweepError(f"no sweep spec at {path}") from None
    except json.JSONDecodeError as e:
        raise SweepError(f"{path} is not valid JSON (line {e.lineno}: {e.msg})") from None
    return parse_spec(raw)


def parse_spec(raw) -> Spec:
    """Check a spec and expand it into trials (grid x samples x seeds), each config checked by GANConfig."""
    if not isinstance(raw, dict):
        raise SweepError("spec: must be a JSON object with base, grid, seeds...")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise SweepError(f"{unknown[0]}: unknown spec key; the keys are {', '.join(KEYS)}")
    names = {f.name for f in fields(GANConfig)}
    base = _mapping(raw, "base")
    grid = _mapping(raw, "grid")
    sample = _mapping(raw, "sample")
    for part, values in (("base", base), ("grid", grid), ("sample", sample)):
        for name in values:
            if name not in names:
                raise SweepError(f"{part}.{name}: is not a GANConfig field; the fields are {', '.join(sorted(names))}")
            if name == "seed" and part != "base":
                raise SweepError(f"{part}.seed: list the seeds in \"seeds\"")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"grid.{name}: must be a non-empty list of values, got {shown(values)}")
    seeds = raw.get("seeds", [base.get("seed", 0)])
    if not isinstance(seeds, list) or not seeds or len(set(map(repr, seeds))) != len(seeds):
        raise SweepError(f"seeds: must be a non-empty list of distinct integers, got {shown(seeds)}")
    num_samples = _integer(raw, "num_samples", 1, MAX_TRIALS, 1 if not sample else None)
    sample_seed = _integer(raw, "sample_seed", 0, 2**32 - 1, 0)
    draws = _draw(sample, num_samples, sample_seed)
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    count = len(combos) * len(draws) * len(seeds)
    if count > MAX_TRIALS:
        raise SweepError(f"grid: {count} trials (grid x num_samples x seeds); at most {MAX_TRIALS}")
    trials = []
    for combo, drawn, seed in itertools.product(combos, draws, seeds):
        varied = {**combo, **drawn}
        try:
            config = GANConfig.from_dict({**base, **varied, "seed": seed})
        except ConfigError as e:
            where = "seeds" if e.field == "seed" else f"grid.{e.field}" if e.field in combo else \
                f"sample.{e.field}" if e.field in drawn else f"base.{e.field}"
            raise SweepError(f"{where}: {str(e).split(': ', 1)[1]}") from None
        except TypeError as e:  # e.g. an unhashable value reaching a registry lookup
            raise SweepError(f"spec: {e}") from None
        trials.append(Trial(trial_name(len(trials), varied, seed), config, varied))
    if any(not t.config.eval_every for t in trials):
        raise SweepError("base.eval_every: a sweep ranks trials by their evaluations, every eval_every steps: set "
                         "it (e.g. a tenth of steps)")
    rank_by = raw.get("rank_by", "cfid")
    if rank_by not in RANKINGS:
        raise SweepError(f"rank_by: must be one of {', '.join(RANKINGS)}, got {shown(rank_by)}")
    return Spec(raw, tuple(trials), _early_stopping(raw), rank_by)


def trial_name(index: int, varied: dict, seed: int) -> str:
    """t003-lr_d=0.0002-seed=1: sortable, readable, and safe as a folder name."""
    parts = [f"t{index:03d}", *(f"{k}={_short(v)}" for k, v in varied.items()), f"seed={seed}"]
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", "-".join(parts))[:120]


def tune_name(trial) -> str:
    """A Ray Tune trial's name (and DIR/tune folder): the sweep's own name for it, as trial_name made it."""
    return trial.config["trial"]["name"]


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else str(value)


def _mapping(raw: dict, key: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise SweepError(f"{key}: must be a JSON object of GANConfig fields, got {shown(value)}")
    return value


def _integer(raw: dict, key: str, low: int, high: int, default: int | None) -> int:
    value = raw.get(key, default)
    if value is None:
        raise SweepError(f"{key}: random search (\"sample\") needs the number of draws, e.g. \"{key}\": 8")
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SweepError(f"{key}: must be an integer between {low} and {high}, got {shown(value)}")
    return value


def _draw(sample: dict, num_samples: int, seed: int) -> list[dict]:
    """num_samples draws of the sampled fields, from one seeded generator (the same draws every time)."""
    rng = np.random.default_rng(seed)
    checked = {}
    for name, dist in sample.items():
        if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
            raise SweepError(f"sample.{name}: must be one of {{\"loguniform\": [lo, hi]}}, {{\"uniform\": [lo, hi]}}"
                             f" or {{\"choice\": [values]}}, got {shown(dist)}")
        (kind, args), = dist.items()
        if kind == "choice":
            if not isinstance(args, list) or not args:
                raise SweepError(f"sample.{name}: choice needs a non-empty list, got {shown(args)}")
        elif not (isinstance(args, list) and len(args) == 2 and all(_number(a) for a in args) and args[0] < args[1]
                  and (kind == "uniform" or args[0] > 0)):
            raise SweepError(f"sample.{name}: {kind} needs [lo, hi] with lo < hi"
                             f"{' and lo > 0' if kind == 'loguniform' else ''}, got {shown(args)}")
        checked[name] = (kind, args)
    draws = []
    for _ in range(num_samples if sample else 1):
        drawn = {}
        for name, (kind, args) in checked.items():
            if kind == "choice":
                drawn[name] = args[int(rng.integers(len(args)))]
            else:
                lo, hi = (math.log(args[0]), math.log(args[1])) if kind == "loguniform" else args
                value = float(rng.uniform(lo, hi))
                drawn[name] = float(f"{math.exp(value) if kind == 'loguniform' else value:.4g}")  # readable names
        draws.append(drawn)
    return draws


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _early_stopping(raw: dict) -> EarlyStopping | None:
    block = raw.get("early_stopping")
    if block is None:
        return None
    if not isinstance(block, dict):
        raise SweepError(f"early_stopping: must be an object like {{\"grace_period\": 500, \"reduction_factor\": 2}}"
                         f", got {shown(block)}")
    unknown = sorted(set(block) - {"grace_period", "reduction_factor"})
    if unknown:
        raise SweepError(f"early_stopping.{unknown[0]}: unknown; the keys are grace_period, reduction_factor")
    grace = block.get("grace_period")
    if not isinstance(grace, int) or isinstance(grace, bool) or grace < 1:
        raise SweepError(f"early_stopping.grace_period: must be a positive number of steps, got {shown(grace)}")
    factor = block.get("reduction_factor", 2)
    if not _number(factor) or factor <= 1:
        raise SweepError(f"early_stopping.reduction_factor: must be a number above 1, got {shown(factor)}")
    return EarlyStopping(grace, float(factor))


# --- the sweep folder -------------------------------------------------------------------------------------------

def claim_folder(out: Path, spec: Spec) -> bool:
    """Make `out` this sweep's folder; True when it already was (the sweep resumes). A folder holding another
    sweep's spec is refused rather than mixed."""
    saved = read_json(out / SPEC_FILE)
    if saved is not None and saved != spec.raw:
        raise SweepError(f"{out} holds another sweep ({out / SPEC_FILE} differs from this spec): pass a new --out, "
                         "or the same spec to resume that sweep")
    if (out.exists() and not out.is_dir()) or (saved is None and out.is_dir() and any(out.iterdir())):
        raise SweepError(f"{out} exists and is not a sweep folder: pass a new or empty --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SPEC_FILE, spec.raw)
    return saved is not None


def trial_record(out: Path, name: str) -> dict:
    """What is known of a trial from its run folder: its trial.json, else {} (not started, or still running)."""
    return read_json(out / RUNS_DIR / name / TRIAL_FILE) or {}


def result_rows(out: Path, spec: Spec) -> list[dict]:
    """results.json's rows, one per trial in spec order, from the trials' own records."""
    rows = []
    for trial in spec.trials:
        record = trial_record(out, trial.name)
        best = out / RUNS_DIR / trial.name / "best"
        rows.append({"trial": trial.name, "config": trial.config.to_dict(), "seed": trial.config.seed,
                     "status": record.get("status", "not finished"), "steps": record.get("steps"),
                     "cfid": record.get("cfid"), spec.rank_by: record.get(spec.rank_by),
                     "best": str(best.relative_to(out)) if (best / "gan_config.json").is_file() else None,
                     "device": record.get("device") or _training_record(out, trial.name).get("device"),
                     "wall_time_s": record.get("wall_time_s"),
                     **({"error": record["error"]} if record.get("error") else {})})
    return rows


def _training_record(out: Path, name: str) -> dict:
    return read_json(out / RUNS_DIR / name / "training.json") or {}


def write_results(out: Path, spec: Spec) -> list[dict]:
    """Write DIR/results.json and DIR/results.md (sorted by the ranking figure, mean and spread over seeds);
    returns the rows."""
    rows = result_rows(out, spec)
    write_json(out / RESULTS_FILE, {"trials": rows})
    (out / RESULTS_TABLE).write_text(results_table(rows, spec))
    return rows


NAMES = {"cfid": "cFID", "cfid_x_real": "cFID x real"}  # the figures' names in the tables; the others as they are


def ranked(rows: list[dict], spec: Spec) -> list[dict]:
    """Result rows, the best by the spec's ranking figure first, rows without one last."""
    return sorted(rows, key=lambda row: _best_first(spec, row.get(spec.rank_by)))


def _best_first(spec: Spec, value: float | None) -> tuple:
    return (value is None, 0 if value is None else value if spec.mode == "min" else -value)


def results_table(rows: list[dict], spec: Spec) -> str:
    """Markdown: configurations by their mean best ranking figure over their seeds (spread: sample standard
    deviation and range), then every trial by its best."""
    key, name = spec.rank_by, NAMES.get(spec.rank_by, spec.rank_by)
    better = "lower" if spec.mode == "min" else "higher"
    groups: dict[str, list[dict]] = {}
    for trial, row in zip(spec.trials, rows):
        groups.setdefault(trial.group, []).append(row)

    def values(group: list[dict]) -> list[float]:
        return [r[key] for r in group if r.get(key) is not None]

    lines = ["# Sweep results", "", f"{name}: the best of each trial's evaluations (N = 2,000 samples; {better} is "
             "better).", "", f"| configuration | trials | {name} mean | spread (sd; min-max) | statuses |",
             "| --- | --- | --- | --- | --- |"]
    means = {name: statistics.fmean(values(group)) if values(group) else None for name, group in groups.items()}
    for group_name, group in sorted(groups.items(), key=lambda item: _best_first(spec, means[item[0]])):
        found = values(group)
        sd = f"{statistics.stdev(found):.3g}" if len(found) > 1 else "-"
        spread = f"{sd}; {min(found):.3g}-{max(found):.3g}" if found else "-"
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(Counter(r["status"] for r in group).items()))
        mean = means[group_name]
        lines.append(f"| {group_name} | {len(group)} | {'-' if mean is None else f'{mean:.3g}'} | {spread} | "
                     f"{statuses} |")
    extra = "" if key == "cfid" else " best cFID |"  # best/ holds the best sampler by cFID, whatever the ranking
    weights = "best weights" if key == "cfid" else "best weights (by cFID)"
    lines += ["", f"| trial | seed | status | steps | best {name} |{extra} {weights} |",
              "| --- | --- | --- | --- | --- | --- |" + (" --- |" if extra else "")]
    for row in ranked(rows, spec):
        cells = [row.get(key)] + ([row["cfid"]] if extra else [])
        shown_cells = " | ".join("-" if v is None else f"{v:.4g}" for v in cells)
        lines.append(f"| {row['trial']} | {row['seed']} | {row['status']} | {row['steps'] or '-'} | {shown_cells} | "
                     f"{row['best'] or '-'} |")
    return "\n".join(lines) + "\n"


# --- the app's side ---------------------------------------------------------------------------------------------

def sweep_models(*folders: str | Path) -> dict[str, Path]:
    """Model name ("<sweep folder>/<trial>") -> best weights folder, for every trial of these sweeps that has
    one, read from their results.json (a folder without one is skipped)."""
    found = {}
    for folder in folders:
        folder = Path(folder)
        results = read_json(folder / RESULTS_FILE) or {}
        for row in results.get("trials", []):
            best = row.get("best")
            if isinstance(best, str) and row.get("status") in FINAL and (folder / best / "gan_config.json").is_file():
                found[f"{folder.name}/{row['trial']}"] = folder / best
    return found


def sweep_runs(folders: tuple[str, ...]) -> dict[str, Path]:
    """Every trial's run folder that holds a checkpoint, named "<sweep folder>/<trial>" (the Train tab compares
    them beside the app's own runs)."""
    return {f"{Path(sweep).name}/{p.name}": p for sweep in folders for p in checkpointed(Path(sweep) / RUNS_DIR)}


def sweep_folders(environ) -> tuple[str, ...]:
    """The sweep folders $MNIST_GAN_SWEEPS names (comma-separated)."""
    return tuple(part.strip() for part in environ.get(SWEEPS_ENV, "").split(",") if part.strip())


def add_sweep_models(library, folders: tuple[str, ...]) -> list[str]:
    """Register the sweeps' models in an app's Library; a folder that no longer loads is skipped with a warning."""
    from mnist_gan.errors import log

    added = []
    for name, folder in sweep_models(*folders).items():
        try:
            library.add(name, folder, f"from the sweep {Path(folder).parents[2].name}")  # a name, never a server path
            added.append(name)
        except MnistGanError as e:
            log.warning("sweep model %s skipped: %s", name, e)
    return added

