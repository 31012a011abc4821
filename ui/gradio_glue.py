"""Every place the app leans on Gradio beyond its documented API, and the one way endpoints are declared.

Each helper says what it works around. Checked with gradio 6.31.0: after an upgrade, run the API and browser tests
(tests/test_app_api.py, tests/test_app_inside.py, tests/test_app_browser.py, tests/test_app_in_browser.py), which
fail if one of these stops working.

Two more live in the page's own script (ui/static/mnist-draw.js), where the browser needs them: a slider is read
straight from the <input type=range> gradio renders inside the element of its elem_id (gradio's own input event
comes a frame later), and a tab's components exist only once the tab has been shown (requests for them wait).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable

import gradio as gr

GRADIO_CHECKED = "6.31.0"


def endpoint(fn: Callable, name: str, inputs=None, outputs=None, **options) -> None:
    """Declare the public API endpoint `name` calling `fn`. Without components, gradio's `gr.api` derives the API
    from fn's type hints (JSON in, JSON out). With them (files out: images, GIFs; or a picture in), a hidden button's
    event carries the endpoint: gr.api cannot return a file that gradio serves (its outputs are JSON), and an event
    needs a trigger, which a hidden button gives without showing anything on the page."""
    if inputs is None and outputs is None:
        gr.api(fn, api_name=name, **options)
    else:
        gr.Button(visible=False).click(fn, inputs, outputs, api_name=name, **options)


def file_parameter() -> gr.JSON:
    """An API parameter that is an image file (gradio_client: handle_file(path)). A JSON value underneath, so that
    anything else a caller sends reaches the app's own check, which refuses it with a plain message (gradio's own
    file model would refuse it without one); its API description is borrowed from an image (`api_info`, an instance
    attribute: a subclass would make gradio write a .pyi stub beside it)."""
    parameter = gr.JSON(visible=False)
    parameter.api_info = gr.Image(type="filepath", render=False).api_info
    return parameter


def uploaded_path(payload) -> str | None:
    """The server path of a file gradio received for a file_parameter (a FileData dict): only inside gradio's upload
    folder, whatever a caller writes in the payload (gradio's own check of a FileData it did not receive is skipped
    for a JSON value, so the app makes it, with gradio's upload folder and its path test)."""
    from gradio.utils import get_upload_folder, is_in_or_equal

    from mnist_gan.errors import InvalidInput

    if payload is None:
        return None
    path = payload.get("path") if isinstance(payload, dict) else None
    if not isinstance(path, str):
        raise InvalidInput("image must be an image file (PNG or JPEG), uploaded (gradio_client: handle_file)")
    if not is_in_or_equal(path, get_upload_folder()):
        raise InvalidInput("image must be a file uploaded to this app")
    return path


def cache_folder(demo: gr.Blocks) -> Path:
    """Gradio's cache folder for this page (`demo.GRADIO_CACHE`, $GRADIO_TEMP_DIR or the system's temporary
    folder): where it keeps uploads and the files it serves."""
    return Path(demo.GRADIO_CACHE)


def with_signature(fn: Callable, signature: inspect.Signature, doc: str) -> Callable:
    """`fn(*args, **kwargs)` described to gradio as taking `signature`'s parameters: the API's parameters (names,
    types, defaults) come from a function's signature and annotations, and the training settings are a list
    declared once (config.TRAINING_SETTINGS), not written out by hand."""
    fn.__signature__ = signature
    fn.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()} | {
        "return": signature.return_annotation}
    fn.__doc__ = doc
    return fn


def html_event(component: gr.HTML, name: str):
    """The listener of a custom event that a gr.HTML's own JavaScript fires with `trigger(name)` (e.g.
    `html_event(panel, "server_draw")(fn, inputs, outputs)`). Gradio finds such events by looking for the name,
    in quotes, in the component's js_on_load (gr.HTML.__getattr__): the name must appear there just so."""
    if f"'{name}'" not in (component.js_on_load or "") and f'"{name}"' not in (component.js_on_load or ""):
        raise ValueError(f"{name!r} is not triggered by this component's js_on_load")
    return getattr(component, name)


def forget_served(demo: gr.Blocks, removed: list[Path]) -> None:
    """Tell gradio that files the app deleted from its cache are gone: it remembers every file it served in
    `demo.temp_file_sets` (sets of paths) and would keep them for ever."""
    removed = {str(path) for path in removed}
    for tracked in demo.temp_file_sets:
        tracked.difference_update(removed)
