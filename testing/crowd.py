"""A class of scripted visitors for the app, each replaying what a real page sends while a training run trains: the
page load (GET /, the page's own files on a first visit, the heartbeat, the page-load events and the Train tab's
stream, read for as long as the page is open), Resample, slider drags in the Latent explorer, a Look inside and a
spot-the-fake round; and a few scripts calling the REST API. Used by the crowd test (correctness) and
`python -m bench crowd` (the figures, before and after the in-browser generator).

A visitor is not a list of recorded requests: it plays the page's own event graph, read from the app's /config, the
way gradio's page does (recorded with headless Chromium, and checked against it):
- a user action fires the events bound to the component (`click`, `input`, `change`, `select`), each joining
  gradio's queue with the values the page holds for its inputs (a State as null), in the visitor's session; the
  results come on the session's one SSE stream; an event's `.then`/`.success` children follow it; an output that
  changes a component's value fires its `change` events; a state the server says changed fires its own. Trigger
  modes are kept ("once" drops a click while the last runs, "always_last" sends the newest values after it);
- an event that runs in the browser only (a `js` function, no Python) costs the server nothing by itself: the
  page's generator (ui/static/mnist-draw.js) then fetches what it really fetches, through a browser cache (the
  model's file and the runtime once per visitor, immutable; /draw/model revalidated; a seed's latents kept a day,
  and in the page: the next Resample's latents are fetched ahead; a slider move fetches nothing once the explorer
  has its directions). Panels of a tab not shown yet draw when it is first shown, as in the page;
- images a result shows are downloaded as the page does (those of a tab not shown, once it is shown).
The same driver runs the app before the in-browser generator (/work/baseline): its page's events are all Python,
so each Resample and slider move is a server call there, as it was. `draw="server"` makes the page's in-browser
panels ask the server instead (their `server_draw` fallback: a browser without the runtime).

Loops are bounded in time and in count; everything goes to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import secrets
import threading
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import httpx
from gradio_client.utils import apply_diff

from .app import ROOT, SAMPLE_RUN, AppProcess
from .system import cpu_seconds, percentile, rss_mb

VISITORS, SECONDS = 50, 60.0
SCRIPT_EVERY = 10  # every 10th visitor is a script calling the REST API (generate, latent): the server path
MAX_VISITS, MAX_ACTIONS = 200, 5_000  # per visitor: the loops are bounded in count as well as in time
EVENT_TIMEOUT_S = 30.0  # an event without its result by then is an error ("timeout")
ARRIVAL_S = 15.0  # a class opening the link shown on the screen: the visitors arrive over the first 15 s
IDLE_S = 20.0  # the run's speed with no visitors is measured over this long first
DRAG_MOVES, MOVE_S = 8, 0.06  # a slider drag: 8 moves, one every 60 ms (a hand dragging)
CYCLES = 3  # rounds of actions in one page, then a reload
STREAM_EVENTS = {"heartbeat", "queue/data"}  # long-lived streams: no latency of their own
# a Space's per-client limits (ui/limits.py's defaults there), on an app that is otherwise a local one (a Space
# would close training to all but its admins)
SPACE_LIMITS = {"MNIST_GAN_UPLOADS_PER_MINUTE": "120", "MNIST_GAN_STREAMS_PER_CLIENT": "60",
                "MNIST_GAN_EVENTS_PER_PAGE": "16", "MNIST_GAN_HEAVY_PER_PAGE": "1", "MNIST_GAN_PAGES_PER_ADDRESS": "60",
                "MNIST_GAN_PNG_PER_CLIENT": "2"}
STATIC = "page's static files"  # gradio's own scripts, styles and fonts, fetched on a first visit
KINDS = ("page load", "resample", "open explorer", "slider move", "look inside", "spot round", "api generate",
         "api latent")


# the visitors' HTTP client: aiohttp, whose parser is compiled. The driver stands for 50 browsers on other machines
# but shares this machine's 2 cores with the app and the run: httpx (pure Python) cost 1.15-1.3 ms of CPU a request
# against aiohttp's 0.16-0.18 (3,000 GETs of /draw/latents, 12 at a time), which the app and the run then lacked
HTTP_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)
# a request on a kept-alive connection the server closed as it left: sent again once, as browsers do
CLOSED_UNDER_IT = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)  # open as long as the page


def now() -> float:
    return time.perf_counter()


@dataclass(frozen=True)
class Answer:
    """A response, read whole."""
    status_code: int
    headers: dict[str, str]  # names in lower case
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


async def lines(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """An event stream's lines as they come, however long (aiohttp's own readline refuses a line over 128 KiB)."""
    pending = bytearray()
    async for chunk in response.content.iter_any():
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            yield pending[start:end].rstrip(b"\r").decode()
            start = end + 1
        del pending[:start]
    if pending:
        yield pending.decode()


class Figures:
    """Everything the visitors did and saw (one asyncio loop writes it)."""

    def __init__(self):
        self.requests: list[dict] = []  # one per server call: {what, kind, ms, ok, error}
        self.actions: list[dict] = []  # one per user action: {kind, ms, ok}
        self.errors: list[str] = []
        self.fetches: Counter = Counter()  # (visitor, path) -> GETs that reached the server, for files kept
        self.from_cache: Counter = Counter()  # path kind -> answered by the visitor's cache without asking
        self.resent = 0  # requests sent again after a kept-alive connection closed under them
        self.moves = 0  # slider moves (a drag's time is an action: its last move until all it asked is shown)

    def request(self, what: str, kind: str, started: float, ok: bool, error: str | None = None) -> None:
        self.requests.append({"what": what, "kind": kind, "ms": (now() - started) * 1000, "ok": ok, "error": error})
        if not ok:
            self.errors.append(f"{kind}: {what}: {error}"[:300])

    def action(self, kind: str, started: float, ok: bool) -> None:
        self.actions.append({"kind": kind, "ms": (now() - started) * 1000, "ok": ok})


class PageConfig:
    """The page's components and events, from the app's /config."""

    def __init__(self, config: dict):
        self.prefix = config.get("api_prefix", "/gradio_api")
        self.components = {c["id"]: c for c in config["components"]}
        self.deps = {d["id"]: d for d in config["dependencies"]}
        self.on: dict[tuple, list[dict]] = defaultdict(list)  # (component id, event) -> its events
        self.children: dict[int, list[dict]] = defaultdict(list)  # event id -> its .then/.success events
        self.load: list[dict] = []
        for d in config["dependencies"]:
            if d.get("trigger_after") is not None:
                self.children[d["trigger_after"]].append(d)
                continue
            for target, event in d["targets"]:
                if event == "load":
                    self.load.append(d)
                elif target is not None:
                    self.on[(target, event)].append(d)
        self.ids: dict[str, int] = {}
        for c in config["components"]:
            self.ids.setdefault(c["props"].get("elem_id"), c["id"])  # components without an id share None
        self.tab_of: dict[int, str] = {}  # component id -> the label of the tab it sits in
        self.tabs = {c["props"].get("label"): c["id"] for c in config["components"] if c["type"] == "tabitem"}
        self._walk(config["layout"], None)
        self.panels = {c["props"]["props"]["panel"]: c for c in config["components"]
                       if isinstance(c["props"].get("props"), dict) and "panel" in c["props"]["props"]}
        self.scripts = sorted({m for c in self.panels.values()
                               for m in re.findall(r'src="([^"]+)"', c["props"].get("head") or "")})

    def _walk(self, node: dict, tab: str | None) -> None:
        component = self.components.get(node["id"], {})
        if component.get("type") == "tabitem":
            tab = component["props"].get("label")
        if tab:
            self.tab_of[node["id"]] = tab
        for child in node.get("children", []) or []:
            self._walk(child, tab)

    def initial(self) -> dict[int, object]:
        return {cid: c["props"].get("value") for cid, c in self.components.items()}

    def is_state(self, cid: int) -> bool:
        return self.components.get(cid, {}).get("type") == "state"

    def runtime(self) -> dict | None:
        for c in self.panels.values():
            return c["props"]["props"]["runtime"]
        return None


class BrowserCache:
    """A visitor's HTTP cache, as Chromium keeps the page's files: immutable or fresh (max-age) answers are reused
    without asking; others with an ETag are asked again with If-None-Match (a 304 reuses them)."""

    def __init__(self):
        self.kept: dict[str, tuple[float, str | None, bytes]] = {}  # url -> (fresh until, etag, body)

    async def get(self, visitor: Visitor, url: str, kind: str, what: str) -> bytes | None:
        found = self.kept.get(url)
        if found and found[0] > time.monotonic():
            visitor.figures.from_cache[what] += 1
            return found[2]
        headers = {"if-none-match": found[1]} if found and found[1] else {}
        started = now()
        try:
            answer = await visitor.send("GET", url, headers=headers)
        except HTTP_ERRORS as e:
            visitor.figures.request(what, kind, started, False, f"{type(e).__name__}: {e}")
            return None
        ok = answer.status_code in (200, 304)
        visitor.figures.request(what, kind, started, ok, None if ok else f"{answer.status_code}: {answer.text[:200]}")
        visitor.figures.fetches[(visitor.index, url.split("?")[0])] += 1
        if not ok:
            return None
        # kept: what the page reads (JSON); of the rest (the model's file, scripts, images) only that it is there
        body = found[2] if answer.status_code == 304 else (answer.content if "json" in answer.headers.get(
            "content-type", "") else b"")
        control = answer.headers.get("cache-control", "")
        age = re.search(r"max-age=(\d+)", control)
        if "no-cache" in control or "no-store" in control:
            fresh = 0.0
        elif age:
            fresh = time.monotonic() + int(age.group(1))
        elif answer.headers.get("last-modified"):
            fresh = time.monotonic() + 3600.0  # a browser's heuristic freshness for a file without max-age
        else:
            fresh = 0.0
        self.kept[url] = (fresh, answer.headers.get("etag"), body)
        return body


class Page:
    """One open page of a visitor: its session, the values its components hold, its events in flight."""

    def __init__(self, visitor: Visitor):
        self.v, self.cfg = visitor, visitor.cfg
        self.session = secrets.token_hex(6)
        self.values = self.cfg.initial()
        self.tab = "Generate"
        self.pending: dict[str, tuple] = {}  # event id -> (dep, started, kind)
        self.early: dict[str, list] = defaultdict(list)  # messages that came before their join's answer
        self.streamed: dict[str, list] = {}  # a stream's outputs as last sent (the next come as diffs of them)
        self.running: Counter = Counter()  # dep id -> runs in flight
        self.again: dict[int, str] = {}  # dep id -> the action kind of a newer trigger, to send after ("always_last")
        self.busy = 0  # events and in-browser drawings in flight (the stream aside)
        self.generators = 0
        self.joined = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.hidden_files: dict[int, str] = {}  # component -> the image it shows in a tab not shown yet
        # the page's generator (mnist-draw.js): its kept latents, directions, paths and next seeds; requests of
        # panels not attached yet (their tab never shown)
        self.kept: dict[str, object] = {}
        self.next_seeds: dict[str, int] = {}
        self.attached = {"grid"}
        self.queued: dict[str, list] = {}
        self.model_info: dict | None = None

    # --- the page's life ------------------------------------------------------------------------------------

    async def open(self) -> None:
        v = self.v
        started = now()
        await self.get_page()
        self.tasks.append(asyncio.create_task(self.hold(f"{self.cfg.prefix}/heartbeat/{self.session}", "heartbeat")))
        self.tasks.append(asyncio.create_task(self.read()))
        for dep in self.cfg.load:
            self.fire(dep, "page load")
        ok = await self.settle()
        v.figures.action("page load", started, ok)

    async def get_page(self) -> None:
        v = self.v
        started = now()
        try:
            answer = await v.send("GET", v.url)
            v.figures.request("GET / (the page)", "page load", started, answer.status_code == 200,
                              None if answer.status_code == 200 else str(answer.status_code))
        except HTTP_ERRORS as e:
            v.figures.request("GET / (the page)", "page load", started, False, f"{type(e).__name__}: {e}")
        # the page's scripts, styles and fonts, six at a time as a browser fetches them: once per visitor, then
        # from its cache
        urls = [v.url + path.lstrip("/") for path in v.static] + [v.url + src for src in self.cfg.scripts]
        for start in range(0, len(urls), 6):
            await asyncio.gather(*(v.cache.get(v, url, "page load", STATIC)
                                   for url in urls[start:start + 6]))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def hold(self, path: str, what: str) -> None:
        """A stream the page keeps open while it is open (the heartbeat), read and thrown away."""
        try:
            async with self.v.http.get(self.v.url + path.lstrip("/"), timeout=STREAM_TIMEOUT) as stream:
                async for _ in stream.content.iter_any():
                    pass
        except (*HTTP_ERRORS, asyncio.CancelledError):
            pass

    async def read(self) -> None:
        """The session's SSE stream of results, opened while events are in flight (as the page does)."""
        url = f"{self.v.url}{self.cfg.prefix.lstrip('/')}/queue/data"
        try:
            for _ in range(MAX_ACTIONS):
                await self.joined.wait()
                try:
                    async with self.v.http.get(url, params={"session_hash": self.session},
                                               timeout=STREAM_TIMEOUT) as stream:
                        async for line in lines(stream):
                            if line.startswith("data:"):
                                self.message(json.loads(line[5:]))
                except HTTP_ERRORS as e:
                    if self.pending:
                        self.v.figures.errors.append(f"queue/data: {type(e).__name__}: {e}")
                        await asyncio.sleep(0.5)
                if not self.pending:
                    self.joined.clear()
                else:  # the stream ended with events in flight: open it again (as the page does), not at once
                    await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            pass

    async def settle(self, timeout: float = EVENT_TIMEOUT_S) -> bool:
        """Until nothing the visitor started is in flight (the stream aside); False after `timeout`."""
        deadline = time.monotonic() + timeout
        await asyncio.sleep(0)
        while self.busy > 0:
            if time.monotonic() > deadline:
                for event_id, (dep, started, kind) in list(self.pending.items()):
                    if not dep["types"]["generator"]:
                        self.v.figures.request(f"event {dep['api_name']}", kind, started, False, "timeout")
                        self.finish(event_id)
                return False
            await asyncio.sleep(0.02)
        return True

    # --- events ---------------------------------------------------------------------------------------------

    def mark(self, index: int, kind: str) -> bool:
        """A click on a spot-the-fake thumbnail: the page ticks (or unticks) its box itself and sends nothing; an
        app that marks on the server (a checkout before the marks moved into the page) gets its select event.
        Whether something was sent."""
        gallery = self.cfg.ids["spot-gallery"]
        if self.cfg.on.get((gallery, "select")):
            items = self.values.get(gallery) or []
            self.trigger(gallery, "select", kind, {"index": index, "value": items[index] if index < len(items)
                                                   else None, "selected": True})
            return True
        cid = self.cfg.ids["spot-marked"]
        ticked, number = list(self.values.get(cid) or []), str(index + 1)
        self.values[cid] = [m for m in ticked if m != number] if number in ticked else ticked + [number]
        return False

    def trigger(self, elem: str | int, event: str, kind: str, event_data: dict | None = None) -> None:
        cid = self.cfg.ids[elem] if isinstance(elem, str) else elem
        for dep in self.cfg.on.get((cid, event), []):
            self.fire(dep, kind, event_data)

    def fire(self, dep: dict, kind: str, event_data: dict | None = None) -> None:
        if not dep.get("backend_fn"):
            self.in_browser(dep, kind)
            return
        mode = dep.get("trigger_mode", "once")
        if self.running[dep["id"]] and mode != "multiple":
            if mode == "always_last":
                self.again[dep["id"]] = kind
            return
        data = [None if self.cfg.is_state(i) else self.values.get(i) for i in dep["inputs"]]
        self.running[dep["id"]] += 1
        if dep["types"]["generator"]:
            self.generators += 1
        else:
            self.busy += 1
        self.tasks.append(asyncio.create_task(self.join(dep, data, event_data, kind)))

    async def join(self, dep: dict, data: list, event_data: dict | None, kind: str) -> None:
        v = self.v
        body = {"data": data, "event_data": event_data, "fn_index": dep["id"], "trigger_id": 0,
                "session_hash": self.session}
        started = now()
        try:
            answer = await v.send("POST", f"{v.url}{self.cfg.prefix.lstrip('/')}/queue/join", json=body)
            event_id = answer.json().get("event_id") if answer.status_code == 200 else None
        except (*HTTP_ERRORS, ValueError) as e:
            answer, event_id = None, None
            error = f"{type(e).__name__}: {e}"
        if event_id is None:
            if answer is not None:
                error = f"join {answer.status_code}: {answer.text[:200]}"
            v.figures.request(f"event {dep['api_name']}", kind, started, False, error)
            self.done(dep, kind)
            return
        self.pending[event_id] = (dep, started, kind)
        self.joined.set()
        for message in self.early.pop(event_id, []):
            self.message(message)

    def message(self, m: dict) -> None:
        event_id = m.get("event_id")
        if event_id is None:
            return
        if event_id not in self.pending:
            if m.get("msg") in ("process_completed", "process_generating", "unexpected_error"):
                self.early[event_id].append(m)
            return
        dep, started, kind = self.pending[event_id]
        msg = m.get("msg")
        if msg == "process_generating":  # a stream's first outputs whole, then each output as a diff of its last
            output = dict(m.get("output") or {})
            data = output.get("data") or []
            if event_id in self.streamed:
                last = self.streamed[event_id]
                last += [None] * (len(data) - len(last))
                data = [apply_diff(before, edits) for before, edits in zip(last, data)]
            self.streamed[event_id] = list(data)
            output["data"] = data
            self.outputs(dep, output, kind)
        elif msg in ("process_completed", "unexpected_error"):
            success = msg == "process_completed" and m.get("success", False)
            output = m.get("output") or {}
            if dep["types"]["generator"]:
                if not success and output.get("error"):  # a stream that ended with an error
                    self.v.figures.errors.append(f"stream {dep['api_name']}: {str(output.get('error'))[:200]}")
            else:
                self.v.figures.request(f"event {dep['api_name']}", kind, started, success,
                                       None if success else str(output.get("error") or m.get("message"))[:200])
            if success:
                self.outputs(dep, output, kind)
            self.finish(event_id)
            for child in self.cfg.children.get(dep["id"], []):
                if (child.get("trigger_only_on_success") and not success) or \
                        (child.get("trigger_only_on_failure") and success):
                    continue
                self.fire(child, kind)

    def finish(self, event_id: str) -> None:
        dep, _, kind = self.pending.pop(event_id)
        self.streamed.pop(event_id, None)
        self.done(dep, kind)

    def done(self, dep: dict, kind: str) -> None:
        self.running[dep["id"]] -= 1
        if dep["types"]["generator"]:
            self.generators -= 1
        else:
            self.busy -= 1
        if dep["id"] in self.again and not self.running[dep["id"]]:
            self.fire(dep, self.again.pop(dep["id"]))

    def outputs(self, dep: dict, output: dict, kind: str) -> None:
        """A result's outputs into the page's values; `change` events of what changed; its images downloaded."""
        data = output.get("data") or []
        changed = set(output.get("changed_state_ids") or [])
        streamed = dep["types"]["generator"]
        for cid, value in zip(dep["outputs"], data):
            if self.cfg.is_state(cid):
                continue
            if isinstance(value, dict) and value.get("__type__") == "update":
                if "value" not in value:
                    continue
                value = value["value"]
            if json.dumps(value, sort_keys=True, default=str) != json.dumps(self.values.get(cid), sort_keys=True,
                                                                            default=str):
                self.values[cid] = value
                changed.add(cid)
                if not streamed:
                    self.show_files(cid, value, kind)
        for cid in changed:
            self.trigger(cid, "change", kind)

    def show_files(self, cid: int, value, kind: str) -> None:
        """The images a component now shows, fetched by the page once its tab is shown."""
        tab = self.cfg.tab_of.get(cid)
        urls = list(_file_urls(value))
        if not urls:
            return
        if tab and tab != self.tab:
            self.hidden_files[cid] = urls
            return
        for url in urls:
            self.spawn(self.fetch_file(url, kind))

    async def fetch_file(self, url: str, kind: str) -> None:
        """An image a result shows (an image shown again, such as a round's after its answer, comes from the
        browser's cache)."""
        await self.v.cache.get(self.v, url, kind, "GET result image")

    def spawn(self, coroutine) -> None:
        """Work the visitor waits for (settle) that is not an event: a download, an in-browser drawing."""
        self.busy += 1

        async def run():
            try:
                await coroutine
            finally:
                self.busy -= 1

        self.tasks.append(asyncio.create_task(run()))

    def show_tab(self, label: str, kind: str) -> None:
        self.tab = label
        self.trigger(self.cfg.tabs[label], "select", kind)
        for cid in [c for c in self.hidden_files if self.cfg.tab_of.get(c) == label]:
            for url in self.hidden_files.pop(cid):
                self.spawn(self.fetch_file(url, kind))
        if label == "Latent explorer":  # the explorer's panels attach, and draw what waited for them
            self.attached |= {"latent", "strip"}
            for panel, (action, values) in list(self.queued.items()):
                if panel in self.attached:
                    del self.queued[panel]
                    self.spawn(self.draw(action, values, kind))

    # --- the page's generator (ui/static/mnist-draw.js) -------------------------------------------------------

    def in_browser(self, dep: dict, kind: str) -> None:
        js = dep.get("js") or ""
        values = [self.values.get(i) for i in dep["inputs"]]
        if "nextSeed" in js:  # Resample: the seed whose latents the page fetched ahead
            model, n, digit, temperature = values
            key = json.dumps([model, n, digit, temperature])
            seed = self.next_seeds.pop(key, None)
            self.values[dep["outputs"][0]] = seed if seed is not None else random.randrange(2**32)
        action = next((a for a in ("generate", "explore", "interpolate") if f"['{a}'" in js), None)
        if action:
            panel = {"generate": "grid", "explore": "latent", "interpolate": "strip"}[action]
            if panel in self.attached:
                self.spawn(self.draw(action, values, kind))
            else:
                self.queued[panel] = (action, values)
        for child in self.cfg.children.get(dep["id"], []):
            self.fire(child, kind)

    async def draw(self, action: str, values: list, kind: str) -> None:
        panel = {"generate": "grid", "explore": "latent", "interpolate": "strip"}[action]
        if self.v.draw == "server":  # the runtime blocked: the panel's fallback, the server draws
            self.trigger(self.cfg.panels[panel]["id"], "server_draw", kind)
            return
        info = await self.browser_model(values[0], kind)
        if info is None or not info.get("onnx"):
            self.trigger(self.cfg.panels[panel]["id"], "server_draw", kind)
            return
        if action == "generate":
            model, seed, n, digit, temperature = values
            await self.draw_json("latents", {"model": model, "seed": seed, "n": n, "digit": digit,
                                             "temperature": temperature}, kind)
            key = json.dumps([model, n, digit, temperature])
            if key not in self.next_seeds:  # ahead: the next Resample's latents
                seed = self.next_seeds[key] = random.randrange(2**32)
                await self.draw_json("latents", {"model": model, "seed": seed, "n": n, "digit": digit,
                                                 "temperature": temperature}, kind)
        elif action == "explore":
            model, seed, digit, mode, start = values[:5]
            await self.draw_json("directions", {"model": model, "mode": mode}, kind)
            if not start:
                await self.draw_json("latents", {"model": model, "seed": seed, "n": 1, "digit": digit if
                                                 info.get("conditional") else "all digits", "temperature": 1}, kind)
        else:
            model, seed_a, seed_b, frames, _ = values
            await self.draw_json("interpolation", {"model": model, "seed_a": seed_a, "seed_b": seed_b,
                                                   "frames": frames}, kind)

    async def browser_model(self, model: str, kind: str) -> dict | None:
        """draw/model once per page (revalidated by the cache), then the runtime and the model's file."""
        v = self.v
        if self.model_info is None:
            body = await v.cache.get(v, f"{v.url}draw/model?model={model}", kind, "GET /draw/model")
            if body is None:
                return None
            self.model_info = json.loads(body)
            onnx = self.model_info.get("onnx")
            runtime = self.cfg.runtime()
            if onnx and runtime:
                for name in runtime["files"].values():
                    await v.cache.get(v, v.url + runtime["base"] + name, kind, "runtime files (onnxruntime-web)")
                await v.cache.get(v, v.url + onnx["url"], kind, "the model's ONNX file")
        return self.model_info

    async def draw_json(self, route: str, params: dict, kind: str) -> None:
        key = json.dumps([route, params], sort_keys=True)
        if key in self.kept:  # the page's own kept latents and directions
            self.v.figures.from_cache[f"GET /draw/{route}"] += 1
            return
        query = urlencode({k: str(value) for k, value in params.items()})
        if await self.v.cache.get(self.v, f"{self.v.url}draw/{route}?{query}", kind, f"GET /draw/{route}") \
                is not None:
            self.kept[key] = True


