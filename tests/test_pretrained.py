"""Pretrained-weight importers: MatConvNet .mat, Keras .h5 and torchvision-layout .safetensors,
each tested on files written here with the real files' structure (names, shapes, nesting)."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata import nn
from strata.models import (
    WeightsError,
    keras_resnet50,
    load_weights,
    resnet50,
    torchvision_resnet,
    vgg,
    vgg19,
)
from strata.models.resnet_imagenet import keras_name, resnet_roles

TINY = ((4, 2), (8, 1))  # conv1_1, conv1_2, pool1, conv2_1, pool2: 8x8 -> 2x2x8
RNG = np.random.default_rng(0)


def _tiny_vgg(include_top=True):
    return vgg(TINY, (8, 8, 3), classes=5, classifier_activation=None, fc_units=6,
               include_top=include_top)


def _randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _x(shape=(2, 8, 8, 3)):
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


# --- MatConvNet -------------------------------------------------------------------------------

def _struct(**fields):
    return fields


def _matconvnet_layers(bad=None):
    """The simplenn layout of imagenet-vgg-verydeep-19.mat, at TINY's sizes."""
    layers, c_in = [], 3
    spec = [("conv1_1", 4), ("conv1_2", 4), "pool1", ("conv2_1", 8), "pool2"]
    for item in spec:
        if isinstance(item, str):
            layers.append(_struct(name=item, type="pool", method="max", pool=[2.0, 2.0],
                                  stride=[2.0, 2.0], pad=[0.0, 0.0, 0.0, 0.0]))
            continue
        name, c_out = item
        shape = (3, 3, c_in, c_out) if name != bad else (3, 3, c_in + 1, c_out)
        bias = _randn(c_out, 1) if name.endswith("_1") else _randn(1, c_out)  # both occur
        weights = np.empty((1, 2), object)
        weights[0, 0], weights[0, 1] = _randn(*shape), bias
        layers += [_struct(name=name, type="conv", weights=weights, size=list(shape),
                           pad=[1.0] * 4, stride=[1.0, 1.0]),
                   _struct(name=f"relu{name[4:]}", type="relu")]
        c_in = c_out
    for name, shape in (("fc6", (2, 2, 8, 6)), ("fc7", (1, 1, 6, 6)), ("fc8", (1, 1, 6, 5))):
        weights = np.empty((1, 2), object)
        weights[0, 0], weights[0, 1] = _randn(*shape), _randn(shape[-1], 1)
        layers.append(_struct(name=name, type="conv", weights=weights, size=list(shape),
                              pad=[0.0] * 4, stride=[1.0, 1.0]))
        if name != "fc8":
            layers.append(_struct(name=f"relu{name[2:]}", type="relu"))
    layers.append(_struct(name="prob", type="softmax"))
    cells = np.empty((1, len(layers)), object)
    for i, layer in enumerate(layers):
        cells[0, i] = layer
    return cells


def _write_mat(path, bad=None):
    from scipy.io import savemat

    normalization = {"averageImage": np.tile(np.float32([123.68, 116.779, 103.939]),
                                             (8, 8, 1)), "imageSize": [8.0, 8.0, 3.0]}
    savemat(str(path), {"layers": _matconvnet_layers(bad), "normalization": normalization,
                        "classes": {"name": np.array(["a", "b", "c", "d", "e"], object)}})
    return path


