"""Data directory, checksummed fetch (tested without a network: pooch's downloader replaced,
or pooch's own HTTP downloader against a server on 127.0.0.1) and the real-data loaders."""

import functools
import gzip
import hashlib
import http.server
import io
import os
import socket
import threading
import urllib.parse
import zlib
from pathlib import Path

import numpy as np
import pytest
import requests
from memory import peak_bytes

from strata import backend
from strata.data import (
    ChecksumError,
    DownloadError,
    data_dir,
    download,
    fetch,
    load_catvnoncat,
    load_digits,
    load_mnist,
    read_idx,
)

# The repository is <root>/main and the shared data is <root>/shared/datasets (see SOURCES.md).
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
POOCH_DOWNLOADER = download._downloader  # the real one, for the tests on 127.0.0.1


def downloader(respond):
    """A stand-in for ``download._downloader``: its downloader writes ``respond(url)`` into the
    output (a path or an open file), as pooch's downloaders do."""
    def make(progressbar=False):
        def download(url, output_file, pooch):
            data = respond(url)
            if hasattr(output_file, "write"):
                output_file.write(data)
            else:
                Path(output_file).write_bytes(data)

        return download

    return make


@pytest.fixture(autouse=True)
def shared_data(monkeypatch):
    """Point STRATA_DATA at the shared data folder; no test may reach the network."""
    monkeypatch.setenv("STRATA_DATA", str(SHARED))

    def no_network(url):
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(download, "_downloader", downloader(no_network))


def offline(url):
    raise requests.exceptions.ConnectionError(f"Failed to resolve {url}: Name or service not "
                                              f"known")


def need(*relative_paths):
    """Skip the calling test when a shared data file is absent."""
    for rel in relative_paths:
        if not (SHARED / rel).is_file():
            pytest.skip(f"{rel} is not in {SHARED} (see ../shared/datasets/SOURCES.md)")


def register(monkeypatch, tmp_path, payload: bytes, sha256="auto", name="toy/blob.bin"):
    """Point STRATA_DATA at an empty tmp folder and add a fake remote file to the table."""
    digest = hashlib.sha256(payload).hexdigest() if sha256 == "auto" else sha256
    root = tmp_path / "data"
    monkeypatch.setenv("STRATA_DATA", str(root))
    monkeypatch.setitem(download.REMOTE_FILES, name, ("https://example.invalid/" + name,
                                                      digest, len(payload)))
    return root / name


def serve(monkeypatch, payload: bytes, watch: Path | None = None):
    """Replace the downloader with one that serves ``payload`` (checking ``watch`` is absent)."""
    def respond(url):
        assert watch is None or not watch.exists(), "final file appeared before verification"
        return payload

    monkeypatch.setattr(download, "_downloader", downloader(respond))


def idx_bytes(a: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, ">u4").tobytes()
    return header + a.tobytes()


# --- data directory -----------------------------------------------------------------------------

def test_data_dir_uses_env_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("STRATA_DATA", str(tmp_path / "mine"))
    assert data_dir() == tmp_path / "mine"
    monkeypatch.delenv("STRATA_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "strata"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".cache" / "strata"


# --- fetch --------------------------------------------------------------------------------------

def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="unknown data file 'nope.h5'") as info:
        fetch("nope.h5")
    assert "catvnoncat/train_catvnoncat.h5" in str(info.value)
    assert "mnist/t10k-images-idx3-ubyte.gz" in str(info.value)


def test_table_matches_every_shared_file():
    present = [rel for rel in download.REMOTE_FILES if (SHARED / rel).is_file()]
    if not present:
        pytest.skip(f"no data files in {SHARED}")
    for rel in present:  # fetch verifies size/sha256 and must not touch the (blocked) network
        assert fetch(rel) == SHARED / rel


def test_fetch_of_present_file_returns_path_without_network():
    need("catvnoncat/test_catvnoncat.h5")
    assert fetch("catvnoncat/test_catvnoncat.h5") == SHARED / "catvnoncat/test_catvnoncat.h5"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def local_server(monkeypatch, tmp_path):
    """A folder served over HTTP on 127.0.0.1 (never through a proxy), with pooch's real
    downloader back in place: (folder, base URL)."""
    root = tmp_path / "remote"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1")
    monkeypatch.setattr(download, "_downloader", POOCH_DOWNLOADER)
    yield root, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()
    thread.join()


