"""A picture of a digit from anywhere (an upload, a sketchpad, a photo) as MNIST would have it.

Decoding is bounded before any pixel is decoded: the file's size, its format, its header's dimensions and its
frame count are checked first, so a 20,000 x 20,000 PNG, a PNG bomb or an animated GIF costs microseconds. And it
is bounded in memory by construction: a picture is reduced to at most WORK_SIDE pixels a side inside Pillow, in
8-bit channels, before any float copy is made (the digit ends up 20 pixels tall: nothing of it is lost). Decoding
and reducing the largest (a 4096 x 4096 RGBA: 64 MB decoded, and Pillow's premultiplied copy to reduce it) peaks at
~150 MB; its float copies once cost 800 MB (measured with a 738-byte WEBP). Large pictures decode one at a time and
hand their memory back to the system, so that peak is the process's whatever the number of visitors and threads:
four at once, three times, once raised the high-water mark by 940 MB, now by 155 MB.

MNIST's own preprocessing (LeCun et al.): the digit's bounding box is fitted into 20x20 keeping its aspect ratio
(anti-aliased, hence grey levels), then the 20x20 box is placed in a 28x28 field so that its centre of mass lies at
the centre. The centre is pixel (14, 14) in index coordinates: the mean centre of mass of MNIST's 60,000 training
digits is (14.00, 14.01), spread 0.29 px, consistent with a whole-pixel shift. Either polarity is accepted: the
background is the border's median, and dark-on-light pictures are inverted to MNIST's light-on-dark.
"""

from __future__ import annotations

import ctypes
import io
import threading
from pathlib import Path

import numpy as np

from mnist_gan.errors import InvalidInput

MAX_BYTES = 8 * 2**20
MAX_SIDE = 4096
MAX_PIXELS = 4096 * 4096  # 16.8 MP: a phone photo fits; decoding it takes ~0.1 s
WORK_SIDE = 512  # a picture's longest side once decoded: the 20-pixel digit it becomes needs no more
ALONE_PIXELS = 1024 * 1024  # a larger picture decodes alone (~0.1-0.4 s); a smaller one costs a few MB at most
_large = threading.Lock()
FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
BOX, FIELD, CENTRE = 20, 28, 14
INK = 0.2  # share of the strongest ink above which a pixel counts for the bounding box (JPEG noise stays out)
MIN_CONTRAST = 0.08  # ink below this (0-1) everywhere: an empty canvas, not a faint digit


class BadImage(InvalidInput):
    """An image that cannot be read as a digit: not an image, too large, animated, or empty."""


def read_image(source) -> np.ndarray:
    """Grey levels (H, W) float32 in [0, 1] of a PNG/JPEG/WEBP/still-GIF (bytes or a file path) or of an array
    (uint8 0-255, or float 0-1; (H, W), (H, W, 3) or (H, W, 4)). Transparent pixels become background."""
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > MAX_BYTES:
                raise BadImage(f"the file is {size / 2**20:.1f} MB; images up to {MAX_BYTES // 2**20} MB are read")
            data = path.read_bytes()
        except OSError:
            raise BadImage("the image file could not be read") from None
    elif isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        raise BadImage("expected an image file (PNG or JPEG)")
    return _decode(data)


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_BYTES:
        raise BadImage(f"the file is {len(data) / 2**20:.1f} MB; images up to {MAX_BYTES // 2**20} MB are read")
    if not data:
        raise BadImage("the file is empty: expected an image (PNG or JPEG)")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise BadImage("this is not an image this app reads: send a PNG or JPEG (WEBP and still GIFs work too)") \
            from None
    except Image.DecompressionBombError:
        raise BadImage(f"the image has over 178 million pixels; at most {MAX_SIDE} x {MAX_SIDE} are read") from None
    with image:
        width, height = image.size
        if width < 1 or height < 1 or width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
            raise BadImage(f"the image is {width} x {height} pixels; at most {MAX_SIDE} x {MAX_SIDE} are read")
        if getattr(image, "is_animated", False) or getattr(image, "n_frames", 1) != 1:
            raise BadImage("animated images are not read: send a single still picture")
        if image.format == "JPEG":
            image.draft("L", (512, 512))  # JPEG decodes at 1/2, 1/4 or 1/8 scale: a photo's strokes survive
        if image.size[0] * image.size[1] <= ALONE_PIXELS:
            return _reduced(image)
        with _large:
            try:
                return _reduced(image)
            finally:
                _give_back_freed_memory()


