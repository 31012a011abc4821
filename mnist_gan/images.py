"""Pure functions from seeds to pixels: latents, the one [-1, 1] -> uint8 conversion, grids and slerp."""

from __future__ import annotations

import math

import numpy as np

from .errors import InvalidInput, shown

MAX_SEED = 2**32 - 1


def check_seed(seed) -> int:
    """The seed as an int, or a ValueError that says what is accepted."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer, float)):
        raise InvalidInput(f"seed must be a whole number between 0 and {MAX_SEED}, got {shown(seed)}")
    if isinstance(seed, float) and not (math.isfinite(seed) and seed.is_integer()):
        raise InvalidInput(f"seed must be a whole number between 0 and {MAX_SEED}, got {shown(seed)}")
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise InvalidInput(f"seed must be between 0 and {MAX_SEED}, got {shown(seed)}")
    return seed


def latents(seed: int, n: int, latent_dim: int, temperature: float = 1.0) -> np.ndarray:
    """n latent vectors from N(0, temperature^2), float32 (n, latent_dim).

    The same seed gives the same vectors on every call and machine, and the first k of n are the k of a
    smaller request, so one image of a grid can be reproduced alone.
    """
    rng = np.random.default_rng(check_seed(seed))
    return (rng.standard_normal((n, latent_dim), dtype=np.float64) * temperature).astype(np.float32)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """The package's single pixel conversion: [-1, 1] floats -> uint8 0..255, channel axis dropped."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    return np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of the most square grid holding n images."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def make_grid(images: np.ndarray, rows: int | None = None, cols: int | None = None, pad: int = 2,
              scale: int = 1) -> np.ndarray:
    """Tile uint8 (N, H, W) images into one uint8 image, `pad` black pixels between them, upscaled by `scale`."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = to_uint8(images)
    n, h, w = images.shape
    if rows is None and cols is None:
        rows, cols = grid_shape(n)
    elif rows is None:
        rows = math.ceil(n / cols)
    elif cols is None:
        cols = math.ceil(n / rows)
    if rows * cols < n:
        raise ValueError(f"a {rows}x{cols} grid cannot hold {n} images")
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = image
    return upscale(grid, scale)


def upscale(images: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of the last two axes by a whole factor (np.repeat: ~10x faster than np.kron)."""
    if scale <= 1:
        return images
    return np.repeat(np.repeat(images, scale, axis=-2), scale, axis=-1)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation between latent vectors a and b at fraction(s) t (falls back to lerp when parallel)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)[..., None]
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        out = (1 - t) * a + t * b
    else:
        out = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return out.astype(np.float32)


def interpolation(seed_a: int, seed_b: int, frames: int, latent_dim: int) -> np.ndarray:
    """`frames` latents along the great circle from seed_a's first latent to seed_b's, endpoints included."""
    if not 2 <= frames <= 256:
        raise InvalidInput(f"frames must be between 2 and 256, got {frames}")
    a, b = latents(seed_a, 1, latent_dim)[0], latents(seed_b, 1, latent_dim)[0]
    return slerp(a, b, np.linspace(0.0, 1.0, frames))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type: grey, RGB, RGBA


def encode_png(image: np.ndarray, compress_level: int = 6) -> bytes:
    """PNG bytes of a uint8 image, (H, W) grey or (H, W, 3 or 4) RGB(A); compress_level 1 encodes ~2.5x faster
    than 6 for ~14% more bytes.

    Written with zlib directly and every row unfiltered: Pillow tries its five row filters on every row, which was
    half of a 64-digit grid's encoding time (2.6 ms against 1.35 ms at level 1, the bytes within 5%): digits on
    black compress well as they are, and a nearest-neighbour enlargement repeats whole rows, which zlib finds."""
    import struct
    import zlib

    image = np.asarray(image, np.uint8)
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    rows = np.zeros((height, 1 + width * channels), np.uint8)  # each row: filter type 0 (none), then its bytes
    rows[:, 1:] = image.reshape(height, -1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, PNG_COLOUR_TYPES[channels], 0, 0, 0)
    return (PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), compress_level))
            + chunk(b"IEND", b""))


def encode_gif(frames: np.ndarray, frame_ms: int = 80, scale: int = 4, bounce: bool = True) -> bytes:
    """Animated GIF bytes of uint8 (N, H, W) frames, looping forever (there and back when `bounce`)."""
    import io

    from PIL import Image

    frames = list(upscale(np.asarray(frames, np.uint8), scale))
    if bounce and len(frames) > 2:
        frames = frames + frames[-2:0:-1]
    images = [Image.fromarray(f) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return buffer.getvalue()
