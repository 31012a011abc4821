"""The model card of a pushed repo (its README.md): Hub metadata that the Hub reads, and a short guide."""

from __future__ import annotations

import json

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from mnist_gan.config import GANConfig
from mnist_gan.model.generator import DISCRIMINATOR_FILE, SAMPLES_FILE, describe
from mnist_gan.model.onnx_export import ONNX_FILE, ONNX_INFO

MANIFEST = "mnist_gan.json"
SAMPLE_SEED, SAMPLE_COUNT, SAMPLE_SCALE = 0, 64, 2  # samples.png: `python -m mnist_gan sample` with its defaults


def model_card(repo_id: str, config: GANConfig, record: dict, metrics: dict, sha256: dict[str, str]) -> str:
    """README.md for the repo: Hub metadata (library, tags, pipeline, dataset, eval results) and a short guide."""
    n = metrics.get("n")
    results = [EvalResult(task_type="unconditional-image-generation", dataset_type="mnist", dataset_name="MNIST",
                          dataset_split="test", metric_type=key, metric_value=value,
                          metric_name=f"{key} (N={n})" if n else key)
               for key, value in metrics.items() if _is_number(value) and key not in ("n", "seed", "eval_s")]
    data = ModelCardData(library_name="keras", datasets=["mnist"], pipeline_tag="unconditional-image-generation",
                         tags=["gan", "mnist", "keras", "mnist-gan", config.architecture,
                               "conditional" if config.conditional else "unconditional"],
                         model_name=repo_id if results else None, eval_results=results or None)
    discriminator = (f" The discriminator it was trained against is here too (`{DISCRIMINATOR_FILE}`, built from "
                     "the same config): mnist-gan uses it to show what D sees." if DISCRIMINATOR_FILE in sha256 else "")
    quality = _table(metrics) if metrics else "Not measured yet (no metrics.json in the pushed folder)."
    runs = sorted({name.split("/")[1] for name in sha256 if name.startswith("runs/") and name.count("/") >= 2})
    metrics_tab = f"""
## Training metrics

`runs/{runs[0]}/` holds the TensorBoard event files of the run that trained this model (both discriminator
accuracies, the losses, images/s, quality when it was measured, the sample grid as it improved, and the config):
the Hub shows them on this repo's "Training metrics" tab, and `tensorboard --logdir runs` shows them in a copy of
the repo (`hf download {repo_id} --include "runs/*" --local-dir .`).
""" if runs else ""
    text = f"""---
{data.to_yaml()}
---

# {repo_id}

A {describe(config)} trained with mnist-gan to draw 28x28 handwritten digits. Weights only: loading it runs no
code from this repo.{discriminator}

![{SAMPLE_COUNT} samples, seed {SAMPLE_SEED}]({SAMPLES_FILE})

`{SAMPLES_FILE}` is exactly what `python -m mnist_gan sample --weights FOLDER --seed {SAMPLE_SEED} --n {SAMPLE_COUNT} \
--out {SAMPLES_FILE}` draws from these weights.

## Use it

Keras alone, on any of its backends (safe mode, the default, refuses any layer that carries code). Choose the
backend before Keras is imported; each gives the same pixels.

{keras_snippets(repo_id, config)}

mnist-gan (checks the sha256 of every file before loading; pin a commit sha for a reproducible load):

```bash
python -m mnist_gan pull {repo_id} --revision main
```

```python
from .push_pull import pull
from mnist_gan.model.generator import Generator

digits = Generator.load(pull("{repo_id}").folder).generate(seed=0, n=16)  # uint8 (16, 28, 28)
```

gradio_client, against the mnist-gan app started on this model (`MNIST_GAN_REPO={repo_id} python app.py`, or a
Space running it):

```python
from gradio_client import Client

client = Client("http://127.0.0.1:7860/")
client.view_api()  # the app's endpoints and their parameters
```
{onnx_section(repo_id, config) if ONNX_FILE in sha256 else ""}
## Quality

{quality}
{metrics_tab}
## Training

{_table(record) if record else "No training record."}

## Config

```json
{json.dumps(config.to_dict(), indent=2)}
```

## Files

| file | sha256 |
| --- | --- |
{chr(10).join(f"| `{name}` | `{digest}` |" for name, digest in sha256.items())}

`{MANIFEST}` records these; `mnist_gan.hub.pull` refuses a file that does not match.
"""
    ModelCard(text)  # parses the front matter back: a card the Hub would misread fails here, not there
    return text


