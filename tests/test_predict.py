"""strata predict: CSV files with or without a header, images and folders of images in the
model's input shape, and --out writing classes and probabilities (issue 19)."""

import csv

import numpy as np
import pytest
from PIL import Image

import strata
from strata import cli, nn
from strata.data import moons
from strata.prediction import predict_files, read_examples


@pytest.fixture(scope="module")
def moons_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("predict") / "run"
    assert cli.main(["--dataset", "moons", "--epochs", "20", "--hidden", "8", "--quiet",
                     "--out", str(out)]) == 0
    return out


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_csv_with_header_and_out_file(moons_run, tmp_path, capsys):
    strata.seed(0)
    X, _ = moons(12, noise=0.0)
    np.savetxt(tmp_path / "plain.csv", X, delimiter=",")
    np.savetxt(tmp_path / "header.csv", X, delimiter=",", header="x1,x2", comments="")
    assert cli.main(["predict", str(moons_run), str(tmp_path / "plain.csv")]) == 0
    printed = capsys.readouterr().out.split()
    out = tmp_path / "predictions.csv"
    assert cli.main(["predict", str(moons_run), str(tmp_path / "header.csv"),
                     "--out", str(out)]) == 0
    assert "Wrote the classes and probabilities of 12 examples" in capsys.readouterr().out
    rows = _rows(out)
    assert rows[0] == ["example", "class", "p_1"]  # one sigmoid unit: P(y = 1)
    assert [r[1] for r in rows[1:]] == printed  # the header row was skipped, not predicted
    assert [r[0] for r in rows[1:]] == [f"header.csv:{i}" for i in range(12)]
    p = np.array([float(r[2]) for r in rows[1:]])
    assert np.all((p > 0.5) == (np.array(printed) == "1")) and np.all((0 <= p) & (p <= 1))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # atomic


def test_a_text_row_that_is_not_a_header_is_an_error(moons_run, tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("x1,x2\n0.1,0.2\nabc,0.3\n")
    assert cli.main(["predict", str(moons_run), str(tmp_path / "bad.csv")]) == 2
    assert "expected rows of numbers" in capsys.readouterr().err


def _image_model():
    strata.seed(1)
    model = nn.Sequential([nn.Conv2D(2, 3, activation="relu"), nn.Flatten(),
                           nn.Dense(3, "softmax")])
    model.build((8, 8, 1))
    return model


def test_images_and_folders_of_images_equal_the_array_path(tmp_path):
    model = _image_model()
    pixels = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 1), dtype=np.uint8)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, p in enumerate(pixels):
        Image.fromarray(p[..., 0]).save(folder / f"img{i}.png")
    np.save(tmp_path / "pixels.npy", pixels)
    X, names = read_examples([folder], (8, 8, 1))
    assert names == [f"img{i}.png" for i in range(4)] and X.dtype == np.uint8
    np.testing.assert_array_equal(X, pixels)
    out = tmp_path / "p.csv"
    from_images = predict_files(model, [folder / "img0.png", folder / "img1.png",
                                        folder / "img2.png", folder / "img3.png"], out)
    from_array = predict_files(model, [tmp_path / "pixels.npy"])
    np.testing.assert_array_equal(from_images, from_array)
    rows = _rows(out)
    assert rows[0] == ["example", "class", "p_0", "p_1", "p_2"]
    probabilities = np.array([[float(v) for v in r[2:]] for r in rows[1:]])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    model.eval()
    np.testing.assert_allclose(probabilities, model.predict(pixels / np.float32(255)),
                               rtol=1e-5, atol=1e-6)


def test_an_image_of_the_wrong_size_is_an_error_naming_both(tmp_path):
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match=r"expects 8x8 images .* got \(10, 12, 1\)"):
        read_examples([tmp_path / "big.png"], (8, 8, 1))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not a readable image"):
        read_examples([tmp_path / "broken.png"], (8, 8, 1))
    with pytest.raises(ValueError, match="no such file"):
        read_examples([tmp_path / "missing.png"], (8, 8, 1))
    with pytest.raises(ValueError, match="image input"):
        read_examples([tmp_path / "big.png"], (5,))
