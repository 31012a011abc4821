import os

# Before anything imports TensorFlow, gradio or huggingface_hub: quiet, and nothing phones home.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.pop("MNIST_GAN_DATA", None)  # tests choose their data explicitly
for name in ("SPACE_ID", "SYSTEM", "MNIST_GAN_ADMINS"):  # tests that play a Space say so themselves
    os.environ.pop(name, None)

import pytest  # noqa: E402

from testing.app import served_app  # noqa: E402
from testing.models import TINY  # noqa: E402


@pytest.fixture(scope="session")
def tiny_data():
    """2,000 training and 1,000 test images of real MNIST, the bundled sample (mnist_gan/assets/README.md)."""
    from mnist_gan.data import load_mnist

    return load_mnist(TINY)


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """(the app's page: its service and files, its URL): the app launched in this process for one test file, so
    that no file depends on what another left behind (runs, models, rounds)."""
    with served_app(tmp_path_factory.mktemp("app")) as (demo, url):
        yield demo.mnist_gan_page, url