def test_matconvnet_file_loads_with_the_course_layout(tmp_path):
    from scipy.io import loadmat

    path = _write_mat(tmp_path / "imagenet-vgg-tiny.mat")
    mat = loadmat(str(path))
    W = mat["layers"][0][0][0][0][2][0][0]  # nst_utils: vgg_layers[0][layer][0][0][2][0][0]
    b = mat["layers"][0][0][0][0][2][0][1]
    assert mat["layers"][0][0][0][0][0][0] == "conv1_1" and W.shape == (3, 3, 3, 4)

    model = load_weights(_tiny_vgg(), path)
    assert model.preprocessing == "matconvnet"
    np.testing.assert_array_equal(model["conv1_1"].W.data, W)
    np.testing.assert_array_equal(model["conv1_1"].b.data, b.reshape(-1))
    # fc6 is a 2x2 "valid" convolution over pool2's map: as a Dense, rows in H, W, C order
    assert mat["layers"][0][8][0][0][0][0] == "fc6"
    fc6 = mat["layers"][0][8][0][0][2][0][0]
    x = _x()
    pool2 = strata.models.feature_extractor(model, ["pool2"])(x)["pool2"]
    as_conv = strata.conv2d(pool2, strata.Tensor(fc6),
                            strata.Tensor(model["fc6"].b.data), 1, "valid")
    np.testing.assert_allclose(np.maximum(as_conv.data.reshape(2, 6), 0),
                               strata.models.feature_extractor(model, ["fc6"])(x)["fc6"].data,
                               rtol=1e-5, atol=1e-6)


def test_matconvnet_mismatch_and_bad_files(tmp_path):
    model = _tiny_vgg()
    load_weights(model, _write_mat(tmp_path / "good.mat"))
    before = model["conv1_1"].W.data.copy()
    with pytest.raises(WeightsError, match=r"layer conv1_2: expected W of shape "
                                           r"\(3, 3, 4, 4\), found \(3, 3, 5, 4\)"):
        load_weights(model, _write_mat(tmp_path / "bad.mat", bad="conv1_2"))
    np.testing.assert_array_equal(model["conv1_1"].W.data, before)  # nothing half-assigned
    (tmp_path / "corrupt.mat").write_bytes(b"MATLAB 5.0 MAT-file, garbage" + bytes(100))
    with pytest.raises(WeightsError, match="not a readable .mat file"):
        load_weights(model, tmp_path / "corrupt.mat")
    with pytest.raises(WeightsError, match=r"expected layers \['conv3_1'"):
        load_weights(vgg(((4, 2), (8, 1), (8, 1)), (8, 8, 3), include_top=False),
                     tmp_path / "good.mat")


# --- Keras .h5 --------------------------------------------------------------------------------

def _write_h5(path, layers: dict, order=None, keras1=False):
    """Keras 2's save_weights layout: root attribute layer_names; per layer a group with
    weight_names and the datasets at <layer>/<layer>/<weight>:0."""
    import h5py

    names = order or list(layers)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.2.4"
        for name in names:
            group = f.create_group(name)
            weights = layers.get(name, {})
            keys = [(f"{name}_{k[0].upper()}_1:0" if keras1 else f"{name}/{k}:0")
                    for k in weights]
            group.attrs["weight_names"] = np.array([k.encode() for k in keys])
            for key, value in zip(keys, weights.values()):
                group.create_dataset(key, data=value)
    return path


def _keras_vgg_layers(stages, fc=None, bad=None):
    layers, c_in = {"input_1": {}}, 3
    for s, (filters, convs) in enumerate(stages, start=1):
        for i in range(1, convs + 1):
            name = f"block{s}_conv{i}"
            shape = (3, 3, c_in if name != bad else c_in + 2, filters)
            layers[name] = {"kernel": _randn(*shape), "bias": _randn(filters)}
            c_in = filters
        layers[f"block{s}_pool"] = {}
    if fc:
        layers["flatten"] = {}
        for name, (n_in, n_out) in zip(("fc1", "fc2", "predictions"), fc):
            layers[name] = {"kernel": _randn(n_in, n_out), "bias": _randn(n_out)}
    return layers


