"""Weights files are inspected before Keras reads them: a file that declares more than the model's datasets, or
anything else than them, is refused from its metadata alone (Keras would read a declared dataset whole first)."""

import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from mnist_gan.errors import WeightsError
from mnist_gan.model import h5_guard
from mnist_gan.model.generator import DISCRIMINATOR_FILE, WEIGHTS_FILE, Generator, load_discriminator, shipped_models
from testing.system import ROOT

GIB = 2**30


def bomb(path, dataset: str, declared_bytes: int = GIB) -> None:
    """Replace one dataset of a weights file by a chunked, compressed one that declares `declared_bytes` of float32
    and stores nothing but its fill value: a few kB on disk."""
    with h5py.File(path, "a") as f:
        del f[dataset]
        f.create_dataset(dataset, shape=(declared_bytes // 4,), dtype="float32", chunks=(2**20,), compression="gzip",
                         fillvalue=0.5)


@pytest.fixture
def classic(tmp_path):
    folder = tmp_path / "classic"
    shutil.copytree(shipped_models()["classic"], folder)
    return folder


def test_the_shipped_files_pass_and_load(classic):
    generator = Generator.load(classic)
    assert generator.generate(0, 2).shape == (2, 28, 28)
    discriminator = load_discriminator(classic)
    assert discriminator.output_shape == (None, 1)


def test_a_declared_gibibyte_is_refused_from_its_metadata(classic):
    path = classic / WEIGHTS_FILE
    bomb(path, "layers/dense_2/vars/0")
    assert path.stat().st_size < 20 * 2**20  # small on disk, huge once read
    with pytest.raises(WeightsError, match=r"classic/generator.weights.h5 is refused: 'layers/dense_2/vars/0' is <f4 "
                                           r"\(268435456,\), this model needs <f4 \(512, 1024\)"):
        Generator.load(classic)


def test_extra_datasets_links_and_big_attributes_are_refused(classic):
    path = classic / DISCRIMINATOR_FILE
    original = path.read_bytes()
    cases = {
        "extra": lambda f: f.create_dataset("junk", data=np.zeros(10, np.float32)),
        "soft link": lambda f: f.__setitem__("layers/alias", h5py.SoftLink("/layers/dense")),
        "external link": lambda f: f.__setitem__("layers/far", h5py.ExternalLink("/etc/passwd", "/x")),
        "attribute": lambda f: f.create_group("meta").attrs.create("note", np.zeros(100_000, np.uint8)),
        "missing": lambda f: f.__delitem__("layers/dense/vars/1"),
    }
    messages = {"extra": "holds datasets this model does not have", "soft link": "is a link",
                "external link": "is a link", "attribute": "larger than 65,536 bytes", "missing": "lacks"}
    for case, damage in cases.items():
        path.write_bytes(original)
        with h5py.File(path, "a", libver="latest") as f:  # "latest": dense storage allows attributes over 64 kB
            damage(f)
        with pytest.raises(WeightsError, match=messages[case]):
            load_discriminator(classic)
    path.write_bytes(original + b"\0" * (2 * h5_guard.METADATA_BYTES))  # padding beyond what the data needs
    with pytest.raises(WeightsError, match="this model's weights need"):
        load_discriminator(classic)


@pytest.mark.slow
def test_refusing_a_bomb_costs_no_memory(classic):
    """In a fresh process (the peak RSS of this one says nothing): the bomb's load grows RSS by less than 100 MB.
    Without the inspection Keras reads the declared gibibyte before comparing shapes (several GB, measured)."""
    bomb(classic / WEIGHTS_FILE, "layers/dense_2/vars/0")
    code = f"""
import json, resource, sys
sys.path.insert(0, {str(ROOT)!r})
from mnist_gan.model.generator import Generator
from mnist_gan.errors import WeightsError
import keras
keras.ops.ones(1)  # TensorFlow's own start-up memory is not the bomb's
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    Generator.load({str(classic)!r})
    outcome = "loaded"
except WeightsError as e:
    outcome = str(e)
print(json.dumps({{"growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024,
                  "outcome": outcome}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "is refused" in result["outcome"] and result["growth_mb"] < 100, result
