"""Sweeps on Ray Tune, as a user runs them: the CLI as a process, Ray on 127.0.0.1 only, the bundled sample data.

Ray is bounded here: each sweep process is waited for with a timeout, a killed driver's leftover processes and the
`ray start --head` cluster are ended by pid (never `ray stop`, which would end every Ray on the machine).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from mnist_gan import cli as cli_module
from mnist_gan.run_folder import STARTS_FILE, TRIAL_FILE, tensorboard_files
from mnist_gan.sweeps import tune_runner
from mnist_gan.sweeps.spec import (
    RESULTS_FILE,
    RESULTS_TABLE,
    RUNS_DIR,
    STOPPED_EARLY,
    SweepError,
    best_of,
    parse_spec,
    results_table,
    sweep_models,
)
from mnist_gan.training.checkpoint import CHECKPOINT_FILE, load_meta
from testing.models import TINY
from testing.system import cli, cli_process, descendants, free_port, wait_until

pytestmark = pytest.mark.skipif(not tune_runner.ray_available(), reason="Ray Tune is not installed")
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}  # see tune_runner.LOOPBACK_ONLY
SMALL = {"batch_size": 32, "steps": 200, "eval_every": 100, "sample_every": 50, "checkpoint_every": 50}
ROW_KEYS = {"trial", "config", "seed", "status", "steps", "cfid", "best"}


def _spec(tmp_path: Path, **spec) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"base": SMALL, **spec}))
    return path


def _starts(out: Path, trial: str) -> list[dict]:
    path = out / RUNS_DIR / trial / STARTS_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _status(out: Path, trial: str) -> str | None:
    path = out / RUNS_DIR / trial / TRIAL_FILE
    return json.loads(path.read_text())["status"] if path.is_file() else None


def _end(pids: list[int], timeout: float = 30) -> None:
    """SIGTERM these processes, then SIGKILL whichever is still there after `timeout` s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            wait_until(lambda: not [p for p in pids if _alive(p)], timeout, "processes to end")
            return
        except TimeoutError:
            continue


