"""YOLOv2 (strata.models.yolov2) and its passthrough layer: the published parameter counts,
Darknet's cfg structure, output shapes at small inputs, save/load, and space_to_depth against
an independent transcription of Darknet's reorg and against the formula of
tf.nn.space_to_depth. (The op's gradient, PyTorch and NaN checks run from the registries.)"""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata import nn
from strata.models import count_parameters, yolov2

SMALL = dict(input_shape=(64, 64, 3), anchors=2, classes=3, width=0.125)


def _images(shape=(64, 64, 3), m=2, seed=0):
    return np.random.default_rng(seed).standard_normal((m, *shape)).astype(np.float32)


def _layers_of(module):
    for child in getattr(module, "layers", None) or getattr(module, "branches", None) or ():
        yield child
        yield from _layers_of(child)


# --- the real network, from shapes alone -----------------------------------------------------

def test_parameter_counts_are_the_published_yolov2s():
    # The course's yolo_model.summary() (Keras, YAD2K's yolo.h5: 608x608, 5 anchors, 80 COCO
    # classes): Total 50,983,561 = trainable 50,962,889 + non-trainable 20,672.
    count = count_parameters(yolov2(), (608, 608, 3))
    assert count == ((19, 19, 425), 50_962_889, 20_672)
    assert count.total == 50_983_561
    # VOC (20 classes) changes only the last layer: 1024 * 125 + 125 weights.
    voc = count_parameters(yolov2((416, 416, 3), classes=20), (416, 416, 3))
    assert voc.output_shape == (13, 13, 125) and voc.total == 50_983_561 - 1024 * 300 - 300


def test_structure_follows_darknets_yolov2_cfg():
    model = yolov2()
    layers = list(_layers_of(model))
    convs = [la for la in layers if isinstance(la, nn.Conv2D)]
    norms = [la for la in layers if isinstance(la, nn.BatchNorm)]
    leaky = [la for la in layers if isinstance(la, nn.LeakyReLU)]
    assert len(convs) == 23 and len(norms) == len(leaky) == 22
    assert sum(isinstance(la, nn.MaxPool2D) for la in layers) == 5
    assert all(bn.epsilon == 1e-5 and bn.momentum == 0.99 for bn in norms)
    assert all(a.alpha == 0.1 for a in leaky)
    assert [c.use_bias for c in convs].count(True) == 1 and convs[-1].use_bias
    # Module order: the passthrough's 1x1 conv (cfg layer 26) comes before the deep path's.
    assert [(c.filters, c.kernel_size) for c in convs] == [
        (32, 3), (64, 3), (128, 3), (64, 1), (128, 3), (256, 3), (128, 1), (256, 3),
        (512, 3), (256, 1), (512, 3), (256, 1), (512, 3), (64, 1),
        (1024, 3), (512, 1), (1024, 3), (512, 1), (1024, 3), (1024, 3), (1024, 3),
        (1024, 3), (425, 1)]
    route = next(la for la in model.layers if isinstance(la, nn.Parallel))
    passthrough, deep = route.branches
    assert count_parameters(passthrough, (38, 38, 512)).output_shape == (19, 19, 256)
    assert count_parameters(deep, (38, 38, 512)).output_shape == (19, 19, 1024)
    front = nn.Sequential(model.layers[:model.layers.index(route)])
    assert count_parameters(front, (608, 608, 3)).output_shape == (38, 38, 512)


# --- small builds ------------------------------------------------------------------------------

def test_small_yolov2_runs_and_keeps_the_grid():
    strata.seed(0)
    model = yolov2(**SMALL)
    out = model(_images())
    assert out.shape == (2, 2, 2, 2 * (5 + 3)) and out.dtype == np.float32
    assert np.isfinite(out.data).all()
    out.sum().backward()
    assert all(p.grad is not None and np.isfinite(p.grad).all() for p in model.parameters())
    wide = yolov2((96, 64, 3), anchors=1, classes=1, width=0.1, reorg="darknet")
    assert wide.predict(_images((96, 64, 3), m=1)).shape == (1, 3, 2, 6)


@pytest.mark.parametrize("reorg", ["tensorflow", "darknet"])
def test_small_yolov2_saves_and_loads(tmp_path, reorg):
    strata.seed(0)
    model = yolov2(**SMALL, reorg=reorg)
    x = _images()
    model.train()(x)  # moves batch norm's running averages off their defaults
    path = strata.save_model(model, tmp_path / "yolo.safetensors")
    restored = strata.load_model(path)
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))
    s2d = [la for la in _layers_of(restored) if isinstance(la, nn.SpaceToDepth)]
    assert [(la.block, la.order) for la in s2d] == [(2, reorg)]


def test_yolov2_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"divisible by 32.*\(600, 608, 3\)"):
        yolov2((600, 608, 3))
    with pytest.raises(ValueError, match="anchors to be a positive int, got 0"):
        yolov2(anchors=0)
    with pytest.raises(ValueError, match="classes to be a positive int"):
        yolov2(classes=2.5)
    with pytest.raises(ValueError, match="width > 0"):
        yolov2(width=0)
    with pytest.raises(ValueError, match="reorg 'tensorflow' or 'darknet', got 'torch'"):
        yolov2(reorg="torch")


