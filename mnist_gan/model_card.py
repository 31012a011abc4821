"""The model card of a pushed repo (its README.md): Hub metadata that the Hub reads, and a short guide."""

from __future__ import annotations

import json

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .config import GANConfig
from .generator import DISCRIMINATOR_FILE, SAMPLES_FILE, describe

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
    conditional = config.conditional
    if conditional:
        keras_call = "generator.predict([z, (np.arange(16) % 10)[:, None]])  # the digits to draw"
    elif config.latent_code:
        keras_call = f"generator.predict([z, z[:, :{config.latent_code}].argmax(1)[:, None]])  # z's latent code"
    else:
        keras_call = "generator.predict(z)"
    discriminator = (f" The discriminator it was trained against is here too (`{DISCRIMINATOR_FILE}`, built from "
                     "the same config): mnist-gan uses it to show what D sees." if DISCRIMINATOR_FILE in sha256 else "")
    quality = _table(metrics) if metrics else "Not measured yet (no metrics.json in the pushed folder)."
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

Keras alone (safe mode, the default, refuses any layer that carries code):

```python
import keras, numpy as np

generator = keras.saving.load_model("hf://{repo_id}")
z = np.random.default_rng(0).standard_normal((16, {config.latent_dim})).astype("float32")
images = {keras_call}  # (16, 28, 28, 1) in [-1, 1]
```

mnist-gan (checks the sha256 of every file before loading; pin a commit sha for a reproducible load):

```bash
python -m mnist_gan pull {repo_id} --revision main
```

```python
from mnist_gan.hub import pull
from mnist_gan.generator import Generator

digits = Generator.load(pull("{repo_id}").folder).generate(seed=0, n=16)  # uint8 (16, 28, 28)
```

gradio_client, against the mnist-gan app started on this model (`MNIST_GAN_REPO={repo_id} python app.py`, or a
Space running it):

```python
from gradio_client import Client

client = Client("http://127.0.0.1:7860/")
client.view_api()  # the app's endpoints and their parameters
```

## Quality

{quality}

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
