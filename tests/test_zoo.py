"""Course 4 week 2's case studies: conv arithmetic, the model zoo's shapes and exact parameter
counts, forward/backward smoke tests, residual blocks, GoogLeNet's auxiliary losses, save/load
and freezing. Full-size counts come from shapes (count_parameters), checked against real builds
where those are cheap, so no test allocates VGG-16's 550 MB."""

from __future__ import annotations

import ast
import re

import numpy as np
import pytest

import strata
from strata import nn
from strata.models import (
    GoogLeNet,
    alexnet,
    basic_block,
    bottleneck_cost,
    conv_multiplications,
    conv_output_shape,
    conv_parameters,
    convolutional_block,
    count_parameters,
    googlenet,
    identity_block,
    inception_module,
    lenet5,
    naive_inception_module,
    resnet34,
    resnet50,
    vgg16,
)

ROW = re.compile(r"^(\d+): (\w+)\s+(\(None[^)]*\))\s+([\d,]+)$")


def _summary(model, input_shape=None):
    """(rows [(class, output shape, params)], totals {"Total": n, ...}) of model.summary."""
    lines = []
    model.summary(input_shape, print_fn=lines.append)
    text = "\n".join(lines).splitlines()
    rows = [(m[2], ast.literal_eval(m[3]), int(m[4].replace(",", "")))
            for m in map(ROW.match, text) if m]
    totals = {k: int(v.replace(",", "")) for k, v in
              re.findall(r"^(Total|Trainable|Non-trainable) params: ([\d,]+)$", "\n".join(text),
                         flags=re.M)}
    return rows, totals


def _inputs(shape, m=2, seed=0):
    return np.random.default_rng(seed).standard_normal((m, *shape)).astype(np.float32)


# --- arithmetic -------------------------------------------------------------------------------

def test_conv_output_shape_follows_the_course_formula():
    assert conv_output_shape((6, 6, 1), 3) == (4, 4, 1)
    assert conv_output_shape((39, 39, 3), 3, 1, 0, 10) == (37, 37, 10)
    assert conv_output_shape((37, 37, 10), 5, 2, 0, 20) == (17, 17, 20)
    assert conv_output_shape((17, 17, 20), 5, 2, 0, 40) == (7, 7, 40)
    assert conv_output_shape((7, 7, 3), 3, 2, 1, 8) == (4, 4, 8)  # floor((7 + 2 - 3)/2) + 1
    assert conv_output_shape((224, 224, 3), 7, 2, "same", 64) == (112, 112, 64)
    assert conv_output_shape((28, 28, 192), 3, 1, "same") == (28, 28, 192)
    assert conv_output_shape((5, 5, 2), 5, p="valid") == (1, 1, 2)
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_shape((4, 4, 1), 5)
    with pytest.raises(ValueError, match="n_H, n_W, n_C"):
        conv_output_shape((4, 4), 3)


def test_parameter_and_multiplication_counts():
    assert conv_parameters(5, 3, 8) == 608
    assert conv_parameters(5, 8, 16) == 3216
    assert conv_parameters(3, 64, 64, bias=False) == 36_864
    assert conv_parameters(3, 3, 10) == 280  # course quiz: 10 filters 3x3x3
    assert conv_multiplications((28, 28, 192), 5, 32) == 28 * 28 * 32 * 5 * 5 * 192
    assert conv_multiplications((28, 28, 192), 1, 16) == 2_408_448


def test_bottleneck_cost_matches_the_course():
    cost = bottleneck_cost()
    assert cost.direct == 120_422_400  # ~120 M
    assert cost.reduce == 2_408_448  # ~2.4 M
    assert cost.conv == 10_035_200  # ~10.0 M
    assert cost.bottlenecked == 12_443_648  # ~12.4 M, about a tenth
    assert bottleneck_cost((28, 28, 192), 3, 128, 96).direct == 28 * 28 * 128 * 9 * 192


def test_count_parameters_errors_name_the_layer():
    with pytest.raises(strata.ShapeError, match="MaxPool2D"):
        vgg16((16, 16, 3))  # five 2x2 pools need at least 32x32
    with pytest.raises(strata.ShapeError, match="aux=False"):
        googlenet((64, 64, 3))
    with pytest.raises(TypeError, match="no shape rule for Add"):
        count_parameters(nn.Sequential([nn.Add()]), (4, 4, 1))
    with pytest.raises(ValueError, match="variant"):
        lenet5("ancient")


