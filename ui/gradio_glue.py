"""Every place the app leans on Gradio beyond its documented API, and the one way endpoints are declared.

Each helper says what it works around. Checked with gradio 6.31.0 (and mcp 1.30.0 for its MCP server): after an
upgrade, run the API, MCP and browser tests (tests/test_app_api.py, tests/test_app_inside.py, tests/test_mcp.py,
tests/test_app_browser.py, tests/test_app_in_browser.py), which fail if one of these stops working.

Two more live in the page's own script (ui/static/mnist-draw.js), where the browser needs them: a slider is read
straight from the <input type=range> gradio renders inside the element of its elem_id (gradio's own input event
comes a frame later), and a tab's components exist only once the tab has been shown (requests for them wait).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Callable

import gradio as gr

GRADIO_CHECKED = "6.31.0"

# launch() asks for the page once more after its own startup-events request has reached the server (one HEAD, 3 s
# timeout) and raises "When localhost is not accessible, a shareable link must be created" if that one answer is
# slow: a test's app failed to start so on a busy 2-core machine. The startup-events answer already proved the
# server reachable; launch's private `_frontend` flag only turns that second check off.
LAUNCH_WITHOUT_PAGE_CHECK = {"_frontend": False}


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


def plot_value(plot: gr.LinePlot | gr.BarPlot, frame) -> dict | None:
    """What a plot sends the page for a pandas frame, made by its own postprocess, as a dict: gradio passes a dict
    through a plot's postprocess unchanged (NativePlot.postprocess, 6.31), so one value serves every page."""
    value = plot.postprocess(frame)
    return None if value is None else value.model_dump()


def html_event(component: gr.HTML, name: str):
    """The listener of a custom event that a gr.HTML's own JavaScript fires with `trigger(name)` (e.g.
    `html_event(panel, "server_draw")(fn, inputs, outputs)`). Gradio finds such events by looking for the name,
    in quotes, in the component's js_on_load (gr.HTML.__getattr__): the name must appear there just so."""
    if f"'{name}'" not in (component.js_on_load or "") and f'"{name}"' not in (component.js_on_load or ""):
        raise ValueError(f"{name!r} is not triggered by this component's js_on_load")
    return getattr(component, name)


def guard_queue(demo: gr.Blocks, refusal: Callable, client: Callable) -> None:
    """Ask `refusal(request, page, concurrency_group, held)` before any event joins the queue; a message refuses
    it (the caller reads it as the call's error). held: (client, page, group) of every event waiting or running,
    from the queue's own record, so nothing leaks when an event ends, however it ends; client(request) names a
    request's client, page is its session. Then the event's group serves clients in turn: each client's k-th
    waiting event goes after every client's (k-1)-th, so a backlog from one address (a script, or a class behind
    one NAT) never delays another address's first call. Gradio 6.31 serves each group first come, first served,
    and has no per-client limit: this wraps its queue's `push` (demo._queue, made with the Blocks), reads its
    waiting lists and running slots, and orders a waiting list in place (get_events takes its front)."""
    from gradio import route_utils

    queue = demo._queue
    push = queue.push

    def who(event) -> str:  # read from its headers once: each join reads every held event's
        name = getattr(event, "mnist_gan_client", None)
        if name is None:
            name = event.mnist_gan_client = client(event.request) if event.request is not None else "?"
        return name

    async def guarded(body, request, username):
        try:
            fn = route_utils.get_fn(demo, None, body)
        except Exception:  # a bad fn_index: gradio answers it itself
            return await push(body, request, username)
        page = body.session_hash or ""  # an API call without one is a page of its own: no event shares ""
        waiting = [event for q in queue.event_queue_per_concurrency_id.values() for event in q.queue]
        running = [event for job in queue.active_jobs if job for event in job]
        held = [(who(event), event.session_hash, event.concurrency_id) for event in waiting + running]
        message = refusal(request, page, fn.concurrency_id, held)
        if message:
            return False, message, "error"
        joined = await push(body, request, username)
        group = queue.event_queue_per_concurrency_id.get(fn.concurrency_id)
        if group is not None and len(group.queue) > 1:
            turns = Counter(who(event) for event in running if event.concurrency_id == fn.concurrency_id)
            group.queue[:] = in_turn(group.queue, who, turns)
        return joined

    queue.push = guarded


def in_turn(events: list, client: Callable, running: Counter | None = None) -> list:
    """Waiting events in the order that serves clients in turn: a client's k-th event (counting its `running`
    ones first) after every client's (k-1)-th, and otherwise in their order (stable)."""
    rounds = Counter(running or {})
    keyed = []
    for index, event in enumerate(events):
        name = client(event)
        keyed.append((rounds[name], index, event))
        rounds[name] += 1
    return [event for _, _, event in sorted(keyed, key=lambda k: k[:2])]


