"""Real data sets: a local data directory, checksummed downloads and batch-first loaders.

Files live under ``data_dir()`` with the layout of ``REMOTE_FILES`` (for example
``catvnoncat/train_catvnoncat.h5``). ``fetch`` returns a file's path, downloading it first when it
is missing; every file is checked against its SHA-256 before it is used. An archive listed in
``FOLDER_ARCHIVES`` is published as a folder of files, not as one file: fetch rebuilds the exact
archive from those files and checks the archive's digest.

Loaders return batch-first arrays in the default float dtype, as in the course but transposed:
the course's ``X`` of shape (n_x, m) is our ``X`` of shape (m, n_x).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import io
import json
import math
import os
import sys
import tarfile
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from strata import backend

# Tests replace this to exercise the download path without a network.
_urlopen = urllib.request.urlopen

_CATVNONCAT = ("https://raw.githubusercontent.com/Kulbear/deep-learning-coursera/"
               "8ef9dd4fd4a627217d4ff31e63b661dbb3db9150/"
               + urllib.parse.quote("Neural Networks and Deep Learning/datasets/"))
_COURSE5 = ("https://raw.githubusercontent.com/Kulbear/deep-learning-coursera/"
            "5c59f99e8e3bfe2c1e977a46422146a2e09d04b8/" + urllib.parse.quote("Sequence Models/"))
_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_SIGNS_H5 = ("https://raw.githubusercontent.com/DrAlexSanz/CNN-in-TF/"
             "5f3841211c2a37f7ea9afbda0d7e38f072a60ddd/test_signs.h5")
_SIGNS_JPG = ("littlecapa/pytorch_template", "3daa5f934b878f2e42cc27cd1bdf09ce1b8003f0",
              "data/64x64_SIGNS")
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

#: relative path -> (original public URL, sha256 or None, size in bytes).
#: Digests were computed from the copies in ../shared/datasets (see its SOURCES.md), except the
#: three image archives marked below, which are not available locally: their digests are the
#: published ones that many independent public projects agree on (the same lists also give the
#: digests of the files we do have, and those match ours). An entry whose digest is unknown
#: stores None; fetch then only checks that the size is as listed and non-zero.
REMOTE_FILES: dict[str, tuple[str, str | None, int]] = {
    "catvnoncat/train_catvnoncat.h5": (
        _CATVNONCAT + "train_catvnoncat.h5",
        "fbe56ab67c3ae28d564e3a644189117976d6b31af0a3ce9bb17dbf22908af242", 2572022),
    "catvnoncat/test_catvnoncat.h5": (
        _CATVNONCAT + "test_catvnoncat.h5",
        "6a9d39ce52fa85953c5834695b8534a30ed8cfd54971fb2f080b5a24d002b951", 616958),
    "dinos/dinos.txt": (
        _COURSE5 + "dinos.txt",
        "ad6465621cf56c08f71d4fbb40cf7eab763f9df42c54cc460d6c4d86e9c927fb", 19909),
    "shakespeare/shakespeare.txt": (
        _COURSE5 + "shakespeare.txt",
        "1b454b67b44e6f367c83a17ed295c46c5d4a1173cf5d09161882af4041bae023", 94275),
    "mnist/train-images-idx3-ubyte.gz": (  # not available locally: published digest
        _MNIST + "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    "mnist/train-labels-idx1-ubyte.gz": (
        _MNIST + "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
    "mnist/t10k-images-idx3-ubyte.gz": (
        _MNIST + "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
    "mnist/t10k-labels-idx1-ubyte.gz": (
        _MNIST + "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
    "fashion_mnist/train-images-idx3-ubyte.gz": (  # not available locally: published digest
        _FASHION + "train-images-idx3-ubyte.gz",
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
    "fashion_mnist/train-labels-idx1-ubyte.gz": (
        _FASHION + "train-labels-idx1-ubyte.gz",
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
    "fashion_mnist/t10k-images-idx3-ubyte.gz": (  # not available locally: published digest
        _FASHION + "t10k-images-idx3-ubyte.gz",
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
    "fashion_mnist/t10k-labels-idx1-ubyte.gz": (
        _FASHION + "t10k-labels-idx1-ubyte.gz",
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
    "signs/test_signs.h5": (
        _SIGNS_H5, "539fb746ed9e947eb244cfca73f4d1b03f9bf5524d609eeed2cd76ddb1b179be", 1477712),
    "signs/signs_cs230_64x64_jpg.tar": (  # a folder of jpgs, see FOLDER_ARCHIVES
        "https://raw.githubusercontent.com/{}/{}/{}/".format(*_SIGNS_JPG),
        "109dcc1fd650d251bd05f6ce2cb4da73dc0f111baf536e8cff8f127d89408f1e", 2467840),
    "faces/att_faces.tar": (  # a tar of a folder of PGMs; strata/data/faces.py says more
        "https://github.com/surabhiiyer/CreepyTeddy-/tree/"
        "f51a35f3ca03032a0e22edff354bb513028e57a3/att_faces",
        "df6868d6b0b80c00fe4aa4fde2acbf44b46675cacdd763d345e7a43afcf64dfc", 4536320),
}

#: archive path -> (GitHub repo, commit, folder, sub-folders kept, file suffix). The archive is
#: a plain GNU tar of <folder's last part>/<sub-folder>/<file>, sorted by name, owner root,
#: modes 775/664, mtime 2020-01-01: rebuilt from the files, it is byte-identical to the original.
FOLDER_ARCHIVES: dict[str, tuple[str, str, str, tuple[str, ...], str]] = {
    "signs/signs_cs230_64x64_jpg.tar": (
        *_SIGNS_JPG, ("test_signs", "train_signs", "val_signs"), ".jpg"),
}
_ARCHIVE_MTIME = 1577836800  # 2020-01-01 00:00 UTC

_CHUNK = 1 << 16
_verified: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) already checked


class DownloadError(OSError):
    """A data file could not be downloaded (no network, HTTP error, unwritable directory)."""


class ChecksumError(OSError):
    """A data file's SHA-256 (or size) is not the expected one."""


