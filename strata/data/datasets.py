"""Real data sets: batch-first loaders of the course's files (fetched by strata.data.download).

Loaders return batch-first arrays in the default float dtype, as in the course but transposed:
the course's ``X`` of shape (n_x, m) is our ``X`` of shape (m, n_x).
"""

from __future__ import annotations

import gzip
import io
import math
import tarfile
import zlib
from pathlib import Path

import numpy as np

from strata import backend
from strata.data.download import fetch


def _as_float(a: np.ndarray, scale: float) -> np.ndarray:
    dtype = backend.get_default_dtype()
    return a.astype(dtype) / dtype.type(scale)


def load_catvnoncat(flatten: bool = True, normalize: bool = True):
    """Course 1's cat / non-cat images: ``((X_train, Y_train), (X_test, Y_test), classes)``.

    X is (m, 12288) when ``flatten`` (the course's reshape, rows of 64*64*3 pixels in HWC order)
    else (m, 64, 64, 3); ``normalize`` divides by 255. Y is (m, 1) with 1 for cat;
    ``classes`` is ``['non-cat', 'cat']``. There are 209 training and 50 test images.
    """
    import h5py  # noqa: PLC0415 -- heavy import, only needed here

    sets, classes = [], []
    for split in ("train", "test"):
        path = fetch(f"catvnoncat/{split}_catvnoncat.h5")
        with h5py.File(path, "r") as f:
            needed = {f"{split}_set_x", f"{split}_set_y", "list_classes"}
            if not needed <= set(f.keys()):
                raise ValueError(f"load_catvnoncat: {path} should hold datasets {sorted(needed)}, "
                                 f"found {sorted(f.keys())}")
            x, y = np.asarray(f[f"{split}_set_x"]), np.asarray(f[f"{split}_set_y"])
            classes = [c.decode() if isinstance(c, bytes) else str(c) for c in f["list_classes"]]
        X = _as_float(x, 255.0 if normalize else 1.0)
        X = X.reshape(len(X), -1) if flatten else X
        sets.append((X, y.reshape(-1, 1).astype(backend.get_default_dtype())))
    return sets[0], sets[1], classes


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


#: Deflate expands data at most about 1032-fold, so a gzip file of n bytes holds at most this
#: many times n bytes: a header claiming more is refused before anything is allocated.
_GZIP_RATIO = 1032


