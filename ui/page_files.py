"""Gradio's page files answered from memory: what a class's first visits cost the server most (see PageFiles).

Checked with gradio 6.31.0, like ui/gradio_glue.py: it reads gradio's frontend build folder and relies on gradio's
BrotliMiddleware passing an answer that is already encoded as it is (tests/test_drawing_routes.py checks both).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from pathlib import Path

from .in_browser import IMMUTABLE


class PageFiles:
    """Gradio's page files (GET /assets/NAME: the scripts and styles of its frontend, 103 of a first visit's 105
    files) answered from memory, compressed once, and kept by browsers a year.

    Gradio 6.31 reads each from disk and compresses it again on every request (its BrotliMiddleware, quality 4):
    1.8 ms of server CPU a file, 190 ms a first visit, measured, and a class arrives at once. Its answers carry an
    ETag but no Cache-Control, so a browser asks again. The names carry a content hash (vite's build: a new gradio
    build names its files anew), so a name's bytes never change: cached a year, immutable. An ASGI middleware
    inside gradio's BrotliMiddleware, which passes an answer that is already encoded as it is. Anything it does
    not know (another path, a name that is not a file of the build) goes on to gradio."""

    PREFIX = "/assets/"
    COMPRESSIBLE = (".js", ".css", ".json", ".svg", ".html", ".txt", ".map")  # fonts, images: compressed already

    def __init__(self, app, folder: str | Path | None = None):
        from gradio.routes import BUILD_PATH_LIB

        self.app, self.folder = app, Path(folder or BUILD_PATH_LIB).resolve()
        self.kept: dict[tuple[str, str], tuple[bytes, list]] = {}  # (name, encoding) -> (body, headers)

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        root = (scope.get("root_path") or "").rstrip("/")
        if root and path.startswith(root):
            path = path[len(root):]
        if not path.startswith(self.PREFIX) or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        accepted = headers.get(b"accept-encoding", b"").decode("latin-1")
        found = self._file(path[len(self.PREFIX):], "br" if "br" in accepted else "gzip" if "gzip" in accepted
                           else "")
        if found is None:
            return await self.app(scope, receive, send)
        body, answer = found
        etag = dict(answer)[b"etag"]
        if etag in headers.get(b"if-none-match", b""):
            status, body, answer = 304, b"", [h for h in answer if h[0] != b"content-length"]
        else:
            status = 200
        await send({"type": "http.response.start", "status": status, "headers": answer})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})

    def _file(self, name: str, encoding: str) -> tuple[bytes, list] | None:
        import brotli  # gradio's own dependency, for its BrotliMiddleware

        if not name.endswith(self.COMPRESSIBLE):
            encoding = ""
        found = self.kept.get((name, encoding))
        if found is not None:
            return found
        if not name or "/" in name or "\\" in name or name.startswith("."):
            return None
        path = (self.folder / name).resolve()
        if path.parent != self.folder or not path.is_file():
            return None
        raw = path.read_bytes()
        body = brotli.compress(raw, quality=5) if encoding == "br" else gzip.compress(raw, 6, mtime=0) \
            if encoding == "gzip" else raw
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        headers = [(b"content-type", (kind + ("; charset=utf-8" if kind.startswith("text/") else "")).encode()),
                   (b"content-length", str(len(body)).encode()), (b"cache-control", IMMUTABLE.encode()),
                   (b"etag", b'"%s"' % hashlib.sha256(raw).hexdigest()[:32].encode()), (b"vary", b"Accept-Encoding")]
        if encoding:
            headers.append((b"content-encoding", encoding.encode()))
        self.kept[(name, encoding)] = (body, headers)  # bounded: the files of one gradio build, three ways at most
        return body, headers
