"""The data of ``strata train`` (strata.data.catalog): the course's own splits, MNIST's training
set or its announced fallback, scikit-learn's moons and circles, and the line that says what was
used (printed, in report.md and data.json). No test reaches the network."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import requests

import strata
from strata import cli
from strata.data import catalog, circles, datasets, download, load_catvnoncat, moons

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CATS = ("catvnoncat/train_catvnoncat.h5", "catvnoncat/test_catvnoncat.h5")
MNIST_TEST = ("mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """The shared data folder, and a downloader that fails as it does without a network."""
    monkeypatch.setenv("STRATA_DATA", str(SHARED))

    def make(progressbar=False):
        def download(url, output_file, pooch):
            raise requests.exceptions.ConnectionError(f"Failed to resolve {url}: Name or "
                                                      f"service not known")

        return download

    monkeypatch.setattr(download, "_downloader", make)


def need(*relative_paths):
    for rel in relative_paths:
        if not (SHARED / rel).is_file():
            pytest.skip(f"{rel} is not in {SHARED} (see ../shared/datasets/SOURCES.md)")


def _rows(X) -> set:
    return {row.tobytes() for row in X}


def test_catvnoncat_keeps_the_courses_training_and_test_sets():
    need(*CATS)
    strata.seed(0)
    data = catalog.load_run_data("catvnoncat")
    (X, _), (X_test, Y_test), _ = load_catvnoncat()
    assert data.sizes == {"train": 167, "dev": 42, "test": 50}
    assert data.summary == ("catvnoncat: train 167 / dev 42 (from the course's 209 training "
                            "images) / test 50 (the course's test set)")
    np.testing.assert_array_equal(data.test[0], X_test)  # the course's test set, as it is
    np.testing.assert_array_equal(data.test[1], Y_test)
    assert _rows(data.train[0]) | _rows(data.dev[0]) == _rows(X)  # dev: from training only
    assert not _rows(data.train[0]) & _rows(data.dev[0])
    strata.seed(0)
    np.testing.assert_array_equal(catalog.load_run_data("catvnoncat").dev[0], data.dev[0])


def _idx(path: Path, a: np.ndarray) -> None:
    """An idx file in MNIST's real format (magic, big-endian sizes, data), gzip-compressed."""
    code = {np.uint8: 0x08}[a.dtype.type]
    header = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, ">u4").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(header + a.tobytes()))


def small_mnist(monkeypatch, root: Path, parts=("train", "t10k"), sizes=(120, 30)) -> None:
    """Small MNIST files in ``root`` (STRATA_DATA), listed with their own digests."""
    monkeypatch.setenv("STRATA_DATA", str(root))
    rng = np.random.default_rng(0)
    for part, m in zip(parts, sizes):
        files = {f"mnist/{part}-images-idx3-ubyte.gz": rng.integers(0, 256, (m, 28, 28),
                                                                     dtype=np.uint8),
                 f"mnist/{part}-labels-idx1-ubyte.gz": (np.arange(m) % 10).astype(np.uint8)}
        for rel, array in files.items():
            _idx(root / rel, array)
            raw = (root / rel).read_bytes()
            url = download.REMOTE_FILES[rel][0]
            monkeypatch.setitem(download.REMOTE_FILES, rel,
                                (url, hashlib.sha256(raw).hexdigest(), len(raw)))


def test_mnist_trains_on_its_training_images_when_they_are_there(monkeypatch, tmp_path,
                                                                capsys):
    small_mnist(monkeypatch, tmp_path)
    strata.seed(0)
    data = catalog.load_run_data("mnist", images=True)
    assert data.sizes == {"train": 90, "dev": 30, "test": 30}  # dev as large as the test set
    assert data.summary == ("mnist: train 90 / dev 30 (from MNIST's 120 training images) / "
                            "test 30 (MNIST's test set)")
    assert data.note == "" and "not available" not in capsys.readouterr().err
    assert data.train[0].shape == (90, 28, 28, 1) and data.train[0].dtype == np.float32
    test_images, test_labels = datasets.load_mnist("test", flatten=False)
    np.testing.assert_array_equal(data.test[0], test_images)
    np.testing.assert_array_equal(data.test[1], test_labels)


