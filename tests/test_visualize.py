"""What deep ConvNets learn (strata.vision.visualize): receptive-field arithmetic against
hand-computed values and against the gradient of one unit, the top patches of a unit that
responds to a bright square, the grid PNG, and ``strata visualize`` on a ``strata train``
run folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

import strata
from strata import cli, nn
from strata.vision.visualize import (
    crop,
    layer_index,
    receptive_fields,
    top_patches,
    visualize_units,
)


def geometry(field):
    return field.size[0], field.jump[0], field.first[0], field.shape[0]


def test_receptive_fields_by_hand():
    model = nn.Sequential([nn.Conv2D(2, 3, padding="same"), nn.MaxPool2D(2),
                           nn.Conv2D(2, 3, padding="same"), nn.Flatten(), nn.Dense(2)])
    fields = receptive_fields(model, (16, 16, 1))
    assert [geometry(f) for f in fields[:3]] == [(3, 1, -1, 16), (4, 2, -1, 8), (8, 2, -3, 8)]
    assert fields[3:] == [None, None]
    model = nn.Sequential([nn.ZeroPadding2D(2), nn.Conv2D(1, 5, strides=2), nn.Activation("relu"),
                           nn.AvgPool2D(3, strides=1)])
    fields = receptive_fields(model, (12, 12))
    assert [geometry(f) for f in fields] == [(1, 1, -2, 16), (5, 2, -2, 6), (5, 2, -2, 6),
                                             (9, 2, -2, 4)]


def test_receptive_fields_of_the_signs_convnet():
    """CONV 4x4 same (pads 1 before, 2 after) -> MAXPOOL 8/8 same -> CONV 2x2 same (0 before)
    -> MAXPOOL 4/4 same: sizes 4, 4 + 7 = 11, 11 + 1 * 8 = 19, 19 + 3 * 8 = 43."""
    from strata.models import signs_convnet

    fields = receptive_fields(signs_convnet(), (64, 64, 3))
    assert [geometry(f) for f in fields[:4]] == [(4, 1, -1, 64), (11, 8, -1, 8),
                                                 (19, 8, -1, 8), (43, 32, -1, 2)]


def test_receptive_field_is_where_the_gradient_of_a_unit_lives():
    strata.seed(0)
    model = nn.Sequential([nn.Conv2D(3, 3, padding="same", activation="tanh"),
                           nn.AvgPool2D(2), nn.Conv2D(2, 3, strides=2, padding=1,
                                                      activation="tanh"),
                           nn.AvgPool2D(2, strides=1, padding="same")])
    x = strata.tensor(np.random.default_rng(0).standard_normal((1, 21, 19, 1)),
                      requires_grad=True)
    out = model(x)
    fields = receptive_fields(model, (21, 19))
    assert fields[-1].shape == out.shape[1:3]
    for i, j in [(0, 0), (2, 3), (out.shape[1] - 1, out.shape[2] - 1)]:
        x.grad = None
        out[0, i, j, 1].backward(retain_graph=True)
        support = np.abs(x.grad[0, ..., 0]) > 0
        expected = crop(np.ones((21, 19, 1)), fields[-1].box(i, j)).sum()
        inside = np.zeros_like(support)
        top, left, bottom, right = fields[-1].box(i, j)
        inside[max(top, 0):bottom, max(left, 0):right] = True
        assert support.sum() == expected and np.array_equal(support, inside)


def bright_squares(m=40, size=16, seed=0):
    """Dark noisy images, a third of them with a bright 3x3 square at a random place."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 0.2, (m, size, size, 1)).astype(np.float32)
    where = {}
    for n in range(0, m, 3):
        r, c = rng.integers(0, size - 3, 2)
        X[n, r:r + 3, c:c + 3] = 1.0
        where[n] = (r, c)
    return X, where


def square_detector():
    model = nn.Sequential([nn.Conv2D(1, 3, activation="relu"), nn.MaxPool2D(2)])
    model.build((16, 16, 1))
    model.layers[0].W.data[:] = 1 / 9
    model.layers[0].b.data[:] = -0.5
    return model


def test_top_patches_of_a_bright_square_unit_contain_the_square():
    X, where = bright_squares()
    found = top_patches(square_detector(), X, [0, 1], units=[0])
    conv, pool = found[0][0], found[1][0]
    assert len(conv.patches) == 9 and set(conv.images) <= set(where)
    for n, (i, j), patch in zip(conv.images, conv.positions, conv.patches):
        assert (i, j) == tuple(where[n]) and patch.shape == (3, 3, 1)
        np.testing.assert_array_equal(patch, 1.0)  # exactly the square
    for n, patch in zip(pool.images, pool.patches):
        assert n in where and patch.shape == (4, 4, 1)
        windows = np.lib.stride_tricks.sliding_window_view(patch[..., 0], (3, 3))
        assert (windows.min(axis=(2, 3)) == 1.0).any()  # the whole square is inside
    assert conv.activations == sorted(conv.activations, reverse=True)


def test_grid_png_and_errors(tmp_path):
    from PIL import Image

    X, _ = bright_squares()
    model = square_detector()
    visualize_units(model, X, [0, 1], tmp_path)
    with Image.open(tmp_path / "units_0_Conv2D.png") as picture:
        assert picture.size[0] >= 3 * 48
    assert (tmp_path / "units_1_MaxPool2D.png").is_file()
    with pytest.raises(ValueError, match="units 0..0"):
        top_patches(model, X, [0], units=[3])
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        layer_index(model, "conv9")
    flat = nn.Sequential([nn.Conv2D(1, 3), nn.Flatten(), nn.Dense(2)])
    flat.build((16, 16, 1))
    with pytest.raises(ValueError, match="not spatial"):
        top_patches(flat, X, [2])
    with pytest.raises(ValueError, match=r"images \(m, n_H, n_W, n_C\)"):
        top_patches(model, X[0], [0])


def test_strata_visualize_on_a_train_run(tmp_path, capsys):
    run = tmp_path / "digits"
    assert cli.main(["train", "--dataset", "digits", "--arch", "convnet", "--epochs", "1",
                     "--quiet", "--out", str(run)]) == 0
    out = tmp_path / "units"
    assert cli.main(["visualize", str(run), "--units", "0,1,2", "--n", "200",
                     "--out", str(out)]) == 0
    assert (out / "units_0_Conv2D.png").is_file() and (out / "units_2_Conv2D.png").is_file()
    listing = json.loads((out / "units.json").read_text())
    assert [u["unit"] for u in listing["0"]] == [0, 1, 2]
    assert all(len(u["images"]) == 9 for u in listing["2"])
    assert cli.main(["visualize", str(run), "--layers", "1", "--units", "0", "--out",
                     str(out)]) == 0
    assert (out / "units_1_MaxPool2D.png").is_file()
    capsys.readouterr()
    assert cli.main(["visualize", str(run), "--layers", "4"]) == 2
    assert "not spatial" in capsys.readouterr().err
