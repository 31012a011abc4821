"""A public Space against a hostile visitor: each finding of the security review, with the protection that closes
it. The service runs without a server here (tests/test_app_security.py drives the app itself); the Hub is the local
Hub-compatible server, driven by the real huggingface_hub client."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading

import h5py
import numpy as np
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from mnist_gan.access import ANONYMOUS, Visitor
from mnist_gan.config import GANConfig
from mnist_gan.errors import AccessDenied, Busy, HubError
from mnist_gan.hub import push_pull
from mnist_gan.inside.directions import DIRECTIONS_FILE
from mnist_gan.model.generator import shipped_models
from mnist_gan.service import AppSettings, Service
from mnist_gan.serving import drawing, served_files
from mnist_gan.serving.library import Library
from mnist_gan.training.process import TrainingWorker, find_resumable, prune_runs
from mnist_gan.training.trainer import Trainer
from testing.hub_server import local_hub
from testing.system import ROOT, folder_mib, rss_mb

OWNER = "hf_ownerSpaceToken5Jq8sT2vX9mN0pL6"  # the Space's HF_TOKEN secret (alice's)
VISITOR = "hf_visitorToken7Rk3wQ5zB1cD8eF2gHjK"  # a visitor's own token (mallory's)
TOKENS = {OWNER: ("alice", True), VISITOR: ("mallory", True)}


@pytest.fixture
def server(monkeypatch):
    with local_hub(monkeypatch, TOKENS, clear=("HF_TOKEN", "SPACE_ID", "SYSTEM", "MNIST_GAN_ADMINS")) as running:
        monkeypatch.setenv("HF_ENDPOINT", running.url)
        yield running


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """The files of a valid pushed repo (the shipped classic model, with its discriminator), by name."""
    folder = tmp_path_factory.mktemp("staged")
    push_pull._stage(shipped_models()["classic"], folder, "alice/classic")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def publish(server, repo_id: str, files: dict[str, bytes], private: bool = False) -> str:
    """Commit `files` to `repo_id` with a manifest recomputed over them (an attacker writes the manifest too)."""
    files = dict(files)
    manifest = json.loads(files["mnist_gan.json"])
    manifest["sha256"] = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()
                          if name not in ("mnist_gan.json", "README.md")}
    files["mnist_gan.json"] = json.dumps(manifest).encode()
    api = HfApi(endpoint=server.url, token=VISITOR if repo_id.startswith("mallory/") else OWNER)
    if repo_id not in server.repos:
        api.create_repo(repo_id, private=private)
    return api.create_commit(repo_id, [CommitOperationAdd(name, data) for name, data in files.items()],
                             commit_message="by hand").oid


def space(tmp_path, monkeypatch, admins: str | None = None, **settings) -> Service:
    """A service as a public Space runs it (SPACE_ID set), with the owner's token in $HF_TOKEN."""
    monkeypatch.setenv("SPACE_ID", "alice/mnist-gan")
    monkeypatch.setenv("HF_TOKEN", OWNER)
    if admins is not None:
        monkeypatch.setenv("MNIST_GAN_ADMINS", admins)
    return Service(AppSettings.from_env({"SPACE_ID": "alice/mnist-gan", "MNIST_GAN_RUNS": str(tmp_path / "runs"),
                                      "MNIST_GAN_HUB_CACHE": str(tmp_path / "hub-cache"), **settings}))


# --- High 1: a weights bomb -------------------------------------------------------------------------------------------

