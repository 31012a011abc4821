"""Models and pictures the tests make from what the project ships: the bundled MNIST sample, a shipped model's
folder without its discriminator, a PNG bomb."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

from mnist_gan.data import SAMPLE_DATA
from mnist_gan.model.generator import DISCRIMINATOR_FILE, shipped_models

TINY = SAMPLE_DATA  # the bundled sample: 2,000 training and 1,000 test digits of real MNIST (mnist_gan/assets)
WITH_D = [name for name, folder in shipped_models().items() if (folder / DISCRIMINATOR_FILE).is_file()]


def without_d(library, tmp_path: Path) -> str:
    """An older folder saved without its discriminator, added to `library`: a shipped model's folder minus D."""
    folder = tmp_path / "without-d"
    shutil.copytree(shipped_models()[WITH_D[0]], folder, ignore=shutil.ignore_patterns(DISCRIMINATOR_FILE))
    library.add("without-d", folder, "trained")
    return "without-d"


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height, all zeros: kilobytes on disk, width*height/8 bytes once decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))
