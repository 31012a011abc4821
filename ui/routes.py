"""Plain routes beside gradio (no queue, no session), passed to gradio's FastAPI app through launch's app_kwargs.

GET /png: a Generate grid as a plain PNG at a permanent URL. Read-only and bounded as generate is, and open to
everyone as generate is.

GET /draw/model, /draw/latents, /draw/interpolation, /draw/directions: what the page needs to draw in the
visitor's browser (ui/static/mnist-draw.js), as JSON with float32 arrays in base64 (little-endian, bit-exact):
each cheap, checked as the drawing it stands for is, and cacheable (an ETag of its body; latents and paths for a
day, a model's file and directions revalidated, since a model's browser file appears once exported).

GET /web-assets/HASH/NAME: the page's script, onnxruntime-web's local copy and the models' ONNX files, each at a
URL named by its content, so browsers keep them for a year without asking again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mnist_gan.errors import InvalidInput, MnistGanError, UnknownModel, internal_error, shown
from mnist_gan.serving import permalink
from mnist_gan.serving.drawing import STRIP_SCALE, Drawing
from mnist_gan.serving.served_files import ResultFiles

from .common import grid_file
from .in_browser import IMMUTABLE, PREFIX, WebAssets, onnx_url
from .limits import Limits, request_client

# The same URL is the same picture for as long as the model's weights are: browsers and CDNs may keep it a day,
# then ask again with If-None-Match (a 304 costs no drawing).
CACHE_CONTROL = "public, max-age=86400"
REVALIDATE = "no-cache"  # kept, but asked about each time (a 304 when unchanged)
PAD = 2  # images.make_grid's default: the black pixels between digits


def png_route(drawing: Drawing, files: ResultFiles, limits: Limits) -> Route:
    """The /png route over the service's drawing section; a client draws at most limits.png_per_client new grids
    at a time (a revalidation costs nothing and is never refused). A grid already made (here, or by generate) is
    read back from its file."""
    drawing_now: Counter = Counter()  # client -> grids being drawn for it
    lock = threading.Lock()

    def png(request: Request) -> Response:
        args = permalink.parse(request.url.query, drawing.library.default)
        grid = drawing.grid_request(**args)
        tag = permalink.etag(grid)
        headers = {"ETag": tag, "Cache-Control": CACHE_CONTROL}
        if permalink.matches(request.headers.get("if-none-match"), tag):
            return Response(status_code=304, headers=headers)
        client = request_client(request, limits.proxy_hops)
        with lock:
            if limits.png_per_client and drawing_now[client] >= limits.png_per_client:
                return JSONResponse({"error": f"at most {limits.png_per_client} new grids at a time: wait "
                                              "for the last ones"}, status_code=429, headers={"Retry-After": "1"})
            drawing_now[client] += 1
        try:
            return Response(Path(grid_file(drawing, files, grid)).read_bytes(), media_type="image/png", headers=headers)
        finally:
            with lock:
                drawing_now[client] -= 1
                if not drawing_now[client]:
                    del drawing_now[client]

    return Route(f"/{permalink.PATH}", _plain_errors(png), methods=["GET"], name="png")


def drawing_routes(drawing: Drawing) -> list[Route]:
    """/draw/*: what the page's generator needs from the server."""

    def model(request: Request) -> Response:
        name = _params(request, ("model",)).get("model", drawing.library.default)
        found = drawing.browser_model(name)
        if found["onnx"]:
            found["onnx"]["url"] = onnx_url(found["onnx"]["sha256"])
        return _json(request, found, REVALIDATE)

    def grid_latents(request: Request) -> Response:
        grid = drawing.grid_request(**permalink.parse(request.url.query, drawing.library.default))
        z = drawing.grid_latents(grid)
        return _json(request, {"model": grid.generator.name, "seed": grid.seed, "n": grid.n, "count": len(z),
                               "latent_dim": z.shape[1], "temperature": grid.temperature,
                               "labels": None if grid.labels is None else grid.labels.tolist(), "rows": grid.rows,
                               "cols": grid.cols, "pad": PAD, "scale": grid.scale, "z": _floats(z)}, CACHE_CONTROL)

    def interpolation(request: Request) -> Response:
        args = _params(request, ("model", "seed_a", "seed_b", "frames"))
        z = drawing.interpolation_latents(args.get("model", drawing.library.default), args.get("seed_a", 0),
                                          args.get("seed_b", 1), args.get("frames", 12))
        return _json(request, {"frames": len(z), "latent_dim": z.shape[1], "pad": PAD, "scale": STRIP_SCALE,
                               "z": _floats(z)}, CACHE_CONTROL)

    def directions(request: Request) -> Response:
        args = _params(request, ("model", "mode"))
        basis = drawing.basis(args.get("model", drawing.library.default), args.get("mode", "directions"))
        vectors = np.stack([d.vector for d in basis]).astype(np.float32)
        return _json(request, {"count": len(basis), "latent_dim": vectors.shape[1],
                               "labels": [d.label for d in basis], "vectors": _floats(vectors)}, REVALIDATE)

    return [Route(f"/draw/{name}", _plain_errors(fn), methods=["GET"], name=f"draw-{name}")
            for name, fn in (("model", model), ("latents", grid_latents), ("interpolation", interpolation),
                             ("directions", directions))]


def assets_route(assets: WebAssets, drawing: Drawing) -> Route:
    """/web-assets/HASH/NAME: the page's files and the models' ONNX files, immutable."""

    def serve(request: Request) -> Response:
        gzip_ok = "gzip" in request.headers.get("accept-encoding", "")
        found = assets.get(request.url.path, gzip_ok)
        headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding"}
        if found is not None:
            body, kind, packed = found
            if packed:
                headers["Content-Encoding"] = "gzip"
            return Response(body, media_type=kind, headers=headers)
        digest, name = request.path_params["digest"], request.path_params["name"]
        onnx = drawing.browser.path(digest) if name == "generator.onnx" else None
        if onnx is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(onnx.path.read_bytes(), media_type="application/octet-stream", headers=headers)

    return Route(f"/{PREFIX}/{{digest}}/{{name}}", serve, methods=["GET"], name="web-assets")


# --- shared -----------------------------------------------------------------------------------------------------

def _plain_errors(fn):
    """Package errors as JSON with their status (404 for an unknown model); a bug logged, never shown."""

    def route(request: Request) -> Response:
        try:
            return fn(request)
        except UnknownModel as e:
            return JSONResponse({"error": str(e)}, status_code=404)
        except MnistGanError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        except Exception as e:
            return JSONResponse({"error": internal_error(e)}, status_code=500)

    return route


def _params(request: Request, names: tuple[str, ...]) -> dict:
    """The query's values by name, numbers converted; anything else is left for the drawing to refuse."""
    query = request.url.query
    if len(query) > permalink.MAX_QUERY:
        raise InvalidInput(f"the query is longer than {permalink.MAX_QUERY} characters")
    try:
        values = parse_qs(query, keep_blank_values=True, max_num_fields=len(names) + 1)
    except ValueError:
        raise InvalidInput(f"too many parameters: use {', '.join(names)}") from None
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise InvalidInput(f"unknown parameter {shown(unknown[0])}: use {', '.join(names)}")
    if any(len(given) > 1 for given in values.values()):
        raise InvalidInput("a parameter is given more than once")
    return {name: value if name in ("model", "mode") else permalink.query_number(value)
            for name, (value,) in values.items()}


def _floats(array: np.ndarray) -> str:
    """float32, little-endian, in base64: the exact values (JSON numbers would be 4x larger and parsed)."""
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode()


def _json(request: Request, data: dict, cache_control: str) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": tag, "Cache-Control": cache_control}
    if permalink.matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
