import os

# Before anything imports TensorFlow, gradio or huggingface_hub: quiet, and nothing phones home.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.pop("MNIST_GAN_DATA", None)  # tests choose their data explicitly
for name in ("SPACE_ID", "SYSTEM", "MNIST_GAN_ADMINS"):  # tests that play a Space say so themselves
    os.environ.pop(name, None)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from mnist_gan.data import SAMPLE_DATA  # noqa: E402
from tests.app_server import app_server  # noqa: E402,F401  (session fixture: the launched app)

ROOT = Path(__file__).resolve().parent.parent
TINY = SAMPLE_DATA  # the bundled sample: real MNIST digits shipped with the package (mnist_gan/assets/README.md)


@pytest.fixture(scope="session")
def tiny_data():
    """2,000 training and 1,000 test images of real MNIST, the bundled sample (mnist_gan/assets/README.md)."""
    from mnist_gan.data import load_mnist

    return load_mnist(TINY)