# --- the course's LeNet-like table ------------------------------------------------------------

def test_course_lenet_like_example_table():
    strata.seed(0)
    model = nn.Sequential([nn.Conv2D(8, 5, activation="relu"), nn.MaxPool2D(2),
                           nn.Conv2D(16, 5, activation="relu"), nn.MaxPool2D(2), nn.Flatten(),
                           nn.Dense(120, "relu"), nn.Dense(84, "relu"), nn.Dense(10, "softmax")])
    rows, totals = _summary(model, (32, 32, 3))
    expected = [("Conv2D", (28, 28, 8), 6272, 608), ("MaxPool2D", (14, 14, 8), 1568, 0),
                ("Conv2D", (10, 10, 16), 1600, 3216), ("MaxPool2D", (5, 5, 16), 400, 0),
                ("Flatten", (400,), 400, 0), ("Dense", (120,), 120, 48_120),
                ("Dense", (84,), 84, 10_164), ("Dense", (10,), 10, 850)]
    assert len(rows) == len(expected)
    for (name, shape, params), (e_name, e_shape, e_size, e_params) in zip(rows, expected):
        assert (name, shape[1:], int(np.prod(shape[1:])), params) == (
            e_name, e_shape, e_size, e_params)
    assert totals == {"Total": 62_958, "Trainable": 62_958, "Non-trainable": 0}
    assert count_parameters(model, (32, 32, 3)).total == 62_958


# --- exact parameter counts -------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_lenet5_has_61706_parameters(variant):
    model = lenet5(variant)
    rows, totals = _summary(model)  # input_shape (32, 32, 1) is the model's own
    assert totals["Total"] == 61_706 == count_parameters(model, (32, 32, 1)).total
    assert [params for _, _, params in rows] == [156, 0, 2416, 0, 0, 48_120, 10_164, 850]
    pool = nn.AvgPool2D if variant == "classic" else nn.MaxPool2D
    assert isinstance(model[1], pool)
    assert model[0].activation.__name__ == ("tanh" if variant == "classic" else "relu")


def test_alexnet_and_vgg16_counts():
    assert count_parameters(alexnet(), (227, 227, 3)).total == 62_378_344
    vgg = count_parameters(vgg16(), (224, 224, 3))
    assert vgg.total == vgg.trainable == 138_357_544 and vgg.output_shape == (1000,)
    shapes = []
    for layer in alexnet().layers:
        shape = count_parameters(layer, shapes[-1] if shapes else (227, 227, 3)).output_shape
        shapes.append(shape)
    assert shapes[:2] == [(55, 55, 96), (27, 27, 96)] and (9216,) in shapes


@pytest.mark.parametrize("build", [
    lambda: vgg16((32, 32, 3), classes=10), lambda: alexnet((67, 67, 3), classes=10),
    lambda: resnet34((32, 32, 3), classes=10), lambda: googlenet((64, 64, 3), 10, aux=False)],
    ids=["vgg16", "alexnet", "resnet34", "googlenet"])
def test_count_parameters_agrees_with_a_real_build(build):
    model = build()
    _, totals = _summary(model)
    count = count_parameters(model, model.input_shape)
    assert (totals["Trainable"], totals["Non-trainable"]) == (count.trainable,
                                                               count.non_trainable)


@pytest.fixture(scope="module")
def signs_resnet50():
    strata.seed(0)
    model = resnet50()
    model.build((64, 64, 3))
    return model


def test_resnet50_summary_matches_the_course(signs_resnet50):
    rows, totals = _summary(signs_resnet50, (64, 64, 3))
    assert totals == {"Total": 23_600_006, "Trainable": 23_546_886, "Non-trainable": 53_120}
    assert rows[4][1] == (None, 15, 15, 64) and rows[-1][1] == (None, 6)
    assert [r[0] for r in rows].count("Residual") == 16


def test_resnet34_has_torchvisions_trainable_count():
    count = count_parameters(resnet34(), (224, 224, 3))
    assert count.trainable == 21_797_672 and count.non_trainable == 17_024
    convs = [m for m in resnet34().modules() if isinstance(m, nn.Conv2D)]
    assert len(convs) == 36 and not any(c.use_bias for c in convs)  # 33 + 3 projections