def data_dir() -> Path:
    """The data directory: $STRATA_DATA, else $XDG_CACHE_HOME/strata or ~/.cache/strata."""
    env = os.environ.get("STRATA_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "strata"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(file: Path, expected: str | None, size: int, what: str) -> None:
    """Raise ChecksumError when ``file`` lacks the listed digest (or, without one, the size)."""
    got_size = file.stat().st_size
    if expected is None:
        # No known digest: the best we can check is the listed size, and that it is not empty.
        if got_size == 0 or got_size != size:
            raise ChecksumError(f"{what}: expected {size} bytes, got {got_size}")
        return
    got = _sha256(file)
    if got != expected:
        raise ChecksumError(f"{what}: expected sha256 {expected}, got sha256 {got}")


def fetch(relative_path: str) -> Path:
    """Return the local path of a known data file, downloading and verifying it when missing.

    An existing file whose checksum does not match is reported, never silently replaced.
    """
    if relative_path not in REMOTE_FILES:
        known = ", ".join(sorted(REMOTE_FILES))
        raise ValueError(f"fetch: unknown data file {relative_path!r}; known files: {known}")
    url, sha256, size = REMOTE_FILES[relative_path]
    path = data_dir() / relative_path
    if path.is_file():
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in _verified:
            _verify(path, sha256, size,
                    f"corrupt file {path} (delete or replace it to fetch it again)")
            _verified.add(key)
        return path
    _download(url, path, sha256, size, FOLDER_ARCHIVES.get(relative_path))
    return path


def _download(url: str, path: Path, sha256: str | None, size: int, folder=None) -> None:
    """Download ``url`` through strata's atomic write (nothing left behind if interrupted),
    verify it, and only then let it replace ``path``."""
    from strata.files import atomic_write

    print(f"Downloading {url} -> {path}", file=sys.stderr)
    hint = (f"download it by hand and place it at {path}, or set STRATA_DATA to a folder that "
            f"holds {path.parent.name}/{path.name}")

    def fetch(tmp: str) -> None:
        with open(tmp, "wb") as out:
            if folder is None:
                _stream(url, out, size, hint)
            else:
                _folder_archive(folder, out, hint)
        _verify(Path(tmp), sha256, size, f"checksum mismatch for {path.name} downloaded from "
                                         f"{url}")

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"fetch: cannot write into {path.parent} ({e}); {hint}") from e
    atomic_write(path, fetch)


@contextlib.contextmanager
def _network(url: str, hint: str):
    """Turn a failed download of ``url`` into a DownloadError that says how to fix it."""
    try:
        yield
    except (OSError, http.client.HTTPException) as e:  # URLError and timeouts are OSErrors
        reason = getattr(e, "reason", e)
        raise DownloadError(f"fetch: could not download {url} ({reason}); {hint}") from e


def _stream(url: str, out, size: int, hint: str) -> None:
    """Copy the body of ``url`` into the open file ``out``, showing a progress bar."""
    with _network(url, hint), _urlopen(url, timeout=60) as response, tqdm(
            total=size, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
            file=sys.stderr) as bar:
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            out.write(chunk)
            bar.update(len(chunk))


def _get(url: str, hint: str) -> bytes:
    with _network(url, hint), _urlopen(url, timeout=60) as response:
        return response.read()


def _folder_archive(spec, out, hint: str) -> None:
    """Write into ``out`` the tar of a repository folder (see FOLDER_ARCHIVES): list the folder
    with GitHub's tree API, download each file from raw.githubusercontent.com."""
    repo, commit, folder, subdirs, suffix = spec
    listing = f"https://api.github.com/repos/{repo}/git/trees/{commit}?recursive=1"
    try:
        tree = json.loads(_get(listing, hint))["tree"]
    except (ValueError, KeyError, TypeError) as e:
        raise DownloadError(f"fetch: unexpected answer from {listing} ({e}); {hint}") from e
    top, start = folder.rsplit("/", 1)[-1], len(folder) + 1
    files = [e["path"][start:] for e in tree if e.get("type") == "blob"
             and e["path"].startswith(folder + "/") and e["path"].endswith(suffix)]
    files = [f for f in files if f.count("/") == 1 and f.split("/")[0] in subdirs]
    dirs = {top, *(f"{top}/{d}" for d in subdirs)}
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in tqdm(sorted(dirs | {f"{top}/{f}" for f in files}), desc=top, unit="file",
                         file=sys.stderr):
            info = tarfile.TarInfo(name)
            info.mtime, info.uname, info.gname = _ARCHIVE_MTIME, "root", "root"
            if name in dirs:
                info.type, info.mode = tarfile.DIRTYPE, 0o775
                tar.addfile(info)
                continue
            url = (f"https://raw.githubusercontent.com/{repo}/{commit}/"
                   + urllib.parse.quote(folder + name[len(top):]))
            data = _get(url, hint)
            info.size, info.mode = len(data), 0o664
            tar.addfile(info, io.BytesIO(data))


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
