"""Sweeps on Ray Tune: every trial a normal run of the Trainer in its own process, reported to Tune by the spec's
ranking figure (cFID by default).

Local by default: Ray starts inside the command, on 127.0.0.1 only, with this machine's cores; each trial gets
an equal share of them and sets TensorFlow's threads to it before TensorFlow starts, so trials do not fight. With
`--address`, the same trials run on a Ray cluster. Each trial writes its run folder straight into DIR/runs/<trial>
and Tune keeps its own state in DIR/tune (`storage_path`): on a cluster DIR must be a folder every node mounts at
the same path (NFS...); each trial checks that it sees the marker file Tune writes there, and fails saying so if not.

Interrupted and run again with the same DIR, the sweep resumes: Tune restores its experiment from DIR/tune (or,
when the driver died before Tune first saved it, starts over and lets each trial find its own record); a trial
whose trial.json says finished, stopped early or diverged only reports that again, and any other trial continues
from its run folder's last checkpoint (`Trainer.resume_from`).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable

from mnist_gan import run_folder
from mnist_gan.atomic_files import write_json
from mnist_gan.device import cpu_count
from mnist_gan.errors import MnistGanError
from mnist_gan.run_folder import CHECKPOINT_FILE, EVENTS_FILE, STARTS_FILE, TRIAL_FILE
from mnist_gan.training.events import Checkpoint, Divergence, Quality, State, Step, to_json

from .spec import (
    DIVERGED,
    FAILED,
    FINAL,
    FINISHED,
    RUNS_DIR,
    Spec,
    SweepError,
    best_of,
    claim_folder,
    trial_record,
    tune_name,
    write_results,
)

INSTALL_HINT = "sweeps need Ray Tune, which is optional: pip install -r requirements-ray.txt"
EXPERIMENT = "tune"  # DIR/tune: Tune's own state (experiment, searcher, per-trial results), what a resume reads
SCORE = "score"  # a Tune result's ranking figure (the spec's rank_by), the metric Tune and ASHA compare
STORAGE_MARKER = ".validate_storage_marker"  # Ray Tune writes it into its storage_path to check it is shared
LOCK_WAIT_S = 120  # a killed sweep's trial process can outlive its driver by a few seconds
OBJECT_STORE_BYTES = 128 * 2**20  # trials pass no data through Ray: a small object store spares memory
# Ray turns 127.0.0.1 into this machine's network address unless clusters are off: off, a local Ray listens and
# connects on 127.0.0.1 only (the variable's name is Ray's; it applies on Linux too)
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
QUIET = {"RAY_AIR_NEW_OUTPUT": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def ray_available() -> bool:
    """Whether Ray Tune is installed here. Ray is not imported: its settings are read once, at its import."""
    import importlib.util

    spec = importlib.util.find_spec("ray")  # find_spec("ray.tune") would import ray itself
    return spec is not None and any((Path(p) / "tune").is_dir() for p in spec.submodule_search_locations or ())


def run_sweep(spec: Spec, out: str | Path, data: str | None = None, address: str | None = None,
              max_concurrent: int | None = None, device: str = "auto",
              log: Callable[[str], None] = print) -> list[dict]:
    """Run (or resume) the sweep into `out`; returns results.json's rows (also written with results.md)."""
    if not ray_available():
        raise SweepError(INSTALL_HINT)
    out = Path(out).resolve()
    data = str(Path(data).resolve()) if data else None
    if max_concurrent is not None and max_concurrent < 1:
        raise SweepError(f"--max-concurrent must be at least 1, got {max_concurrent}")
    resuming = claim_folder(out, spec)
    ray, context = _start_ray(address)
    try:
        from ray import tune

        from .progress import Progress

        cpus = int(ray.cluster_resources().get("CPU", 1))
        gpus = ray.cluster_resources().get("GPU", 0) if device != "cpu" else 0
        concurrent = max_concurrent or max(1, min(len(spec.trials), cpus))
        resources = {"cpu": max(1, cpus // concurrent), "gpu": min(1.0, gpus / concurrent) if gpus else 0}
        where = f"the Ray cluster at {address}" if address else "a local Ray on 127.0.0.1"
        log(f"sweep: {len(spec.trials)} trials on {where} ({cpus} CPUs{f', {gpus:g} GPUs' if gpus else ''}), "
            f"{concurrent} at a time, {resources['cpu']} CPU thread(s){' and a GPU share' if gpus else ''} each")
        dashboard = getattr(context, "dashboard_url", None)
        log(f"Ray dashboard: http://{dashboard}" if dashboard else
            "Ray dashboard: none (ray[tune] alone has no dashboard; pip install 'ray[default]' adds one)")
        if resuming:
            done = sum(trial_record(out, t.name).get("status") in FINAL for t in spec.trials)
            log(f"resuming the sweep in {out}: {done} of {len(spec.trials)} trials already ended")
        trainable = tune.with_resources(run_trial, resources)
        params = {"trial": tune.grid_search([{"name": t.name, "config": t.config.to_dict()} for t in spec.trials]),
                  "out": str(out), "data": data, "device": device, "rank_by": spec.rank_by}
        experiment = out / EXPERIMENT
        if tune.Tuner.can_restore(str(experiment)):
            tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=True,
                                       param_space=params)
        else:
            run_config = tune.RunConfig(name=EXPERIMENT, storage_path=str(out), verbose=0,
                                        failure_config=tune.FailureConfig(max_failures=0),  # reported, not retried
                                        callbacks=[Progress(str(out), spec)])
            tuner = tune.Tuner(trainable, param_space=params, tune_config=_tune_config(spec, concurrent),
                               run_config=run_config)
        tuner.fit()
    finally:
        ray.shutdown()
    rows = write_results(out, spec)
    log(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    return rows


def _start_ray(address: str | None):
    """Connect to the cluster at `address`, else start Ray here on 127.0.0.1 with this machine's cores."""
    if address is None or address.split(":")[0] in ("127.0.0.1", "localhost"):
        if "ray" in sys.modules and _ray_constants().ENABLE_RAY_CLUSTER:
            raise SweepError("Ray was imported before the sweep could keep it on 127.0.0.1: run the sweep in a "
                             "process of its own (python -m mnist_gan sweep)")
        os.environ.update(LOOPBACK_ONLY)  # before Ray is imported: it reads this once
    for name, value in QUIET.items():
        os.environ.setdefault(name, value)
    # trial processes import this package: on a cluster it must be at the same path on every node
    path = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")) if p)
    if address and "RAY_AUTH_MODE" not in os.environ and _token_available():
        # Ray uses its token only for clusters it starts or finds itself; a cluster given by address that was
        # started with a token (`ray start` does so once ~/.ray/auth_token exists) refuses a driver without it
        os.environ["RAY_AUTH_MODE"] = "token"
    import ray

    settings = {"configure_logging": True, "logging_level": logging.WARNING, "log_to_driver": False,
                "runtime_env": {"env_vars": {"PYTHONPATH": path}}}
    try:
        if address:
            context = ray.init(address=address, **settings)
        else:
            context = ray.init(num_cpus=cpu_count(), object_store_memory=OBJECT_STORE_BYTES, **settings)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise SweepError(f"could not {'reach the Ray cluster at ' + address if address else 'start Ray'}: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return ray, context


def _ray_constants():
    """Ray's settings module, as Ray read them at its import."""
    from ray._private import ray_constants

    return ray_constants


def _token_available() -> bool:
    """Whether Ray would find an authentication token here: $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH or
    ~/.ray/auth_token (where `ray get-auth-token --generate` and a first local Ray put it)."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token"
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or Path(path).is_file()


def _tune_config(spec: Spec, concurrent: int):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    stopping = spec.early_stopping
    scheduler = ASHAScheduler(time_attr="step", max_t=spec.max_steps, grace_period=stopping.grace_period,
                              reduction_factor=stopping.reduction_factor) if stopping else FIFOScheduler()
    return tune.TuneConfig(metric=SCORE, mode=spec.mode, scheduler=scheduler, max_concurrent_trials=concurrent,
                           trial_name_creator=tune_name, trial_dirname_creator=tune_name)


# --- one trial, in its own Ray worker process -------------------------------------------------------------------

def run_trial(params: dict) -> None:
    """Train one trial (or resume it), reporting each evaluation to Tune; record how it ended."""
    import ray
    from ray import tune

    from mnist_gan.device import select_device

    out, name = Path(params["out"]), params["trial"]["name"]
    if not (out / EXPERIMENT / STORAGE_MARKER).is_file():  # the driver's Tune wrote it: this node sees another DIR
        raise SweepError(f"the sweep folder {out} is not shared with node {ray.util.get_node_ip_address()}: on a "
                         "cluster it must be a folder every node mounts at the same path (NFS...)")
    threads = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
    device = select_device(params["device"], threads)  # first: TensorFlow fixes both when it starts
    run_dir = out / RUNS_DIR / name
    run_dir.mkdir(parents=True, exist_ok=True)
    busy = (f"another process has been training {run_dir} for {LOCK_WAIT_S} s (an earlier sweep's trial?): stop "
            "it, then run the sweep again")
    with run_folder.lock(run_dir, wait_s=LOCK_WAIT_S, busy=busy):  # a killed sweep's trial may outlive it a little
        record = trial_record(out, name)
        if record.get("status") in FINAL:  # ended in an earlier run of the sweep: say so again, train nothing
            best = record.get(params["rank_by"])
            tune.report(_metrics(record.get("steps") or 0, {"cfid": record.get("cfid"), SCORE: best},
                                 record.get("cfid"), best, 0.0, record["status"]))
            return
        try:
            _train(params, run_dir, device, tune.report)
        except Exception as e:
            message = str(e) if isinstance(e, MnistGanError) else f"{type(e).__name__}: {e}"
            write_json(run_dir / TRIAL_FILE, {"status": FAILED, "error": message, "device": device})
            raise


def _train(params: dict, run_dir: Path, device: str, report: Callable[[dict], None]) -> None:
    from mnist_gan.config import GANConfig
    from mnist_gan.data import load_mnist
    from mnist_gan.training.trainer import open_run

    resume = (run_dir / CHECKPOINT_FILE).is_file()
    trainer = open_run(run_dir, load_mnist(params["data"]),
                       None if resume else GANConfig.from_dict(params["trial"]["config"]))
    with open(run_dir / STARTS_FILE, "a") as starts:  # evidence for resumes: where each start began
        starts.write(f'{{"step": {trainer.step}, "pid": {os.getpid()}, "time": {time.time():.3f}}}\n')
    trainer.notes["sweep"] = {"folder": params["out"], "trial": params["trial"]["name"]}
    reporter = TuneReporter(trainer, report, params["rank_by"])
    with open(run_dir / EVENTS_FILE, "a", buffering=1) as events:  # the run's events, one JSON line each
        trainer.subscribe(lambda event: events.write(to_json(event) + "\n"))
        trainer.subscribe(reporter)
        state = trainer.run()
    status = DIVERGED if reporter.divergence else FINISHED if state == State.FINISHED else FAILED
    best, score = trainer.best.get("cfid"), reporter.best_score()
    write_json(run_dir / TRIAL_FILE, {reporter.rank_by: score, "status": status, "steps": trainer.step,
                                      "cfid": best, "best_step": trainer.best.get("step"), "device": device,
                                      "wall_time_s": round(trainer.elapsed, 1), "divergence": reporter.divergence})
    last = reporter.pending.metrics if reporter.pending else reporter.last  # the last step's evaluation
    report(reporter.metrics(trainer.step, last, status))


class TuneReporter:
    """Trainer events -> Tune results. A Quality is reported once the trainer has exported its best weights (at the
    next Step or Checkpoint), so a trial stopped by ASHA on that report keeps them. The first Divergence stops the
    run: a sweep spends its time on other trials rather than on rollbacks."""

    def __init__(self, trainer, report: Callable[[dict], None], rank_by: str = "cfid"):
        self.trainer, self.report, self.rank_by = trainer, report, rank_by
        self.pending: Quality | None = None
        self.rate, self.last = 0.0, {}
        self.divergence: dict | None = None

    def __call__(self, event) -> None:
        match event:
            case Step():
                self.rate = event.images_per_sec
                self.flush()
            case Quality():
                self.pending = event
            case Checkpoint():
                self.flush()
            case Divergence():
                self.divergence = {"step": event.step, "reason": event.reason}
                self.trainer.stop()

    def flush(self) -> None:
        """Report the pending Quality, unless it is the last step's: that one goes with the run's end, once the
        trial has recorded itself finished (ASHA stops every trial at its last step, max_t)."""
        if self.pending is None or self.pending.step >= self.trainer.config.steps:
            return
        quality, self.pending = self.pending, None
        self.last = quality.metrics
        self.report(self.metrics(quality.step, self.last, "running"))

    def best_score(self) -> float | None:
        """The best ranking figure of the run's evaluations, those of its earlier starts too (the checkpoint
        keeps them)."""
        return best_of(self.rank_by, (q.get(self.rank_by) for q in self.trainer.quality_log))

    def metrics(self, step: int, last: dict, status: str) -> dict:
        return _metrics(step, {"cfid": last.get("cfid"), SCORE: last.get(self.rank_by)},
                        self.trainer.best.get("cfid"), self.best_score(), self.rate, status)


def _metrics(step: int, last: dict, best_cfid: float | None, best_score: float | None, rate: float,
             status: str) -> dict:
    """One Tune result: the last evaluation's cFID and ranking figure (`score`, what ASHA compares), the best of
    each so far. Tune wants the metric in every result, so a missing value is NaN (ASHA ignores NaN)."""
    def number(value: float | None) -> float:
        return float("nan") if value is None else value

    return {"step": step, "cfid": number(last.get("cfid")), "best_cfid": number(best_cfid),
            SCORE: number(last.get(SCORE)), "best_score": number(best_score), "images_per_sec": rate,
            "status": status}