class _ConfigsOnDemand(dict):
    """A session's per-block configs, each computed when first asked for (see lazy_session_state). An event's
    outputs only mark a config stale or note its new value; the config is computed from the session's block and
    that value when something reads it."""

    def __init__(self, blocks_config, keys: set):
        super().__init__()
        self._blocks_config, self._keys, self._values = blocks_config, keys, {}

    def __missing__(self, key):
        value = self[key] = self._blocks_config.config_for_block(key, [], self._blocks_config.blocks[key])
        if key in self._values and "props" in value:
            value["props"]["value"] = self._values.pop(key)
        return value

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or key in self._keys

    def items(self):
        for key in self._keys:
            self[key]  # noqa: B018  (computes the ones not asked for yet: a deep link wants them all)
        return super().items()

    def stale(self, key) -> None:
        """The block changed (an update made a new one): its config is computed again, without a value set
        before (gradio recomputes it from the new block, whose value is its default)."""
        self.pop(key, None)
        self._values.pop(key, None)
        self._keys.add(key)

    def set_value(self, key, value) -> None:
        if dict.__contains__(self, key):
            if "props" in self[key]:
                self[key]["props"]["value"] = value
        else:
            self._values[key] = value
            self._keys.add(key)


def lazy_session_state() -> None:
    """A session costs what it uses: Gradio 6.31 computes the config of every block (374 here) for each new
    session, ~51 ms of CPU, though only a deep link reads them all; every API call without a session_hash (a
    script, a curl) is a new session, so that was most of the work of a `generate` (profiled under load: 66% of the
    server's CPU). And each event's outputs computed their blocks' configs again (twice for a gr.update): under a
    class, 9% of the server's busy samples (profiled), on the event loop. Here a session computes a block's config
    when it is first read. These are SessionState's own __init__, __setitem__, _update_config and
    _update_value_in_config (gradio/state_holder.py, 6.31.0) with configs on demand; other versions are left alone."""
    import datetime
    import os
    from copy import copy

    from gradio import state_holder
    from gradio.components import State

    session = state_holder.SessionState
    if gr.__version__ != GRADIO_CHECKED or getattr(session, "_configs_on_demand", False):
        return

    def __init__(self, blocks):
        self.blocks_config = copy(blocks.default_config)
        self.config_values = _ConfigsOnDemand(self.blocks_config, {k for k in self.blocks_config.blocks
                                                                   if k in blocks.blocks})
        self.state_data, self._state_ttl, self.is_closed = {}, {}, False
        self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600

    def __setitem__(self, key, value):
        block = self.blocks_config.blocks.get(key)
        if isinstance(block, State):
            self._state_ttl[key] = (block.time_to_live, datetime.datetime.now())
            self.state_data[key] = value
        else:
            self.blocks_config.blocks[key] = value
        if block:
            self.config_values.stale(key)

    def _update_config(self, key):
        if self[key] is not None:
            self.config_values.stale(key)

    def _update_value_in_config(self, key, value):
        self.config_values.set_value(key, value)

    session.__init__, session.__setitem__ = __init__, __setitem__
    session._update_config, session._update_value_in_config = _update_config, _update_value_in_config
    session._configs_on_demand = True


# the folders of the app's result files (fast_result_outputs), absolute, each with what reads a file of it by name
# (ResultFiles.read: memory first, where some are only kept, then the disk)
_RESULT_FOLDERS: dict[str, Callable[[str], bytes | None]] = {}


def _result_file(path) -> bool:
    """Whether `path` names one of the app's result files (directly in a folder fast_result_outputs was given, named
    as ResultFiles names them)."""
    from mnist_gan.serving.served_files import NAME

    return (isinstance(path, str) and os.path.isabs(path) and os.path.dirname(path) in _RESULT_FOLDERS
            and bool(NAME.fullmatch(os.path.basename(path))))


def result_bytes(path: str | Path) -> bytes | None:
    """The bytes of a file an event answered with: one of the app's result files as its folder reads it (memory
    first), any other from the disk (None: not there)."""
    path = str(path)
    if _result_file(path):
        return _RESULT_FOLDERS[os.path.dirname(path)](os.path.basename(path))
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def fast_result_outputs(folder: Path, read: Callable[[str], bytes | None]) -> None:
    """An event's output file that is one of the app's result files (directly in `folder`, named as ResultFiles
    names them; read(name) reads one: ResultFiles.read) goes to the page without gradio's path checks. Gradio 6.31
    checks each output file against its static, allowed, blocked and cache folders, each test a realpath of both
    sides, and does it twice per output (postprocess_data moves an output's files once for the session's config and
    again for the answer): 8% of the server's busy samples under a class, profiled, on the event loop. The app made
    these files itself (in gradio's cache folder, or in memory only); the answer is what gradio's own _move_to_cache
    makes of such a file (processing_utils, 6.31.0): its FileData with the /file= URL, the path noted as sent by the
    block (gradio's file route serves only those). Any other file, and any other call, goes through gradio's code
    unchanged. The value of a component that never holds a file (a plot's data, a number, a line of Markdown:
    _NO_FILES) is not walked at all: a run's curves are up to 600 points a plot, each point and each of its numbers
    a step of gradio's walk, twice, for every page."""
    from gradio import processing_utils
    from gradio.data_classes import FileData, GradioModel, GradioRootModel
    from gradio.route_utils import API_PREFIX
    from gradio_client import utils as client_utils

    _RESULT_FOLDERS[str(Path(folder).absolute())] = read
    if gr.__version__ != GRADIO_CHECKED or hasattr(processing_utils.async_move_files_to_cache, "gradios"):
        return
    gradios = processing_utils.async_move_files_to_cache

    def ours(d: dict) -> bool:
        return not d.get("url") and not d.get("is_stream") and _result_file(d.get("path"))

    async def moved(data, block, postprocess=False, check_in_upload_folder=False, keep_in_cache=False):
        if not postprocess or check_in_upload_folder or keep_in_cache or block.proxy_url:
            return await gradios(data, block, postprocess, check_in_upload_folder, keep_in_cache)
        if type(block) in _NO_FILES:
            return data.model_dump() if isinstance(data, (GradioModel, GradioRootModel)) else data

        async def move(d: dict):
            if not ours(d):
                return await gradios(d, block, postprocess)
            payload = FileData(**d)
            block.temp_files.add(payload.path)
            payload.url = f"{API_PREFIX}/file={client_utils.encode_file_path(payload.path)}"
            return payload.model_dump()

        if isinstance(data, (GradioModel, GradioRootModel)):
            data = data.model_dump()
        return await client_utils.async_traverse(data, move, client_utils.is_file_obj_with_meta)

    moved.gradios = gradios
    processing_utils.async_move_files_to_cache = moved


