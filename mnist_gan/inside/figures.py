"""Pictures of what D sees, as pure functions to uint8 RGB arrays: the saliency heatmap with its legend, and the
score histogram with one image marked. Colours are red/blue (readable with the common colour-vision deficiencies).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from mnist_gan.images import to_uint8, upscale

REAL = np.array([33, 102, 172], np.float64)  # blue: more ink here looks more real to D
FAKE = np.array([178, 24, 43], np.float64)  # red: more ink here looks more fake
SAMPLES = np.array([230, 97, 1], np.float64)  # orange: the model's samples in the histogram
INK_GREY = 150.0  # how dark the digit's strokes are drawn under the colours (background white)


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def diverging(values: np.ndarray, image: np.ndarray | None = None, limit: float | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3) of signed values: blue where positive, red where negative, white at 0, the colour's
    strength |value| / limit (limit: the 99th percentile of |values| unless given). Under it, the [-1, 1] image's
    strokes in grey, so the colours can be read against the digit."""
    values = np.asarray(values, np.float64)
    if limit is None:
        limit = float(np.percentile(np.abs(values), 99))
    t = np.clip(values / (limit if limit > 0 else 1.0), -1.0, 1.0)[..., None]
    if image is None:
        base = np.full(values.shape + (3,), 255.0)
    else:
        strokes = (np.asarray(image, np.float64).reshape(values.shape) + 1.0) / 2.0
        base = np.repeat((255.0 - (255.0 - INK_GREY) * strokes)[..., None], 3, axis=-1)
    colour = np.where(t > 0, REAL, FAKE)
    return np.round(base * (1 - np.abs(t)) + colour * np.abs(t)).astype(np.uint8)


def saliency_figure(gradient: np.ndarray, image: np.ndarray, scale: int = 10) -> np.ndarray:
    """The heatmap of d(score)/d(pixel) over a 28x28 [-1, 1] image, enlarged `scale` times, with a colour bar
    legend below it saying which colour means what: RGB uint8."""
    heat = diverging(gradient, image)
    heat = np.repeat(np.repeat(heat, scale, axis=0), scale, axis=1)
    heat[outline(np.asarray(image).reshape(28, 28) > 0.0, scale)] = (40, 40, 40)  # where the strokes are
    return np.concatenate([heat, _legend(heat.shape[1])], axis=0)