def address(index: int) -> str:
    """Visitor `index`'s own loopback address: 127.0.1.1, 127.0.1.2, ..."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


def _file_urls(value):
    """The URLs of the files (gradio FileData) in an output value."""
    if isinstance(value, dict):
        if isinstance(value.get("url"), str) and value.get("path"):
            yield value["url"]
        else:
            for item in value.values():
                yield from _file_urls(item)
    elif isinstance(value, list):
        for item in value:
            yield from _file_urls(item)


class Visitor:
    """One person (one browser profile) coming back to the page again and again, or a script."""

    def __init__(self, index: int, url: str, cfg: PageConfig, figures: Figures, static: list[str], draw: str,
                 shared_address: bool = False):
        self.index, self.url, self.cfg, self.figures, self.static, self.draw = index, url, cfg, figures, static, draw
        self.cache = BrowserCache()
        self.rng = random.Random(index)
        # a browser's connections to one host (HTTP/1.1; the page's streams hold two of them), from an address of
        # its own in 127.0.0.0/8: each visitor is a client of its own to the app's per-client bounds, as visitors
        # of a Space are; or all from one (`shared_address`), as a class behind one school's NAT
        # (waiting for one of the 8 connections counts as connecting; a read waits at most EVENT_TIMEOUT_S)
        self.local_addr = (address(0 if shared_address else index), 0)
        self.timeout = aiohttp.ClientTimeout(total=None, connect=EVENT_TIMEOUT_S, sock_connect=10,
                                             sock_read=EVENT_TIMEOUT_S)
        connector = aiohttp.TCPConnector(local_addr=self.local_addr, limit=8, keepalive_timeout=5)
        self.http = aiohttp.ClientSession(connector=connector, timeout=self.timeout)

    async def send(self, method: str, url: str, **options) -> Answer:
        """A request, its answer read whole; sent again once, on a new connection, when the kept-alive one it went
        out on turns out closed by the server before any answer (as browsers do: the server may close an idle
        connection as the request leaves). Not on another kept-alive one, which the server may be closing too: a
        class's run once lost a Look's queue join so, a POST, which aiohttp itself never sends again."""
        try:
            return await self._send(self.http, method, url, **options)
        except CLOSED_UNDER_IT:
            self.figures.resent += 1
        connector = aiohttp.TCPConnector(local_addr=self.local_addr, force_close=True)
        async with aiohttp.ClientSession(connector=connector, timeout=self.timeout) as fresh:
            return await self._send(fresh, method, url, **options)

    @staticmethod
    async def _send(http: aiohttp.ClientSession, method: str, url: str, **options) -> Answer:
        async with http.request(method, url, **options) as answer:
            return Answer(answer.status, {k.lower(): v for k, v in answer.headers.items()}, await answer.read())

    async def think(self, low: float = 0.3, high: float = 1.0) -> None:
        await asyncio.sleep(self.rng.uniform(low, high))

    async def visit(self, deadline: float) -> None:
        """One page visit: load the page, then rounds of what a visitor does in it (Resample, slider drags, a Look
        inside, a spot-the-fake round), CYCLES of them, then leave (and come back: a reload)."""
        page = Page(self)
        try:
            await page.open()
            for _ in range(CYCLES):
                for act in (self.resample, self.drag, self.look, self.spot):
                    if time.monotonic() > deadline:
                        return
                    await self.think()
                    await act(page)
        finally:
            await page.close()

    async def resample(self, page: Page) -> None:
        if page.tab != "Generate":
            page.show_tab("Generate", "resample")
        for n in range(2):
            if n:
                await self.think()
            started = now()
            page.trigger("resample", "click", "resample")
            self.figures.action("resample", started, await page.settle())

    async def drag(self, page: Page) -> None:
        """Two drags of a slider in the Latent explorer (its first showing draws the digit and the strip)."""
        if page.tab != "Latent explorer":
            started = now()
            page.show_tab("Latent explorer", "open explorer")
            self.figures.action("open explorer", started, await page.settle())
        for n in range(2):
            await self.think()
            cid = self.cfg.ids[f"slider-{self.rng.randrange(4)}"]
            for move in range(DRAG_MOVES):
                if move:
                    await asyncio.sleep(MOVE_S)
                started = now()
                self.values_move(page, cid)
                page.trigger(cid, "input", "slider move")
                self.figures.moves += 1
            # a drag's time: from its last move until everything it asked for is shown
            self.figures.action("slider move", started, await page.settle())

    async def look(self, page: Page) -> None:
        """Look inside a held-out test digit (the first time: the Inside tab shown, its source picked)."""
        started = now()
        if page.tab != "Inside the GAN":
            page.show_tab("Inside the GAN", "look inside")
        if page.values.get(self.cfg.ids["inside-source"]) != "test":
            page.values[self.cfg.ids["inside-source"]] = "test"
            page.trigger("inside-source", "change", "look inside")
        page.values[self.cfg.ids["inside-index"]] = self.rng.randrange(1000)
        page.trigger("inside-look", "click", "look inside")
        self.figures.action("look inside", started, await page.settle())

    async def spot(self, page: Page) -> None:
        """A spot-the-fake round: a new round, two pictures marked, the answer."""
        started = now()
        page.trigger("spot-new", "click", "spot round")
        ok = await page.settle()
        items = page.values.get(self.cfg.ids["spot-gallery"]) or []
        for index in self.rng.sample(range(len(items)), min(2, len(items))):
            await self.think(0.2, 0.5)
            if page.mark(index, "spot round"):
                ok = await page.settle() and ok
        page.trigger("spot-answer", "click", "spot round")
        self.figures.action("spot round", started, await page.settle() and ok)

    def values_move(self, page: Page, cid: int) -> None:
        value = float(page.values.get(cid) or 0)
        page.values[cid] = round(max(-4.0, min(4.0, value + self.rng.choice((-0.1, 0.1)) * 3)), 1)

    async def script(self, deadline: float) -> None:
        """A script on the REST API: a 64-digit grid, then a digit moved along sliders, each image downloaded."""
        for n in range(MAX_ACTIONS):
            if time.monotonic() > deadline:
                return
            if n % 2 == 0:
                kind, data = "api generate", ["mlp-uncond", self.rng.randrange(2**32), 64, "all digits", 1.0]
            else:
                kind, data = "api latent", ["mlp-uncond", self.rng.randrange(2**32), "0", "directions",
                                            [round(self.rng.uniform(-3, 3), 1) for _ in range(4)]]
            started = now()
            ok = await self.rest(kind.split()[1], data, kind)
            self.figures.action(kind, started, ok)
            await self.think(0.5, 1.5)

    async def rest(self, endpoint: str, data: list, kind: str) -> bool:
        started = now()
        base = f"{self.url}{self.cfg.prefix.lstrip('/')}/call/{endpoint}"
        try:
            answer = await self.send("POST", base, json={"data": data})
            if answer.status_code != 200:
                self.figures.request(f"REST {endpoint}", kind, started, False, f"{answer.status_code}")
                return False
            event_id, state, result = answer.json()["event_id"], None, None
            async with self.http.get(f"{base}/{event_id}") as stream:
                async for line in lines(stream):
                    if line.startswith("event:"):
                        state = line[6:].strip()
                    elif line.startswith("data:") and state in ("complete", "error"):
                        result = json.loads(line[5:]) if state == "complete" else line[5:]
                        break
            ok = state == "complete"
            self.figures.request(f"REST {endpoint}", kind, started, ok, None if ok else str(result)[:200])
            if ok:
                for url in _file_urls(result):
                    started = now()
                    image = await self.send("GET", url)
                    self.figures.request("GET result image", kind, started, image.status_code == 200,
                                         None if image.status_code == 200 else str(image.status_code))
            return ok
        except (*HTTP_ERRORS, ValueError, KeyError) as e:
            self.figures.request(f"REST {endpoint}", kind, started, False, f"{type(e).__name__}: {e}")
            return False

    async def run(self, deadline: float) -> None:
        try:
            await asyncio.sleep(self.rng.uniform(0, ARRIVAL_S))
            if self.index % SCRIPT_EVERY == SCRIPT_EVERY - 1:
                await self.script(deadline)
                return
            for _ in range(MAX_VISITS):
                if time.monotonic() > deadline:
                    return
                await self.visit(deadline)
        except Exception as e:  # noqa: BLE001  (a bug of the driver: said, not hidden)
            self.figures.errors.append(f"visitor {self.index}: {type(e).__name__}: {e}")
        finally:
            await self.http.close()


async def crowd(url: str, cfg: PageConfig, visitors: int, seconds: float, static: list[str], draw: str,
                figures: Figures, shared_address: bool = False) -> None:
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(Visitor(i, url, cfg, figures, static, draw, shared_address).run(deadline)
                           for i in range(visitors)))


# --- server CPU per action, measured alone ------------------------------------------------------------------------

async def cpu_per_action(url: str, cfg: PageConfig, pid: int, static: list[str], draw: str,
                         repeats: int = 5) -> dict[str, float]:
    """Server CPU milliseconds per action of each kind: one visitor doing `repeats` of each, one at a time, the
    app's CPU time before and after each block, less what the app spends idle meanwhile (its open page's stream,
    the run's status)."""
    figures = Figures()
    v = Visitor(0, url, cfg, figures, static, draw)
    used: dict[str, float] = {}

    def cpu() -> float:
        return cpu_seconds([pid]).get(pid, 0.0)

    try:
        page = Page(v)
        first = Page(v)  # the first visit: its files fetched (the later loads find them in the browser's cache)
        await first.open()
        await first.close()
        started_cpu, started = cpu(), time.monotonic()
        for _ in range(repeats):  # page loads (reloads), each a page of its own
            other = Page(v)
            await other.open()
            await other.close()
        page_loads = (cpu() - started_cpu, time.monotonic() - started)
        await page.open()
        await asyncio.sleep(1.0)
        idle_cpu, idle_started = cpu(), time.monotonic()
        await asyncio.sleep(3.0)
        idle_rate = (cpu() - idle_cpu) / (time.monotonic() - idle_started)
        used["page load"] = (page_loads[0] - idle_rate * page_loads[1]) / repeats

        async def block(kind: str, act, count: int) -> None:
            before, t0 = cpu(), time.monotonic()
            for _ in range(count):
                await act()
            used[kind] = max(0.0, (cpu() - before) - idle_rate * (time.monotonic() - t0)) / count

        async def resample():
            page.trigger("resample", "click", "resample")
            await page.settle()

        async def move():
            cid = cfg.ids["slider-0"]
            v.values_move(page, cid)
            page.trigger(cid, "input", "slider move")
            await page.settle()

        async def look():
            page.values[cfg.ids["inside-index"]] = v.rng.randrange(1000)
            page.trigger("inside-look", "click", "look inside")
            await page.settle()

        async def spot():
            page.trigger("spot-new", "click", "spot round")
            await page.settle()
            if page.mark(0, "spot round"):
                await page.settle()
            page.trigger("spot-answer", "click", "spot round")
            await page.settle()

        async def generate():
            await v.rest("generate", ["mlp-uncond", v.rng.randrange(2**32), 64, "all digits", 1.0], "api generate")

        await block("resample", resample, 4 * repeats)
        page.show_tab("Latent explorer", "open explorer")
        await page.settle()
        await block("slider move", move, 10 * repeats)
        page.show_tab("Inside the GAN", "look inside")
        page.values[cfg.ids["inside-source"]] = "test"
        page.trigger("inside-source", "change", "look inside")
        await page.settle()
        await block("look inside", look, repeats)
        await block("spot round", spot, repeats)
        await block("api generate", generate, 2 * repeats)
        await page.close()
    finally:
        await v.http.close()
    return {kind: round(1000 * seconds, 1) for kind, seconds in used.items()}