def quick_component_updates() -> None:
    """A gr.update builds a new component for the session (gradio 6.31's postprocess_data), and each __init__ of
    its class chain asks inspect.getfullargspec for its own arguments, which parses the function each time (its
    `updateable` wrapper, component_meta.py): about half of the 0.2 ms a Button, Dropdown or Slider update took, and
    a page load sends ~45 of them (its controls, the explorer's sliders, the first tick). Each __init__ keeps its
    signature, computed once, which getfullargspec reads as it is (same arguments, measured: 0.21 -> 0.12 ms).

    And a gr.skip() is an update too, with nothing in it: gradio built a component for it all the same, a copy of
    the one before, to send the page {"__type__": "update"}. Each update of a page's stream skips most of its ~20
    outputs (what did not change), so under a class most of the components built were those copies. The skips of
    an event's outputs now go to the page as gradio sent them, with nothing built.

    And the components an update does build are built once: a session's component is only read after (its config,
    its pre- and postprocess), so every session updated with the same arguments shares one (`_built`). A page load
    sends ~45 updates, its sliders, buttons and menus the same for every page: ~0.1 ms each, built anew per page."""
    from gradio import processing_utils
    from gradio.blocks import Block, Blocks, postprocess_update_dict

    if gr.__version__ != GRADIO_CHECKED:
        return
    classes, found = [Block], set()
    while classes:
        cls = classes.pop()
        found.add(cls)
        classes.extend(sub for sub in cls.__subclasses__() if sub not in found)
    for cls in found:
        init = getattr(cls.__dict__.get("__init__"), "__wrapped__", None)
        if init is not None and "__signature__" not in init.__dict__:
            init.__signature__ = inspect.signature(init)
    if hasattr(Blocks.postprocess_data, "gradios"):
        return
    gradios = Blocks.postprocess_data

    async def postprocess_data(self, block_fn, predictions, state):
        skipped, updated = _skipped(block_fn, predictions), _updated(block_fn, predictions, state)
        if skipped or updated:  # gradio's own marker for an output done elsewhere: it sends None, built nothing
            predictions = [_FINISHED if i in skipped or i in updated else value for i, value in enumerate(predictions)]
        output = await gradios(self, block_fn, predictions, state)
        for i in skipped:  # what gradio makes of a skip, from the block's class (an HTML's has props of its own)
            output[i] = postprocess_update_dict(block_fn.outputs[i], dict(_SKIP), block_fn.postprocess)
        for i, update in updated.items():  # gradio's own steps for an update, with the component built once
            block = block_fn.outputs[i]
            arguments = {**state.get(block._id, block).constructor_args, **update, "render": False}
            arguments.pop("value", None), arguments.pop("__type__")
            state[block._id] = _built(block, arguments)
            state._update_config(block._id)
            update = postprocess_update_dict(state[block._id], update, block_fn.postprocess)
            if "value" in update:
                state._update_value_in_config(block._id, update["value"])
            output[i] = await processing_utils.async_move_files_to_cache(update, block, postprocess=True)
        return output

    postprocess_data.gradios = gradios
    Blocks.postprocess_data = postprocess_data


_SKIP = {"__type__": "update"}  # gr.skip()
_FINISHED = gr.components._Keywords.FINISHED_ITERATING


def _updated(block_fn, predictions, state) -> dict[int, dict]:
    """The outputs an event's function updated with gr.update(...) (something in it: not a skip), where it returned
    one value per output into a session; each update as gradio reads it (its Nones left out, but a None value)."""
    from gradio.utils import delete_none

    outputs = block_fn.outputs
    if state is None or block_fn.batch or block_fn.is_validator_function or len(outputs) < 2 or \
            not isinstance(predictions, (list, tuple)) or len(predictions) != len(outputs):
        return {}
    return {i: delete_none(dict(value), skip_value=True)
            for i, (block, value) in enumerate(zip(outputs, predictions, strict=True))
            if type(value) is dict and value.get("__type__") == "update" and len(value) > 1 and not block.stateful}