def test_googlenet_counts_and_auxiliary_branches():
    assert count_parameters(googlenet(aux=False), (224, 224, 3)).total == 6_998_552
    assert count_parameters(googlenet(), (224, 224, 3)).total == 13_378_280
    assert googlenet(aux=False).aux1 is None and googlenet(aux=False).aux2 is None
    model = googlenet()
    assert isinstance(model.aux1, nn.Sequential) and isinstance(model.aux2, nn.Sequential)
    assert count_parameters(model.aux1, (14, 14, 512)).total == 3_188_840
    assert count_parameters(model.aux2, (14, 14, 528)).total == 3_190_888
    assert count_parameters(model.stem, (224, 224, 3)).output_shape == (14, 14, 512)


def test_inception_modules_concatenate_their_branches():
    x = _inputs((8, 8, 6))
    module = inception_module(4, 3, 5, 2, 3, 2)
    assert module(x).shape == (2, 8, 8, 4 + 5 + 3 + 2)
    assert count_parameters(module, (28, 28, 192)).output_shape == (28, 28, 14)
    naive = naive_inception_module(4, 5, 3)
    assert naive(x).shape == (2, 8, 8, 4 + 5 + 3 + 6)
    assert count_parameters(inception_module(64, 96, 128, 16, 32, 32),
                            (28, 28, 192)).output_shape == (28, 28, 256)  # 3a


# --- forward and backward ---------------------------------------------------------------------

def _smoke(model, shape, classes):
    model.train()
    x = _inputs(shape)
    out = model(x)
    assert out.shape == (2, classes) and np.isfinite(out.data).all()
    strata.losses.sparse_categorical_crossentropy(out, np.array([0, 1])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or
               p.grad.shape != p.shape or not np.isfinite(p.grad).all()]
    assert missing == []


@pytest.mark.parametrize("build, shape, classes", [
    (lambda: lenet5("classic"), (32, 32, 1), 10), (lambda: lenet5("modern"), (32, 32, 1), 10),
    (lambda: alexnet((67, 67, 3), classes=5), (67, 67, 3), 5),
    (lambda: vgg16((32, 32, 3), classes=5), (32, 32, 3), 5),
    (lambda: resnet34((32, 32, 3), classes=5), (32, 32, 3), 5)],
    ids=["lenet5-classic", "lenet5-modern", "alexnet", "vgg16", "resnet34"])
def test_forward_backward(build, shape, classes):
    strata.seed(1)
    _smoke(build(), shape, classes)


@pytest.mark.parametrize("make, args", [
    (lenet5, {"variant": "modern"}), (alexnet, {"input_shape": (67, 67, 3)}),
    (vgg16, {"input_shape": (32, 32, 3)}), (resnet34, {"input_shape": (32, 32, 3)}),
    (resnet50, {}), (googlenet, {"input_shape": (65, 65, 3)}),
    (strata.models.signs_convnet, {}), (strata.models.small_convnet, {})],
    ids=lambda v: getattr(v, "__name__", ""))
def test_zoo_models_end_in_softmax_as_keras_applications(make, args):
    """Probabilities by default (classifier_activation="softmax", for the default losses),
    logits with classifier_activation=None; a softmax over one class is refused."""
    heads = []
    for option in ({}, {"classifier_activation": None}):
        model = make(classes=4, **option, **args)
        if isinstance(model, GoogLeNet):
            assert model.aux1[-1].activation is model.head[-1].activation
            assert model.get_config()["classifier_activation"] == option.get(
                "classifier_activation", "softmax")
            model = model.head
        heads.append(model.layers[-1].activation.__name__)
    assert heads == ["softmax", "linear"]
    with pytest.raises(ValueError, match="softmax over classes=1.*'sigmoid'"):
        make(classes=1, **args)
    make(classes=1, classifier_activation="sigmoid", **args)  # one binary output


def test_googlenet_saved_before_classifier_activation_keeps_its_logits():
    config = googlenet((65, 65, 3), classes=3, aux=False).get_config()
    del config["classifier_activation"]
    old = GoogLeNet.from_config(config)
    assert old.head[-1].activation.__name__ == "linear"


def test_resnet50_forward_backward(signs_resnet50):
    _smoke(signs_resnet50, (64, 64, 3), 6)
    signs_resnet50.zero_grad()