def test_a_weights_bomb_repo_is_refused_without_taking_memory(server, staged, tmp_path):
    """The shipped weights with one dataset replaced by a 1 GiB fill-value dataset (6 MB on disk), the manifest
    recomputed: refused from the file's metadata. Pulled in a fresh process, whose peak memory is the measure
    (Keras alone would read the declared gibibyte: ~4 GB, measured)."""
    bomb = tmp_path / "generator.weights.h5"
    bomb.write_bytes(staged["generator.weights.h5"])
    with h5py.File(bomb, "a") as f:
        del f["layers/dense_2/vars/0"]
        f.create_dataset("layers/dense_2/vars/0", shape=(2**28,), dtype="float32", chunks=(2**20,),
                         compression="gzip", fillvalue=0.5)
    assert bomb.stat().st_size < 10 * 2**20
    # without the ONNX files, which would be refused first as not exported from these weights: the attacker's
    # best case is a repo whose only fault is the bomb
    files = {name: data for name, data in staged.items() if not name.startswith("generator.onnx")}
    publish(server, "mallory/bomb", {**files, "generator.weights.h5": bomb.read_bytes()})
    code = f"""
import json, resource, sys
sys.path.insert(0, {str(ROOT)!r})
import keras
from mnist_gan.hub import push_pull
from mnist_gan.errors import HubError
keras.ops.ones(1)  # TensorFlow's own start-up memory is not the bomb's
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    push_pull.pull("mallory/bomb", cache_dir={str(tmp_path / "cache")!r})
    outcome = "loaded"
except HubError as e:
    outcome = str(e)
print(json.dumps({{"growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024,
                  "outcome": outcome}}))
"""
    env = {"PATH": os.environ["PATH"], "HF_ENDPOINT": server.url, "HF_HUB_DISABLE_XET": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "is refused" in result["outcome"] and "layers/dense_2/vars/0" in result["outcome"], result
    assert result["growth_mb"] < 100, result


def test_sizes_are_checked_before_anything_is_downloaded(server, staged, tmp_path):
    publish(server, "mallory/big", {**staged, "samples.png": b"\0" * (5 * 2**20)})
    server.requests.clear()
    with pytest.raises(HubError, match=r"is refused: its samples.png is 5,242,880 bytes, more than the 4,194,304"):
        push_pull.pull("mallory/big", cache_dir=tmp_path)
    assert not any("/resolve/" in path and path.endswith("samples.png") for _, path in server.requests)


# --- High 2 and Medium 3: a visitor never spends the owner's token; a Space without admins is closed ---------------

def test_a_space_without_admins_is_closed_to_every_change(server, staged, tmp_path, monkeypatch):
    service = space(tmp_path, monkeypatch)  # SPACE_ID set, MNIST_GAN_ADMINS unset
    publish(server, "alice/public", staged)
    server.requests.clear()
    for action in (lambda: service.training.start(ANONYMOUS, data="sample"), service.training.stop,
                   lambda: service.hub.push(ANONYMOUS, "classic", "alice/new", ""),
                   lambda: service.hub.pull(ANONYMOUS, "alice/public"),
                   lambda: service.hub.pull(Visitor("alice"), "alice/public")):  # even the owner, until named
        with pytest.raises(AccessDenied, match="closed on this Space: it has no admins.*MNIST_GAN_ADMINS"):
            action()
    assert server.requests == [] and service.training.status().run is None
    monkeypatch.setenv("MNIST_GAN_ADMINS", "  ")  # whitespace names nobody: still closed
    with pytest.raises(AccessDenied, match="closed on this Space"):
        service.hub.pull(ANONYMOUS, "alice/public")
    assert service.drawing.generate("classic", 1, 4).dtype == np.uint8  # what visitors are meant to do stays open


def test_a_visitors_pull_never_spends_the_spaces_token(server, staged, tmp_path, monkeypatch):
    publish(server, "alice/private", staged, private=True)
    service = space(tmp_path, monkeypatch, admins="alice")
    server.requests.clear()
    server.authorizations.clear()
    with pytest.raises(AccessDenied, match="reserved to this Space's owners"):
        service.hub.pull(ANONYMOUS, "alice/private")  # refused before any request
    assert server.requests == []
    # alice, signed in, but without a token of her own in the field or her login: $HF_TOKEN is not hers to spend
    with pytest.raises(HubError, match="repo alice/private not found .* a private repo also needs a token"):
        service.hub.pull(Visitor("alice"), "alice/private")
    assert server.authorizations and not any(server.authorizations)  # every request went anonymous
    assert "alice/private" not in " ".join(m["name"] for m in service.library.catalog())
    assert service.hub.pull(Visitor("alice", OWNER), "alice/private")["repo_id"] == "alice/private"  # her own login
    assert push_pull.resolve_token() == OWNER  # the owner's own start-up setting still uses it


# --- Medium 4: bounded growth -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_fifty_pulls_keep_memory_models_and_the_cache_bounded(server, staged, tmp_path):
    """Without the bound every pulled model stayed loaded and cached: ~12 MB of memory per pull (measured)."""
    service = Service(AppSettings(runs_dir=tmp_path / "runs", hub_cache=str(tmp_path / "hub-cache"), max_models=3))
    shipped = set(service.library.names())
    # 50 commits, each with a file of its own (its training record); published first, so only pulls are measured
    shas = [publish(server, "alice/many", {**staged, "training.json": json.dumps({"steps": i}).encode()})
            for i in range(50)]
    rss = []
    for i, sha in enumerate(shas):
        service.hub.pull(ANONYMOUS, "alice/many", sha)
        service.drawing.generate(f"alice/many@{sha[:7]}", i, 4)  # each one used
        rss.append(rss_mb(os.getpid())[0])
    names = set(service.library.names())
    assert len(names - shipped) == 3 and f"alice/many@{shas[-1][:7]}" in names
    snapshots = list((tmp_path / "hub-cache").rglob("snapshots/*"))
    assert len(snapshots) == 3  # the pushed-out ones left the Hub cache, blobs and all
    stored = sum(p.lstat().st_size for p in (tmp_path / "hub-cache").rglob("*") if p.is_file() and not p.is_symlink())
    assert stored < 3 * 9 * 2**20  # at most three models' files (~8.5 MB each: weights of G and D)
    assert rss[-1] - rss[9] < 150, [round(r) for r in rss]  # after the first ten: 40 pulls, not 40 models more


def test_runs_beyond_the_count_are_pruned_but_never_the_newest_resumable(tmp_path, tiny_data):
    runs = tmp_path / "runs"
    for i in range(5):
        Trainer(GANConfig(batch_size=8, steps=100, checkpoint_every=10, sample_every=10), tiny_data,
                runs / f"run-{i}").save()  # five unfinished runs, each with a checkpoint
        for path in (runs / f"run-{i}" / "checkpoint.npz", runs / f"run-{i}"):
            os.utime(path, (1000 + i, 1000 + i))
    os.utime(runs / "run-0" / "checkpoint.npz", (5000, 5000))  # run-0's checkpoint is the newest resumable
    assert [r["run"] for r in find_resumable(runs)][0] == "run-0"
    removed = prune_runs(runs, keep={"run-0"}, max_runs=3, max_bytes=2**40)
    assert removed == ["run-1", "run-2", "run-3"] and sorted(p.name for p in runs.iterdir()) == ["run-0", "run-4"]
    size = folder_mib(runs / "run-4") * 2**20
    assert prune_runs(runs, keep={"run-0"}, max_runs=10, max_bytes=int(size * 1.5)) == ["run-4"]  # the disk budget


@pytest.mark.slow
def test_every_unfinished_run_is_offered_and_any_can_be_resumed(tmp_path, tiny_data):
    runs = tmp_path / "runs"
    for i, steps in enumerate((100, 100, 10)):
        trainer = Trainer(GANConfig(batch_size=8, steps=steps, checkpoint_every=10, sample_every=10), tiny_data,
                          runs / f"run-{i}")
        trainer.step = 10
        trainer.save()  # run-2 has reached its last step: finished, so not offered
        os.utime(runs / f"run-{i}" / "checkpoint.npz", (1000 + i, 1000 + i))
    assert [(r["run"], r["step"]) for r in find_resumable(runs)] == [("run-1", 10), ("run-0", 10)]
    worker = TrainingWorker(runs)
    try:
        assert [r["run"] for r in worker.status().resumable_runs] == ["run-1", "run-0"]
        with pytest.raises(Busy, match="no unfinished run called 'run-2'; these can be resumed: run-1, run-0"):
            worker.resume_run("run-2")
        status = worker.resume_run("run-0")  # the older one, by name
        assert status.run == "run-0" and status.step == 10
    finally:
        worker.close()


# --- Medium 5: crafted repos --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, content, message", [
    ("training.json", b"[1, 2, 3]", "its training.json cannot be used \\(it does not hold a JSON object\\)"),
    ("config.json", b"[" * 100_000 + b"]" * 100_000, "its config.json cannot be used \\(it is nested more than 32"),
    ("gan_config.json", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "gan_config.json cannot be used"),
    ("metrics.json", b'{"x": "' + b"a" * 2_000_000 + b'"}', "is refused: its metrics.json is 2,000,009 bytes"),
    ("gan_config.json", json.dumps({**GANConfig().to_dict(), "latent_dim": 10**9}).encode(), "latent_dim: must be"),
])
def test_crafted_json_is_refused_and_the_app_keeps_answering(server, staged, tmp_path, name, content, message):
    service = Service(AppSettings(runs_dir=tmp_path / "runs", hub_cache=str(tmp_path / "hub-cache")))
    publish(server, "mallory/crafted", {**staged, name: content})
    with pytest.raises(HubError, match=message) as error:
        service.hub.pull(ANONYMOUS, "mallory/crafted")
    assert str(tmp_path) not in str(error.value) and len(str(error.value)) < 400  # no server path, short
    assert "mallory" not in " ".join(m["name"] for m in service.library.catalog())
    assert [m["name"] for m in service.library.catalog()][0] == "mlp-uncond"  # /models answers as before

    # the same repo as the start-up model: the app starts on the shipped one, with a notice
    service = Service(AppSettings(runs_dir=tmp_path / "runs", hub_cache=str(tmp_path / "hub-cache"),
                               startup_repo="mallory/crafted"))
    service.start()
    assert service.notice.startswith("Could not load mallory/crafted@main from the Hub")
    assert service.library.default == "mlp-uncond" and service.library.catalog()[0]["name"] == "mlp-uncond"


