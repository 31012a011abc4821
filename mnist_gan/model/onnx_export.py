"""A generator as ONNX: the file the page runs in a visitor's browser (onnxruntime-web), and the JSON beside it
that says what it takes and gives (`python -m mnist_gan export`).

The ONNX model takes exactly the Keras model's inputs: `z`, plus `label` (the digit, for class-conditional models)
or `code` (the latent code, for latent-code models: argmax of z's first entries, computed outside the model, as
`architectures.generator_inputs` does). It gives `image`, (batch, 28, 28, 1) in [-1, 1]. Keras's own
`model.export(format="onnx")` converts it (with tf2onnx); BatchNorm is folded in inference mode.

Export bytes are not reproducible across processes (tf2onnx names initializers after Keras's layer counters), so
every consumer addresses the file by the sha256 recorded in the JSON, and the JSON records the sha256 of the
weights it was exported from: a resumed run rewrites its weights, and then the file is stale.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np

from mnist_gan.atomic_files import atomic_path, file_sha256, load_json, write_json
from mnist_gan.errors import ExportError
from mnist_gan.images import latents

from .architectures import NUM_CLASSES
from .generator import WEIGHTS_FILE, Generator, describe

ONNX_FILE = "generator.onnx"
ONNX_INFO = "generator.onnx.json"
FORMAT, FORMAT_VERSION = "mnist-gan-onnx", 1
OUTPUT = "image"  # the graph's output, renamed from tf2onnx's "Identity:0"
BATCH = "batch"  # the name of every input's and the output's first (dynamic) dimension
TO_UINT8 = ("numpy.round((numpy.clip(x, -1, 1) + 1) * 127.5).astype(numpy.uint8), in float32 (round half to "
            "even): mnist_gan.images.to_uint8")


def input_specs(config) -> list[dict]:
    """The ONNX model's inputs, in order, and what each means."""
    specs = [{"name": "z", "dtype": "float32", "shape": [BATCH, config.latent_dim],
              "meaning": f"latent vectors, each entry N(0, 1) (mnist_gan.images.latents(seed, n, "
                         f"{config.latent_dim}): numpy's default_rng(seed).standard_normal)"}]
    if config.conditional:
        specs.append({"name": "label", "dtype": "int32", "shape": [BATCH, 1],
                      "meaning": f"the digit each image shows, 0-{NUM_CLASSES - 1}"})
    elif config.latent_code:
        specs.append({"name": "code", "dtype": "int32", "shape": [BATCH, 1],
                      "meaning": f"the latent code: argmax of z's first {config.latent_code} entries (the first "
                                 "maximum, as numpy.argmax), computed outside the model"})
    return specs


def feeds(config, z: np.ndarray, labels=None) -> dict[str, np.ndarray]:
    """The ONNX model's inputs for latents z (and digit labels, for class-conditional models)."""
    z = np.asarray(z, np.float32)
    if config.conditional:
        labels = np.zeros(len(z), np.int32) if labels is None else labels
        return {"z": z, "label": np.asarray(labels, np.int32).reshape(-1, 1)}
    if config.latent_code:
        return {"z": z, "code": np.argmax(z[:, :config.latent_code], axis=1).astype(np.int32).reshape(-1, 1)}
    return {"z": z}


def export(generator: Generator, out_dir: str | Path) -> dict:
    """Write out_dir/generator.onnx and out_dir/generator.onnx.json for `generator` (a loaded weights folder);
    returns the JSON's content."""
    try:
        import onnx
        import tf2onnx  # noqa: F401  (Keras's export imports it; a missing one is said here, plainly)
    except ImportError:
        raise ExportError("exporting to ONNX needs tf2onnx and onnx: pip install -r requirements.txt") from None
    if generator.folder is None:
        raise ExportError(f"{generator.name} is not a weights folder: save it first")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = generator.config
    generator.images(latents(0, 2, config.latent_dim))  # Keras exports only a model that has been called
    with tempfile.TemporaryDirectory(prefix="mnist-gan-onnx-") as tmp:
        raw = Path(tmp) / "raw.onnx"
        try:
            with warnings.catch_warnings():  # tf2onnx's np.object, deprecated by numpy: not ours to fix
                warnings.simplefilter("ignore", FutureWarning)
                generator.model.export(str(raw), format="onnx", verbose=False)
            model = onnx.load(str(raw))
            _tidy(model, config)
            onnx.checker.check_model(model)
        except ExportError:
            raise
        except Exception as e:
            raise ExportError(f"{generator.name} could not be exported to ONNX ({type(e).__name__}: "
                              f"{str(e).strip().splitlines()[0][:200] if str(e).strip() else ''})") from None
        with atomic_path(out_dir / ONNX_FILE, suffix=".onnx") as target:
            onnx.save(model, str(target))
    info = {"format": FORMAT, "version": FORMAT_VERSION, "generator": describe(config),
            "file": ONNX_FILE, "sha256": file_sha256(out_dir / ONNX_FILE),
            "bytes": (out_dir / ONNX_FILE).stat().st_size,
            "weights_sha256": file_sha256(generator.folder / WEIGHTS_FILE),
            "latent_dim": config.latent_dim, "inputs": input_specs(config),
            "output": {"name": OUTPUT, "dtype": "float32", "shape": [BATCH, 28, 28, 1], "range": [-1.0, 1.0]},
            "to_uint8": TO_UINT8, "opset": _opset(model), "exported_with": _versions()}
    write_json(out_dir / ONNX_INFO, info)
    return info


def _tidy(model, config) -> None:
    """Names a reader can guess: the output `image`, and `batch` for the dynamic first dimension."""
    old = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [OUTPUT if name == old else name for name in node.output]
    model.graph.output[0].name = OUTPUT
    for value in list(model.graph.input) + list(model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH
    expected = [spec["name"] for spec in input_specs(config)]
    found = [value.name for value in model.graph.input]
    if found != expected:  # the page and the card feed these names
        raise ExportError(f"the exported model takes {found}, not {expected}")


def _opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("keras", "tensorflow", "tf2onnx", "onnx"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def read_info(folder: str | Path) -> dict | None:
    """The JSON beside a folder's ONNX file, read as untrusted, when both are there and the file is the one it
    describes (its sha256); None otherwise."""
    folder = Path(folder)
    if not (folder / ONNX_FILE).is_file() or not (folder / ONNX_INFO).is_file():
        return None
    try:
        info = load_json(folder / ONNX_INFO)
    except (OSError, ValueError):
        return None
    if info.get("format") != FORMAT or info.get("version") != FORMAT_VERSION or \
            not isinstance(info.get("sha256"), str) or not isinstance(info.get("weights_sha256"), str):
        return None
    if info["sha256"] != file_sha256(folder / ONNX_FILE):
        return None
    return info


def current_info(folder: str | Path, weights_sha256: str | None = None) -> dict | None:
    """read_info, when the ONNX file was exported from the generator weights whose sha256 is given (by default,
    the folder's own weights as they are now)."""
    folder = Path(folder)
    info = read_info(folder)
    if info is None:
        return None
    if weights_sha256 is None:
        if not (folder / WEIGHTS_FILE).is_file():
            return None
        weights_sha256 = file_sha256(folder / WEIGHTS_FILE)
    return info if info["weights_sha256"] == weights_sha256 else None


def export_folder(folder: str | Path, out_dir: str | Path | None = None) -> dict:
    """Export the weights folder's generator (into out_dir, else the folder itself); returns the JSON's content."""
    folder = Path(folder)
    return export(Generator.load(folder), out_dir or folder)