def _serve_at(monkeypatch, tmp_path, url: str, payload: bytes):
    dest = register(monkeypatch, tmp_path, payload)
    _, digest, size = download.REMOTE_FILES["toy/blob.bin"]
    monkeypatch.setitem(download.REMOTE_FILES, "toy/blob.bin", (url, digest, size))
    return dest


def test_pooch_download_over_http_lands_in_place_with_the_umask(monkeypatch, tmp_path,
                                                                local_server):
    root, base = local_server
    payload = b"strata" * 50_000
    (root / "blob.bin").write_bytes(payload)
    dest = _serve_at(monkeypatch, tmp_path, base + "blob.bin", payload)
    assert fetch("toy/blob.bin") == dest
    assert dest.read_bytes() == payload
    assert sorted(p.name for p in dest.parent.iterdir()) == ["blob.bin"]  # no temp file left
    umask = os.umask(0o022)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's 0o600


def test_pooch_download_over_http_refuses_a_wrong_file(monkeypatch, tmp_path, local_server):
    root, base = local_server
    (root / "blob.bin").write_bytes(b"tampered bytes")
    dest = _serve_at(monkeypatch, tmp_path, base + "blob.bin", b"expected bytes")
    with pytest.raises(ChecksumError, match="checksum mismatch for blob.bin") as info:
        fetch("toy/blob.bin")
    assert hashlib.sha256(b"tampered bytes").hexdigest() in str(info.value)
    assert list(dest.parent.iterdir()) == []


@pytest.mark.parametrize("problem", ["404", "refused"])
def test_pooch_download_failures_name_the_url_and_the_fix(monkeypatch, tmp_path, local_server,
                                                          problem):
    _, base = local_server
    url = base + "missing.bin"
    if problem == "refused":  # a port nobody listens on: what "offline" looks like locally
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{s.getsockname()[1]}/blob.bin"
    dest = _serve_at(monkeypatch, tmp_path, url, b"data")
    with pytest.raises(DownloadError) as info:
        fetch("toy/blob.bin")
    message = str(info.value)
    assert f"could not download {url}" in message
    assert str(dest) in message and "STRATA_DATA" in message
    assert ("404" if problem == "404" else "refused") in message
    assert list(dest.parent.iterdir()) == []


def test_download_writes_nothing_before_the_checksum_passes(monkeypatch, tmp_path):
    payload = bytes(range(256)) * 300
    dest = register(monkeypatch, tmp_path, payload)
    serve(monkeypatch, payload, watch=dest)
    assert fetch("toy/blob.bin").read_bytes() == payload


def test_checksum_mismatch_leaves_nothing_and_names_both_digests(monkeypatch, tmp_path):
    payload, served = b"expected bytes", b"tampered bytes"
    dest = register(monkeypatch, tmp_path, payload)
    serve(monkeypatch, served)
    with pytest.raises(ChecksumError) as info:
        fetch("toy/blob.bin")
    message = str(info.value)
    assert hashlib.sha256(payload).hexdigest() in message
    assert hashlib.sha256(served).hexdigest() in message
    assert "blob.bin" in message and "https://example.invalid/toy/blob.bin" in message
    assert list(dest.parent.iterdir()) == []


def test_offline_error_names_url_and_manual_fix(monkeypatch, tmp_path):
    dest = register(monkeypatch, tmp_path, b"data")
    monkeypatch.setattr(download, "_downloader", downloader(offline))
    with pytest.raises(DownloadError) as info:
        fetch("toy/blob.bin")
    message = str(info.value)
    assert "https://example.invalid/toy/blob.bin" in message
    assert str(dest) in message and "STRATA_DATA" in message
    assert list(dest.parent.iterdir()) == []