def test_keras_vgg_full_and_notop(tmp_path):
    full = _keras_vgg_layers(TINY, fc=((32, 6), (6, 6), (6, 5)))
    model = load_weights(_tiny_vgg(), _write_h5(tmp_path / "vgg_tiny.h5", full))
    assert model.preprocessing == "caffe"
    np.testing.assert_array_equal(model["conv2_1"].W.data, full["block2_conv1"]["kernel"])
    np.testing.assert_array_equal(model["fc8"].b.data, full["predictions"]["bias"])
    notop = _keras_vgg_layers(TINY)
    path = _write_h5(tmp_path / "vgg_tiny_notop.h5", notop, keras1=True)
    body = load_weights(_tiny_vgg(include_top=False), path)
    np.testing.assert_array_equal(body["conv1_2"].W.data, notop["block1_conv2"]["kernel"])
    with pytest.raises(WeightsError, match=r"'fc1'.*notop.*include_top=False"):
        load_weights(_tiny_vgg(), path)
    bad = _write_h5(tmp_path / "bad.h5", _keras_vgg_layers(TINY, bad="block1_conv2"))
    with pytest.raises(WeightsError, match=r"layer block1_conv2: expected W of shape "
                                           r"\(3, 3, 4, 4\), found \(3, 3, 6, 4\)"):
        load_weights(body, bad)


def test_vgg19_weights_entry_point_reads_a_full_size_keras_notop_file(tmp_path):
    from strata.models.vgg import VGG19_STAGES

    layers = _keras_vgg_layers(VGG19_STAGES)
    model = vgg19(include_top=False, input_shape=None,
                  weights=_write_h5(tmp_path / "vgg19_notop.h5", layers))
    np.testing.assert_array_equal(model["conv5_4"].W.data, layers["block5_conv4"]["kernel"])
    assert model.preprocessing == "caffe" and model["conv5_4"].W.shape == (3, 3, 512, 512)


def _keras_resnet_layers(model, old: bool, classes=1000):
    from strata.models.pretrained import weighted_layers

    layers = {}
    weighted_layers(model)  # builds the parameters, to read their shapes
    for layer, role in resnet_roles(model):
        name = keras_name(role, old)
        if isinstance(layer, nn.BatchNorm):
            n = layer.gamma.shape[0]
            layers[name] = {"gamma": _randn(n), "beta": _randn(n), "moving_mean": _randn(n),
                            "moving_variance": RNG.uniform(0.5, 2, n).astype(np.float32)}
        else:
            layers[name] = {"kernel": _randn(*layer.W.shape), "bias": _randn(*layer.b.shape)}
    return layers


@pytest.mark.parametrize("old", [False, True], ids=["tf.keras-names", "keras2.0-names"])
def test_keras_resnet50_names_and_entry_point(tmp_path, old):
    roles = resnet_roles(keras_resnet50())
    names = [keras_name(role, old) for _, role in roles]
    assert len(names) == len(set(names)) == 53 + 53 + 1  # convs, batch norms, the classifier
    expected = (["conv1", "bn_conv1", "res2a_branch2a", "res2a_branch1", "bn4f_branch2c",
                 "res5c_branch2c", "fc1000"] if old else
                ["conv1_conv", "conv1_bn", "conv2_block1_1_conv", "conv2_block1_0_conv",
                 "conv4_block6_3_bn", "conv5_block3_3_conv", "predictions"])
    assert set(expected) <= set(names)
    layers = _keras_resnet_layers(keras_resnet50(include_top=False, input_shape=None), old)
    path = _write_h5(tmp_path / "resnet50_notop.h5", layers)
    model = load_weights(keras_resnet50(include_top=False, input_shape=(64, 64, 3)), path)
    block = model.layers[6]  # conv2_block1
    np.testing.assert_array_equal(block.shortcut.layers[0].W.data,
                                  layers[expected[3]]["kernel"])
    np.testing.assert_array_equal(block.main.layers[1].running_var.data,
                                  layers["bn2a_branch2a" if old else "conv2_block1_1_bn"]
                                  ["moving_variance"])
    assert model(_x((1, 64, 64, 3))).shape == (1, 2, 2, 2048)
    with pytest.raises(WeightsError, match="classes=1000"):
        resnet50((64, 64, 3), weights=path)


# --- torchvision-layout .safetensors ----------------------------------------------------------