def _give_back_freed_memory() -> None:
    """Hand the freed decode back to the system. glibc keeps a thread's freed blocks in that thread's own arena, and
    the server decodes in whichever of its threads is free: without this, each kept ~100 MB after one large decode."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        pass


def _reduced(image) -> np.ndarray:
    """The opened picture decoded and reduced to at most WORK_SIDE a side, as grey levels."""
    from PIL import Image

    try:
        image.load()
        if image.mode == "P":  # a palette's indices cannot be averaged: its colours can
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        elif image.mode not in ("L", "LA", "RGB", "RGBA", "I", "I;16", "1"):  # CMYK, YCbCr, 16-bit colour...
            image = image.convert("RGB")
        if image.mode in ("1", "I;16"):  # resampling takes neither: 8-bit grey, and 32-bit grey
            image = image.convert("L" if image.mode == "1" else "I")
        image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)  # in place; area averages, like MNIST's
        pixels = np.asarray(image)
        if image.mode == "I":  # 16-bit grey: 0-65535
            pixels = np.clip(pixels.astype(np.float32) / 65535.0, 0.0, 1.0)
        return _from_array(pixels)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise BadImage("the image could not be decoded (truncated or corrupt file)") from None


def _from_array(array: np.ndarray) -> np.ndarray:
    a = np.asarray(array)
    if a.ndim not in (2, 3) or a.shape[0] < 1 or a.shape[1] < 1 or a.shape[0] > MAX_SIDE or a.shape[1] > MAX_SIDE:
        raise BadImage(f"expected an image of at most {MAX_SIDE} x {MAX_SIDE} pixels, got an array of shape "
                       f"{a.shape}")
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
        if not np.all(np.isfinite(a)) or a.min(initial=0) < 0 or a.max(initial=0) > 1:
            raise BadImage("pixel arrays must be uint8 (0-255) or floats from 0 to 1")
    else:
        raise BadImage("pixel arrays must be uint8 (0-255) or floats from 0 to 1")
    if a.ndim == 2:
        gray, alpha = a, None
    elif a.ndim == 3 and a.shape[2] in (1, 2, 3, 4):
        gray = a[..., 0] if a.shape[2] <= 2 else a[..., :3] @ np.float32([0.299, 0.587, 0.114])
        alpha = a[..., -1] if a.shape[2] in (2, 4) else None
    else:
        raise BadImage(f"expected a grey or colour image, got an array of shape {a.shape}")
    if alpha is None or alpha.min() >= 1.0:
        return np.ascontiguousarray(gray, np.float32)
    # Strokes on a transparent canvas (a sketchpad's layer): put them on the background of the opposite shade
    seen = alpha.sum()
    ink_shade = float((gray * alpha).sum() / seen) if seen > 0 else 0.0
    background = 1.0 if ink_shade < 0.5 else 0.0
    return (gray * alpha + background * (1.0 - alpha)).astype(np.float32)


def ink(gray: np.ndarray) -> np.ndarray:
    """Ink in [0, 1] (background 0, strongest stroke 1) of grey levels in [0, 1] of either polarity."""
    gray = np.asarray(gray, np.float32)
    edge = max(1, min(gray.shape) // 20)
    border = np.concatenate([gray[:edge].ravel(), gray[-edge:].ravel(), gray[:, :edge].ravel(),
                             gray[:, -edge:].ravel()])
    background = float(np.median(border))
    if background > 0.5:  # dark strokes on a light page: MNIST is light on dark
        gray, background = 1.0 - gray, 1.0 - background
    strength = np.clip(gray - background, 0.0, None)
    peak = float(strength.max())
    if peak < MIN_CONTRAST:
        raise BadImage("the image is empty: draw or upload a digit (one colour of ink on a plain background)")
    return strength / peak


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """MNIST's preprocessing of grey levels (H, W) in [0, 1]: float32 (28, 28, 1) in [-1, 1] (the package's
    pixel convention), the digit's box fitted into 20x20 and its centre of mass at pixel (14, 14)."""
    from PIL import Image

    strokes = ink(gray)
    rows, cols = np.flatnonzero((strokes > INK).any(axis=1)), np.flatnonzero((strokes > INK).any(axis=0))
    crop = strokes[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL's order: (width, height)
    # area averaging when shrinking (MNIST's anti-aliasing), bilinear when a tiny drawing is enlarged
    resample = Image.Resampling.BOX if scale <= 1 else Image.Resampling.BILINEAR
    box = np.clip(np.asarray(Image.fromarray(crop, mode="F").resize(size, resample)), 0.0, 1.0)
    return place(box)


def place(box: np.ndarray) -> np.ndarray:
    """A (h, w) ink box (h, w <= 20) in a 28x28 field, its centre of mass moved to (14, 14) by a whole-pixel
    shift (halves round up), kept inside the field: float32 (28, 28, 1) in [-1, 1]."""
    h, w = box.shape
    mass = box.sum()
    cy = (box.sum(axis=1) @ np.arange(h)) / mass
    cx = (box.sum(axis=0) @ np.arange(w)) / mass
    top = int(np.clip(np.floor(CENTRE - cy + 0.5), 0, FIELD - h))
    left = int(np.clip(np.floor(CENTRE - cx + 0.5), 0, FIELD - w))
    field = np.zeros((FIELD, FIELD), np.float32)
    field[top:top + h, left:left + w] = box
    return (field * 2.0 - 1.0)[..., None]
