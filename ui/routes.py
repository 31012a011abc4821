"""Plain routes beside gradio (no queue, no session), passed to gradio's FastAPI app through launch's app_kwargs.

GET /png: a Generate grid as a plain PNG at a permanent URL. Read-only and bounded as generate is, and open to
everyone as generate is."""

from __future__ import annotations

import threading
from collections import Counter

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mnist_gan.errors import MnistGanError, UnknownModel, internal_error
from mnist_gan.serving import permalink
from mnist_gan.serving.drawing import Drawing
from mnist_gan.serving.served_files import png_bytes

from .limits import Limits, request_client

# The same URL is the same picture for as long as the model's weights are: browsers and CDNs may keep it a day,
# then ask again with If-None-Match (a 304 costs no drawing).
CACHE_CONTROL = "public, max-age=86400"


def png_route(drawing: Drawing, limits: Limits) -> Route:
    """The /png route over the service's drawing section; a client draws at most limits.png_per_client new grids
    at a time (a revalidation costs nothing and is never refused)."""
    drawing_now: Counter = Counter()  # client -> grids being drawn for it
    lock = threading.Lock()

    def png(request: Request) -> Response:
        try:
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
                return Response(png_bytes(drawing.draw(grid)), media_type="image/png", headers=headers)
            finally:
                with lock:
                    drawing_now[client] -= 1
                    if not drawing_now[client]:
                        del drawing_now[client]
        except UnknownModel as e:
            return JSONResponse({"error": str(e)}, status_code=404)
        except MnistGanError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        except Exception as e:  # a bug: logged with its traceback, never shown
            return JSONResponse({"error": internal_error(e)}, status_code=500)

    return Route(f"/{permalink.PATH}", png, methods=["GET"], name="png")