_BUILT: OrderedDict[tuple, gr.blocks.Block] = OrderedDict()  # (block id, its arguments) -> the component built
BUILT_KEPT = 1024  # ~4 kB each; a page load's ~45 updates are the same for every page of a model
_built_lock = threading.Lock()


def _built(block, arguments: dict):
    """The component gradio builds for an update of `block` with these arguments: built once and shared, while
    kept, by every session that asks. Arguments that are not plain data (numbers, text, lists and dicts of them)
    build a component of their own as before."""
    key = _plain(arguments)
    if key is None:
        return block.__class__(**arguments)
    key = (block._id, key)
    with _built_lock:
        found = _BUILT.get(key)
        if found is not None:
            _BUILT.move_to_end(key)
            return found
    found = block.__class__(**arguments)
    with _built_lock:
        _BUILT[key] = found
        while len(_BUILT) > BUILT_KEPT:
            _BUILT.popitem(last=False)
    return found


def _plain(value):
    """A hashable form of plain data that tells apart what == would not (True, 1 and 1.0; a list and a tuple);
    None for anything else."""
    if value is None or type(value) in (bool, int, float, str):
        return type(value).__name__, value
    if type(value) in (list, tuple):
        items = tuple(_plain(item) for item in value)
        return None if None in items else (type(value).__name__, items)
    if type(value) is dict and all(type(k) is str for k in value):
        items = tuple((k, _plain(v)) for k, v in sorted(value.items()))
        return None if any(v is None for _, v in items) else ("dict", items)
    return None


def _skipped(block_fn, predictions) -> set[int]:
    """The outputs an event's function skipped (gr.skip()), where it returned one value per output; a State's
    skip costs nothing already."""
    outputs = block_fn.outputs
    if block_fn.batch or block_fn.is_validator_function or len(outputs) < 2 or \
            not isinstance(predictions, (list, tuple)) or len(predictions) != len(outputs):
        return set()
    return {i for i, (block, value) in enumerate(zip(outputs, predictions, strict=True))
            if type(value) is dict and value == _SKIP and not block.stateful}


# Components whose preprocess and postprocess are a few lines of pure Python for any value in gradio 6.31 (read in
# its source): no file, no image, no pandas. Exact types: a subclass may do more.
_QUICK = frozenset({gr.Button, gr.Checkbox, gr.CheckboxGroup, gr.Dropdown, gr.HTML, gr.JSON, gr.Markdown, gr.Number,
                    gr.Radio, gr.Slider, gr.State, gr.Textbox})
_PLOTS = frozenset({gr.LinePlot, gr.BarPlot, gr.ScatterPlot})  # a dict (plot_value's) passes through as it is
_NO_FILES = _QUICK - {gr.JSON, gr.State} | _PLOTS  # values with no file in them, whatever the value (a JSON may)


def quick_processing() -> None:
    """Gradio 6.31 runs each input's preprocess and each output's postprocess of an event in a worker thread, one
    after another (Blocks.preprocess_data and postprocess_data, anyio.to_thread.run_sync each), and a gallery's
    postprocess starts a thread pool of its own for its items. Most of them are a few lines of pure Python, and under
    a class each hop to a thread and back waited for the GIL and for the event loop: in the app under the class, the
    Train form's 20 outputs took 179 ms to postprocess, a spot-the-fake answer's 85 ms, and each page's stream 43 ms
    an update. Now the quick ones are done where the event is, without a hop: the components above, a plot given its
    value already made, a gallery of files, and an image that is one of the app's result files (gradio's answer for
    it, without its check that the file exists: the app wrote it for this answer). Any other component or value goes
    to a thread as before, and a gallery's items are made one after another in the thread that makes the gallery."""
    from gradio import blocks
    from gradio.components import gallery

    if gr.__version__ != GRADIO_CHECKED or isinstance(blocks.anyio, _QuickAnyio):
        return
    blocks.anyio = _QuickAnyio(blocks.anyio)
    gallery.ThreadPoolExecutor = _InTurn


def _quick_step(fn: Callable, args: tuple) -> Callable | None:
    """The call that does `fn(*args)` in place, for a pre- or postprocess that needs no thread; None otherwise."""
    block, step = getattr(fn, "__self__", None), getattr(fn, "__name__", None)
    if step not in ("preprocess", "postprocess") or len(args) != 1:
        return None
    kind, value = type(block), args[0]
    if kind in _QUICK or step == "postprocess" and (
            kind in _PLOTS and (value is None or isinstance(value, dict))
            or kind is gr.Gallery and (value is None or isinstance(value, (list, tuple))
                                       and all(_named_file(item) for item in value))):
        return lambda: fn(value)
    if step == "postprocess" and kind is gr.Image and _result_file(value) and \
            getattr(block.watermark, "watermark", None) is None:
        from gradio.data_classes import ImageData

        return lambda: ImageData(path=value, orig_name=os.path.basename(value))
    return None


