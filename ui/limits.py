"""Bounds on what one client can make the server read, hold or spend, and who a client is.

Three places hold the line, each before the work it guards:
- `RequestLimits`, an ASGI middleware in front of every route, reads at most a limit of each request's body (the
  bytes actually received, whatever Content-Length or Transfer-Encoding claim: a chunked body under a small length
  once carried 100 MB), refuses oversized ones with 413 and too many uploads with 429, and answers Gradio's unused
  recording route with 404.
- `QueueLimits` decides, when an event asks to join Gradio's queue, whether it may: open Train-tab streams per
  address and in all, events waiting or running per page, and per page at most one or two of the expensive kinds
  (inversion, D's pull, GIFs of runs); an address may hold `pages_per_address` pages' worth of them. The queue
  then serves addresses in turn (ui/gradio_glue.py's `guard_queue`): one address's backlog never delays another's
  first call.
- The /png route draws at most `png_per_client` new grids at a time for one client (429 and Retry-After beyond).

A client is what a visitor cannot choose: behind a Hugging Face Space's proxy, the address the proxy appended to
X-Forwarded-For (the values before it are whatever the visitor sent); elsewhere, the connection's own address.
A page is one session of a client (an open tab; an API call without a session is a page of its own). A class
behind one school's NAT is one address and many pages: the limits that a person's page needs are per page, and an
address holds a class's worth of them, served in turn with every other address.
On a Space every per-client limit is on by default; locally (`python app.py`, a script's own machine) they are
off unless set; every limit has an environment variable (`Limits.from_env`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from mnist_gan.access import on_space

UPLOAD_SUFFIX = "/upload"
UNUSED_ROUTES = ("/gradio_api/process_recording",)  # Gradio's audio recordings: this app records nothing
STREAM_GROUP = "train-stream"  # the concurrency group of the Train tab's stream (ui/train.py)
HEAVY_GROUPS = {"inside-invert": 1, "inside": 2, "lab-heavy": 1}  # per page on a Space: ~seconds of CPU each
CLASS_PAGES = 60  # a class behind one school's NAT: the pages one address may have on a Space (a class of 50)


def _number(environ, name: str, default: int | None) -> int | None:
    """An integer limit from the environment: unset keeps `default`, 0 or "off" turns the limit off."""
    value = (environ.get(name) or "").strip().lower()
    if not value:
        return default
    if value in ("0", "off", "none"):
        return None
    try:
        return max(1, int(float(value)))
    except ValueError:
        return default


@dataclass(frozen=True)
class Limits:
    """Every bound on one client, and on all streams together. None: no limit."""

    max_body: int = 256 * 1024  # bytes of a request body; the largest call the page makes (20 sliders) is ~2 kB
    max_upload: int = 2 * 1024 * 1024  # bytes of an upload (an image); gradio's max_file_size checks each file too
    proxy_hops: int = 0  # trusted proxies in front (a Space: 1): the client is the address the nearest one appended
    max_streams: int = 400  # open Train-tab streams, all pages together: each holds a queue slot (launch adds them)
    uploads_per_minute: int | None = None  # per address
    streams_per_client: int | None = None  # per address: a class behind one NAT is one address
    events_per_page: int | None = None  # events waiting or running (streams aside)
    heavy_per_page: dict[str, int] | None = None  # concurrency group -> events waiting or running
    pages_per_address: int | None = None  # an address may hold this many pages' worth of the two above
    png_per_client: int | None = None  # new /png grids drawn at once, per address

    @classmethod
    def from_env(cls, environ=os.environ) -> Limits:
        space = on_space(environ)

        def per_client(name: str, default: int, before: str | None = None) -> int | None:
            if before and name not in environ and before in environ:  # the name it had when it was per address
                name = before
            return _number(environ, name, default if space else None)

        heavy = per_client("MNIST_GAN_HEAVY_PER_PAGE", 1, "MNIST_GAN_HEAVY_PER_CLIENT")
        pages = per_client("MNIST_GAN_PAGES_PER_ADDRESS", CLASS_PAGES)
        return cls(max_body=(_number(environ, "MNIST_GAN_MAX_BODY_KB", 256) or 256) * 1024,
                   max_upload=(_number(environ, "MNIST_GAN_MAX_UPLOAD_KB", 2048) or 2048) * 1024,
                   proxy_hops=_number(environ, "MNIST_GAN_PROXY_HOPS", 1 if space else None) or 0,
                   max_streams=_number(environ, "MNIST_GAN_MAX_STREAMS", 400) or 400,
                   uploads_per_minute=per_client("MNIST_GAN_UPLOADS_PER_MINUTE", 120),
                   streams_per_client=per_client("MNIST_GAN_STREAMS_PER_CLIENT", CLASS_PAGES),
                   events_per_page=per_client("MNIST_GAN_EVENTS_PER_PAGE", 16, "MNIST_GAN_EVENTS_PER_CLIENT"),
                   heavy_per_page=None if heavy is None else {g: n * heavy for g, n in HEAVY_GROUPS.items()},
                   pages_per_address=pages,
                   png_per_client=per_client("MNIST_GAN_PNG_PER_CLIENT", 2))


def client_of(headers, peer: str | None, proxy_hops: int) -> str:
    """Who sent a request: the address the nearest trusted proxy appended to X-Forwarded-For, else the peer's.
    headers: a mapping with lower-case names (bytes from an ASGI scope, or str from a Starlette request)."""
    if proxy_hops:
        raw = headers.get(b"x-forwarded-for", b"") if isinstance(next(iter(headers), ""), bytes) else \
            headers.get("x-forwarded-for", "")
        raw = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if len(values) >= proxy_hops:
            return values[-proxy_hops]
    return peer or "?"


def scope_client(scope, proxy_hops: int) -> str:
    return client_of(dict(scope.get("headers") or []), (scope.get("client") or (None,))[0], proxy_hops)


def request_client(request, proxy_hops: int) -> str:
    """The client of a Starlette/FastAPI request (or gradio's Request, which wraps one)."""
    client = getattr(request, "client", None)
    return client_of({k.lower(): v for k, v in request.headers.items()}, getattr(client, "host", None), proxy_hops)


@dataclass
class PerMinute:
    """Events per client over the last minute. Clients idle for a minute are forgotten as others arrive, oldest
    first, each in O(1): the table stays as small as the last minute's clients."""

    limit: int
    window_s: float = 60.0
    _seen: OrderedDict = field(default_factory=OrderedDict)  # client -> deque of times; least recent first
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._seen:
                first, times = next(iter(self._seen.items()))
                if now - times[-1] <= self.window_s:
                    break
                del self._seen[first]
            times = self._seen.pop(client, None) or deque()
            while times and now - times[0] > self.window_s:
                times.popleft()
            allowed = len(times) < self.limit
            if allowed:
                times.append(now)
            if times:
                self._seen[client] = times  # now the most recent
            return allowed

    def __len__(self) -> int:
        return len(self._seen)


class BodyTooLarge(Exception):
    pass


class RequestLimits:
    """The ASGI middleware (see the module's docstring)."""

    def __init__(self, app, limits: Limits | None = None):
        self.app, self.limits = app, limits or Limits.from_env()
        self.uploads = PerMinute(self.limits.uploads_per_minute) if self.limits.uploads_per_minute else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"].rstrip("/")
        if path in UNUSED_ROUTES:
            return await _refuse(send, 404, "not found")
        upload = path.endswith(UPLOAD_SUFFIX) and scope["method"] == "POST"
        limit = self.limits.max_upload if upload else self.limits.max_body
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return await _refuse(send, 413, f"the request is larger than {limit:,} bytes")  # nothing read
        try:
            body = await _read(receive, limit)
        except BodyTooLarge:
            return await _refuse(send, 413, f"the request is larger than {limit:,} bytes")
        if upload and self.uploads is not None and not self.uploads.allow(scope_client(scope, self.limits.proxy_hops)):
            return await _refuse(send, 429, f"at most {self.limits.uploads_per_minute} uploads a minute: wait a "
                                            "little", retry_after=10)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect a streaming response listens for

        return await self.app(scope, replay, send)


async def _read(receive, limit: int) -> bytes:
    """The whole request body, refused (BodyTooLarge) as soon as more than `limit` bytes arrived."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _refuse(send, status: int, message: str, retry_after: int | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class QueueLimits:
    """Whether a page may add an event to Gradio's queue, given what the queue holds (see the module's docstring).
    Used by ui/gradio_glue.py's guard on the queue's door."""

    def __init__(self, limits: Limits):
        self.limits = limits

    def refusal(self, request, page: str, group: str, events) -> str | None:
        """Why `request`'s page (its session) may not have one more event of concurrency `group` now (None: it may).
        events: (client, page, group) of every event the queue holds, waiting or running."""
        limits = self.limits
        client = request_client(request, limits.proxy_hops) if request is not None else "?"
        events = list(events)
        mine = [(p, g) for c, p, g in events if c == client]  # this address's: its pages together
        if group == STREAM_GROUP:
            if sum(g == STREAM_GROUP for _, _, g in events) >= limits.max_streams:
                return (f"the server is showing the training run to {limits.max_streams} pages already: this page "
                        "will not follow it live (reload it later)")
            if limits.streams_per_client and sum(g == STREAM_GROUP for _, g in mine) >= limits.streams_per_client:
                return (f"{limits.streams_per_client} pages from your address already follow the training run: "
                        "close some, then reload this one to follow it too")
            return None
        pages = limits.pages_per_address
        if limits.events_per_page:
            waiting = [p for p, g in mine if g != STREAM_GROUP]
            if waiting.count(page) >= limits.events_per_page:
                return (f"this page has {limits.events_per_page} requests waiting or running already: wait for "
                        "them to finish (each visitor's share of this Space)")
            if pages and len(waiting) >= limits.events_per_page * pages:
                return (f"your address has {limits.events_per_page * pages} requests waiting or running already: "
                        "wait a little (each address's share of this Space)")
        cap = (limits.heavy_per_page or {}).get(group)
        if cap:
            kind = "an inversion" if group == "inside-invert" else "a request of this kind"
            if [p for p, g in mine if g == group].count(page) >= cap:
                return (f"you already have {kind} waiting or running: wait for it to finish (each visitor's share "
                        "of this Space)")
            if pages and sum(g == group for _, g in mine) >= cap * pages:
                return (f"your address has {cap * pages} of these waiting or running already: wait a little (each "
                        "address's share of this Space)")
        return None