BACKENDS = {"tensorflow": "TensorFlow", "jax": "JAX (`pip install jax`)", "torch": "PyTorch (`pip install torch`)"}


def keras_snippet(repo_id: str, config: GANConfig, backend: str) -> str:
    """Python that loads the pushed generator with Keras on `backend` and draws 16 digits: the inputs it takes
    are z, plus the digit for a conditional model or z's latent code (argmax of its first entries)."""
    if config.conditional:
        second = 'labels = (np.arange(16) % 10).astype("int32")[:, None]  # the digit each image shows\n'
        inputs = "[z, labels]"
    elif config.latent_code:
        second = (f'code = z[:, :{config.latent_code}].argmax(axis=1).astype("int32")[:, None]  # the latent code: '
                  f"argmax of z's first {config.latent_code} entries\n")
        inputs = "[z, code]"
    else:
        second, inputs = "", "z"
    return f"""import os
os.environ["KERAS_BACKEND"] = "{backend}"

import keras
import numpy as np

generator = keras.saving.load_model("hf://{repo_id}")
z = np.random.default_rng(0).standard_normal((16, {config.latent_dim})).astype("float32")
{second}images = generator.predict({inputs}, verbose=0)  # (16, 28, 28, 1) in [-1, 1]
"""


def onnx_snippet(repo_id: str, config: GANConfig) -> str:
    """Python that runs the pushed generator.onnx with onnxruntime and draws 16 digits."""
    if config.conditional:
        extra = ', "label": (np.arange(16) % 10).astype("int32")[:, None]'  # the digit each image shows
    elif config.latent_code:
        extra = f', "code": z[:, :{config.latent_code}].argmax(1).astype("int32")[:, None]'  # z's latent code
    else:
        extra = ""
    return f"""import numpy as np
import onnxruntime as ort
from huggingface_hub import hf_hub_download

session = ort.InferenceSession(hf_hub_download("{repo_id}", "{ONNX_FILE}"))
z = np.random.default_rng(0).standard_normal((16, {config.latent_dim})).astype("float32")
images = session.run(None, {{"z": z{extra}}})[0]  # (16, 28, 28, 1), in [-1, 1]
"""


def onnx_section(repo_id: str, config: GANConfig) -> str:
    """The card's ONNX part: what the file takes, and the snippet."""
    if config.conditional:
        takes = "`z` and `label` (the digit, int32 (batch, 1))"
    elif config.latent_code:
        takes = (f"`z` and `code` (int32 (batch, 1): the argmax of z's first {config.latent_code} entries, "
                 "computed outside the model)")
    else:
        takes = "`z`"
    return f"""
### ONNX (onnxruntime, or onnxruntime-web in a browser)

`{ONNX_FILE}` is this generator exported from these weights: it takes {takes} and gives `image` in [-1, 1];
`{ONNX_INFO}` describes it (inputs, shapes, the uint8 conversion: `round((clip(x, -1, 1) + 1) * 127.5)`).
`pip install onnxruntime`:

```python
{onnx_snippet(repo_id, config)}```
"""


def keras_snippets(repo_id: str, config: GANConfig) -> str:
    """The card's snippet for each backend, under a heading each."""
    return "\n".join(f"### {title}\n\n```python\n{keras_snippet(repo_id, config, backend)}```\n"
                     for backend, title in BACKENDS.items())


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _table(values: dict) -> str:
    def show(value) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, dict):
            return ", ".join(f"{k} {show(v)}" for k, v in value.items())
        if isinstance(value, list):
            return "[" + ", ".join(show(v) for v in value) + "]"
        return str(value).replace("|", "\\|").replace("\n", " ")
    return "| | |\n| --- | --- |\n" + "\n".join(f"| {key} | {show(value)} |" for key, value in values.items())