def test_any_failure_inside_a_pull_is_a_plain_hub_error(server, staged, tmp_path, monkeypatch):
    publish(server, "alice/fine", staged)

    def broken(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(push_pull, "_check_model", broken)
    with pytest.raises(HubError, match=r"alice/fine@'main' could not be read \(RecursionError\); nothing of it"):
        push_pull.pull("alice/fine", cache_dir=tmp_path)


# --- Medium 6: one slow computation per model, one at a time ------------------------------------------------------

def test_concurrent_first_calls_for_a_models_directions_compute_once(tmp_path, monkeypatch):
    folders = {}
    for name in ("classic", "mlp-cond"):  # copies without the directions the shipped folders carry: found here
        folders[name] = tmp_path / name
        shutil.copytree(shipped_models()[name], folders[name], ignore=shutil.ignore_patterns(DIRECTIONS_FILE))
    service = Service(AppSettings(runs_dir=tmp_path / "runs"), Library(folders))
    calls, running, most = [], [0], [0]
    lock = threading.Lock()
    real = drawing.find_directions

    def counted(generator, **kwargs):
        with lock:
            calls.append(generator.name)
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return real(generator, n=400, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(drawing, "find_directions", counted)
    threads = [threading.Thread(target=service.drawing.latent_directions, args=(model,))
               for model in ("classic", "mlp-cond") for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(calls) == ["classic", "mlp-cond"] and most[0] == 1  # once per model, one at a time
    assert len(service.drawing.latent_directions("classic")) == 16 and len(calls) == 2  # and then from memory


# --- Low 7: tokens never in a message -----------------------------------------------------------------------------

@pytest.mark.parametrize("route", ["info", "paths_info", "preupload"])
def test_a_hub_that_echoes_credentials_gets_none_into_a_message(server, staged, tmp_path, route):
    publish(server, "alice/echo", staged)
    server.echo = {route: 400}
    with pytest.raises(HubError) as error:
        if route == "preupload":
            push_pull.push(shipped_models()["classic"], "alice/echo", OWNER)
        else:
            push_pull.pull("alice/echo", token=OWNER, cache_dir=tmp_path)
    message = str(error.value)
    assert "the Hub answered 400" in message and "***" in message
    for needle in (OWNER, OWNER[3:], OWNER[-12:], OWNER.upper()[-12:], "%68%66%5F"):
        assert needle.lower() not in message.lower(), message


def test_a_token_in_the_repo_id_field_is_refused_before_any_request(server):
    server.requests.clear()
    for repo_id in (f"alice/{OWNER}", f"{OWNER}/model"):
        with pytest.raises(HubError, match="that looks like an access token, not a repo id"):
            push_pull.pull(repo_id)
    with pytest.raises(HubError, match="looks like an access token, not a revision"):
        push_pull.pull("alice/m", OWNER)
    assert server.requests == []
    assert push_pull.validate_repo_id("alice/hf_demo") == "alice/hf_demo"  # a name that merely starts so is fine


# --- Low 8: no server path reaches a visitor ----------------------------------------------------------------------

def test_models_and_status_show_no_server_path(tmp_path):
    service = Service(AppSettings(runs_dir=tmp_path / "runs"))
    text = json.dumps([service.library.catalog(), service.training.status().to_json()])
    assert str(tmp_path) not in text and str(ROOT) not in text and "folder" not in service.library.catalog()[0]


# --- Low 10: uploads cannot push out other visitors' results ------------------------------------------------------

def test_uploads_and_results_have_budgets_of_their_own(tmp_path):
    served, results = tmp_path / "gradio", tmp_path / "gradio" / "mnist-gan"
    results.mkdir(parents=True)
    for i in range(4):
        (results / f"r{i}.png").write_bytes(b"r" * 1000)
        os.utime(results / f"r{i}.png", (100 + i, 100 + i))  # the oldest files of all
    for i in range(20):
        (served / f"upload{i}").mkdir()
        (served / f"upload{i}" / "image.png").write_bytes(b"u" * 1000)
    removed = served_files.trim(served, 5000, skip=results, min_age_s=0)
    assert len(removed) == 15 and all(results not in path.parents for path in removed)
    assert len(list(results.iterdir())) == 4  # the results are untouched by the uploads' cap
    assert len(served_files.trim(results, 2000, min_age_s=0)) == 2  # and have a cap of their own
    shutil.rmtree(served)