def _named_file(item) -> bool:
    """A gallery item that is a file named by its path (with or without a caption): gradio makes its entry from the
    name alone, unless it is an SVG (read for its content)."""
    path = item[0] if isinstance(item, (tuple, list)) and len(item) == 2 else item
    return isinstance(path, (str, Path)) and not str(path).lower().endswith(".svg")


class _QuickThreads:
    """anyio.to_thread as gradio.blocks uses it, with the quick steps done in place."""

    def __init__(self, to_thread):
        self._to_thread = to_thread

    async def run_sync(self, fn: Callable, *args, **options):
        quick = _quick_step(fn, args)
        return quick() if quick is not None else await self._to_thread.run_sync(fn, *args, **options)

    def __getattr__(self, name: str):
        return getattr(self._to_thread, name)


class _QuickAnyio:
    """The anyio module as gradio.blocks sees it: the same, but for to_thread."""

    def __init__(self, anyio):
        self._anyio, self.to_thread = anyio, _QuickThreads(anyio.to_thread)

    def __getattr__(self, name: str):
        return getattr(self._anyio, name)


class _InTurn:
    """concurrent.futures.ThreadPoolExecutor as Gallery.postprocess uses it (a with block and map), mapping in the
    calling thread: no threads started and joined for each gallery sent."""

    def __init__(self, *args, **options):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False

    @staticmethod
    def map(fn: Callable, *iterables):
        return map(fn, *iterables)


def no_backend_switch_without_matplotlib() -> None:
    """Gradio 6.31 switches matplotlib to its agg backend around every event (route_utils.call_process_api) and
    imports matplotlib to do so, twice an event; where matplotlib is not installed (this app draws none), each is an
    import that fails after searching every folder of sys.path, 0.1 ms: 3% of the server's busy time under a class
    (profiled). With no matplotlib there is nothing to switch."""
    import contextlib
    import importlib.util

    from gradio import utils

    if gr.__version__ == GRADIO_CHECKED and importlib.util.find_spec("matplotlib") is None:
        utils.MatplotlibBackendMananger = contextlib.nullcontext


def keep_thread_pool(demo: gr.Blocks) -> None:
    """launch(max_threads=N) sets the queue's running slots to N (each open page's stream holds one) and also
    widens the thread pool of every synchronous handler to N; this keeps that pool at anyio's default of 40, so
    more slots for streams never mean more threads competing for 2 cores (measured: 125 threads at 200 pages)."""
    demo.create_limiter = lambda: setattr(demo, "limiter", None)


# the longest a queue's loop sleeps without being woken (woken_queue): what a wake-up it missed would cost
WAKE_FALLBACK_S = 1.0


class _Bell:
    """Wakes one loop that waits on the server's event loop; rung from that loop or from any thread."""

    def __init__(self):
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def wait(self, timeout: float) -> None:
        """Until rung (at once if it was rung since the last wait) or `timeout` seconds."""
        if self._event is None:
            self._event, self._loop = asyncio.Event(), asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            pass
        self._event.clear()

    def ring(self) -> None:
        if self._loop is None:
            return  # its loop has not waited yet: it looks before it first waits
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is self._loop:
            self._event.set()
            return
        try:
            self._loop.call_soon_threadsafe(self._event.set)
        except RuntimeError:  # the server's loop is closed: nothing waits any more
            pass


def woken_queue(demo: gr.Blocks) -> None:
    """Gradio 6.31's queue polls. While it has no event it can start, it looks again every 1 ms, and for progress
    to send every 10 ms: some 900 wake-ups a second of the server's event loop with no one on the page (0.05 of a
    core, measured), and under a crowd each one takes the GIL from an event's thread. Here both loops sleep until
    what they wait for happens: an event joins the queue (push), one ends and frees its slot and its group's
    concurrency (process_events), a progress report comes (set_progress). A wake-up missed would cost at most
    WAKE_FALLBACK_S. The dispatch itself is gradio's Queue.start_processing, copied with its sleeps replaced."""
    if gr.__version__ != GRADIO_CHECKED:
        return
    from gradio.utils import run_coro_in_background, set_task_name

    queue = demo._queue
    work, progress = _Bell(), _Bell()
    push, process_events, set_progress = queue.push, queue.process_events, queue.set_progress

    async def pushed(*args, **kwargs):
        try:
            return await push(*args, **kwargs)
        finally:
            work.ring()

    async def processed(*args, **kwargs):
        try:
            return await process_events(*args, **kwargs)
        finally:
            work.ring()

    def reported(*args, **kwargs):
        set_progress(*args, **kwargs)
        progress.ring()

    async def start_processing() -> None:
        try:
            while not queue.stopped:
                if len(queue) == 0 or None not in queue.active_jobs:
                    await work.wait(WAKE_FALLBACK_S)
                    continue
                async with queue.delete_lock:
                    event_batch = queue.get_events()
                if not event_batch:  # every waiting event's group is at its concurrency limit
                    await work.wait(WAKE_FALLBACK_S)
                    continue
                events, batch, concurrency_id = event_batch
                queue.active_jobs[queue.active_jobs.index(None)] = events
                event_queue = queue.event_queue_per_concurrency_id[concurrency_id]
                event_queue.current_concurrency += 1
                start_time = time.time()
                fn = events[0].fn
                event_queue.start_times_per_fn[fn].add(start_time)
                for event in events:
                    if (a := queue.event_analytics.get(event._id)) is not None:
                        a["status"] = "processing"
                task = run_coro_in_background(queue.process_events, events, batch, start_time, fn)
                set_task_name(task, events[0].session_hash, fn._id, events[0]._id, batch)
                queue._asyncio_tasks.add(task)
                task.add_done_callback(queue._asyncio_tasks.discard)
                if queue.live_updates:
                    queue.broadcast_estimations(concurrency_id)
        finally:
            queue.stopped = True
            queue._cancel_asyncio_tasks()

    async def start_progress_updates() -> None:
        while not queue.stopped:
            await progress.wait(WAKE_FALLBACK_S)
            for event in [event for job in queue.active_jobs if job is not None for event in job]:
                if event.progress_pending and event.progress:
                    event.progress_pending = False
                    queue.send_message(event, event.progress)
            await asyncio.sleep(queue.progress_update_sleep_when_free)  # at most one message per 10 ms, as gradio

    queue.push, queue.process_events, queue.set_progress = pushed, processed, reported
    queue.start_processing, queue.start_progress_updates = start_processing, start_progress_updates


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


