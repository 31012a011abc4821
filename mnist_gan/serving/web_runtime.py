"""onnxruntime-web, which the page runs the generators with: the pinned version, the three files it needs, their
Subresource Integrity hashes (npm's files), and where a copy is found: the local one `npm ci` installs
(package.json pins the same version; node_modules/ is not in git), else jsDelivr.

Only the WebAssembly build is used: ort.wasm.min.js and its ort-wasm-simd-threaded.mjs/.wasm (ort.min.js is the
WebGPU/WebNN build, whose .wasm is 28 MB). A local copy counts only when its files are exactly npm's: another
version would need other hashes and may need other files.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION = "1.30.0"
FILES = {"js": "ort.wasm.min.js", "mjs": "ort-wasm-simd-threaded.mjs", "wasm": "ort-wasm-simd-threaded.wasm"}
SRI = {  # sha384 of each file as the npm package onnxruntime-web@1.30.0 ships it
    "js": "sha384-Bw6URI+Gvoadw0do7/QrSHUC9D1vCYYK5OSqChFyhyV5mzPL4oe2rOAFljAnS8Sq",
    "mjs": "sha384-XcXA/MtAf0WpB8e023xQH9CM7RIjiugakT7x99DIwpFf7k56BIFFcAPerIF7FDad",
    "wasm": "sha384-vjBJ1z7qrhkTyYsNqKeF6c7N+nOJSU94czEo+tvZcu8G75JparGq9kB+kTnEUNVM",
}
CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{VERSION}/dist/"
DIST = Path("node_modules") / "onnxruntime-web" / "dist"  # relative to the checkout (and to a Space's files)


def sri(path: Path) -> str:
    """The Subresource Integrity hash of a file (sha384)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def is_pinned_copy(folder: Path | None) -> bool:
    """Whether `folder` holds the three files, exactly npm's."""
    return folder is not None and all((folder / name).is_file() and sri(folder / name) == SRI[key]
                                      for key, name in FILES.items())