def test_corrupt_local_file_is_reported_not_replaced(monkeypatch, tmp_path):
    payload = b"a pristine data file" * 50
    dest = register(monkeypatch, tmp_path, payload)
    dest.parent.mkdir(parents=True)
    corrupt = bytearray(payload)
    corrupt[10] ^= 0xFF
    dest.write_bytes(bytes(corrupt))
    with pytest.raises(ChecksumError, match="corrupt file") as info:
        fetch("toy/blob.bin")
    assert str(dest) in str(info.value)
    assert hashlib.sha256(payload).hexdigest() in str(info.value)
    assert dest.read_bytes() == bytes(corrupt)  # left for the user to inspect


def test_unknown_digest_checks_only_the_size(monkeypatch, tmp_path):
    dest = register(monkeypatch, tmp_path, b"12345", sha256=None)
    serve(monkeypatch, b"")
    with pytest.raises(ChecksumError, match="expected 5 bytes, got 0"):
        fetch("toy/blob.bin")
    assert not dest.exists()
    serve(monkeypatch, b"54321")
    assert fetch("toy/blob.bin").read_bytes() == b"54321"


# --- idx files ----------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_parses_header_and_big_endian_data(tmp_path, compress):
    a = np.arange(-6, 6, dtype=np.int16).reshape(3, 2, 2)
    raw = idx_bytes(a.astype(">i2"), 0x0B)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    path.write_bytes(gzip.compress(raw) if compress else raw)
    out = read_idx(path)
    assert out.shape == (3, 2, 2) and (out == a).all()


def test_truncated_idx_file_raises_clear_error(tmp_path):
    raw = idx_bytes(np.zeros((4, 28, 28), np.uint8), 0x08)
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(raw[:-100])
    expected, got = len(raw), len(raw) - 100
    with pytest.raises(ValueError, match=f"expected {expected} bytes, got {got}"):
        read_idx(path)
    path.write_bytes(raw[:10])
    with pytest.raises(ValueError, match="truncated header"):
        read_idx(path)
    path.write_bytes(gzip.compress(raw)[:-30])
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        read_idx(path)


def test_idx_with_bad_magic_is_rejected(tmp_path):
    path = tmp_path / "notidx"
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="not an idx file.*got 504b0304"):
        read_idx(path)


def _refused(path, pattern: str):
    def read():
        with pytest.raises(ValueError, match=pattern):
            read_idx(path)

    return read


def test_idx_gzip_bomb_is_not_decompressed_past_the_header(tmp_path):
    # A header for 10 bytes, then 256 MB of zeros that compress to about 250 kB.
    header = bytes([0, 0, 0x08, 1]) + np.asarray([10], ">u4").tobytes()
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    parts = [packer.compress(header + bytes(10))]
    parts += [packer.compress(bytes(2 ** 20)) for _ in range(256)]
    path = tmp_path / "bomb-idx1-ubyte.gz"
    path.write_bytes(b"".join(parts) + packer.flush())
    assert path.stat().st_size < 2 ** 20
    read = _refused(path, r"wrong length for shape \(10,\): expected 18 bytes once "
                          r"decompressed, got more")
    assert peak_bytes(read) < 8 * 2 ** 20


@pytest.mark.parametrize("compress", [False, True])
def test_idx_header_dimensions_are_checked_against_the_file_size(tmp_path, compress):
    header = bytes([0, 0, 0x08, 3]) + np.asarray([60000, 10000, 10000], ">u4").tobytes()
    path = tmp_path / ("huge-idx3-ubyte" + (".gz" if compress else ""))
    path.write_bytes(gzip.compress(header) if compress else header)
    message = (r"says shape \(60000, 10000, 10000\), 6,000,000,000,016 bytes, more than a gzip "
               r"file of \d+ bytes can hold" if compress else
               r"wrong length for shape \(60000, 10000, 10000\): expected 6000000000016 bytes, "
               r"got 16")
    assert peak_bytes(_refused(path, message)) < 2 ** 20


def test_idx_with_trailing_data_is_refused(tmp_path):
    raw = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3), 0x08)
    path = tmp_path / "long-idx2-ubyte.gz"
    path.write_bytes(gzip.compress(raw + b"extra"))
    with pytest.raises(ValueError, match="expected 18 bytes once decompressed, got more"):
        read_idx(path)
    path.write_bytes(gzip.compress(raw[:-2]))
    with pytest.raises(ValueError, match="expected 18 bytes once decompressed, got 16"):
        read_idx(path)