@functools.lru_cache(maxsize=4)
def _legend(width: int) -> np.ndarray:
    """The heatmap's colour bar and its words, the same under every heatmap of a width: drawn once (its text
    was a third of a Look inside's drawing). Read-only."""
    from PIL import Image, ImageDraw

    legend = Image.new("RGB", (width, 58), "white")
    draw = ImageDraw.Draw(legend)
    bar = diverging(np.linspace(-1, 1, width - 20)[None].repeat(12, axis=0), limit=1.0)
    legend.paste(Image.fromarray(bar), (10, 6))
    small = _font(12)
    draw.line([(width // 2, 3), (width // 2, 21)], fill=(90, 90, 90))
    draw.text((10, 22), "more fake", fill=tuple(FAKE.astype(int)), font=small)
    draw.text((width - 10, 22), "more real", fill=tuple(REAL.astype(int)), font=small, anchor="ra")
    draw.text((width // 2, 22), "no effect", fill=(90, 90, 90), font=small, anchor="ma")
    draw.text((width // 2, 40), "what more ink at a pixel does to D's score", fill=(60, 60, 60), font=small,
              anchor="ma")
    pixels = np.asarray(legend)
    pixels.flags.writeable = False
    return pixels


def outline(mask: np.ndarray, scale: int) -> np.ndarray:
    """The boundary of a boolean (h, w) mask enlarged `scale` times, one pixel wide: bool (h*scale, w*scale)."""
    big = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
    edge = np.zeros_like(big)
    edge[:, 1:] |= big[:, 1:] != big[:, :-1]
    edge[1:, :] |= big[1:, :] != big[:-1, :]
    return edge


def digit(image: np.ndarray, scale: int = 10) -> np.ndarray:
    """A [-1, 1] digit (28, 28[, 1]) enlarged for display: uint8 (28*scale, 28*scale)."""
    return upscale(to_uint8(np.asarray(image).reshape(28, 28)), scale)


@dataclass(frozen=True)
class Histogram:
    """D's scores of real test digits and of samples as a picture with no score marked yet (histogram_frame):
    drawn once for a model, then each image's score is marked on a copy (score_histogram)."""
    pixels: np.ndarray  # RGB uint8 (height, width, 3), read-only
    low: float
    high: float
    top: int
    left: int
    right: int

    def x_of(self, value: float) -> float:
        return self.left + (min(max(value, self.low), self.high) - self.low) / (self.high - self.low) * \
            (self.right - self.left)


def histogram_frame(real: np.ndarray, samples: np.ndarray, threshold: float, probability: bool,
                    width: int = 360, height: int = 206, bins: int = 30) -> Histogram:
    """D's scores of real test digits (blue) and of fresh samples (orange) as two overlaid histograms, the
    threshold dashed, the range and the legend below: all of score_histogram's picture but the marked score."""
    from PIL import Image, ImageDraw

    real, samples = np.asarray(real, np.float64), np.asarray(samples, np.float64)
    if probability:
        low, high = 0.0, 1.0
    else:  # logits: the bulk of both distributions; a far-off mark is drawn at the edge with its value
        both = np.concatenate([real, samples])
        low, high = np.percentile(both, [1, 99])
        low, high = min(low, threshold), max(high, threshold)
        pad = 0.08 * (high - low or 1.0)
        low, high = low - pad, high + pad
    edges = np.linspace(low, high, bins + 1)
    left, right, top, bottom = 10, width - 10, 30, height - 54
    frame = Histogram(np.zeros(0, np.uint8), float(low), float(high), top, left, right)
    counts = [np.histogram(np.clip(v, low, high), edges)[0] / max(len(v), 1) for v in (real, samples)]
    peak = max(float(c.max()) for c in counts) or 1.0
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas, "RGBA")
    for share, colour in zip(counts, (REAL, SAMPLES), strict=True):
        for i, c in enumerate(share):
            if c > 0:
                y = bottom - (bottom - top) * c / peak
                draw.rectangle([frame.x_of(edges[i]) + 1, y, frame.x_of(edges[i + 1]) - 1, bottom],
                               fill=tuple(colour.astype(int)) + (120,))
    draw.line([(left, bottom), (right, bottom)], fill=(60, 60, 60))
    tx = frame.x_of(threshold)
    for y in range(top - 6, bottom, 6):
        draw.line([(tx, y), (tx, min(y + 3, bottom))], fill=(90, 90, 90))
    small = _font(12)
    draw.text((left, bottom + 4), f"{low:.3g}", fill=(60, 60, 60), font=small)
    draw.text((right, bottom + 4), f"{high:.3g}", fill=(60, 60, 60), font=small, anchor="ra")
    draw.text((tx, bottom + 4), "threshold", fill=(90, 90, 90), font=small, anchor="ma")
    draw.text((left, bottom + 20), "real test digits", fill=tuple(REAL.astype(int)), font=small)
    draw.text((right, bottom + 20), "the model's samples", fill=tuple(SAMPLES.astype(int)), font=small, anchor="ra")
    draw.text((width // 2, bottom + 36), f"D's raw score ({'a probability' if probability else 'a logit'})",
              fill=(60, 60, 60), font=small, anchor="ma")
    pixels = np.asarray(canvas)
    pixels.flags.writeable = False
    return replace(frame, pixels=pixels)


def score_histogram(frame: Histogram, mark: float) -> np.ndarray:
    """The histograms of `frame` (histogram_frame) with `mark`, this image's score, as a black line and its
    value: RGB uint8 (height, width, 3)."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(frame.pixels.copy())  # the frame stays as it was drawn
    draw = ImageDraw.Draw(canvas, "RGBA")
    top, bottom, width = frame.top, frame.pixels.shape[0] - 54, frame.pixels.shape[1]
    mx = frame.x_of(mark)
    draw.line([(mx, top - 14), (mx, bottom)], fill=(0, 0, 0), width=2)
    draw.polygon([(mx - 5, top - 20), (mx + 5, top - 20), (mx, top - 13)], fill=(0, 0, 0))
    value = f"{mark:.3g}" + (" (off the scale)" if not frame.low <= mark <= frame.high else "")
    anchor = "la" if mx < width / 2 else "ra"
    draw.text((mx + (8 if anchor == "la" else -8), top - 24), f"this image: {value}", fill=(0, 0, 0),
              font=_font(12), anchor=anchor)
    return np.asarray(canvas)


def pairs(targets: np.ndarray, reconstructions: np.ndarray, cols: int = 8, scale: int = 3) -> np.ndarray:
    """Targets over their reconstructions, `cols` pairs a row, a light line under each pair: uint8 grey."""
    from mnist_gan.images import make_grid

    t, r = to_uint8(np.asarray(targets)), to_uint8(np.asarray(reconstructions))
    n = len(t)
    rows = -(-n // cols)
    blank = np.zeros((rows * cols - n, 28, 28), np.uint8)
    t, r = np.concatenate([t, blank]), np.concatenate([r, blank])
    interleaved = np.concatenate([np.stack([t[i * cols:(i + 1) * cols], r[i * cols:(i + 1) * cols]])
                                  for i in range(rows)]).reshape(-1, 28, 28)
    return make_grid(interleaved, rows * 2, cols, scale=scale)
