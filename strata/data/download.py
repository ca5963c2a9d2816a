"""Data files: a local data directory and checksummed downloads (pooch).

Files live under ``data_dir()`` with the layout of ``REMOTE_FILES`` (for example
``catvnoncat/train_catvnoncat.h5``). ``fetch`` returns a file's path, downloading it first when it
is missing (with pooch: ``pooch.retrieve`` and its HTTP downloader); every file is checked against
its SHA-256 before it is used. An archive listed in ``FOLDER_ARCHIVES`` is published as a folder
of files, not as one file: fetch rebuilds the exact archive from those files (each one fetched
through the same downloader) and checks the archive's digest.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import sys
import tarfile
import urllib.parse
from pathlib import Path

from tqdm import tqdm

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
    """The data directory: $STRATA_DATA, else the user's cache folder for strata (pooch's
    ``os_cache``: $XDG_CACHE_HOME/strata or ~/.cache/strata on Linux)."""
    env = os.environ.get("STRATA_DATA")
    if env:
        return Path(env).expanduser()
    import pooch  # noqa: PLC0415 -- pooch imports requests: only when it is needed

    return Path(pooch.os_cache("strata")).expanduser()


def _verify(file: Path, expected: str | None, size: int, what: str) -> None:
    """Raise ChecksumError when ``file`` lacks the listed digest (or, without one, the size)."""
    got_size = file.stat().st_size
    if expected is None:
        # No known digest: the best we can check is the listed size, and that it is not empty.
        if got_size == 0 or got_size != size:
            raise ChecksumError(f"{what}: expected {size} bytes, got {got_size}")
        return
    import pooch  # noqa: PLC0415

    got = pooch.file_hash(str(file), alg="sha256")
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


def _downloader(progressbar: bool):
    """The pooch downloader every fetch goes through (tests replace this to run offline): a
    callable ``(url, output_file, pooch)`` writing the body of ``url`` into a path or an open
    binary file, raising an OSError (requests' errors are OSErrors) when it cannot."""
    import pooch  # noqa: PLC0415

    # pooch's progress bar is tqdm's, a core dependency of strata (imported above).
    return pooch.HTTPDownloader(progressbar=progressbar, chunk_size=_CHUNK, timeout=60)


def _transfer(url: str, out, hint: str, progressbar: bool = False) -> None:
    """Copy the body of ``url`` into ``out`` (a path or an open binary file) through
    ``_downloader``; a failure becomes a DownloadError that says how to fix it."""
    try:
        _downloader(progressbar)(url, out, None)
    except (OSError, http.client.HTTPException) as e:  # requests' errors are OSErrors
        if isinstance(e, (DownloadError, ChecksumError)):
            raise
        reason = getattr(e, "reason", None) or e
        raise DownloadError(f"fetch: could not download {url} ({reason}); {hint}") from e


def _download(url: str, path: Path, sha256: str | None, size: int, folder=None) -> None:
    """Download ``url`` to ``path`` with pooch.retrieve: into a temporary file beside it that
    is verified before it is renamed over ``path`` (a failed download or check leaves nothing
    behind), then made durable (fsync of the file and its folder)."""
    import pooch  # noqa: PLC0415

    from strata.files import fsync_folder  # noqa: PLC0415

    hint = (f"download it by hand and place it at {path}, or set STRATA_DATA to a folder that "
            f"holds {path.parent.name}/{path.name}")

    def download(url: str, output_file: str, _pooch) -> None:
        os.unlink(output_file)  # pooch's temporary file is private (0o600): recreate it with
        with open(output_file, "xb") as out:  # the user's umask, as every strata file has
            if folder is None:
                _transfer(url, out, hint, progressbar=True)
            else:
                _folder_archive(folder, out, hint)
            out.flush()
            os.fsync(out.fileno())
        if sha256 is None:  # pooch checks the digest; without one, check the size here
            _verify(Path(output_file), None, size, f"download of {path.name} from {url}")

    try:
        pooch.retrieve(url, known_hash=None if sha256 is None else f"sha256:{sha256}",
                       fname=path.name, path=path.parent, downloader=download)
    except ValueError as e:  # pooch's hash check (it has deleted the download)
        raise ChecksumError(f"checksum mismatch for {path.name} downloaded from {url}: {e}"
                            ) from e
    except (DownloadError, ChecksumError):
        raise
    except OSError as e:  # pooch could not create or write into the folder
        raise DownloadError(f"fetch: cannot write into {path.parent} ({e}); {hint}") from e
    fsync_folder(path.parent)


def _get(url: str, hint: str) -> bytes:
    out = io.BytesIO()
    _transfer(url, out, hint)
    return out.getvalue()


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
