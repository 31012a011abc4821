"""The generators as ONNX: the shipped files are current, take exactly the Keras model's inputs, and draw the
Keras model's pixels under onnxruntime (within 1e-4); an export of any architecture does too."""

import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime
import pytest

from mnist_gan.config import GANConfig
from mnist_gan.images import latents, to_uint8
from mnist_gan.model import architectures
from mnist_gan.model.generator import Generator, save_models, shipped_models
from mnist_gan.model.onnx_export import ONNX_FILE, ONNX_INFO, current_info, export, feeds, input_specs, read_info

SHIPPED = list(shipped_models())
ORT_TYPES = {"float32": "tensor(float)", "int32": "tensor(int32)"}


def session(folder) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(folder / ONNX_FILE), providers=["CPUExecutionProvider"])


def keras_inputs(model) -> list[tuple[str, str, list]]:
    """(name, dtype, shape) of each input of the Keras model, in order."""
    return [(t.name, t.dtype, list(t.shape)) for t in model.inputs]


@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_onnx_file_is_current_and_takes_the_keras_models_inputs(name):
    folder = shipped_models()[name]
    info = current_info(folder)
    assert info is not None, f"weights/{name}/{ONNX_FILE} is missing or stale: python -m mnist_gan export"
    generator = Generator.load(folder)
    config = generator.config
    kinds = keras_inputs(generator.model)
    got = session(folder)
    assert [(i.name, i.type, i.shape[1:]) for i in got.get_inputs()] == \
        [(n, ORT_TYPES[dtype], shape[1:]) for n, dtype, shape in kinds]
    assert all(isinstance(i.shape[0], str) for i in got.get_inputs())  # any batch size
    assert [spec["name"] for spec in info["inputs"]] == [n for n, _, _ in kinds] == \
        ["z"] + (["label"] if config.conditional else ["code"] if config.latent_code else [])
    assert [(o.name, o.shape[1:]) for o in got.get_outputs()] == [("image", [28, 28, 1])]
    assert info["latent_dim"] == config.latent_dim and info["output"]["range"] == [-1.0, 1.0]
    assert info["bytes"] == (folder / ONNX_FILE).stat().st_size


@pytest.mark.parametrize("name", SHIPPED)
def test_onnxruntime_draws_the_keras_pixels(name):
    folder = shipped_models()[name]
    generator, got = Generator.load(folder), session(folder)
    config = generator.config
    for seed in range(3):
        z = latents(seed, 64, config.latent_dim, temperature=0.5 + seed / 2)
        labels = generator.labels_for(64)  # conditional: 0-9 in turn
        expected = generator.images(z, labels)
        images = got.run(None, feeds(config, z, labels))[0]
        assert images.shape == (64, 28, 28, 1)
        assert np.abs(images - expected).max() <= 1e-4
        assert np.abs(to_uint8(images).astype(int) - to_uint8(expected).astype(int)).max() <= 1
    one = got.run(None, feeds(config, z[:1], None if labels is None else labels[:1]))[0]
    np.testing.assert_array_equal(one[0], images[0])  # nothing depends on the batch (BatchNorm is folded)


def test_feeds_compute_the_code_outside_the_model_as_generator_inputs_does():
    config = GANConfig(latent_code=10)
    z = latents(4, 32, 100)
    z[0, :10] = 1.0  # ties: the first maximum, as np.argmax and ops.argmax
    code = np.asarray(architectures.generator_inputs(config, z)[1])
    np.testing.assert_array_equal(feeds(config, z)["code"], code)


@pytest.mark.slow
@pytest.mark.parametrize("config", [GANConfig(architecture="dcgan", conditional=True, seed=3),
                                    GANConfig(latent_code=10, seed=4)], ids=["dcgan-conditional", "classic-code"])
def test_an_export_of_a_new_model_draws_its_pixels(tmp_path, config):
    generator, _ = architectures.build(config)
    folder = save_models(tmp_path / "m", config, generator, {"steps": 0})
    loaded = Generator.load(folder)
    info = export(loaded, tmp_path / "out")
    assert [spec["name"] for spec in info["inputs"]] == [spec["name"] for spec in input_specs(config)]
    z = latents(0, 16, config.latent_dim)
    labels = loaded.labels_for(16)
    images = session(tmp_path / "out").run(None, feeds(config, z, labels))[0]
    assert np.abs(images - loaded.images(z, labels)).max() <= 1e-4
    assert read_info(tmp_path / "out") == info == json.loads((tmp_path / "out" / ONNX_INFO).read_text())
    assert current_info(tmp_path / "out") is None  # no weights there: nothing to be current with
    (folder / ONNX_FILE).write_bytes((tmp_path / "out" / ONNX_FILE).read_bytes())
    (folder / ONNX_INFO).write_text(json.dumps(info))
    assert current_info(folder) == info
    save_models(folder, config, architectures.build(config.replace(seed=9))[0])  # new weights: the file is stale
    assert current_info(folder) is None and read_info(folder) == info


def test_a_file_that_is_not_the_one_described_is_not_read(tmp_path):
    folder = shipped_models()[SHIPPED[0]]
    for name in (ONNX_FILE, ONNX_INFO):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    assert read_info(tmp_path) is not None
    data = bytearray((tmp_path / ONNX_FILE).read_bytes())
    data[-1] ^= 1
    (tmp_path / ONNX_FILE).write_bytes(bytes(data))
    assert read_info(tmp_path) is None
    (tmp_path / ONNX_INFO).write_text("[1, 2]")
    assert read_info(tmp_path) is None


@pytest.mark.slow
def test_the_export_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mnist_gan", "export", "--weights", "mlp-cond", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "label int32" in done.stdout and ONNX_FILE in done.stdout
    info = read_info(tmp_path)
    assert info["inputs"][1]["name"] == "label" and info["generator"].startswith("conditional")
    z = latents(1, 10, 100)
    expected = Generator.load(shipped_models()["mlp-cond"]).images(z, np.arange(10))
    assert np.abs(session(tmp_path).run(None, feeds(GANConfig(conditional=True), z, np.arange(10)))[0]
                  - expected).max() <= 1e-4