def test_mnist_falls_back_to_its_test_images_and_says_so(monkeypatch, tmp_path, capsys):
    small_mnist(monkeypatch, tmp_path, parts=("t10k",), sizes=(50,))
    strata.seed(0)
    data = catalog.load_run_data("mnist")
    assert data.sizes == {"train": 30, "dev": 10, "test": 10}
    assert data.summary == ("mnist: train 30 / dev 10 / test 10 (a seeded 60/20/20 split of "
                            "MNIST's 50 test images: the training images are missing)")
    err = capsys.readouterr().err
    assert "MNIST's training images are not available" in err and data.note in err
    for text in ("instead of its 60000 training images", "Name or service not known",
                 str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz")):
        assert text in data.note  # why, and where to put the file by hand
    assert list((tmp_path / "mnist").iterdir()) != [] and not (
        tmp_path / "mnist" / "train-images-idx3-ubyte.gz").exists()


def test_a_corrupt_mnist_training_file_is_an_error_not_a_fallback(monkeypatch, tmp_path):
    small_mnist(monkeypatch, tmp_path)
    path = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(download.ChecksumError, match="corrupt file"):
        catalog.load_run_data("mnist")


def test_train_prints_and_records_the_mnist_fallback(tmp_path, capsys):
    need(*MNIST_TEST)  # the shared folder has MNIST's test images only, as here
    out = tmp_path / "mnist"
    assert cli.main(["--dataset", "mnist", "--epochs", "1", "--hidden", "8", "--quiet",
                     "--out", str(out)]) == 0
    captured = capsys.readouterr()
    line = ("mnist: train 6000 / dev 2000 / test 2000 (a seeded 60/20/20 split of MNIST's 10000 "
            "test images: the training images are missing)")
    assert f"Data: {line}" in captured.out
    assert "MNIST's training images are not available" in captured.err
    report = (out / "report.md").read_text()
    assert f"- data: {line}" in report and "**note:** MNIST's training images" in report
    record = json.loads((out / "data.json").read_text())
    assert record["summary"] == line and record["sizes"]["train"] == 6000
    assert "instead of its 60000 training images" in record["note"]


def test_train_and_evaluate_say_what_catvnoncat_data_they_use(tmp_path, capsys):
    need(*CATS)
    out = tmp_path / "cats"
    assert cli.main(["--dataset", "catvnoncat", "--epochs", "1", "--hidden", "4", "--quiet",
                     "--out", str(out)]) == 0
    line = ("catvnoncat: train 167 / dev 42 (from the course's 209 training images) / test 50 "
            "(the course's test set)")
    assert f"Data: {line}" in capsys.readouterr().out
    assert f"- data: {line}" in (out / "report.md").read_text()
    assert json.loads((out / "data.json").read_text())["sizes"] == {
        "train": 167, "dev": 42, "test": 50}
    assert cli.main(["evaluate", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"Data: {line}" in captured.out and "warning" not in captured.err
    record = json.loads((out / "data.json").read_text())
    record["summary"] = "catvnoncat: train 155 / dev 52 / test 52 (the old merged split)"
    (out / "data.json").write_text(json.dumps(record))
    assert cli.main(["evaluate", str(out)]) == 0
    assert "trained and measured on other data: catvnoncat: train 155" in capsys.readouterr().err


@pytest.mark.parametrize("ours, theirs, kwargs", [
    (moons, "make_moons", {"noise": 0.2}),
    (circles, "make_circles", {"noise": 0.05, "factor": 0.5}),
])
@pytest.mark.parametrize("m", [300, 7])
def test_moons_and_circles_are_scikit_learns(ours, theirs, kwargs, m):
    import sklearn.datasets

    X, Y = ours(m, **kwargs, rng=np.random.default_rng(5))
    seed = int(np.random.default_rng(5).integers(2 ** 32))  # the int strata draws from rng
    X_sk, y_sk = getattr(sklearn.datasets, theirs)(n_samples=(m - m // 2, m // 2),
                                                   random_state=seed, **kwargs)
    assert X.shape == (m, 2) and Y.shape == (m, 1) and X.dtype == Y.dtype == np.float32
    np.testing.assert_allclose(X, X_sk.astype(np.float32))
    np.testing.assert_array_equal(Y[:, 0], y_sk)
    assert int(Y.sum()) == m // 2  # the first class gets the odd example
    strata.seed(3)
    first = ours(m, **kwargs)
    strata.seed(3)
    np.testing.assert_array_equal(ours(m, **kwargs)[0], first[0])  # strata.seed repeats them


def test_generated_data_and_digits_say_how_they_were_split():
    strata.seed(0)
    assert catalog.load_run_data("moons").summary == (
        "moons: train 180 / dev 60 / test 60 (a seeded 60/20/20 split of 300 examples generated "
        "by scikit-learn's make_moons, noise 0.2)")
    assert catalog.load_run_data("digits").summary == (
        "digits: train 1079 / dev 359 / test 359 (a seeded 60/20/20 split of scikit-learn's "
        "1797 8x8 digit images)")
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        catalog.load_run_data("imagenet")
