"""Every place the app leans on Gradio beyond its documented API, and the one way endpoints are declared.

Each helper says what it works around. Checked with gradio 6.31.0: after an upgrade, run the API and browser tests
(tests/test_app_api.py, tests/test_app_inside.py, tests/test_app_browser.py), which fail if one of these stops
working.
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


def guard_queue(demo: gr.Blocks, refusal: Callable, client: Callable) -> None:
    """Ask `refusal(request, concurrency_group, held)` before any event joins the queue; a message refuses it
    (the caller reads it as the call's error). held: (client, group) of every event waiting or running, from the
    queue's own record, so nothing leaks when an event ends, however it ends; client(request) names a request's
    client. Gradio 6.31 has no per-client limit of its own: this wraps its queue's `push` (demo._queue, made with
    the Blocks) and reads its waiting lists and running slots."""
    from gradio import route_utils

    queue = demo._queue
    push = queue.push

    def held():
        waiting = [event for q in queue.event_queue_per_concurrency_id.values() for event in q.queue]
        running = [event for job in queue.active_jobs if job for event in job]
        return [(client(event.request) if event.request is not None else "?", event.concurrency_id)
                for event in waiting + running]

    async def guarded(body, request, username):
        try:
            fn = route_utils.get_fn(demo, None, body)
        except Exception:  # a bad fn_index: gradio answers it itself
            return await push(body, request, username)
        message = refusal(request, fn.concurrency_id, held())
        if message:
            return False, message, "error"
        return await push(body, request, username)

    queue.push = guarded


class _ConfigsOnDemand(dict):
    """A session's per-block configs, each computed when first asked for (see lazy_session_state)."""

    def __init__(self, blocks_config, keys: set):
        super().__init__()
        self._blocks_config, self._keys = blocks_config, keys

    def __missing__(self, key):
        value = self[key] = self._blocks_config.config_for_block(key, [], self._blocks_config.blocks[key])
        return value

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or key in self._keys

    def items(self):
        for key in self._keys:
            self[key]  # noqa: B018  (computes the ones not asked for yet: a deep link wants them all)
        return super().items()


def lazy_session_state() -> None:
    """A new session costs what it uses: Gradio 6.31 computes the config of every block (374 here) for each new
    session, ~51 ms of CPU, though only a deep link reads them all; every API call without a session_hash (a
    script, a curl) is a new session, so that was most of the work of a `generate` (profiled under load: 66% of the
    server's CPU). Here a session computes a block's config when it is first asked for. This is SessionState's own
    __init__ (gradio/state_holder.py, 6.31.0) with its configs on demand; other versions are left alone."""
    import os
    from copy import copy

    from gradio import state_holder

    if gr.__version__ != GRADIO_CHECKED or getattr(state_holder.SessionState, "_configs_on_demand", False):
        return

    def __init__(self, blocks):
        self.blocks_config = copy(blocks.default_config)
        self.config_values = _ConfigsOnDemand(self.blocks_config, {k for k in self.blocks_config.blocks
                                                                   if k in blocks.blocks})
        self.state_data, self._state_ttl, self.is_closed = {}, {}, False
        self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600

    state_holder.SessionState.__init__ = __init__
    state_holder.SessionState._configs_on_demand = True


def keep_thread_pool(demo: gr.Blocks) -> None:
    """launch(max_threads=N) sets the queue's running slots to N (each open page's stream holds one) and also
    widens the thread pool of every synchronous handler to N; this keeps that pool at anyio's default of 40, so
    more slots for streams never mean more threads competing for 2 cores (measured: 125 threads at 200 pages)."""
    demo.create_limiter = lambda: setattr(demo, "limiter", None)


def unread_messages(demo: gr.Blocks, session: str | None) -> int | None:
    """Messages Gradio holds for a page that the page has not read yet; None once Gradio dropped the page's queue
    (closed, or pushed out). A page that reads drains each update at once; one that left never does, and its
    stream would hold a slot for ever (Gradio notices a closed connection, not a page that stops reading)."""
    pending = demo._queue.pending_messages_per_session.get(session) if session else None
    return None if pending is None else pending.qsize()


def forget_served(demo: gr.Blocks, removed: list[Path]) -> None:
    """Tell gradio that files the app deleted from its cache are gone: it remembers every file it served in
    `demo.temp_file_sets` (sets of paths) and would keep them for ever."""
    removed = {str(path) for path in removed}
    for tracked in demo.temp_file_sets:
        tracked.difference_update(removed)
