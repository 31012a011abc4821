"""The app, launched once per test session on 127.0.0.1: shared by the gradio_client and browser suites."""

import os

import pytest

from testing.system import free_port


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """(the app module, its URL); runs and pulled models go to a temporary folder."""
    root = tmp_path_factory.mktemp("app")
    os.environ["MNIST_GAN_RUNS"] = str(root / "runs")  # read when app builds its service
    os.environ["MNIST_GAN_HUB_CACHE"] = str(root / "hub-cache")
    os.environ.pop("MNIST_GAN_REPO", None)
    import app

    _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    yield app, url
    app.close()
