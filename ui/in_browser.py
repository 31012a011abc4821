"""The page's drawing in the visitor's browser: the canvas panels of the Generate and Latent explorer tabs, the
JS-only events that feed them, and the files the page loads for it (ui/static/, and onnxruntime-web).

onnxruntime-web comes from the local copy `npm ci` installs (mnist_gan/serving/web_runtime.py), served by the app
itself under content-hash URLs cached for a year; without it, from jsDelivr at the same pinned version, every file
checked against npm's own by Subresource Integrity.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import os
import threading
from pathlib import Path

import gradio as gr

from mnist_gan.serving import web_runtime

from .gradio_glue import html_event

STATIC = Path(__file__).resolve().parent / "static"
ENGINE, STYLE = "mnist-draw.js", "mnist-draw.css"
ORT_DIST = web_runtime.ROOT / web_runtime.DIST
ORT_DIST_ENV = "MNIST_GAN_ORT_DIST"  # another folder holding the three files; empty: always the CDN
PREFIX = "web-assets"  # not a prefix gradio serves (/static, /assets, /gradio_api and /file= are its own)
IMMUTABLE = "public, max-age=31536000, immutable"  # the URL changes whenever the bytes do
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
         ".onnx": "application/octet-stream"}
PACKED = (".js", ".mjs", ".wasm")  # gzip saves 74% of the .wasm; an .onnx file's float weights, 7%
DOWNLOAD_ICON = ('<svg width="14" height="14" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" '
                 'stroke-linecap="round" stroke-linejoin="round"><path d="M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4"/>'
                 '<polyline points="7 10 12 15 17 10"/><line x1="12" y1="15" x2="12" y2="3"/></svg>')


def onnx_url(sha256: str) -> str:
    """The relative URL of an ONNX file, by its content."""
    return f"{PREFIX}/{sha256[:16]}/generator.onnx"


class WebAssets:
    """URL path -> file for the page's own files, each URL carrying its content's hash; and how the page gets
    onnxruntime-web (`runtime`, handed to the panels)."""

    def __init__(self, ort_dist: Path | None = ORT_DIST):
        self._files: dict[str, Path] = {}
        self._packed: dict[str, bytes | None] = {}
        self._lock = threading.Lock()
        self.engine = self._add([STATIC / ENGINE])[0]
        self.runtime = self._runtime(ort_dist)

    @classmethod
    def from_env(cls, environ=os.environ) -> WebAssets:
        given = environ.get(ORT_DIST_ENV)
        return cls(ORT_DIST if given is None else (Path(given) if given else None))

    def _add(self, paths: list[Path]) -> list[str]:
        """Serve `paths` under one folder named by their content; their relative URLs."""
        digest = hashlib.sha256(b"".join(hashlib.sha256(p.read_bytes()).digest() for p in paths)).hexdigest()[:16]
        urls = [f"{PREFIX}/{digest}/{p.name}" for p in paths]
        for url, path in zip(urls, paths):
            self._files["/" + url] = path
        return urls

    def _runtime(self, dist: Path | None) -> dict:
        """The local copy when it is there and is exactly the pinned version, else the CDN (checked by SRI)."""
        files, version = web_runtime.FILES, web_runtime.VERSION
        if web_runtime.is_pinned_copy(dist):
            base = self._add([dist / name for name in files.values()])[0].rsplit("/", 1)[0] + "/"
            return {"source": "local", "base": base, "files": files, "integrity": None, "version": version}
        return {"source": "cdn", "base": web_runtime.CDN, "files": files, "integrity": web_runtime.SRI,
                "version": version}

    def get(self, path: str, gzip_ok: bool) -> tuple[bytes, str, bool] | None:
        """(bytes, content type, gzipped) for a URL path, or None; gzip is made once per file, on first demand."""
        found = self._files.get(path)
        if found is None:
            return None
        kind = TYPES.get(found.suffix, "application/octet-stream")
        if gzip_ok and found.suffix in PACKED:
            with self._lock:
                if path not in self._packed:
                    self._packed[path] = gzip.compress(found.read_bytes(), 6, mtime=0)
                return self._packed[path], kind, True
        return found.read_bytes(), kind, False


def style() -> str:
    """The panels' CSS (added to the page's own)."""
    return (STATIC / STYLE).read_text()


def panel(name: str, label: str, runtime: dict, engine: str, elem_id: str, *, scale: int = 1,
          file: str = "digits.png", link: bool = False, moving: bool = False) -> gr.HTML:
    """A picture the browser draws: its label and download button above a canvas, one line saying where it was
    drawn; in server mode, only that line (the tab's own image shows the server's picture). Its custom event
    `server_draw` is how the page asks the server to draw instead (see html_event)."""
    canvases = '<canvas class="mg-canvas"></canvas>' + ('<canvas class="mg-moving"></canvas>' if moving else "")
    template = (f'<div class="mg-panel" data-panel="{name}" data-drawn=""><div class="mg-box">'
                f'<div class="mg-head"><span class="mg-label">{html.escape(label)}</span>'
                f'<a class="mg-save" href="#" download="{html.escape(file)}" title="Download" '
                f'aria-label="Download">{DOWNLOAD_ICON}</a></div>'
                f'<div class="mg-frame">{canvases}</div></div><div class="mg-where" aria-live="polite"></div>'
                + ('<div class="mg-link" id="grid-link"></div>' if link else "") + "</div>")
    return gr.HTML("", html_template=template, head=f'<script src="{engine}"></script>', elem_id=elem_id,
                   js_on_load="window.mnistGan.attach(element, props, () => trigger('server_draw'));",
                   elem_classes=["mg-host"], panel=name, scale_factor=scale, runtime=runtime)


def server_draw(component: gr.HTML):
    """The event a panel fires when the server must draw its picture (component.server_draw(fn, ...))."""
    return html_event(component, "server_draw")


def in_browser(action: str) -> str:
    """The JS of an event that hands its inputs' values to the page's generator (mnist-draw.js): 'generate',
    'explore' or 'interpolate'. Queued when it fires before the script has loaded."""
    return (f"(...values) => {{ (window.mnistGanQueue = window.mnistGanQueue || []).push(['{action}', values]); "
            "if (window.mnistGan) window.mnistGan.drain(); }")


# Resample: a seed the page already holds the latents of, when it has one
NEXT_SEED = ("(model, n, digit, temperature) => window.mnistGan ? window.mnistGan.nextSeed(model, n, digit, "
             "temperature) : crypto.getRandomValues(new Uint32Array(1))[0]")