# --- space_to_depth ----------------------------------------------------------------------------

def _reorg_cpu(x, w, h, c, stride):
    """pjreddie/darknet src/blas.c reorg_cpu with forward = 0, as forward_reorg_layer calls
    it with the input's w, h, c: flat NCHW buffers of one image."""
    out = np.empty_like(x)
    out_c = c // (stride * stride)
    for k in range(c):
        for j in range(h):
            for i in range(w):
                in_index = i + w * (j + h * k)
                c2, offset = k % out_c, k // out_c
                w2, h2 = i * stride + offset % stride, j * stride + offset // stride
                out[in_index] = x[w2 + w * stride * (h2 + h * stride * c2)]
    return out


@pytest.mark.parametrize("shape, block", [((2, 4, 6, 8), 2), ((1, 6, 6, 4), 2),
                                          ((1, 6, 3, 18), 3)])
def test_darknet_order_is_pjreddies_reorg(shape, block):
    m, h, w, c = shape
    x = np.random.default_rng(0).standard_normal(shape)
    expected = np.stack([_reorg_cpu(img.transpose(2, 0, 1).ravel(), w, h, c, block)
                         .reshape(c * block * block, h // block, w // block).transpose(1, 2, 0)
                         for img in x])
    np.testing.assert_array_equal(strata.space_to_depth(x, block, "darknet").data, expected)


def test_tensorflow_order_is_blocks_then_channels():
    x = np.random.default_rng(1).standard_normal((2, 6, 4, 3))
    out = strata.space_to_depth(x, 2).data
    assert out.shape == (2, 3, 2, 12)
    for i, j, dy, dx, c in np.ndindex(3, 2, 2, 2, 3):
        assert (out[:, i, j, (dy * 2 + dx) * 3 + c] == x[:, 2 * i + dy, 2 * j + dx, c]).all()


def test_space_to_depth_layer_matches_torch_pixel_unshuffle():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((2, 4, 6, 3))
    xs = strata.tensor(x, requires_grad=True)
    out = nn.SpaceToDepth(2)(xs)
    g = np.random.default_rng(3).standard_normal(out.shape)
    out.backward(g)
    xt = torch.from_numpy(x).requires_grad_()
    # pixel_unshuffle orders channels (c, dy, dx); strata, as TensorFlow, (dy, dx, c).
    t = torch.nn.functional.pixel_unshuffle(xt.permute(0, 3, 1, 2), 2)
    t = t.reshape(2, 3, 4, 2, 3).transpose(1, 2).reshape(2, 12, 2, 3).permute(0, 2, 3, 1)
    t.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(out.data, t.detach().numpy())
    np.testing.assert_array_equal(xs.grad, xt.grad.numpy())


def test_space_to_depth_errors_name_the_shapes():
    with pytest.raises(strata.ShapeError, match=r"n_H and n_W divisible by 2.*\(1, 5, 4, 3\)"):
        strata.space_to_depth(np.zeros((1, 5, 4, 3)))
    with pytest.raises(strata.ShapeError, match=r"n_C divisible by 4.*\(1, 4, 4, 6\)"):
        strata.space_to_depth(np.zeros((1, 4, 4, 6)), 2, "darknet")
    with pytest.raises(strata.ShapeError, match=r"4-D NHWC input.*\(4, 4, 3\)"):
        nn.SpaceToDepth()(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="block to be a positive int, got 0"):
        strata.space_to_depth(np.zeros((1, 4, 4, 3)), 0)
    with pytest.raises(ValueError, match="order 'tensorflow' or 'darknet', got 'dcr'"):
        nn.SpaceToDepth(2, "dcr")
    with pytest.raises(strata.ShapeError, match=r"SpaceToDepth\(block=3.*\(6, 5, 2\)"):
        count_parameters(nn.SpaceToDepth(3), (6, 5, 2))


def test_layers_have_configs_and_shape_rules():
    layer = nn.SpaceToDepth(3, "darknet")
    assert nn.LAYERS["SpaceToDepth"].from_config(layer.get_config()).order == "darknet"
    assert count_parameters(layer, (6, 9, 18)) == ((2, 3, 162), 0, 0)
    assert repr(layer) == "SpaceToDepth(block=3, order='darknet')"
    leaky = nn.LAYERS["LeakyReLU"].from_config(nn.LeakyReLU(0.1).get_config())
    np.testing.assert_allclose(leaky(np.array([-2.0, 3.0])).data, [-0.2, 3.0])
    assert repr(leaky) == "LeakyReLU(alpha=0.1)"
    with pytest.raises(ValueError, match=r"LeakyReLU: expected 0 <= alpha < 1, got 1.5"):
        nn.LeakyReLU(1.5)
