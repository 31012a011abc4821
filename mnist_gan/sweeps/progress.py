"""The sweep's driver side under Ray Tune: the live table, the statuses only Tune knows, the results files.

Imported only once Ray is set up (`tune_runner._start_ray`): importing Ray fixes its addresses.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from ray import tune

from mnist_gan.atomic_files import write_json
from mnist_gan.run_folder import TRIAL_FILE

from .spec import FAILED, FINAL, RUNS_DIR, STOPPED_EARLY, Spec, trial_record, tune_name, write_results

TABLE_EVERY_S = 15  # the live table is printed at most this often (and whenever a trial starts or ends)


class Progress(tune.Callback):
    """The live table (one line per trial), the statuses Tune alone knows (stopped early, failed), and the
    results files, rewritten whenever a trial ends."""

    def __init__(self, out: str, spec: Spec):
        self.out, self.spec = out, spec
        self.shown_at = 0.0

    def setup(self, **info) -> None:
        self.started, self.shown_at = time.monotonic(), 0.0

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._show(trials, force=True)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        out, last = Path(self.out), trial.last_result or {}
        name = tune_name(trial)
        if trial_record(out, name).get("status") not in FINAL:  # Tune ended it before it could: ASHA's doing
            write_json(out / RUNS_DIR / name / TRIAL_FILE,
                       {self.spec.rank_by: _value(last.get("best_score")), "status": STOPPED_EARLY,
                        "steps": last.get("step"), "cfid": _value(last.get("best_cfid")),
                        "wall_time_s": round(last.get("time_total_s", 0), 1)})
        write_results(out, self.spec)
        self._show(trials, force=True)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        out = Path(self.out)
        path = out / RUNS_DIR / tune_name(trial) / TRIAL_FILE
        if trial_record(out, tune_name(trial)).get("status") != FAILED:  # it died without a word (killed, OOM)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(path, {"status": FAILED, "error": f"the trial's process failed; see {trial.path}"})
        write_results(out, self.spec)
        self._show(trials, force=True)

    def on_step_end(self, iteration, trials, **info) -> None:
        self._show(trials)

    def _show(self, trials, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.shown_at < TABLE_EVERY_S:
            return
        self.shown_at = now
        print(progress_table(Path(self.out), trials, now - getattr(self, "started", now), self.spec.rank_by),
              flush=True)


def progress_table(out: Path, trials, elapsed: float, rank_by: str = "cfid") -> str:
    """One line per trial (running ones only when there are many): status, step, last and best cFID (and ranking
    figure, when it is another), images/s."""
    lines, counts = [], {}
    for trial in trials:
        last, name = trial.last_result or {}, tune_name(trial)
        status = trial_record(out, name).get("status") if trial.status in ("TERMINATED", "ERROR") else None
        status = status or trial.status.lower()
        counts[status] = counts.get(status, 0) + 1
        if len(trials) <= 24 or status == "running":
            steps = trial.config["trial"]["config"]["steps"]
            cfid, best = last.get("cfid"), last.get("best_cfid")
            lines.append(f"  {name:<44} {status:<13} {last.get('step', 0):>7}/{steps:<7} "
                         f"cFID {_num(cfid):>7} (best {_num(best)})  "
                         + ("" if rank_by == "cfid" else
                            f"{rank_by} {_num(last.get('score'))} (best {_num(last.get('best_score'))})  ")
                         + f"{last.get('images_per_sec', 0):,.0f} img/s")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return f"[sweep {int(elapsed) // 60}:{int(elapsed) % 60:02d}] {summary}\n" + "\n".join(lines)


def _value(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _num(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3g}"
