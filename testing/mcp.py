"""The app as an agent reaches it: the official `mcp` client over streamable HTTP (/gradio_api/mcp/), one open
session driven from plain synchronous code (tests, benchmarks), and its answers as pixels and JSON."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import io
import json
import threading

import numpy as np
from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from PIL import Image

from mnist_gan.images import encode_png


def mcp_url(app_url: str) -> str:
    return app_url.rstrip("/") + "/gradio_api/mcp/"


class McpClient:
    """`with McpClient(app_url) as mcp:` one MCP session (initialized) on a thread of its own; every call waits at
    most `timeout` seconds. A session the transport ended (the official client ends it on an HTTP error) makes
    every later call fail."""

    def __init__(self, app_url: str, timeout: float = 120.0, headers: dict | None = None):
        self.url, self.timeout, self.headers = mcp_url(app_url), timeout, headers
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="mcp-client")
        self._closed: asyncio.Event | None = None
        self._held: concurrent.futures.Future | None = None
        self.session: ClientSession | None = None
        self.server_name = ""

    def __enter__(self) -> McpClient:
        self._thread.start()
        ready: concurrent.futures.Future = concurrent.futures.Future()
        self._held = asyncio.run_coroutine_threadsafe(self._hold(ready), self._loop)
        try:
            self.session = ready.result(self.timeout)
        except BaseException:
            self.__exit__()
            raise
        return self

    async def _hold(self, ready: concurrent.futures.Future) -> None:
        """Open the session, and keep it open (one task: the transport's scopes must close where they opened)."""
        self._closed = asyncio.Event()
        try:
            async with create_mcp_http_client(headers=self.headers) as http, \
                    streamable_http_client(self.url, http_client=http) as (read, write, _):
                async with ClientSession(read, write) as session:
                    self.server_name = (await session.initialize()).serverInfo.name
                    ready.set_result(session)
                    await self._closed.wait()
        except BaseException as e:
            if not ready.done():
                ready.set_exception(e)
            raise

    def run(self, coroutine):
        """A coroutine of the session, run on its loop; its result."""
        done = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, self.timeout), self._loop)
        return done.result(self.timeout + 10)

    def tools(self) -> list:
        return self.run(self.session.list_tools()).tools

    def call(self, name: str, arguments: dict | None = None, progress: bool | list = False):
        """A tool call's CallToolResult. progress: send a progress token; a list collects the notifications'
        messages."""
        async def noted(_progress, _total, message):
            if isinstance(progress, list):
                progress.append(message)

        return self.run(self.session.call_tool(name, arguments or {},
                                               progress_callback=noted if progress is not False else None))

    def read(self, uri: str) -> str:
        """A text resource's text."""
        return self.run(self.session.read_resource(uri)).contents[0].text

    def __exit__(self, *exc) -> None:
        if self._closed is not None:
            self._loop.call_soon_threadsafe(self._closed.set)
        if self._held is not None:
            try:
                self._held.result(30)
            except BaseException:  # a session the transport already ended: nothing left to close
                pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


def texts(result) -> list[str]:
    return [c.text for c in result.content if c.type == "text"]


def report(result) -> dict:
    """The JSON text of a tool's answer (its first text)."""
    return json.loads(texts(result)[0])


def images(result) -> list[tuple[str, bytes]]:
    """(mime type, bytes) of each image of a tool's answer, in order."""
    return [(c.mimeType, base64.b64decode(c.data)) for c in result.content if c.type == "image"]


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("L"))


def data_url(image: np.ndarray) -> str:
    """A uint8 image as the PNG data URL an agent sends."""
    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode()