# --- the app as an MCP server (gradio.mcp.GradioMCPServer, gradio[mcp] 6.31.0 with mcp 1.30.0) -------------------

# What the tool descriptions say about image parameters, instead of gradio's sentence (which points agents at a
# separate upload tool and "the returned path": a path is refused here, see mcp_image below)
MCP_IMAGE_HINT = (" Images go in as data URLs (data:image/png;base64,..., under about 180 kB: the request is capped at"
                  " 256 kB), such as an image a tool of this server returned, or as the URL of a file uploaded to"
                  " this app (gradio's upload_file_to_gradio tool gives one).")


def open_choices(dropdown: gr.Dropdown) -> gr.Dropdown:
    """A dropdown whose API parameter is any string, not the choices it had at launch: gradio describes a dropdown
    as an enum of its choices (even with allow_custom_value), and an MCP server checks arguments against that schema
    before the app sees them, so a model trained or pulled after launch would be refused. The app checks the value
    itself. (`api_info` on the instance, as file_parameter does.)"""
    dropdown.api_info = lambda: {"type": "string"}
    return dropdown


def list_parameter(item_type: str) -> gr.JSON:
    """A hidden JSON API parameter described as a list of `item_type` ("number", "integer"): gradio describes a
    gr.JSON as {"type": {}}, which is not valid JSON Schema, so an MCP server refuses every call of a tool that has
    one."""
    parameter = gr.JSON(visible=False)
    parameter.api_info = lambda: {"type": "array", "items": {"type": item_type}}
    return parameter


def not_a_tool(fn: Callable) -> Callable:
    """Leave an endpoint out of the MCP tool list (it stays in the REST API): gradio skips a function whose
    `_mcp_type` is not "tool" when it lists tools (a tool called by name still runs, as through REST)."""
    getattr(fn, "__func__", fn)._mcp_type = "not a tool"
    return fn


def mcp_resource(fn: Callable, uri: str) -> Callable:
    """`fn` served as the MCP resource `uri` (a template when it has {name} parts: each becomes an argument), once
    declared as an endpoint: gradio's decorator only marks the function, and lists it among the resources."""
    return gr.mcp.resource(uri, mime_type="text/plain")(fn)


def hide_gradio_events(demo: gr.Blocks) -> None:
    """Endpoints gradio adds by itself serve the page, not callers: the login button's check at each page load
    (public, as `_check_login_status`, so an MCP tool on a Space) becomes undocumented, which the page still calls."""
    for fn in demo.fns.values():
        if fn.api_visibility == "public" and (fn.api_name or "").startswith("_"):
            fn.api_visibility = "undocumented"


