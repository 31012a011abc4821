"""What a pushed repo offers beyond mnist-gan: the run's TensorBoard files for the Hub's "Training metrics" tab, a
Keras layout that loads with the same pixels on every Keras backend, and an ONNX file that draws them under
onnxruntime (each through the card's own snippet)."""

import hashlib
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from huggingface_hub import HfApi

from mnist_gan.config import GANConfig
from mnist_gan.hub import push_pull
from mnist_gan.hub.model_card import keras_snippet, onnx_snippet
from mnist_gan.model import architectures
from mnist_gan.model.generator import Generator, save_models, shipped_models
from mnist_gan.training.events import Step
from mnist_gan.training.tensorboard import TensorBoardLog
from testing.hub_server import local_hub

ALICE = "hf_aliceWrite4Jq8sT2vX9mN0pL6zQ"
CONFIG = GANConfig(architecture="dcgan", latent_dim=8, seed=1)


@pytest.fixture
def server(monkeypatch):
    with local_hub(monkeypatch, {ALICE: ("alice", True)}) as running:
        yield running


def _run(folder, steps=(10, 20)):
    """A weights folder that is also a run folder: it holds TensorBoard event files."""
    generator, _ = architectures.build(CONFIG)
    save_models(folder, CONFIG, generator, {"steps": steps[-1]})
    log = TensorBoardLog(folder, CONFIG)
    for step in steps:
        log(Step(step, 0.5, 0.5, 1.0, 0.9, 0.8, 0.5, 1000.0))
    log.close()
    return folder


def _files(server, repo_id):
    return set(HfApi(endpoint=server.url, token=False).list_repo_files(repo_id))


def test_a_run_pushes_its_tensorboard_files_and_a_pull_skips_them(server, tmp_path):
    run = _run(tmp_path / "20261129-120000-dcgan")
    push_pull.push(run, "alice/run", ALICE, endpoint=server.url)
    events = {name for name in _files(server, "alice/run") if name.startswith("runs/")}
    [name] = events
    assert name.startswith("runs/20261129-120000-dcgan/events.out.tfevents.")
    assert server.file("alice/run", name) == next(run.glob("events.out.tfevents.*")).read_bytes()
    manifest = json.loads(server.file("alice/run", "mnist_gan.json"))["sha256"]
    assert manifest[name] == hashlib.sha256(server.file("alice/run", name)).hexdigest()
    card = server.file("alice/run", "README.md").decode()
    assert "## Training metrics" in card and "`runs/20261129-120000-dcgan/`" in card and f"| `{name}` |" in card

    server.requests.clear()
    pulled = push_pull.pull("alice/run", endpoint=server.url, cache_dir=tmp_path / "cache")
    assert not any("/runs/" in path for _, path in server.requests)  # a pull needs none of them
    assert not (pulled.folder / "runs").exists()

    best = _run(tmp_path / "other-run", steps=(10,))  # a run's best/ takes its run's files along
    generator, _ = architectures.build(CONFIG)
    save_models(best / "best", CONFIG, generator, {"steps": 10})
    push_pull.push(best / "best", "alice/run", ALICE, endpoint=server.url)
    assert {n for n in _files(server, "alice/run") if n.startswith("runs/")} == {
        f"runs/other-run/{p.name}" for p in best.glob("events.out.tfevents.*")}  # the earlier run's are gone

    push_pull.push(shipped_models()["classic"], "alice/run", ALICE, endpoint=server.url)  # no run: no metrics tab
    assert not any(n.startswith("runs/") for n in _files(server, "alice/run"))
    assert "Training metrics" not in server.file("alice/run", "README.md").decode()


BACKENDS = ["jax", "torch"]
RUN = """import json, sys
import numpy as np
for job in json.loads(sys.argv[1]):
    scope = {}
    exec(job["code"], scope)  # the card's snippet, as a person pastes it
    np.save(job["out"], np.asarray(scope["images"]))
"""
LOAD = RUN + """import keras
print("backend", keras.backend.backend())
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_shipped_model_draws_the_same_pixels_on_another_backend(server, tmp_path, backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (requirements-dev.txt installs jax; see README for torch)")
    jobs, expected = [], {}
    for name, folder in shipped_models().items():  # classic, mlp-cond, mlp-uncond
        push_pull.push(folder, f"alice/{name}", ALICE, endpoint=server.url)
        generator = Generator.load(folder)
        snippet = keras_snippet(f"alice/{name}", generator.config, backend)
        assert snippet in server.file(f"alice/{name}", "README.md").decode()
        jobs.append({"code": snippet, "out": str(tmp_path / f"{name}.npy")})
        z = np.random.default_rng(0).standard_normal((16, generator.config.latent_dim)).astype("float32")
        labels = np.arange(16) % 10 if generator.config.conditional else None  # a code model's code comes from z
        expected[name] = generator.images(z, labels)  # TensorFlow, in this process
    env = {**os.environ, "KERAS_BACKEND": backend, "HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_DISABLE_TELEMETRY": "1"}  # Keras' hf:// uses huggingface_hub's import-time endpoint
    env.pop("HF_TOKEN", None)
    out = subprocess.run([sys.executable, "-c", LOAD, json.dumps(jobs)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"backend {backend}" in out.stdout
    for name, want in expected.items():
        got = np.load(tmp_path / f"{name}.npy")
        assert got.shape == (16, 28, 28, 1)
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0, err_msg=name)


@pytest.mark.slow
def test_every_shipped_models_onnx_snippet_draws_the_keras_pixels(server, tmp_path):
    """The card's onnxruntime snippet, pasted into a fresh process, on each shipped model pushed."""
    jobs, expected = [], {}
    for name, folder in shipped_models().items():
        push_pull.push(folder, f"alice/{name}", ALICE, endpoint=server.url)
        generator = Generator.load(folder)
        snippet = onnx_snippet(f"alice/{name}", generator.config)
        assert snippet in server.file(f"alice/{name}", "README.md").decode()
        assert len(snippet.strip().splitlines()) <= 7  # three imports, then the file, the latents, the images
        jobs.append({"code": snippet, "out": str(tmp_path / f"{name}.npy")})
        z = np.random.default_rng(0).standard_normal((16, generator.config.latent_dim)).astype("float32")
        expected[name] = generator.images(z, np.arange(16) % 10 if generator.config.conditional else None)
    env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_TOKEN", None)
    out = subprocess.run([sys.executable, "-c", RUN, json.dumps(jobs)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    for name, want in expected.items():
        got = np.load(tmp_path / f"{name}.npy")
        assert got.shape == (16, 28, 28, 1)
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0, err_msg=name)