def read_idx(path) -> np.ndarray:
    """Read an idx file (MNIST's format), gzip-compressed or not, into an ndarray. The header's
    shape is checked against the file's size first, and a gzip file is decompressed no
    further than the header says (plus one byte, to notice trailing data)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    if not compressed:
        with open(path, "rb") as f:
            return _read_idx_stream(f, path, size, compressed)
    try:
        with gzip.open(path, "rb") as f:
            return _read_idx_stream(f, path, size, compressed)
    except (EOFError, OSError, zlib.error) as e:
        raise ValueError(f"read_idx: corrupt or truncated gzip file {path} ({e})") from e


def _read_idx_stream(f, path: Path, size: int, compressed: bool) -> np.ndarray:
    magic = f.read(4)
    if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_DTYPES:
        raise ValueError(f"read_idx: {path} is not an idx file: expected magic 0x0000TTNN with "
                         f"a known type TT, got {magic.hex() or 'an empty file'}")
    ndim, dtype = magic[3], np.dtype(_IDX_DTYPES[magic[2]])
    header = 4 + 4 * ndim
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"read_idx: truncated header in {path}: expected {header} bytes, "
                         f"got {4 + len(dims)}")
    shape = tuple(int(d) for d in np.frombuffer(dims, ">u4"))
    expected = header + math.prod(shape) * dtype.itemsize
    if not compressed and expected != size:
        raise ValueError(f"read_idx: {path} has the wrong length for shape {shape}: expected "
                         f"{expected} bytes, got {size} (truncated or corrupt)")
    if compressed and expected > size * _GZIP_RATIO:
        raise ValueError(f"read_idx: {path}'s header says shape {shape}, {expected:,} bytes, "
                         f"more than a gzip file of {size:,} bytes can hold (at most "
                         f"{size * _GZIP_RATIO:,}): corrupt or crafted")
    data = f.read(expected - header)
    if len(data) != expected - header or f.read(1):
        got = f"{header + len(data)}" if len(data) < expected - header else "more"
        raise ValueError(f"read_idx: {path} has the wrong length for shape {shape}: expected "
                         f"{expected} bytes once decompressed, got {got} (truncated or corrupt)")
    return np.frombuffer(data, dtype).reshape(shape).astype(dtype.newbyteorder("="))


_KINDS = {"train": "train", "test": "t10k"}


def _load_idx_pair(folder: str, kind: str, flatten: bool, name: str):
    if kind not in _KINDS:
        raise ValueError(f"{name}: expected kind in {sorted(_KINDS)}, got {kind!r}")
    images = read_idx(fetch(f"{folder}/{_KINDS[kind]}-images-idx3-ubyte.gz"))
    labels = read_idx(fetch(f"{folder}/{_KINDS[kind]}-labels-idx1-ubyte.gz"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{name}: expected images (m, 28, 28) and labels (m,), got "
                         f"{images.shape} and {labels.shape}")
    X = _as_float(images, 255.0)
    X = X.reshape(len(X), -1) if flatten else X[..., None]
    return X, labels.astype(np.int64)


def load_mnist(kind: str = "test", flatten: bool = True):
    """MNIST digits ``(X, Y)``: X (m, 784) in [0, 1] or (m, 28, 28, 1); Y (m,) integer labels.

    ``kind`` is "train" (60000) or "test" (10000). ../shared/datasets holds only the test images,
    so "train" needs a download of train-images-idx3-ubyte.gz.
    """
    return _load_idx_pair("mnist", kind, flatten, "load_mnist")


def load_fashion_mnist(kind: str = "test", flatten: bool = True):
    """Fashion-MNIST ``(X, Y)``: X (m, 784) in [0, 1] or (m, 28, 28, 1); Y (m,) integer labels.

    ``kind`` is "train" (60000) or "test" (10000). ../shared/datasets holds only the labels, so
    either kind needs a download of its images file.
    """
    return _load_idx_pair("fashion_mnist", kind, flatten, "load_fashion_mnist")


def load_digits(flatten: bool = True):
    """scikit-learn's bundled 8x8 digits ``(X, Y)`` (offline): X (1797, 64) in [0, 1] or
    (1797, 8, 8, 1); Y (1797,) integer labels."""
    from sklearn.datasets import load_digits as _sk_load_digits  # noqa: PLC0415 -- slow import

    digits = _sk_load_digits()
    X = _as_float(digits.data, 16.0)
    X = X if flatten else X.reshape(-1, 8, 8, 1)
    return X, digits.target.astype(np.int64)


def _read_jpgs(tar_path: Path, folders: tuple[str, ...], name: str):
    """Decode the ``{label}_*.jpg`` members under ``folders`` of a tar, in sorted member order,
    straight from the archive (nothing is extracted): uint8 (m, H, W, 3) images, int64 labels."""
    from PIL import Image  # noqa: PLC0415 -- only needed here

    images, labels = [], []
    with tarfile.open(tar_path) as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".jpg")
                          and m.name.split("/")[-2] in folders), key=lambda m: m.name)
        for member in members:
            base = member.name.rsplit("/", 1)[-1]
            if not (base[0].isdigit() and base[1] == "_"):
                raise ValueError(f"{name}: expected jpg names '{{label}}_IMG_{{id}}.jpg' in "
                                 f"{tar_path}, got {member.name!r}")
            with Image.open(io.BytesIO(tar.extractfile(member).read())) as image:
                images.append(np.asarray(image.convert("RGB")))
            labels.append(int(base[0]))
    if not images or len({a.shape for a in images}) != 1:
        raise ValueError(f"{name}: expected jpgs of one size under {folders} in {tar_path}, got "
                         f"{len(images)} images of sizes {sorted({a.shape for a in images})}")
    return np.stack(images), np.asarray(labels, np.int64)


def load_signs(flatten: bool = False, normalize: bool = True):
    """SIGNS hand signs of course 4 (0 to 5 fingers): ``((X_train, Y_train), (X_test, Y_test),
    classes)``.

    X is NHWC (m, 64, 64, 3), or (m, 12288) when ``flatten``; ``normalize`` divides by 255.
    Y is (m,) int64 class indices (the number of fingers); ``classes`` is [0, 1, 2, 3, 4, 5].
    Training: the course's 1080 training photos, decoded from the CS230 jpgs (train_signs +
    val_signs; JPEG copies, so not bit-identical to the course's train_signs.h5). Test: the
    course's own test_signs.h5, 120 images, 20 per class.
    """
    import h5py  # noqa: PLC0415 -- heavy import, only needed here

    x_train, y_train = _read_jpgs(fetch("signs/signs_cs230_64x64_jpg.tar"),
                                  ("train_signs", "val_signs"), "load_signs")
    path = fetch("signs/test_signs.h5")
    with h5py.File(path, "r") as f:
        needed = {"test_set_x", "test_set_y", "list_classes"}
        if not needed <= set(f.keys()):
            raise ValueError(f"load_signs: {path} should hold datasets {sorted(needed)}, found "
                             f"{sorted(f.keys())}")
        x_test, y_test = np.asarray(f["test_set_x"]), np.asarray(f["test_set_y"])
        classes = [int(c) for c in f["list_classes"]]
    sets = []
    for x, y in ((x_train, y_train), (x_test, y_test)):
        X = _as_float(x, 255.0 if normalize else 1.0)
        sets.append((X.reshape(len(X), -1) if flatten else X, y.reshape(-1).astype(np.int64)))
    return sets[0], sets[1], classes
