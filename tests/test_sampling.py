from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from mnist_gan.errors import InvalidInput
from mnist_gan.images import (
    check_seed,
    encode_gif,
    encode_png,
    grid_shape,
    interpolation,
    latents,
    make_grid,
    slerp,
    to_uint8,
)


def test_same_seed_same_latents_and_prefix_property():
    a = latents(123, 16, 100)
    np.testing.assert_array_equal(a, latents(123, 16, 100))
    np.testing.assert_array_equal(a[:3], latents(123, 3, 100))
    assert not np.array_equal(a, latents(124, 16, 100))
    assert a.dtype == np.float32 and abs(a.std() - 1) < 0.1
    np.testing.assert_allclose(latents(123, 16, 100, temperature=0.5), a * 0.5, rtol=1e-6)


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, float("nan"), float("inf"), "7", None, True])
def test_bad_seeds_are_refused_plainly(bad):
    with pytest.raises(InvalidInput, match="seed must be"):
        check_seed(bad)


def test_check_seed_accepts_whole_numbers():
    assert check_seed(0) == 0 and check_seed(7.0) == 7 and check_seed(np.int64(2**32 - 1)) == 2**32 - 1


def test_to_uint8_is_the_pixel_convention():
    x = np.array([-1.0, -0.5, 0.0, 1.0, 3.0, -7.0], np.float32).reshape(1, 6, 1, 1)
    np.testing.assert_array_equal(to_uint8(x).ravel(), [0, 64, 128, 255, 255, 0])  # 127.5 rounds to even: 128
    assert to_uint8(np.zeros((2, 28, 28, 1))).shape == (2, 28, 28)


def test_make_grid_places_images():
    images = np.stack([np.full((28, 28), i * 20, np.uint8) for i in range(1, 6)])
    grid = make_grid(images, pad=2)
    assert grid_shape(5) == (2, 3) and grid.shape == (2 * 30 + 2, 3 * 30 + 2)
    assert grid[2, 2] == 20 and grid[2 + 30, 2 + 30] == 100 and grid[0, 0] == 0
    assert grid[32, 62] == 0  # the empty sixth cell
    assert make_grid(images, rows=1, scale=2).shape == (2 * 32, 2 * (5 * 30 + 2))
    with pytest.raises(ValueError):
        make_grid(images, rows=1, cols=2)


def test_slerp_endpoints_and_norm():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(100), rng.standard_normal(100)
    path = slerp(a, b, np.linspace(0, 1, 9))
    np.testing.assert_allclose(path[0], a, rtol=1e-5)
    np.testing.assert_allclose(path[-1], b, rtol=1e-5)
    # on the great circle the norm stays between the endpoints' instead of dipping as a straight line does
    norms = np.linalg.norm(path, axis=1)
    assert norms.min() > 0.95 * min(np.linalg.norm(a), np.linalg.norm(b))
    assert np.linalg.norm((a + b) / 2) < 0.8 * norms[4]
    np.testing.assert_allclose(slerp(a, a, 0.5), a, rtol=1e-5)  # parallel: no division by zero


def test_interpolation_and_encoders():
    z = interpolation(1, 2, 5, 100)
    np.testing.assert_allclose(z[0], latents(1, 1, 100)[0], rtol=1e-5)
    png = encode_png(np.zeros((28, 28), np.uint8))
    gif = encode_gif(np.zeros((5, 28, 28), np.uint8))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and gif[:6] == b"GIF89a"
    with pytest.raises(InvalidInput, match="frames must be between 2 and 256"):
        interpolation(1, 2, 1, 100)


@pytest.mark.parametrize("shape, mode", [((5, 7), "L"), ((5, 7, 3), "RGB"), ((5, 7, 4), "RGBA")])
def test_png_of_every_kind_of_image_reads_back(shape, mode):
    image = np.random.default_rng(2).integers(0, 256, shape, dtype=np.uint8)
    read = Image.open(BytesIO(encode_png(image, compress_level=1)))
    read.load()  # decodes every row, checking the chunks' CRCs
    assert read.mode == mode and read.size == (7, 5)
    np.testing.assert_array_equal(np.asarray(read), image)