# --- the run ------------------------------------------------------------------------------------------------------

def page_files(url: str) -> list[str]:
    """The static files a page names itself (its entry script and style): what a first visit fetches at least,
    when no browser recorded the whole list (see bench/crowd.py)."""
    html = httpx.get(url, timeout=60).text
    return sorted({m.lstrip("./") for m in re.findall(r'(?:src|href)="(\./assets/[^"]+)"', html)})


def steps_per_s(status: Callable[[], dict], seconds: float) -> tuple[float, int]:
    first = status()
    t0 = time.monotonic()
    time.sleep(seconds)
    last = status()
    return (last["step"] - first["step"]) / (time.monotonic() - t0), last["step"]


def run_crowd(folder: Path, visitors: int = VISITORS, seconds: float = SECONDS, *, root: Path = ROOT,
              draw: str = "browser", static: list[str] | None = None, idle_s: float = IDLE_S,
              observer: Callable | None = None, cpu_repeats: int = 5, one_address: bool = False,
              space_limits: dict | None = None, split: bool = False) -> dict:
    """Start the app (`python app.py` in `root`), start a training run, measure its speed alone, then let the crowd
    in for `seconds`; then the server's CPU per action, measured alone. The figures, as a dict.

    observer(url, ready, go, seconds), in a thread of its own (a Chromium tab among the visitors): opens its page,
    calls ready(the static files its page fetched: every visitor's first visit fetches those), waits for `go` (the
    crowd's start), measures for `seconds` and returns its figures.

    one_address: the class behind one address (a school's NAT), on a Space's per-client limits (`space_limits`,
    the environment that sets them; default SPACE_LIMITS).

    split: the app and its run on one CPU, the visitors (this process: the driver, the observer's browser) on the
    others, as on a Space of one CPU whose visitors' machines are their own (with two CPUs here, a class of half
    the size is the same load per CPU)."""
    limits = (SPACE_LIMITS if space_limits is None else space_limits) if one_address else {}
    with visitors_apart(split) as server, \
            AppProcess(folder, {"MNIST_GAN_CACHE_MB": "64", **limits}, root=root, cpus=server) as app:
        cfg = PageConfig(httpx.get(app.url + "config", timeout=60).json())
        app.named("train_start", **SAMPLE_RUN)
        app.wait_for(lambda s: s["state"] == "running" and s["step"] >= 50, 300, "the run's first steps")
        # warm up, as a first visitor would: the models loaded, the explorer's directions found
        asyncio.run(_warm(app.url, cfg, page_files(app.url), draw))
        observed, go = {}, threading.Event()
        if observer:  # its tab opened (and the page's files it fetched recorded) before the run is timed alone
            recorded, prepared = [], threading.Event()

            def observe() -> None:
                try:
                    observed.update(observer(app.url, lambda files: (recorded.extend(files), prepared.set()), go,
                                             seconds))
                except Exception as e:  # noqa: BLE001  (the table says so; the crowd's figures stand)
                    observed["error"] = f"{type(e).__name__}: {e}"[:300]
                finally:
                    prepared.set()

            seen = threading.Thread(target=observe, daemon=True)
            seen.start()
            prepared.wait(300)
            static = static if static is not None else (recorded or None)
        static = page_files(app.url) if static is None else static
        pid, workers = app.process.pid, app.children()
        machine = busy_cores()
        worker_cpu = sum(cpu_seconds(workers).values())
        alone, _ = steps_per_s(app.status, idle_s)
        machine_alone = busy_cores(machine)
        worker_alone = (sum(cpu_seconds(workers).values()) - worker_cpu) / idle_s
        figures, samples, stop = Figures(), [], threading.Event()

        def watch() -> None:
            while not stop.wait(1.0):
                samples.append((time.monotonic(), rss_mb(pid)[0], len(figures.requests)))

        watcher = threading.Thread(target=watch, daemon=True)
        rss_start, step_start, cpu_start = rss_mb(pid)[0], app.status()["step"], cpu_seconds([pid]).get(pid, 0.0)
        driver_start, worker_cpu, machine = time.process_time(), sum(cpu_seconds(workers).values()), busy_cores()
        started = time.monotonic()
        watcher.start()
        go.set()
        asyncio.run(crowd(app.url, cfg, visitors, seconds, static, draw, figures, one_address))
        wall = time.monotonic() - started
        status = app.status()
        cpu_used = cpu_seconds([pid]).get(pid, 0.0) - cpu_start
        cores = {"machine_alone": machine_alone, "machine_crowd": busy_cores(machine),
                 "training_alone": worker_alone, "training_crowd": (sum(cpu_seconds(workers).values()) - worker_cpu) / wall,
                 "server_crowd": cpu_used / wall, "driver_crowd": (time.process_time() - driver_start) / wall}
        if observer:
            seen.join(240)
        stop.set()
        watcher.join(5)
        rss_end = rss_mb(pid)[0]
        per_action = asyncio.run(cpu_per_action(app.url, cfg, pid, static, draw, cpu_repeats))
        app.call("train_stop")
    figures = summarize(figures, visitors, wall, samples, rss_start, rss_end, alone,
                        (status["step"] - step_start) / wall, status["state"], cpu_used, per_action, observed)
    figures["cores"] = {name: round(value, 2) for name, value in cores.items()}
    figures["app_cpus"] = sorted(server) if server else None
    return figures


