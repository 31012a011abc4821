"""What the tabs share: package errors shown as plain messages, the served result files, the page's header, and
the cheapest events run on gradio's event loop."""

from __future__ import annotations

import functools
import secrets
from collections import OrderedDict
from dataclasses import dataclass

import gradio as gr

from mnist_gan.access import Visitor
from mnist_gan.errors import MnistGanError, internal_error
from mnist_gan.images import MAX_SEED
from mnist_gan.service import Service
from mnist_gan.serving.served_files import ResultFiles

from .in_browser import WebAssets
from .limits import Limits, request_client

PRIVATE = {"api_visibility": "private", "api_name": "ui"}  # UI-only events: named ui, ui_1...
# No progress shown, and none tracked: on every event the page re-renders the loading status of each component
# any event has ever tracked (a tree walk and a state copy each); untracked, a slider move costs ~30 ms less.
FAST = {"concurrency_limit": None, "show_progress": "hidden", "show_progress_on": []}
# The service checks every value itself (one place, one message): gradio's own checks would answer first, with
# other words, and echo a huge bad value back whole.
RAW = {"preprocess": False}
# CSS classes (app.py's CSS): PIXELS draws enlarged digits with sharp pixels, not smoothed; LABELLED puts an image's
# label and buttons above it (floating, they hid the first digits of a grid and the first frames of a strip).
PIXELS, LABELLED = "pixels", "labelled"


class Scrubbed(OrderedDict):
    """Where each page (a gradio session) scrubbed a slider of the run's pictures to, as (run, index), for at most
    LIMIT pages: a page's stream forgets its own when it ends, and beyond LIMIT the oldest go (a page that never had
    a stream, a script's many sessions). A page stays there as the run makes more, and follows the latest again
    once it scrubs to the end or a new run starts."""

    LIMIT = 1000  # more than the open pages an app holds (Limits.max_streams)

    def record(self, page: str, run: str | None, index: float) -> None:
        self[page] = (run, index)
        self.move_to_end(page)  # a page that chose again is the newest
        if len(self) > self.LIMIT:
            self.popitem(last=False)

    def stays_at(self, page: str | None, run: str | None, shown: tuple | None) -> int | None:
        """The index `page` stays at in `run`, given the (run, count) it was last shown; None: it follows."""
        scrub = self.get(page)
        if scrub is None or shown is None or scrub[0] != run or shown[0] != run or scrub[1] >= shown[1] - 1:
            return None
        return int(scrub[1])


def on_event_loop(fn):
    """`fn` as a coroutine: gradio then runs it on its event loop instead of handing it to a worker thread and
    back. Only for functions of microseconds that never wait (no model, no file, no lock held for long: what the
    Train tab's stream already does there). Under a class, each hop to a thread and back waits for the GIL behind
    everything else: an event of microseconds run one at a time (spot-the-fake's toggle, before the marks moved
    into the page) waited a median 1.9 s as a thread's in a class of 50, 0.8 s as a coroutine."""

    @functools.wraps(fn)
    async def on_loop(*args, **kwargs):
        return fn(*args, **kwargs)

    return on_loop


def plain_errors(fn):
    """Package errors become a plain message on the page; anything else is a bug, logged with its traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except MnistGanError as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception as e:
            raise gr.Error(internal_error(e), print_exception=False) from None

    return wrapper


def visitor(profile: gr.OAuthProfile | None, token: gr.OAuthToken | None = None) -> Visitor:
    """Who calls, from gradio's login parameters."""
    return Visitor(profile.username if profile else None, token.token if token else None)


def new_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


def grid_file(drawing, files: ResultFiles, grid) -> str:
    """A Generate grid's PNG file (grid: Drawing.grid_request's), drawn once while it is kept: the tab and GET /png
    share it by its key, so a permalink of a grid just shown is read back, not drawn again."""
    return files.remembered(("grid", grid.key()), lambda: (files.png(drawing.draw(grid)),))[0]


@dataclass
class Page:
    """What every tab reaches: the service, the result files, the files the page loads to draw in the browser,
    and the header's model picker."""

    service: Service
    files: ResultFiles
    limits: Limits
    assets: WebAssets
    model: gr.Dropdown | None = None
    model_info: gr.Markdown | None = None

    def visitor(self, profile: gr.OAuthProfile | None = None, token: gr.OAuthToken | None = None,
                request: gr.Request | None = None) -> Visitor:
        """Who calls: their login (gradio's login parameters), the address their request came from, and its page."""
        client = request_client(request, self.limits.proxy_hops) if request is not None else ""
        page = (getattr(request, "session_hash", None) or "") if request is not None else ""
        return Visitor(profile.username if profile else None, token.token if token else None, client, page)

# d3 formats for plot axes: left to Vega, a plot of one point labelled its only tick "2,500.000000" and "8.564708"
STEP_AXIS, VALUE_AXIS = {"x_axis_format": ",d"}, {"y_axis_format": ".3~g"}