def mend_mcp_server() -> None:
    """Mend gradio's MCP server where it serves this app badly. Class attributes of GradioMCPServer, replaced once
    per process; tests/test_mcp.py fails if one stops working after an upgrade."""
    from gradio.mcp import GradioMCPServer as Server

    if getattr(Server, "_mnist_gan_mended", False):
        return
    # Tool calls went through a gradio_client Client back to the app's own queue. Its result thread polls for the
    # queue's messages every 50 ms, which doubled a fast call (generate: 78 against 29 ms through REST, measured);
    # a tool with several outputs (discriminate: a report and three images) came back as ONE text, the repr of the
    # tuple, unless the client sent a progress token; with a token each output was its own content, but the call
    # took 0.5 s longer (gradio read the job's updates until a 0.5 s wait for more timed out). Now a call joins the
    # app's queue over its own REST routes, asynchronously (queue/join, then that session's queue/data stream):
    # the same queue, concurrency limits and caller's headers (its sign-in cookie), one value per output, the
    # queue's news as progress notifications when the client asks for them.
    Server._get_or_create_client = lambda self: _Loopback(self)
    Server._execute_tool_without_progress = lambda self, call: call.result()
    Server._execute_tool_with_progress = _tool_result_with_progress
    # Answers: images as image content of the served file's own bytes (gradio re-encoded them with PIL, keeping one
    # frame of an animated GIF, and added an "Image URL" text that names the file's server path); dicts and lists
    # as JSON (gradio wrote Python's repr: True, None, single quotes); no output, nothing.
    Server.postprocess_output_data = _answer
    # Image parameters: gradio saved a data URL to a file and uploaded it to the app again through its loopback
    # client, from 127.0.0.1, so every MCP caller shared one bucket of the per-client upload limit (ui/limits.py);
    # an http(s) URL was fetched by the server. Now a data URL is written straight into gradio's upload folder (the
    # MCP request that carried it is under the request size limit, as the drawing pad's picture is), the URL of a
    # file uploaded to this app names that file, and anything else is refused with a plain message.
    Server.convert_strings_to_filedata = _image_inputs
    Server._file_data_tool_description = property(lambda self: MCP_IMAGE_HINT)
    simplify = Server.simplify_filedata_schema  # and the parameter says so: gradio's "format" spoke of http(s) URLs
    Server.simplify_filedata_schema = lambda self, schema: _as_uri(simplify(self, schema))
    Server._mnist_gan_mended = True


def _as_uri(simplified: tuple) -> tuple:
    """gradio's (schema, file positions), each file parameter a string of format "uri" (a data URL is one)."""
    def reformat(node):
        if isinstance(node, dict):
            return {key: "uri" if key == "format" and str(value).startswith("Gradio File Input") else reformat(value)
                    for key, value in node.items()}
        return [reformat(item) for item in node] if isinstance(node, list) else node

    schema, positions = simplified
    return reformat(schema), positions


class _Loopback:
    """What gradio's MCP server takes for its client: submit() makes a call of this app's queue."""

    def __init__(self, server):
        self.server = server

    def submit(self, *args, api_name: str, headers: dict | None = None) -> _Call:
        return _Call(self.server, api_name, list(args), headers or {})


LOOPBACK_SESSIONS = 16  # gradio sessions kept for MCP calls (more calls at once each get a new one)
# The caller's headers a call keeps (its sign-in cookie, where it comes from); the rest belong to its MCP request
_FORWARDED = ("cookie", "authorization", "user-agent", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
              "x-real-ip")


class _Call:
    """One call of the app's queue, from inside the app, over its REST routes (the loopback address)."""

    def __init__(self, server, api_name: str, data: list, headers: dict):
        self.server, self.api_name, self.data = server, api_name, data
        self.headers = {k: v for k, v in headers.items() if k.lower() in _FORWARDED} | {"x-gradio-user": "mcp"}

    async def messages(self):
        """The queue's messages about this call (dicts: estimation, process_starts, process_completed...). The
        call runs in a session kept for loopback calls, one call at a time each: a new session costs the app
        ~40 ms to set up (measured: a queue call took 73 ms in a new session, 26 ms in a used one)."""
        import asyncio
        import json
        import secrets

        import httpx

        block_fn = self.server.get_block_fn_from_endpoint_name(self.api_name)
        url = self.server.local_url.rstrip("/") + "/gradio_api/queue"
        http, sessions = getattr(self.server, "_loopback", (None, []))
        if http is None:  # one for the server's life: a new client costs ~10 ms (its TLS context), a call ~5
            http = httpx.AsyncClient(timeout=httpx.Timeout(30, read=None))
            self.server._loopback = http, sessions
        session, reusable = sessions.pop() if sessions else secrets.token_hex(12), False
        try:
            joined = await http.post(f"{url}/join", headers=self.headers, json={
                "data": self.data, "fn_index": block_fn._id, "session_hash": session, "event_data": None,
                "trigger_id": None})
            if joined.status_code != 200:
                raise RuntimeError(f"the app's queue refused the call ({joined.status_code}): {joined.text[:300]}")
            async with http.stream("GET", f"{url}/data", params={"session_hash": session},
                                   headers=self.headers) as stream:
                lines, completed = stream.aiter_lines(), False
                while True:  # to the stream's end, which follows the result at once: then the session is free
                    try:
                        line = await (asyncio.wait_for(anext(lines), 5) if completed else anext(lines))
                    except (StopAsyncIteration, asyncio.TimeoutError):
                        break
                    message = json.loads(line[5:]) if line.startswith("data:") else {}
                    kind = message.get("msg")
                    if kind == "close_stream":
                        reusable = completed
                        break
                    if kind in (None, "heartbeat"):
                        continue
                    yield message
                    completed = completed or kind == "process_completed"
                    if kind == "unexpected_error":
                        break
        finally:
            if reusable and len(sessions) < LOOPBACK_SESSIONS:
                sessions.append(session)

    async def result(self, on_news=None) -> list:
        """The call's outputs, one value each; its error message (gr.Error's, as the page shows it) raised."""
        outcome = None
        async for message in self.messages():
            if message.get("msg") in ("process_completed", "unexpected_error"):
                outcome = outcome or message
            elif on_news is not None and outcome is None:
                await on_news(message)
        if outcome is None:
            raise RuntimeError("the app's queue ended the call without a result")
        output = outcome.get("output") or {}
        if outcome.get("success"):
            return list(output.get("data") or [])
        raise RuntimeError(output.get("error") or output.get("title") or outcome.get("message") or "the call failed")

    async def __aiter__(self):
        """As gradio's resource and prompt readers take a gradio_client job: one final output."""
        from types import SimpleNamespace

        yield SimpleNamespace(type="output", final=True, outputs={"data": await self.result()})