def test_googlenet_trains_with_auxiliary_losses():
    strata.seed(2)
    model = googlenet((65, 65, 3), classes=4)  # 65x65: the smallest the aux branches take
    assert model.aux_outputs == [] and model.parameters() == []
    x, y = _inputs((65, 65, 3), m=4), np.array([0, 1, 2, 3])
    model.eval()(x)  # the first call builds the aux branches too, even in eval mode
    assert model.aux_outputs == [] and model.aux2[-1].W is not None
    aux_W = model.aux1[-1].W.data.copy()
    model.compile("adam", loss="sparse_categorical_crossentropy", lr=1e-3)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert not np.array_equal(aux_W, model.aux1[-1].W.data)  # the optimizer updates aux too
    model.train()
    out = model(x)
    assert [a.shape for a in model.aux_outputs] == [(4, 4), (4, 4)]
    loss = strata.losses.sparse_categorical_crossentropy
    expected = loss(out, y).item() + 0.3 * sum(loss(a, y).item() for a in model.aux_outputs)
    cost = model._cost(out, y)
    assert np.isclose(cost.item(), expected, rtol=1e-5)
    model.zero_grad()
    cost.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    out = model(x)
    assert out.shape == (4, 4) and model.aux_outputs == []
    assert np.isclose(model._cost(out, y).item(), loss(out, y).item())


# --- blocks -----------------------------------------------------------------------------------

def test_residual_blocks_compute_relu_of_main_plus_shortcut():
    strata.seed(4)
    x = _inputs((8, 8, 4))
    block = convolutional_block(3, [2, 3, 5], s=2)
    block.train()(x)  # builds and moves the running averages
    block.eval()
    expected = np.maximum(block.main(x).data + block.shortcut(x).data, 0)
    np.testing.assert_allclose(block(x).data, expected, rtol=1e-6)
    assert block(x).shape == (2, 4, 4, 5)
    main = block.main.layers
    assert [type(m).__name__ for m in main] == ["Conv2D", "BatchNorm", "Activation"] * 2 + [
        "Conv2D", "BatchNorm"]
    assert [(c.kernel_size, c.strides, c.padding) for c in main[::3]] == [
        (1, 2, "valid"), (3, 1, "same"), (1, 1, "valid")]
    ident = identity_block(3, [2, 3, 4]).eval()
    np.testing.assert_allclose(ident(x).data, np.maximum(ident.main(x).data + x, 0), rtol=1e-6)
    assert ident.shortcut is None
    assert basic_block(4).shortcut is None and basic_block(8, 2).shortcut is not None
    assert basic_block(8, projection=True)(x).shape == (2, 8, 8, 8)
    with pytest.raises(strata.ShapeError, match="shortcut"):
        basic_block(8)(x)  # 4 channels cannot be added to 8 without a projection


def test_small_resnet_and_googlenet_save_and_load(tmp_path):
    strata.seed(5)
    model = nn.Sequential([nn.Conv2D(8, 3, padding="same"), nn.BatchNorm(), nn.Activation("relu"),
                           convolutional_block(3, [4, 4, 16], s=1), identity_block(3, [4, 4, 16]),
                           basic_block(16), basic_block(24, 2), nn.GlobalAveragePooling2D(),
                           nn.Dense(3)])
    x = _inputs((12, 12, 3), m=4)
    model.train()(x)  # running averages move off their defaults
    path = strata.save_model(model, tmp_path / "resnet.safetensors")
    loaded = strata.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    net = googlenet((64, 64, 3), classes=3, aux=False)
    net.build()
    loaded = strata.load_model(strata.save_model(net, tmp_path / "googlenet.safetensors"))
    assert isinstance(loaded, GoogLeNet) and loaded.get_config() == net.get_config()
    x64 = _inputs((64, 64, 3))
    np.testing.assert_array_equal(loaded.predict(x64), net.predict(x64))


def test_freezing_the_body_leaves_only_the_head_trainable():
    strata.seed(6)
    model = resnet34((32, 32, 3), classes=10)
    model.build((32, 32, 3))
    for layer in model.layers[:-1]:
        layer.trainable = False
    assert [p.shape for p in model.parameters()] == [(512, 10), (10,)]
    count = count_parameters(model, (32, 32, 3))
    assert count.trainable == 5130 and count.total == 21_814_696 - 1000 * 513 + 5130
    _, totals = _summary(model)
    assert (totals["Trainable"], totals["Total"]) == (5130, count.total)
    net = googlenet((64, 64, 3), classes=3, aux=False)
    net.build()
    for part in (net.stem, net.middle):
        part.trainable = False
    net.head.trainable = False
    net.head[-1].trainable = True
    assert [p.shape for p in net.parameters()] == [(1024, 3), (3,)]
    lines = []
    net.summary(print_fn=lines.append)
    assert "Trainable params: 3,075" in lines[-1]
