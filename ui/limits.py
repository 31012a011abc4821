"""Bounds on what one request can make the server hold, before anything reads it (an ASGI middleware).

Gradio parses a request's whole body before any check of ours runs: a 100 MB value in a dropdown cost 340 MB of
memory and came back whole in the error (measured). So bodies over a limit are refused from their Content-Length
(413), uploads are limited per client and minute (429), and nothing of a refused body is read or echoed.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque

MAX_BODY_BYTES = 256 * 1024  # the largest call the page makes (the explorer's 20 inputs) is ~2 kB
MAX_UPLOAD_BYTES = 2 * 1024 * 1024  # an image; gradio's max_file_size checks each file too
UPLOADS_PER_MINUTE = 30  # per client


class RequestLimits:
    def __init__(self, app, max_body: int = MAX_BODY_BYTES, max_upload: int = MAX_UPLOAD_BYTES,
                 uploads_per_minute: int = UPLOADS_PER_MINUTE):
        self.app, self.max_body, self.max_upload = app, max_body, max_upload
        self.uploads_per_minute = uploads_per_minute
        self._uploads: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        upload = scope["path"].rstrip("/").endswith("/upload")
        limit = self.max_upload if upload else self.max_body
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if not length.isdigit() and headers.get(b"transfer-encoding"):  # chunked: no size known before reading
            return await _refuse(send, 411, "send a Content-Length")
        if length.isdigit() and int(length) > limit:
            return await _refuse(send, 413, f"the request is larger than {limit:,} bytes")
        if upload and not self._may_upload(_client(scope, headers)):
            return await _refuse(send, 429, f"at most {self.uploads_per_minute} uploads a minute: wait a little")
        return await self.app(scope, receive, send)

    def _may_upload(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = self._uploads[client]
            while recent and now - recent[0] > 60:
                recent.popleft()
            if len(recent) >= self.uploads_per_minute:
                return False
            recent.append(now)
            if len(self._uploads) > 10_000:  # forget idle clients: the table is bounded too
                for key in [k for k, v in self._uploads.items() if not v]:
                    del self._uploads[key]
            return True


def _client(scope, headers: dict) -> str:
    """Who sent the request: behind the Spaces proxy, the first X-Forwarded-For address."""
    forwarded = headers.get(b"x-forwarded-for", b"").split(b",")[0].strip()
    return forwarded.decode("latin-1") if forwarded else (scope.get("client") or ("?",))[0]


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