# --- loaders ------------------------------------------------------------------------------------

def test_catvnoncat_matches_the_course():
    need("catvnoncat/train_catvnoncat.h5", "catvnoncat/test_catvnoncat.h5")
    (X, Y), (X_test, Y_test), classes = load_catvnoncat()
    assert X.shape == (209, 12288) and Y.shape == (209, 1)
    assert X_test.shape == (50, 12288) and Y_test.shape == (50, 1)
    assert classes == ["non-cat", "cat"]
    for a in (X, Y, X_test, Y_test):
        assert a.dtype == np.float32 == backend.get_default_dtype()
    assert 0.0 <= X.min() and X.max() <= 1.0 and X_test.max() <= 1.0
    assert set(np.unique(Y)) == {0.0, 1.0} and set(np.unique(Y_test)) == {0.0, 1.0}
    assert int(Y.sum()) == 72 and int(Y_test.sum()) == 33  # the course's class balance


def test_catvnoncat_images_keep_nhwc_and_raw_scale():
    need("catvnoncat/train_catvnoncat.h5", "catvnoncat/test_catvnoncat.h5")
    (X, _), (X_test, _), _ = load_catvnoncat(flatten=False, normalize=False)
    assert X.shape == (209, 64, 64, 3) and X_test.shape == (50, 64, 64, 3)
    assert X.max() == 255.0
    (X_flat, _), _, _ = load_catvnoncat()
    np.testing.assert_allclose(X_flat, X.reshape(209, -1) / 255, rtol=1e-6)


def test_loaders_follow_the_default_dtype():
    need("catvnoncat/train_catvnoncat.h5", "catvnoncat/test_catvnoncat.h5")
    with backend.default_dtype(np.float64):
        (X, Y), _, _ = load_catvnoncat()
        X_digits, _ = load_digits()
    assert X.dtype == Y.dtype == X_digits.dtype == np.float64


def test_mnist_test_set():
    need("mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz")
    X, Y = load_mnist("test")
    assert X.shape == (10000, 784) and X.dtype == np.float32
    assert Y.shape == (10000,) and np.issubdtype(Y.dtype, np.integer)
    assert 0.0 <= X.min() and X.max() == 1.0
    assert sorted(np.unique(Y)) == list(range(10))
    images, _ = load_mnist("test", flatten=False)
    assert images.shape == (10000, 28, 28, 1)


def test_mnist_rejects_unknown_kind():
    with pytest.raises(ValueError, match="expected kind in \\['test', 'train'\\], got 'dev'"):
        load_mnist("dev")


def test_digits_shapes_and_range():
    X, Y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert 0.0 <= X.min() and X.max() == 1.0
    assert Y.shape == (1797,) and sorted(np.unique(Y)) == list(range(10))
    images, _ = load_digits(flatten=False)
    assert images.shape == (1797, 8, 8, 1)


# --- SIGNS --------------------------------------------------------------------------------------

SIGNS = ("signs/signs_cs230_64x64_jpg.tar", "signs/test_signs.h5")


def test_signs_matches_the_course():
    from strata.data.datasets import load_signs

    need(*SIGNS)
    (X, Y), (X_test, Y_test), classes = load_signs()
    assert X.shape == (1080, 64, 64, 3) and X_test.shape == (120, 64, 64, 3)
    assert X.dtype == X_test.dtype == np.float32
    assert Y.shape == (1080,) and Y_test.shape == (120,) and Y.dtype == Y_test.dtype == np.int64
    assert classes == [0, 1, 2, 3, 4, 5]
    assert np.bincount(Y).tolist() == [180] * 6 and np.bincount(Y_test).tolist() == [20] * 6
    for a in (X, X_test):
        assert 0.0 <= a.min() and a.max() <= 1.0 and a.std() > 0.1
    (X_flat, Y_again), _, _ = load_signs(flatten=True, normalize=False)
    assert X_flat.shape == (1080, 12288) and X_flat.max() == 255.0
    np.testing.assert_allclose(X_flat.reshape(X.shape) / 255, X, rtol=1e-6)
    np.testing.assert_array_equal(Y_again, Y)  # sorted member order: deterministic


