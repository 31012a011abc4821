"""Pictures at the app's size limit in the formats that cost the most to decode, and a decode measured in a
process of its own (its peak resident memory is the decode's: ru_maxrss is a process's high-water mark).

`python -m testing.pictures KIND` prints the peak's growth in MB while decoding one such picture."""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("rgba-png", "rgba-webp", "grey16-png", "palette-png", "jpeg")
SIDE = 4096  # pictures/MAX_SIDE


def picture(kind: str, side: int = SIDE) -> bytes:
    """A side x side picture of one dark stroke, mostly transparent (or white), in the format `kind`."""
    from PIL import Image

    out = io.BytesIO()
    stroke = (slice(side // 4, 3 * side // 4), slice(side // 2, side // 2 + side // 40))
    if kind in ("rgba-png", "rgba-webp"):
        pixels = np.zeros((side, side, 4), np.uint8)
        pixels[stroke] = (0, 0, 0, 255)
        options = {"format": "PNG", "compress_level": 1} if kind == "rgba-png" else \
            {"format": "WEBP", "lossless": True, "quality": 0, "method": 0}
        Image.fromarray(pixels, "RGBA").save(out, **options)
    elif kind == "grey16-png":
        pixels = np.zeros((side, side), np.uint16)
        pixels[stroke] = 60_000
        Image.fromarray(pixels).save(out, format="PNG", compress_level=1)
    elif kind == "palette-png":
        image = Image.fromarray(np.zeros((side, side), np.uint8), "P")
        image.paste(1, (side // 2, side // 4, side // 2 + side // 40, 3 * side // 4))
        image.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
        image.save(out, format="PNG", transparency=0, compress_level=1)
    elif kind == "jpeg":
        pixels = np.full((side, side, 3), 255, np.uint8)
        pixels[stroke] = 0
        Image.fromarray(pixels).save(out, format="JPEG", quality=80)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return out.getvalue()


def decode_peak_mb(kind: str) -> dict:
    """The peak memory growth (MB) of decoding a `kind` picture into MNIST's 28x28, in a fresh process."""
    out = subprocess.run([sys.executable, "-m", "testing.pictures", kind], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure(kind: str) -> dict:
    from mnist_gan.inside.pictures import read_image, to_mnist

    data = picture(kind)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    digit = to_mnist(read_image(data))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "bytes": len(data), "peak_mb": round(after - before, 1),
            "ink": round(float((digit > -0.5).mean()), 4)}


if __name__ == "__main__":
    print(json.dumps(_measure(sys.argv[1])))