@contextmanager
def visitors_apart(split: bool):
    """With `split`: the first CPU this process may use for the app (yielded), the others for this thread and the
    threads and processes it starts (the driver, the observer's browser), this thread's CPUs given back after.
    Without: None, nothing changed."""
    mine = os.sched_getaffinity(0)
    if not split:
        yield None
        return
    if len(mine) < 2:
        raise ValueError(f"a split class needs two CPUs or more; this process may run on {len(mine)}")
    server = {min(mine)}
    os.sched_setaffinity(0, mine - server)
    try:
        yield server
    finally:
        os.sched_setaffinity(0, mine)


def busy_cores(since: tuple[float, float] | None = None):
    """The machine's busy CPU time and the time, from /proc/stat; with `since` (an earlier reading): the cores busy
    on average since then (everyone's: this machine is shared)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = (sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)) / os.sysconf("SC_CLK_TCK")
    reading = (busy, time.monotonic())
    return reading if since is None else (busy - since[0]) / (reading[1] - since[1])


async def _warm(url: str, cfg: PageConfig, static: list[str], draw: str) -> None:
    """A first visitor: one of each action (the models loaded, the explorer's directions found, every model call's
    first run traced), so that the crowd measures the app warm."""
    figures = Figures()
    v = Visitor(0, url, cfg, figures, static, draw)
    try:
        page = Page(v)
        await page.open()
        for act in (v.resample, v.drag, v.look, v.spot):
            await act(page)
        await v.rest("generate", ["mlp-uncond", 0, 64, "all digits", 1.0], "api generate")
        await v.rest("latent", ["mlp-uncond", 0, "0", "directions", [1.0]], "api latent")
        await page.close()
    finally:
        await v.http.close()
    if figures.errors:
        raise RuntimeError(f"the first visit failed: {figures.errors[:3]}")


def summarize(f: Figures, visitors: int, wall: float, samples: list, rss_start: float, rss_end: float,
              alone: float, during: float, state: str, cpu_used: float, per_action: dict, observed: dict) -> dict:
    server = [r["ms"] for r in f.requests if r["ok"]]
    acted = [r["ms"] for r in f.requests if r["ok"] and r["what"] != STATIC]  # a first visit's page files aside
    half = samples[len(samples) // 2] if samples else (0, rss_start, 0)
    by_what = {}
    for what in dict.fromkeys(r["what"] for r in f.requests):
        times = [r["ms"] for r in f.requests if r["what"] == what and r["ok"]]
        by_what[what] = {"calls": len([r for r in f.requests if r["what"] == what]),
                         "p50_ms": round(percentile(times, 0.5)) if times else None,
                         "p99_ms": round(percentile(times, 0.99)) if times else None}
    actions = {}
    for kind in KINDS:
        times = [a["ms"] for a in f.actions if a["kind"] == kind and a["ok"]]
        count = f.moves if kind == "slider move" else len([a for a in f.actions if a["kind"] == kind])
        actions[kind] = {"count": count, "failed": len([a for a in f.actions if a["kind"] == kind and not a["ok"]]),
                         "p50_ms": round(percentile(times, 0.5)) if times else None,
                         "p99_ms": round(percentile(times, 0.99)) if times else None,
                         "server_calls": len([r for r in f.requests if r["kind"] == kind]),
                         "cpu_ms_alone": per_action.get(kind)}
    files = Counter(path.rsplit("/", 1)[-1] for (_, path) in f.fetches if path.endswith(".onnx"))
    model_fetches = Counter(index for (index, path) in f.fetches if path.endswith(".onnx"))
    return {
        "visitors": visitors, "seconds": round(wall, 1), "server_calls": len(f.requests),
        "calls_per_s": round(len(f.requests) / wall, 1), "errors": f.errors,
        "resent": f.resent, "p50_ms": round(percentile(server, 0.5)) if server else None,
        "p99_ms_without_page_files": round(percentile(acted, 0.99)) if acted else None,
        "p99_ms": round(percentile(server, 0.99)) if server else None,
        "by_what": by_what, "actions": actions, "from_cache": dict(f.from_cache),
        "model_file": {"fetches": sum(files.values()), "visitors_fetching": len(model_fetches),
                       "most_by_one_visitor": max(model_fetches.values(), default=0)},
        "training": {"state": state, "steps_per_s_alone": round(alone, 2), "steps_per_s_crowd": round(during, 2),
                     "ratio": round(during / alone, 2) if alone else None},
        "server_cpu_s": round(cpu_used, 1), "server_cpu_per_s": round(cpu_used / wall, 2),
        "rss_mib": {"start": round(rss_start), "peak": round(max([rss_start, rss_end, *(s[1] for s in samples)])),
                    "end": round(rss_end), "every_10_s": [round(s[1]) for s in samples[9::10]],
                    "second_half_mib": round(rss_end - half[1], 1), "second_half_calls": len(f.requests) - half[2],
                    "last_20_s_mib": round(rss_end - samples[-21][1], 1) if len(samples) > 20 else None},
        "browser": observed,
    }