def _signs_remote(monkeypatch, tar_bytes: bytes):
    """Serve the SIGNS folder as GitHub does: a tree listing, then raw files."""
    import json
    import tarfile

    repo, commit, folder, _, _ = download.FOLDER_ARCHIVES[SIGNS[0]]
    files = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for m in tar.getmembers():
            if m.isfile():
                files[folder + "/" + m.name.split("/", 1)[1]] = tar.extractfile(m).read()
    tree = [{"path": p, "type": "blob"} for p in files]
    tree += [{"path": f"{folder}/.DS_Store", "type": "blob"}, {"path": "README.md", "type": "blob"},
             {"path": folder, "type": "tree"}]
    raw = f"https://raw.githubusercontent.com/{repo}/{commit}/"
    asked = []

    def respond(url):
        asked.append(url)
        if url.startswith("https://api.github.com/"):
            assert commit in url
            return json.dumps({"sha": commit, "tree": tree}).encode()
        assert url.startswith(raw), url
        return files[urllib.parse.unquote(url[len(raw):])]

    monkeypatch.setattr(download, "_downloader", downloader(respond))
    return asked


def test_signs_archive_is_rebuilt_byte_for_byte_from_the_repository_folder(monkeypatch,
                                                                           tmp_path):
    need(SIGNS[0])
    original = (SHARED / SIGNS[0]).read_bytes()
    monkeypatch.setenv("STRATA_DATA", str(tmp_path))
    asked = _signs_remote(monkeypatch, original)
    path = fetch(SIGNS[0])
    assert path == tmp_path / SIGNS[0] and path.read_bytes() == original
    assert len(asked) == 1 + 1200 and any("%20%281%29.jpg" in url for url in asked)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left


def test_signs_archive_with_a_changed_file_is_rejected(monkeypatch, tmp_path):
    import tarfile

    need(SIGNS[0])
    source = tarfile.open(SHARED / SIGNS[0])
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for m in source.getmembers():
            data = source.extractfile(m).read() if m.isfile() else None
            if data is not None and m.name.endswith("5_IMG_5615.jpg"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            tar.addfile(m, None if data is None else io.BytesIO(data))
    monkeypatch.setenv("STRATA_DATA", str(tmp_path))
    _signs_remote(monkeypatch, out.getvalue())
    with pytest.raises(ChecksumError, match="checksum mismatch for signs_cs230_64x64_jpg.tar"):
        fetch(SIGNS[0])
    assert list((tmp_path / "signs").iterdir()) == []


@pytest.mark.parametrize("corrupt", SIGNS)
def test_corrupt_signs_file_raises_checksum_error(monkeypatch, tmp_path, corrupt):
    from strata.data.datasets import load_signs

    need(*SIGNS)
    (tmp_path / "signs").mkdir()
    for rel in SIGNS:
        raw = bytearray((SHARED / rel).read_bytes())
        if rel == corrupt:
            raw[len(raw) // 2] ^= 0xFF
        (tmp_path / rel).write_bytes(bytes(raw))
    monkeypatch.setenv("STRATA_DATA", str(tmp_path))
    with pytest.raises(ChecksumError, match="corrupt file") as info:
        load_signs()
    assert str(tmp_path / corrupt) in str(info.value)


def test_missing_signs_offline_raises_download_error(monkeypatch, tmp_path):
    from strata.data.datasets import load_signs

    monkeypatch.setenv("STRATA_DATA", str(tmp_path))
    monkeypatch.setattr(download, "_downloader", downloader(offline))
    with pytest.raises(DownloadError, match="Name or service not known") as info:
        load_signs()
    message = str(info.value)
    assert "littlecapa/pytorch_template" in message and "STRATA_DATA" in message
    assert str(tmp_path / SIGNS[0]) in message
    assert list((tmp_path / "signs").iterdir()) == []