async def _tool_result_with_progress(self, call: _Call, progress_token) -> list:
    context, step = self.mcp_server.request_context, [0]

    async def notify(message: dict):
        news = {"estimation": "In queue, position {rank} of {queue_size}.", "process_starts": "Processing."}
        if message.get("msg") in news:
            await context.session.send_progress_notification(
                progress_token=progress_token, progress=step[0], related_request_id=str(context.request_id),
                message=news[message["msg"]].format(rank=message.get("rank"), queue_size=message.get("queue_size")))
            step[0] += 1

    return await call.result(notify)


MCP_IMAGE_BYTES = 2 * 2**20  # as an upload (ui/limits.py)
IMAGE_TYPES = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".webp": "image/webp"}


def _answer(self, data, root_url) -> list:
    """A tool's outputs as MCP content: text (JSON for dicts and lists), then images; files never by path."""
    import base64
    import json

    from gradio_client.utils import is_file_obj_with_meta
    from mcp import types

    images: list = []

    def unfile(value):  # files (top level or inside a gallery's list) become images, referred to by number
        if is_file_obj_with_meta(value):
            path = Path(value.get("path") or "")
            kind = IMAGE_TYPES.get(path.suffix.lower())
            if kind is None:
                return "(a file that is not an image)"
            data = result_bytes(path)  # a spot-the-fake round's pictures are in memory only
            if data is None:
                return "(an image the server no longer has)"
            images.append(types.ImageContent(type="image", data=base64.b64encode(data).decode(), mimeType=kind))
            return f"(image {len(images)})"
        if isinstance(value, dict):
            return {key: unfile(item) for key, item in value.items()}
        if isinstance(value, list):
            return [unfile(item) for item in value]
        return value

    texts = []
    for value in data:
        if value is None:
            continue
        shown = unfile(value)
        if isinstance(shown, (dict, list)):
            texts.append(json.dumps(shown))
        elif not (is_file_obj_with_meta(value) and shown.startswith("(image ")):
            texts.append(str(shown))
    return [types.TextContent(type="text", text=text) for text in texts] + images


def _image_inputs(self, value, filedata_positions):
    """Each image parameter's string as a file in gradio's upload folder ({"path": ...}, which the app's
    uploaded_path accepts, and the loopback client passes on as it is)."""

    def convert(node, at: list):
        if isinstance(node, dict):
            return {key: convert(item, at + [key]) for key, item in node.items()}
        if isinstance(node, list):
            return [convert(item, at + [i]) for i, item in enumerate(node)]
        if isinstance(node, str) and at in filedata_positions:
            return {"path": mcp_image(node)}
        return node

    return convert(value, [])


def mcp_image(text: str) -> str:
    """The path in gradio's upload folder of an MCP image argument: a data URL (written there, named by its
    content) or the URL of a file uploaded to this app (…/gradio_api/file=PATH); ValueError otherwise."""
    import base64
    import binascii
    import hashlib
    import re
    from urllib.parse import unquote

    from gradio.utils import get_upload_folder, is_in_or_equal

    from mnist_gan.atomic_files import atomic_write

    folder = Path(get_upload_folder())
    data = re.match(r"data:image/(png|jpeg|jpg|gif|webp);base64,", text)
    if data:
        if len(text) - data.end() > MCP_IMAGE_BYTES * 4 // 3 + 4:  # the request limit is lower: a second fence
            raise ValueError(f"an image may be at most {MCP_IMAGE_BYTES // 2**20} MB")
        try:
            content = base64.b64decode(text[data.end():], validate=True)
        except binascii.Error:
            raise ValueError("the image's data URL is not valid base64") from None
        path = folder / "mcp" / f"{hashlib.sha256(content).hexdigest()[:32]}.{data.group(1)}"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, content, sync=False)
        return str(path)
    uploaded = re.match(r"https?://[^/]+(?:/[^?#]*)?/gradio_api/file=([^?#]+)$", text)
    if uploaded:
        path = Path(unquote(uploaded.group(1))).resolve()
        if is_in_or_equal(path, folder) and path.is_file():
            return str(path)
        raise ValueError("that URL is not a file uploaded to this app")
    raise ValueError("an image must be a data URL (data:image/png;base64,...) or the URL of a file uploaded to "
                     "this app")
