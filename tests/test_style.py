"""Neural style transfer (strata.vision.style, texture): the course's costs against hand-computed
values and PyTorch, gradient checks in float64, preprocessing, the optimization of G (the cost
falls, the Gram matrices move toward their own style) with random and VGG-like extractors."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata.vision.style import (
    STYLE_LAYERS,
    Preprocessing,
    content_cost,
    generate_noise_image,
    gram_matrix,
    style_cost,
    style_layer_cost,
    total_cost,
    transfer_style,
)
from strata.vision.texture import RandomFeatures, VGGFeatures


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# --- the costs by hand ----------------------------------------------------------------------
def test_content_cost_by_hand():
    a_C, a_G = np.ones((1, 2, 2, 1)), np.zeros((1, 2, 2, 1))
    assert content_cost(a_C, a_G).item() == pytest.approx(4 / (4 * 2 * 2 * 1))
    a_G = np.array([[[[1.0, 3.0]]]])  # (1, 1, 1, 2)
    assert content_cost(np.zeros((1, 1, 1, 2)), a_G).item() == pytest.approx(10 / 8)


def test_gram_matrix_by_hand_course_layout_and_nhwc():
    A = np.array([[1.0, 2.0], [3.0, 4.0]])  # (n_C, n_H n_W)
    np.testing.assert_allclose(gram_matrix(A).data, [[5, 11], [11, 25]])
    nhwc = A.T.reshape(1, 1, 2, 2)  # pixels (1, 3) and (2, 4): the same unrolled matrix
    np.testing.assert_allclose(gram_matrix(nhwc).data, [[[5, 11], [11, 25]]])


def test_style_layer_cost_by_hand():
    a_S = np.array([1.0, 2.0]).reshape(1, 1, 2, 1)  # G_S = [[5]]
    assert style_layer_cost(a_S, np.zeros((1, 1, 2, 1))).item() == pytest.approx(25 / 16)
    a_S = np.array([[[[1.0, 0.0]]]])  # n_C = 2, one pixel: G_S = [[1, 0], [0, 0]]
    a_G = np.array([[[[0.0, 1.0]]]])  # G_G = [[0, 0], [0, 1]]
    assert style_layer_cost(a_S, a_G).item() == pytest.approx(2 / (4 * 4 * 1))


def test_style_cost_weighs_layers_and_total_cost():
    acts_S = {"a": np.ones((1, 1, 2, 1)), "b": np.array([1.0, 2.0]).reshape(1, 1, 2, 1)}
    acts_G = {"a": np.zeros((1, 1, 2, 1)), "b": np.zeros((1, 1, 2, 1))}
    J = style_cost(acts_S, acts_G, [("a", 0.5), ("b", 2.0)])
    assert J.item() == pytest.approx(0.5 * 4 / 16 + 2.0 * 25 / 16)
    assert style_cost(acts_S, acts_G, {"b": 1.0}).item() == pytest.approx(25 / 16)
    assert total_cost(1.0, 2.0) == 90.0  # plain numbers too
    assert float(total_cost(strata.tensor(1.0), strata.tensor(2.0)).item()) == 90.0
    assert float(total_cost(strata.tensor(1.0), strata.tensor(2.0), 1, 2).item()) == 5.0


def test_costs_of_several_examples_are_the_mean_of_each():
    a, b = rand(3, 4, 5, 6), rand(3, 4, 5, 6, seed=1)
    for cost in (content_cost, style_layer_cost):
        each = [cost(a[i:i + 1], b[i:i + 1]).item() for i in range(3)]
        assert cost(a, b).item() == pytest.approx(np.mean(each))


def test_course_style_layers():
    assert [n for n, _ in STYLE_LAYERS] == ["conv1_1", "conv2_1", "conv3_1", "conv4_1",
                                           "conv5_1"]
    assert all(w == 0.2 for _, w in STYLE_LAYERS)


def test_bad_inputs_named():
    with pytest.raises(ValueError, match=r"a_C and a_G of the same shape.*\(1, 2, 2, 1\)"):
        content_cost(np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 2, 2)))
    with pytest.raises(ValueError, match=r"NHWC activations.*\(2, 2\)"):
        style_layer_cost(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(KeyError, match="lack the layers"):
        style_cost({"conv1_1": np.zeros((1, 1, 1, 1))}, {"conv1_1": np.zeros((1, 1, 1, 1))})
    with pytest.raises(ValueError, match="weight >= 0"):
        style_cost({"a": np.zeros((1, 1, 1, 1))}, {"a": np.zeros((1, 1, 1, 1))}, [("a", -1)])
    with pytest.raises(ValueError, match="alpha"):
        total_cost(1.0, 1.0, alpha=float("nan"))


# --- gradients: float64 checks and PyTorch ----------------------------------------------------
def test_costs_pass_gradcheck_in_float64():
    a, b = rand(1, 3, 4, 5), rand(1, 3, 4, 5, seed=1)
    assert max(strata.gradcheck(content_cost, a, b)) < 1e-7
    assert max(strata.gradcheck(style_layer_cost, a, b)) < 1e-7
    assert max(strata.gradcheck(gram_matrix, rand(2, 3, 2, 4))) < 1e-7
    c, d = rand(2, 2, 3, 3, seed=2), rand(2, 2, 3, 3, seed=3)

    def weighted(a, b, c, d):
        return total_cost(content_cost(a, b), style_cost({"x": a, "y": c}, {"x": b, "y": d},
                                                         [("x", 0.3), ("y", 0.7)]))

    assert max(strata.gradcheck(weighted, rand(2, 2, 3, 3), rand(2, 2, 3, 3, seed=4), c, d)) \
        < 1e-7


def test_costs_match_pytorch():
    torch = pytest.importorskip("torch")

    def torch_gram(A):  # the course: A unrolled to (n_C, n_H n_W), G = A A^T
        m, n_H, n_W, n_C = A.shape
        unrolled = A.reshape(m, n_H * n_W, n_C).transpose(1, 2)
        return unrolled @ unrolled.transpose(1, 2)

    a_S, a_G = rand(1, 6, 7, 8), rand(1, 6, 7, 8, seed=1) * 2
    tS, tG = torch.tensor(a_S), torch.tensor(a_G, requires_grad=True)
    m, n_H, n_W, n_C = a_S.shape
    t_content = ((tS - tG) ** 2).sum() / (4 * n_H * n_W * n_C)
    t_style = ((torch_gram(tS) - torch_gram(tG)) ** 2).sum() / (4 * n_C ** 2 * (n_H * n_W) ** 2)
    t_total = 10 * t_content + 40 * t_style
    t_total.backward()
    G = strata.tensor(a_G, requires_grad=True)
    J_content, J_style = content_cost(a_S, G), style_layer_cost(a_S, G)
    J = total_cost(J_content, J_style)
    J.backward()
    assert J_content.item() == pytest.approx(t_content.item(), rel=1e-12)
    assert J_style.item() == pytest.approx(t_style.item(), rel=1e-12)
    np.testing.assert_allclose(G.grad, tG.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gram_matrix(a_S).data, torch_gram(tS).numpy(), rtol=1e-12)


def test_costs_keep_float32():
    a = rand(1, 3, 3, 2).astype(np.float32)
    assert content_cost(a, a * 2).dtype == np.float32
    assert style_layer_cost(a, a * 2).dtype == np.float32


# --- preprocessing and the initial image ----------------------------------------------------
def test_preprocessing_round_trip_and_channel_order():
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3)).astype(np.uint8)
    course = Preprocessing()
    x = course.preprocess(rgb)
    assert x.shape == (1, 4, 5, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0, 0], rgb[0, 0] - np.array([123.68, 116.779, 103.939]),
                               rtol=1e-6)
    np.testing.assert_array_equal(course.deprocess(x)[0], rgb)
    bgr = Preprocessing(channels="BGR")
    np.testing.assert_allclose(bgr.preprocess(rgb)[..., ::-1], x)
    np.testing.assert_array_equal(bgr.deprocess(bgr.preprocess(rgb))[0], rgb)
    torch_like = Preprocessing(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
    np.testing.assert_array_equal(torch_like.deprocess(torch_like.preprocess(rgb))[0], rgb)
    np.testing.assert_array_equal(course.deprocess(np.full((2, 2, 3), 1e4)), 255)  # clipped
    with pytest.raises(ValueError, match=r"RGB images.*\(4, 5\)"):
        course.preprocess(np.zeros((4, 5)))


def test_noise_image_mixes_noise_and_content_as_the_course():
    content = np.full((1, 8, 8, 3), 50.0, np.float32)
    G = generate_noise_image(content, 0.6, rng=np.random.default_rng(0))
    assert G.dtype == np.float32
    assert np.all(np.abs(G - 0.4 * 50) <= 0.6 * 20 + 1e-4)
    assert G.std() > 3  # uniform(-20, 20) * 0.6 has std 6.9
    np.testing.assert_allclose(generate_noise_image(content, 0.0), content)


# --- the optimization of G --------------------------------------------------------------------
def pictures(size=32):
    """A smooth content picture and two styles: red/blue stripes, green/yellow checkers."""
    y, x = np.mgrid[:size, :size] / size
    content = np.stack([200 * x, 200 * y, 100 + 0 * x], -1)
    stripes = np.where((np.arange(size) // 3 % 2)[None, :, None] == 0, [220, 30, 30],
                       [30, 30, 220]) * np.ones((size, 1, 1))
    checks = np.where(((np.arange(size)[:, None] // 5 + np.arange(size) // 5) % 2)[..., None]
                      == 0, [40, 200, 40], [230, 230, 40])
    return content, stripes.astype(np.float64), checks.astype(np.float64)


def small_features(seed=0):
    return RandomFeatures(kernels=(3, 5, 9), filters=16, seed=seed)


def test_transfer_lowers_the_cost_monotonically_at_first():
    content, stripes, _ = pictures()
    result = transfer_style(content, stripes, small_features(), iterations=8, lr=2.0, seed=3)
    J = [c["J"] for c in result.costs]
    assert all(b < a for a, b in zip(J, J[1:])), J
    assert result.image.shape == (32, 32, 3) and result.image.dtype == np.uint8
    again = transfer_style(content, stripes, small_features(), iterations=8, lr=2.0, seed=3)
    np.testing.assert_array_equal(again.image, result.image)  # deterministic by seed


def test_results_grams_move_toward_their_own_style():
    content, stripes, checks = pictures()
    extractor = small_features()
    prep = extractor.preprocessing

    def grams(pixels):
        acts = extractor(prep.preprocess(pixels))
        return {n: gram_matrix(a).data / a.shape[1] / a.shape[2] for n, a in acts.items()}

    def distance(g1, g2):
        return sum(np.linalg.norm(g1[n] - g2[n]) for n in g1)

    targets = {"stripes": grams(stripes), "checks": grams(checks)}
    start = grams(prep.deprocess(generate_noise_image(prep.preprocess(content),
                                                      rng=np.random.default_rng(0)))[0])
    for own, other in (("stripes", "checks"), ("checks", "stripes")):
        style = stripes if own == "stripes" else checks
        out = grams(transfer_style(content, style, extractor, iterations=60, lr=4.0).image)
        assert distance(out, targets[own]) < 0.5 * distance(start, targets[own])
        assert distance(out, targets[own]) < distance(out, targets[other])


def test_transfer_checks_its_inputs():
    content, stripes, _ = pictures()
    with pytest.raises(ValueError, match="same size"):
        transfer_style(content, stripes[:20], small_features(), iterations=1)
    with pytest.raises(ValueError, match=r"RGB pixels \(H, W, 3\)"):
        transfer_style(content[..., 0], stripes, small_features(), iterations=1)
    with pytest.raises(KeyError, match="no layer"):
        transfer_style(content, stripes, small_features(), iterations=1,
                       content_layer="conv4_2")
    with pytest.raises(ValueError, match="smaller than the largest filter"):
        transfer_style(content[:8, :8], stripes[:8, :8], small_features(), iterations=1)


# --- extractors -------------------------------------------------------------------------------
def tiny_vgg():
    """strata.models.vgg19's layout (conv1_1 ... pool5) with 4 filters per convolution."""
    from strata.models.vgg import vgg

    return vgg(((4, 1), (4, 1), (4, 1), (4, 2), (4, 1)), input_shape=(32, 32, 3),
               include_top=False, pool="avg")


