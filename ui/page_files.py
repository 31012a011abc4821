"""Gradio's page and its files answered from memory, and the app's result files from their folder, before gradio's
routes: what a class's page loads and looks cost the server most (see PageFiles, RenderedPages and ResultFileRoute).

Checked with gradio 6.31.0, like ui/gradio_glue.py: it reads gradio's frontend build folder and relies on gradio's
BrotliMiddleware passing an answer that is already encoded as it is (tests/test_drawing_routes.py checks both).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from mnist_gan.serving.served_files import NAME as RESULT_NAME, ResultFiles

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
        path = _path(scope)
        if not path.startswith(self.PREFIX) or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        found = self._file(path[len(self.PREFIX):], _encoding(headers))
        if found is None:
            return await self.app(scope, receive, send)
        await _send_file(scope, send, *found)

    def _file(self, name: str, encoding: str) -> tuple[bytes, list] | None:
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
        body = _encoded(raw, encoding)
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        headers = [(b"content-type", (kind + ("; charset=utf-8" if kind.startswith("text/") else "")).encode()),
                   (b"content-length", str(len(body)).encode()), (b"cache-control", IMMUTABLE.encode()),
                   (b"etag", b'"%s"' % hashlib.sha256(raw).hexdigest()[:32].encode()), (b"vary", b"Accept-Encoding")]
        if encoding:
            headers.append((b"content-encoding", encoding.encode()))
        self.kept[(name, encoding)] = (body, headers)  # bounded: the files of one gradio build, three ways at most
        return body, headers


class RenderedPages:
    """GET / (the page, its config inside) and GET /config answered from memory, rendered once per root URL.

    Gradio 6.31 deep-copies its whole config (374 blocks) and rewrites every URL in it on each request: 48-55 ms of
    server CPU per GET /, nearly half of a page load's (bench/README.md, "The page rendered once"). The answer
    depends only on the Blocks' config, made at launch (`config()`: a new one empties the cache), on the root URL
    the request names (its Host, the proxy's X-Forwarded-* headers) and on the user of gradio's own login, which
    this app does not use. So the first 200 for a root is kept (the KEEP latest roots: a
    client choosing its headers cannot fill the memory) and compressed once per encoding asked. A query (a page, a
    deep link, a theme), HEAD, a gradio login cookie, or an answer that sets a cookie or is not a plain 200, goes
    to gradio as before."""

    PATHS = ("/", "/config")
    ROOT_HEADERS = (b"host", b"x-forwarded-host", b"x-forwarded-proto", b"x-gradio-server")
    KEEP = 16

    def __init__(self, app, config: Callable[[], object] = lambda: None):
        self.app, self.config = app, config
        # key -> (gradio's body, its headers, {encoding: (body, headers) as sent}), the latest used last
        self.kept: OrderedDict[tuple, tuple[bytes, list, dict]] = OrderedDict()
        self.made_from = None

    async def __call__(self, scope, receive, send):
        path = _path(scope)
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("query_string") or path not in self.PATHS:
            return await self.app(scope, receive, send)
        headers = scope.get("headers") or []
        if any(name == b"cookie" and b"access-token" in value for name, value in headers):
            return await self.app(scope, receive, send)
        if self.config() is not self.made_from:  # gradio made a new config (launch does, more than once)
            self.kept.clear()
            self.made_from = self.config()
        key = (path, scope.get("scheme"), scope.get("root_path"), scope.get("server"),
               tuple((name, value) for name, value in headers if name in self.ROOT_HEADERS))
        if key not in self.kept:
            return await self._render(key, scope, receive, send)
        self.kept.move_to_end(key)
        raw, kept_headers, answers = self.kept[key]
        encoding = _encoding(dict(headers))
        if encoding not in answers:
            body = _encoded(raw, encoding)
            answer = [h for h in kept_headers if h[0].lower() != b"content-length"]
            answer += [(b"content-length", str(len(body)).encode()), (b"vary", b"Accept-Encoding")]
            answers[encoding] = body, answer + ([(b"content-encoding", encoding.encode())] if encoding else [])
        body, answer = answers[encoding]
        await send({"type": "http.response.start", "status": 200, "headers": answer})
        await send({"type": "http.response.body", "body": body})

    async def _render(self, key: tuple, scope, receive, send) -> None:
        """Gradio's answer, sent on as it comes, and kept when it is a plain 200."""
        start, parts = {}, []

        async def keep(message):
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body"):
                    names = {name.lower() for name, _ in start.get("headers", [])}
                    if start.get("status") == 200 and not names & {b"set-cookie", b"content-encoding"}:
                        self.kept[key] = b"".join(parts), list(start["headers"]), {}
                        while len(self.kept) > self.KEEP:
                            self.kept.popitem(last=False)
            await send(message)

        await self.app(scope, receive, keep)


class ResultFileRoute:
    """The app's result files (ResultFiles: the images and GIFs of Generate's fallback, Inside and the Train tab,
    under gradio's file URL /gradio_api/file=PATH) sent straight from memory, or else from their folder.

    Gradio's route costs ~2 ms of server CPU a file (FastAPI resolving the route's dependencies, gradio's path
    checks, a FileResponse; measured), and a look inside shows up to six files, a spot-the-fake round sixteen. A
    result's name is its content's hash or random, and a file is never rewritten (ResultFiles), so its bytes never
    change: cached a year, immutable. The latest are in memory (ResultFiles.recent): read from the disk here, on
    the event loop, each file would stall every request while its system calls wait for the GIL; a spot-the-fake
    round's pictures are only there. Only a plain GET or HEAD of a file directly in the folder, named as ResultFiles
    names, is answered here; anything else (another path, a trimmed file, a Range) goes on to gradio, which answers
    it as before."""

    PREFIX = "/gradio_api/file="

    def __init__(self, app, files: ResultFiles):
        self.app, self.files, self.folder = app, files, files.folder
        self.names = {str(self.folder.absolute()), str(self.folder.resolve())}  # how a URL may name the folder

    async def __call__(self, scope, receive, send):
        path = _path(scope)
        if not path.startswith(self.PREFIX) or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        file = Path(path[len(self.PREFIX):])
        if b"range" in headers or str(file.parent) not in self.names or not RESULT_NAME.fullmatch(file.name):
            return await self.app(scope, receive, send)
        body = self.files.read(file.name)  # tens of kB, from the page cache when not in memory: no thread hop
        if body is None:  # trimmed since, or never there: gradio says so as before
            return await self.app(scope, receive, send)
        kind = b"image/png" if file.suffix == ".png" else b"image/gif"
        await _send_file(scope, send, body, [
            (b"content-type", kind), (b"content-length", str(len(body)).encode()),
            (b"cache-control", IMMUTABLE.encode()), (b"etag", b'"%s"' % file.stem.encode()),
            (b"content-disposition", b'inline; filename="%s"' % file.name.encode())])


async def _send_file(scope, send, body: bytes, answer: list) -> None:
    """An immutable file's answer (its headers carry its ETag): 304 with no body when the request holds the ETag
    already, and no body for HEAD."""
    if dict(answer)[b"etag"] in dict(scope.get("headers") or []).get(b"if-none-match", b""):
        status, body, answer = 304, b"", [h for h in answer if h[0] != b"content-length"]
    else:
        status = 200
    await send({"type": "http.response.start", "status": status, "headers": answer})
    await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})


def _path(scope) -> str:
    """The request's path below the app's root path."""
    path = scope.get("path", "") if scope["type"] == "http" else ""
    root = (scope.get("root_path") or "").rstrip("/")
    return path[len(root):] if root and path.startswith(root) else path


def _encoding(headers: dict) -> str:
    """The encoding to answer in: br, gzip or none, as the request's Accept-Encoding allows."""
    accepted = headers.get(b"accept-encoding", b"").decode("latin-1")
    return "br" if "br" in accepted else "gzip" if "gzip" in accepted else ""


def _encoded(raw: bytes, encoding: str) -> bytes:
    import brotli  # gradio's own dependency, for its BrotliMiddleware

    return brotli.compress(raw, quality=5) if encoding == "br" else gzip.compress(raw, 6, mtime=0) \
        if encoding == "gzip" else raw