def _tensorboard(run_dir: Path) -> dict[str, list[int]]:
    """Tag -> steps in a run folder's TensorBoard event files, read with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {tag: sorted(e.step for e in accumulator.Tensors(tag)) for tag in accumulator.Tags()["tensors"]}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


# --- the spec: refused before anything starts -------------------------------------------------------------------

@pytest.mark.parametrize("spec, message", [
    ({"base": SMALL, "grid": {"lr_x": [1e-4]}}, "grid.lr_x: is not a GANConfig field"),
    ({"base": {**SMALL, "bogus": 1}}, "base.bogus: is not a GANConfig field"),
    ({"base": SMALL, "grid": {"lr_d": [2e-4, 2.0]}}, "grid.lr_d: must be a learning rate in (0, 1], got 2.0"),
    ({"base": SMALL, "grid": {"loss": ["hinge", "wgan"]}}, "grid.loss: unknown 'wgan'"),
    ({"base": SMALL, "grid": {"lr_d": []}}, "grid.lr_d: must be a non-empty list"),
    ({"base": SMALL, "seeds": [0, -1]}, "seeds: must be between 0 and"),
    ({"base": SMALL, "seeds": "0"}, "seeds: must be a non-empty list"),
    ({"base": SMALL, "sample": {"lr_g": {"loguniform": [0, 1e-3]}}, "num_samples": 2}, "sample.lr_g: loguniform"),
    ({"base": SMALL, "sample": {"lr_g": {"normal": [0, 1]}}, "num_samples": 2}, "sample.lr_g: must be one of"),
    ({"base": SMALL, "sample": {"lr_g": {"uniform": [0.5, 2.0]}}, "num_samples": 40, "sample_seed": 1},
     "sample.lr_g: must be a learning rate"),
    ({"base": SMALL, "sample": {"lr_g": {"uniform": [1e-4, 1e-3]}}}, "num_samples: random search"),
    ({"base": {**SMALL, "eval_every": 0}}, "base.eval_every: a sweep ranks trials by their evaluations"),
    ({"base": SMALL, "early_stopping": {"grace_period": 0}}, "early_stopping.grace_period: must be a positive"),
    ({"base": SMALL, "early_stopping": {"grace_period": 50, "eta": 3}}, "early_stopping.eta: unknown"),
    ({"base": SMALL, "grdi": {}}, "grdi: unknown spec key"),
    ({"base": SMALL, "rank_by": "fid"}, "rank_by: must be one of cfid, cfid_x_real, recall"),
])
def test_a_bad_spec_is_refused_naming_the_field(spec, message):
    with pytest.raises(SweepError) as error:
        parse_spec(spec)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_spec_expands_into_checked_trials_with_the_same_draws_every_time():
    raw = {"base": SMALL, "grid": {"loss": ["bce", "hinge"]}, "seeds": [0, 1, 2],
           "sample": {"lr_g": {"loguniform": [1e-4, 1e-3]}, "ema_decay": {"choice": [0.0, 0.999]}}, "num_samples": 2,
           "early_stopping": {"grace_period": 50, "reduction_factor": 3}}
    spec = parse_spec(raw)
    assert len(spec.trials) == 2 * 2 * 3 and len({t.name for t in spec.trials}) == 12
    assert [t.config for t in spec.trials] == [t.config for t in parse_spec(raw).trials]  # a resume's same trials
    assert all(1e-4 <= t.config.lr_g <= 1e-3 and t.config.steps == 200 for t in spec.trials)
    assert {t.config.seed for t in spec.trials} == {0, 1, 2} and spec.early_stopping.reduction_factor == 3
    assert spec.trials[0].name.startswith("t000-loss=bce-lr_g=") and spec.trials[0].name.endswith("-seed=0")


def test_the_cli_refuses_a_bad_spec_in_one_line_before_ray_starts(tmp_path):
    out = cli("sweep", _spec(tmp_path, grid={"lr_d": [2e-4, 7]}), "--out", tmp_path / "sweep", timeout=120)
    assert out.returncode == 2 and "error: grid.lr_d: must be a learning rate in (0, 1], got 7" in out.stderr
    assert [line for line in out.stderr.splitlines() if line.startswith("error:")] == \
        ["error: grid.lr_d: must be a learning rate in (0, 1], got 7"]
    assert "sweep:" not in out.stdout and not (tmp_path / "sweep").exists()  # nothing started, nothing written


def test_without_ray_the_sweep_command_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tune_runner, "ray_available", lambda: False)
    assert cli_module.main(["sweep", str(_spec(tmp_path)), "--out", str(tmp_path / "sweep")]) == 2
    assert capsys.readouterr().err == f"error: {tune_runner.INSTALL_HINT}\n"
    assert "pip install -r requirements-ray.txt" in tune_runner.INSTALL_HINT


def test_the_app_offers_each_ended_trials_best_weights_as_models(tmp_path):
    from mnist_gan.model.generator import shipped_models
    from mnist_gan.service import AppSettings, Service

    sweep = tmp_path / "lr"
    best = sweep / RUNS_DIR / "t000-seed=0" / "best"
    shutil.copytree(shipped_models()["classic"], best)
    rows = [{"trial": "t000-seed=0", "status": "finished", "best": "runs/t000-seed=0/best"},
            {"trial": "t001-seed=1", "status": "failed", "best": None},
            {"trial": "t002-seed=2", "status": "stopped early", "best": "runs/gone/best"}]
    (sweep / RESULTS_FILE).write_text(json.dumps({"trials": rows}))
    assert sweep_models(sweep, tmp_path / "no-sweep-here") == {"lr/t000-seed=0": best}
    settings = AppSettings.from_env({"MNIST_GAN_RUNS": str(tmp_path / "runs"), "MNIST_GAN_SWEEPS": f"{sweep}, "})
    assert settings.sweeps == (str(sweep),)
    service = Service(settings)
    assert "lr/t000-seed=0" in [m["name"] for m in service.library.catalog()]
    np.testing.assert_array_equal(service.drawing.generate("lr/t000-seed=0", 7, 4), service.drawing.generate("classic", 7, 4))


def test_a_trial_that_diverges_is_stopped_and_recorded_diverged_without_ray(tmp_path, monkeypatch):
    """The trial function's training part with a stand-in for tune.report: each cFID is reported once best/ holds
    its weights, the first divergence stops the run, and the run folder says so."""
    from mnist_gan.training import trainer as trainer_module

    monkeypatch.setattr(trainer_module.DivergenceWatch, "check",
                        lambda self, row: "a loss became NaN or infinite" if row["step"] >= 60 else None)
    trial = parse_spec({"base": {**SMALL, "eval_every": 50}}).trials[0]
    run_dir = tmp_path / RUNS_DIR / trial.name
    run_dir.mkdir(parents=True)
    reports = []
    params = {"trial": {"name": trial.name, "config": trial.config.to_dict()}, "out": str(tmp_path),
              "data": str(TINY), "device": "auto", "rank_by": "cfid"}
    tune_runner._train(params, run_dir, "CPU: test", lambda m: reports.append((m, (run_dir / "best").is_dir())))
    record = json.loads((run_dir / TRIAL_FILE).read_text())
    assert record["status"] == "diverged" and record["divergence"]["step"] == 60
    assert record["steps"] == 50 and record["cfid"] == reports[0][0]["cfid"]  # rolled back to its checkpoint
    assert [(m["step"], m["status"], best) for m, best in reports] == [(50, "running", True), (50, "diverged", True)]
    kinds = {json.loads(line)["event"] for line in (run_dir / "events.jsonl").read_text().splitlines()}
    assert {"state", "step", "samples", "quality", "checkpoint", "divergence"} <= kinds
    tags = _tensorboard(run_dir)  # a trial is a run: its TensorBoard files too, up to the divergence
    assert tags["quality/cfid"] == [50] and tags["samples"] == [50] and tags["incidents"] == [60]
    assert tags["loss/g"][-1] == 60 and tags["config"] == [0]


def test_a_sweep_ranked_by_another_figure_reports_it_to_tune_and_orders_its_results_by_it(tmp_path):
    """rank_by: the figure ASHA compares is each evaluation's value of it, the trial records its best over the run's
    evaluations, and the results table and the best first put it first, whichever way is better. (200 steps on the
    sample data leave recall at 0: the trained trial ranks by cFID x real, the table by recall.)"""
    spec = parse_spec({"base": {**SMALL, "eval_every": 50}, "rank_by": "cfid_x_real"})
    assert spec.mode == "min" and parse_spec({"base": SMALL, "rank_by": "recall"}).mode == "max"
    trial = spec.trials[0]
    run_dir = tmp_path / RUNS_DIR / trial.name
    run_dir.mkdir(parents=True)
    reports = []
    params = {"trial": {"name": trial.name, "config": trial.config.to_dict()}, "out": str(tmp_path),
              "data": str(TINY), "device": "auto", "rank_by": "cfid_x_real"}
    tune_runner._train(params, run_dir, "CPU: test", reports.append)
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    figures = {e["step"]: e["metrics"]["cfid_x_real"] for e in events if e["event"] == "quality"}
    assert sorted(figures) == [50, 100, 150, 200] and len(set(figures.values())) == 4
    assert [(m["step"], m["score"]) for m in reports] == list(figures.items())
    assert [m["best_score"] for m in reports] == [min(list(figures.values())[:i + 1]) for i in range(4)]
    record = json.loads((run_dir / TRIAL_FILE).read_text())
    assert record["cfid_x_real"] == min(figures.values()) and record["cfid"] == reports[-1]["best_cfid"]
    assert best_of("recall", [0.5, None, float("nan"), 0.7]) == 0.7 and best_of("cfid", [2.0, 1.0]) == 1.0

    by_recall = parse_spec({"base": SMALL, "grid": {"lr_g": [2e-4, 1e-3]}, "rank_by": "recall"})
    rows = [{"trial": t.name, "seed": 0, "status": "finished", "steps": 200, "cfid": cfid, "recall": recall,
             "best": None} for t, cfid, recall in zip(by_recall.trials, (1.0, 2.0), (0.5, 0.7), strict=True)]
    table = results_table(rows, by_recall)
    assert "recall: the best of each trial's evaluations (N = 2,000 samples; higher is better)" in table
    groups = [line.split(" | ")[:3] for line in table.splitlines() if line.startswith("| lr_g=")]
    assert groups == [["| lr_g=0.001", "1", "0.7"], ["| lr_g=0.0002", "1", "0.5"]]
    lines = table.splitlines()
    for header, rule in ((lines[4], lines[5]), (lines[-4], lines[-3])):  # each table's rule has its header's columns
        assert header.count("|") == rule.count("|"), (header, rule)
    trials = [line.split(" | ") for line in table.splitlines() if line.startswith("| t00")]
    assert [(t[0], t[4], t[5]) for t in trials] == [(f"| {by_recall.trials[1].name}", "0.7", "2"),
                                                   (f"| {by_recall.trials[0].name}", "0.5", "1")]


# --- sweeps under Ray -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_sweep_runs_writes_its_results_and_resumes_after_its_driver_is_killed(tmp_path):
    """4 trials (2 learning rates x 2 seeds), 2 at a time; SIGKILL the driver once two trials have finished and
    another has checkpointed mid-run; run it again: nothing finished is rerun, the rest continue from their
    checkpoints."""
    spec, out = _spec(tmp_path, grid={"lr_d": [2e-4, 4e-4]}, seeds=[0, 1]), tmp_path / "sweep"
    names = [t.name for t in parse_spec(json.loads(spec.read_text())).trials]
    with open(tmp_path / "first.log", "w") as log:
        driver = cli_process("sweep", spec, "--out", out, "--data", TINY, "--max-concurrent", 2, stdout=log,
                             stderr=subprocess.STDOUT, env={**os.environ, **LOOPBACK})
        try:
            def mid_sweep():  # the first pair finished, one of the second checkpointed with 100+ steps to go
                finished = [n for n in names if _status(out, n) == "finished"]
                partial = [n for n in names[2:] if (out / RUNS_DIR / n / CHECKPOINT_FILE).is_file()]
                return len(finished) >= 2 and partial
            wait_until(mid_sweep, 600, "two finished trials and one checkpointed mid-run", every=0.25,
                       describe=lambda: (tmp_path / "first.log").read_text()[-2000:])
        finally:
            leftovers = descendants(driver.pid)  # Ray's processes: most die with the driver, agents may linger
            driver.send_signal(signal.SIGKILL)
            driver.wait(timeout=30)
            _end(leftovers)
    finished = [n for n in names if _status(out, n) == "finished"]
    partial = {n: load_meta(out / RUNS_DIR / n / CHECKPOINT_FILE).step for n in names
               if _status(out, n) is None and (out / RUNS_DIR / n / CHECKPOINT_FILE).is_file()}
    assert finished and partial and all(step > 0 for step in partial.values())
    kept = {n: (out / RUNS_DIR / n / CHECKPOINT_FILE).stat().st_mtime_ns for n in finished}

    again = cli("sweep", spec, "--out", out, "--data", TINY, "--max-concurrent", 2, timeout=600,
                env={**os.environ, **LOOPBACK})
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming the sweep" in again.stdout and "Ray dashboard:" in again.stdout
    for name in finished:  # not rerun: one start, the checkpoint untouched
        assert len(_starts(out, name)) == 1, name
        assert (out / RUNS_DIR / name / CHECKPOINT_FILE).stat().st_mtime_ns == kept[name], name
    for name, step in partial.items():  # continued from its checkpoint, not from step 0
        starts = _starts(out, name)
        assert [s["step"] for s in starts] == [0, step], name

    rows = json.loads((out / RESULTS_FILE).read_text())["trials"]
    assert [r["trial"] for r in rows] == names and all(ROW_KEYS <= set(r) for r in rows)
    for row in rows:
        assert row["status"] == "finished" and row["steps"] == 200 and row["cfid"] > 0, row
        assert row["config"]["lr_d"] in (2e-4, 4e-4) and row["config"]["seed"] == row["seed"]
        assert (out / row["best"] / "generator.weights.h5").is_file()
        record = json.loads((out / RUNS_DIR / row["trial"] / "training.json").read_text())
        assert record["device"].startswith(("CPU", "GPU")) and record["steps"] == 200
        tags = _tensorboard(out / RUNS_DIR / row["trial"])  # every trial's TensorBoard files, across its starts
        # a trial resumed from a checkpoint before its last grid draws that grid again: TensorBoard shows the later
        assert tags["loss/g"][-1] == 200 and sorted(set(tags["samples"])) == [50, 100, 150, 200], row["trial"]
        assert tags["quality/cfid"] == [100, 200], row["trial"]
    for name in partial:  # a resumed trial: a file per start
        assert len(tensorboard_files(out / RUNS_DIR / name)) == 2, name
    table = (out / RESULTS_TABLE).read_text()
    assert "| lr_d=0.0002 | 2 |" in table and "| lr_d=0.0004 | 2 |" in table and "2 finished" in table
    assert len(sweep_models(out)) == 4  # every trial's best weights, as the app finds them


@pytest.mark.slow
def test_asha_stops_a_bad_trial_on_a_ray_cluster_given_by_address(tmp_path):
    """`ray start --head` on 127.0.0.1, the sweep sent there with --address; the bad learning rate's trials, run
    after the good ones, are stopped by ASHA at a rung; the cluster is ended after the test, even on failure."""
    port, temp = free_port(), tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Ray's socket paths must stay short
    env = {**os.environ, **LOOPBACK}
    ray = [sys.executable, "-m", "ray.scripts.scripts"]  # the `ray` command, wherever pip put its script
    with open(tmp_path / "cluster.log", "w") as log:
        cluster = subprocess.Popen([*ray, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                                    "--port", str(port), "--num-cpus", "2", "--include-dashboard=false",
                                    "--disable-usage-stats", "--temp-dir", temp], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "Ray runtime started" in (tmp_path / "cluster.log").read_text(), 180,
                   "ray start --head", describe=lambda: (tmp_path / "cluster.log").read_text()[-2000:])
        # lr_g 1e-6: G barely moves (cFID ~683 at step 100 against ~660 or better; lr_d 0.5 is no worse than
        # 2e-4 this early, measured), queued after the good ones, so its trials reach the rung at step 100 last
        spec = _spec(tmp_path, grid={"lr_g": [1e-3, 1e-6]}, seeds=[0, 1],
                     early_stopping={"grace_period": 100, "reduction_factor": 2})
        out = tmp_path / "sweep"
        result = cli("sweep", spec, "--out", out, "--data", TINY, "--address", f"127.0.0.1:{port}",
                     "--max-concurrent", 2, timeout=600, env=env)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert f"the Ray cluster at 127.0.0.1:{port}" in result.stdout
        rows = {r["trial"]: r for r in json.loads((out / RESULTS_FILE).read_text())["trials"]}
        bad = [r for r in rows.values() if r["config"]["lr_g"] == 1e-6]
        good = [r for r in rows.values() if r["config"]["lr_g"] == 1e-3]
        assert all(r["status"] == "stopped early" and r["steps"] < 200 for r in bad), bad
        for row in bad:  # the evaluation that stopped it is in its TensorBoard files, though Ray ended its process
            assert _tensorboard(out / RUNS_DIR / row["trial"])["quality/cfid"] == [100], row["trial"]
        assert any(r["status"] == "finished" for r in good), good
        assert "stopped early" in (out / RESULTS_TABLE).read_text()
    finally:
        pids = [cluster.pid, *descendants(cluster.pid)]
        cluster.send_signal(signal.SIGTERM)  # --block: ray start ends what it started
        try:
            cluster.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        _end(pids)
        shutil.rmtree(temp, ignore_errors=True)


def test_the_live_table_shows_each_trial_and_what_tune_alone_knows(tmp_path):
    from types import SimpleNamespace

    from mnist_gan.sweeps.progress import progress_table

    def trial(name: str, status: str, result: dict | None):
        return SimpleNamespace(status=status, last_result=result,
                               config={"trial": {"name": name, "config": {"steps": 400}}})

    (tmp_path / RUNS_DIR / "t001").mkdir(parents=True)
    (tmp_path / RUNS_DIR / "t001" / TRIAL_FILE).write_text(json.dumps({"status": STOPPED_EARLY}))
    table = progress_table(tmp_path, [trial("t000", "RUNNING", {"step": 200, "cfid": 1.234, "best_cfid": 1.0,
                                                               "images_per_sec": 1500.0}),
                                      trial("t001", "TERMINATED", {"step": 100, "cfid": float("nan")}),
                                      trial("t002", "PENDING", None)], elapsed=75)
    first, *rows = table.splitlines()
    assert first == "[sweep 1:15] 1 pending, 1 running, 1 stopped early"
    assert rows[0].split() == ["t000", "running", "200/400", "cFID", "1.23", "(best", "1)", "1,500", "img/s"]
    assert rows[1].split() == ["t001", "stopped", "early", "100/400", "cFID", "-", "(best", "-)", "0", "img/s"]
    assert rows[2].split()[:3] == ["t002", "pending", "0/400"]
    by_recall = progress_table(tmp_path, [trial("t000", "RUNNING", {"step": 200, "cfid": 1.234, "best_cfid": 1.0,
                                                                   "score": 0.7, "best_score": 0.75,
                                                                   "images_per_sec": 1500.0})], 75, "recall")
    assert by_recall.splitlines()[1].split() == ["t000", "running", "200/400", "cFID", "1.23", "(best", "1)",
                                                 "recall", "0.7", "(best", "0.75)", "1,500", "img/s"]