def test_vgg_features_one_pass_frozen_and_used_by_transfer():
    model = tiny_vgg()
    extractor = VGGFeatures(model)
    x = Preprocessing().preprocess(pictures()[0])
    acts = extractor(x, ["conv1_1", "conv4_2"])
    assert list(acts) == ["conv1_1", "conv4_2"]
    assert acts["conv1_1"].shape == (1, 32, 32, 4) and acts["conv4_2"].shape == (1, 4, 4, 4)
    assert all(not p.requires_grad for p in model.parameters())
    content, stripes, _ = pictures()
    result = transfer_style(content, stripes, extractor, iterations=3)
    assert result.costs[-1]["J"] < result.costs[0]["J"]
    assert all(p.grad is None for p in model.layers[0].parameters())
    with pytest.raises(ValueError, match="named layers"):
        VGGFeatures(strata.nn.Sequential([strata.nn.Conv2D(2, 3)]))
    with pytest.raises(ValueError, match="unknown preprocessing"):
        VGGFeatures(model, "nonsense")
    assert VGGFeatures(model, "caffe").preprocessing.channels == "BGR"
    assert VGGFeatures(model, "torch").preprocessing.std[0] == pytest.approx(58.395)


# --- the command --------------------------------------------------------------------------------
def test_strata_style_writes_its_run_folder(tmp_path, capsys):
    import csv

    from PIL import Image

    from strata import cli

    content, stripes, _ = pictures(48)
    Image.fromarray(content.astype(np.uint8)).save(tmp_path / "content.jpg")
    Image.fromarray(stripes.astype(np.uint8)[:40]).save(tmp_path / "style.png")
    out = tmp_path / "run"
    assert cli.main(["style", str(tmp_path / "content.jpg"), str(tmp_path / "style.png"),
                     "--iterations", "3", "--save-every", "2", "--size", "40x32", "--quiet",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pretrained VGG-19" in printed and "course's quality" in printed
    assert {"config.json", "content.png", "style.png", "result.png", "panel.png", "costs.csv",
            "costs.png", "report.md"} <= {p.name for p in out.iterdir()}
    assert [p.name for p in (out / "stages").iterdir()] == ["iteration_0002.png"]
    with Image.open(out / "result.png") as result:
        assert result.size == (40, 32)
    rows = list(csv.DictReader((out / "costs.csv").open()))
    assert [int(r["iteration"]) for r in rows] == [0, 1, 2]
    assert float(rows[2]["J"]) < float(rows[0]["J"])
    assert "pretrained VGG-19" in (out / "report.md").read_text()
    assert cli.main(["style", str(tmp_path / "content.jpg"), str(tmp_path / "style.png"),
                     "--out", str(out)]) == 2  # a finished run is not replaced silently
    (tmp_path / "vgg.pth").write_bytes(b"\x80\x02fake pickle")
    for weights, message in ((tmp_path / "none.mat", "no such file"),
                             (tmp_path / "vgg.pth", "safetensors")):
        capsys.readouterr()
        assert cli.main(["style", str(tmp_path / "content.jpg"), str(tmp_path / "style.png"),
                         "--weights", str(weights), "--iterations", "1", "--quiet",
                         "--out", str(tmp_path / "w")]) == 2
        assert message in capsys.readouterr().err


def test_style_cost_from_grams_equals_style_cost():
    from strata.vision.style import style_cost_from_grams

    a_S = {"a": rand(1, 4, 5, 3), "b": rand(1, 2, 3, 6, seed=1)}
    a_G = {"a": rand(1, 4, 5, 3, seed=2), "b": rand(1, 2, 3, 6, seed=3)}
    weights = [("a", 0.4), ("b", 0.6)]
    grams = {n: gram_matrix(a) for n, a in a_S.items()}
    assert style_cost_from_grams(grams, a_G, weights).item() == pytest.approx(
        style_cost(a_S, a_G, weights).item(), rel=1e-12)