def _torch_vgg(torch):
    tnn = torch.nn

    class TinyVGG(tnn.Module):  # torchvision's VGG layout, without the adaptive pool
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(
                tnn.Conv2d(3, 4, 3, padding=1), tnn.ReLU(), tnn.Conv2d(4, 4, 3, padding=1),
                tnn.ReLU(), tnn.MaxPool2d(2), tnn.Conv2d(4, 8, 3, padding=1), tnn.ReLU(),
                tnn.MaxPool2d(2))
            self.classifier = tnn.Sequential(
                tnn.Linear(32, 6), tnn.ReLU(), tnn.Dropout(), tnn.Linear(6, 6), tnn.ReLU(),
                tnn.Dropout(), tnn.Linear(6, 5))

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    return TinyVGG()


def _save_torch(torch, module, path):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    return path


def _compare(torch, module, model, x):
    with torch.no_grad():
        expected = module.eval()(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    got = model.eval()(x).data
    got = got.transpose(0, 3, 1, 2) if got.ndim == 4 else got
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_torchvision_vgg_matches_torch_forward(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = _torch_vgg(torch)
    path = _save_torch(torch, module, tmp_path / "vgg_tiny.safetensors")
    model = load_weights(_tiny_vgg(), path)
    assert model.preprocessing == "torch"
    _compare(torch, module, model, _x())  # the classifier.0 rows: C, H, W -> H, W, C
    state = {k: v.clone() for k, v in module.state_dict().items()}
    state["features.2.weight"] = torch.zeros(4, 5, 3, 3)
    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(WeightsError, match=r"layer features.2: expected W of shape "
                                           r"\(3, 3, 4, 4\), found \(3, 3, 5, 4\)"):
        load_weights(_tiny_vgg(), tmp_path / "bad.safetensors")
    state["features.2.weight"], state["features.3.weight"] = torch.zeros(4, 4, 3, 3), \
        torch.zeros(1)
    save_file(state, str(tmp_path / "extra.safetensors"))
    with pytest.raises(WeightsError, match=r"no layer of the model takes: \['features.3"):
        load_weights(_tiny_vgg(), tmp_path / "extra.safetensors")
    body = load_weights(_tiny_vgg(include_top=False), path)  # the classifier is left out
    np.testing.assert_array_equal(body["conv2_1"].W.data,
                                  module.features[5].weight.detach().numpy().transpose(2, 3, 1, 0))


def _torch_resnet(torch, blocks, width, bottleneck, classes=10):
    tnn = torch.nn

    def bn(n):
        b = tnn.BatchNorm2d(n)
        b.running_mean.uniform_(-0.5, 0.5), b.running_var.uniform_(0.5, 2.0)
        b.weight.data.uniform_(0.5, 1.5), b.bias.data.uniform_(-0.2, 0.2)
        return b

    class Block(tnn.Module):  # torchvision's Bottleneck (v1.5) or BasicBlock
        def __init__(self, c_in, planes, s):
            super().__init__()
            out = planes * 4 if bottleneck else planes
            if bottleneck:
                self.conv1, self.bn1 = tnn.Conv2d(c_in, planes, 1, bias=False), bn(planes)
                self.conv2 = tnn.Conv2d(planes, planes, 3, s, 1, bias=False)
                self.bn2 = bn(planes)
                self.conv3, self.bn3 = tnn.Conv2d(planes, out, 1, bias=False), bn(out)
            else:
                self.conv1 = tnn.Conv2d(c_in, planes, 3, s, 1, bias=False)
                self.bn1 = bn(planes)
                self.conv2, self.bn2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False), bn(planes)
            self.downsample = (tnn.Sequential(tnn.Conv2d(c_in, out, 1, s, bias=False), bn(out))
                               if s != 1 or c_in != out else None)

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            if bottleneck:
                y = self.bn3(self.conv3(torch.relu(y)))
            return torch.relu(y + (x if self.downsample is None else self.downsample(x)))

    class ResNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = tnn.Conv2d(3, width, 7, 2, 3, bias=False), bn(width)
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
            c_in = width
            for i, n in enumerate(blocks):
                planes = width * 2 ** i
                stage = []
                for b in range(n):
                    stage.append(Block(c_in, planes, 2 if i > 0 and b == 0 else 1))
                    c_in = planes * 4 if bottleneck else planes
                setattr(self, f"layer{i + 1}", tnn.Sequential(*stage))
            self.fc = tnn.Linear(c_in, classes)
            self.n = len(blocks)

        def forward(self, x):
            x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
            for i in range(self.n):
                x = getattr(self, f"layer{i + 1}")(x)
            return self.fc(x.mean((2, 3)))

    return ResNet()


@pytest.mark.parametrize("depth, blocks, width", [(50, (2, 1, 1), 4), (18, (2, 2), 4),
                                                  (50, None, 64)],
                         ids=["bottleneck-tiny", "basic-tiny", "resnet50-full"])
def test_torchvision_resnet_matches_torch_forward(tmp_path, depth, blocks, width):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    classes = 1000 if blocks is None else 10
    module = _torch_resnet(torch, blocks or (3, 4, 6, 3), width, depth >= 50, classes)
    path = _save_torch(torch, module, tmp_path / "resnet.safetensors")
    assert "layer1.0.downsample.0.weight" in module.state_dict() or depth < 50
    if blocks is None:  # the entry point, at the real size
        model = resnet50((32, 32, 3), 1000, classifier_activation=None, weights=path)
    else:
        model = load_weights(torchvision_resnet(depth, (32, 32, 3), classes, None,
                                                blocks=blocks, width=width), path)
    _compare(torch, module, model, _x((2, 32, 32, 3)))


def test_strata_safetensors_and_pickles(tmp_path):
    model = _tiny_vgg()
    model.build((8, 8, 3))
    saved = model.save(tmp_path / "mine.safetensors")
    other = load_weights(_tiny_vgg(), saved)
    np.testing.assert_array_equal(other["fc7"].W.data, model["fc7"].W.data)
    (tmp_path / "vgg19.pth").write_bytes(b"PK\x03\x04 a torch zip")
    with pytest.raises(WeightsError, match=r"(?s)never unpickles.*safetensors.torch import "
                                           r"save_file.*vgg19.safetensors"):
        load_weights(model, tmp_path / "vgg19.pth")
    (tmp_path / "weights").write_bytes(b"\x80\x04\x95 pickle")
    with pytest.raises(WeightsError, match="pickled"):
        load_weights(model, tmp_path / "weights")
    with pytest.raises(FileNotFoundError, match="no weights file"):
        load_weights(model, tmp_path / "absent.h5")


# --- transfer learning on the loaded models ---------------------------------------------------

def test_transfer_helpers_on_a_loaded_vgg(tmp_path):
    full = _keras_vgg_layers(TINY, fc=((32, 6), (6, 6), (6, 5)))
    model = load_weights(_tiny_vgg(), _write_h5(tmp_path / "vgg.h5", full))
    new = nn.replace_head(model, classes=3)
    assert new.layer_names[-1] == "head" and new.layer_names[:-1] == model.layer_names[:-1]
    assert [p.shape for p in new.parameters()] == [(6, 3), (3,)]
    nn.freeze(new, len(new.layers) - 3)  # unfreeze fc7 and the head
    assert [p.shape for p in new.parameters()] == [(6, 6), (6,), (6, 3), (3,)]
    body = load_weights(_tiny_vgg(include_top=False), tmp_path / "vgg.h5")
    features = nn.precompute_features(body, _x((5, 8, 8, 3)), tmp_path / "f.safetensors",
                                      verbose=False)
    np.testing.assert_allclose(features, body.predict(_x((5, 8, 8, 3))), rtol=1e-6)


def test_pretrained_doc_example_runs(capsys):
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "PRETRAINED.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "PRETRAINED.md", "exec"), {})
    out = capsys.readouterr().out
    assert "'conv4_2': (1, 8, 8, 512)" in out and "(1, 64, 64, 3)" in out and "uint8" in out
