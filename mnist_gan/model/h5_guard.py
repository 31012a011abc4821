"""A weights file is inspected before Keras reads it.

Keras reads each dataset of a .weights.h5 file whole into memory before it compares the dataset's shape with the
variable's, and its own guard starts at 4 GiB declared: a 6 MB file declaring a 1 GiB chunked, compressed dataset
that stores nothing but a fill value took 4 GB of memory to refuse (measured). So a file reaches Keras only when
it holds exactly the datasets a weights file of the model built from the config holds (same paths, shapes and
dtypes), no links, and no more bytes than those datasets need. Walking the file reads metadata only.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import h5py
import numpy as np

from mnist_gan.errors import WeightsError, shown

MAX_ATTRIBUTE_BYTES = 64 * 1024  # the config stamp is ~600 bytes; Keras writes no other attribute
METADATA_BYTES = 1 << 20  # HDF5's own headers and B-trees, beyond the datasets' bytes
_LAYOUTS: dict[tuple, dict[str, tuple[tuple[int, ...], str]]] = {}


def layout(model) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every dataset a weights file of `model` holds: (shape, dtype) by path, as Keras writes it (cached per model
    structure)."""
    key = tuple((w.path, tuple(w.shape), str(w.dtype)) for w in model.weights)
    if key not in _LAYOUTS:
        with tempfile.TemporaryDirectory(prefix="mnist-gan-layout-") as folder:
            path = Path(folder) / "model.weights.h5"
            model.save_weights(path)
            with h5py.File(path, "r") as f:
                _LAYOUTS[key] = _datasets(f, limit=10 * len(key) + 100)
    return _LAYOUTS[key]


def check(path: str | Path, model, what: str) -> None:
    """Refuse (WeightsError) a weights file that is not exactly a weights file of `model`; `what` names it for
    the message (never a server path)."""
    path = Path(path)
    expected = layout(model)
    needed = sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in expected.values())
    size = path.stat().st_size
    if size > needed + METADATA_BYTES:
        raise WeightsError(f"{what} is refused: it holds {size:,} bytes, and this model's weights need {needed:,}")
    try:
        with h5py.File(path, "r") as f:
            found = _datasets(f, limit=2 * len(expected) + 100)
    except WeightsError as e:
        raise WeightsError(f"{what} is refused: {e}") from None
    except Exception as e:  # h5py raises OSError, KeyError, ValueError... for files that are not HDF5
        raise WeightsError(f"{what} is not a readable weights file ({type(e).__name__})") from None
    extra, missing = sorted(set(found) - set(expected)), sorted(set(expected) - set(found))
    if extra or missing:
        names = ", ".join(shown(name) for name in (extra or missing)[:3])
        raise WeightsError(f"{what} is refused: it {'holds datasets this model does not have' if extra else 'lacks'}"
                           f" ({names}): it is not a weights file of this model")
    for name, (shape, dtype) in expected.items():
        if found[name] != (shape, dtype):
            raise WeightsError(f"{what} is refused: {shown(name)} is {found[name][1]} {found[name][0]}, this model "
                               f"needs {dtype} {shape}")


def _datasets(f: h5py.File, limit: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """(shape, dtype) of every dataset under f by path; WeightsError for links, big attributes, or more than
    `limit` objects (walked without recursion: a file decides its own depth)."""
    found, groups, count = {}, [("", f)], 0
    while groups:
        prefix, group = groups.pop()
        _check_attributes(group, prefix or "/")
        for name in group:
            count += 1
            if count > limit:
                raise WeightsError(f"it holds more than {limit} objects")
            link = group.get(name, getlink=True)
            if not isinstance(link, h5py.HardLink):  # soft and external links can point anywhere
                raise WeightsError(f"{shown(prefix + name)} is a link, which a weights file never holds")
            item = group[name]
            if isinstance(item, h5py.Group):
                groups.append((f"{prefix}{name}/", item))
            elif isinstance(item, h5py.Dataset):
                _check_attributes(item, prefix + name)
                found[prefix + name] = (tuple(int(n) for n in item.shape), item.dtype.str)
            else:
                raise WeightsError(f"{shown(prefix + name)} is neither a group nor a dataset")
    return found


def _check_attributes(item, where: str) -> None:
    for name in item.attrs:
        if item.attrs.get_id(name).get_storage_size() > MAX_ATTRIBUTE_BYTES:
            raise WeightsError(f"the attribute {shown(name)} of {shown(where)} is larger than {MAX_ATTRIBUTE_BYTES:,} "
                               "bytes")
