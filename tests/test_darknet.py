"""Darknet .weights files (strata.models.darknet): the layout against a file written by hand
from Darknet's parser.c, the computation against Darknet's formulas (torch's conv weights share
Darknet's (n_C, n_C_prev, f, f) layout), round trips of small YOLOv2s with the real structure,
and every malformed file refused before anything is assigned."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata import nn
from strata.models import load_darknet_weights, write_darknet_weights, yolov2
from strata.models.darknet import DarknetHeader, darknet_layers
from strata.models.yolo import conv_bn_leaky

SMALL = dict(input_shape=(64, 64, 3), anchors=2, classes=3, width=0.125)


def _images(shape=(64, 64, 3), m=2, seed=0):
    return np.random.default_rng(seed).standard_normal((m, *shape)).astype(np.float32)


def _randomize_averages(model, seed=0):
    """Running averages away from 0 and 1, so that loading them is visible in the output."""
    rng = np.random.default_rng(seed)
    for layer in darknet_layers(model):
        if layer.bn is not None:
            n = layer.bn.gamma.shape[0]
            layer.bn.running_mean.data = rng.normal(0, 0.1, n).astype(np.float32)
            layer.bn.running_var.data = rng.uniform(0.5, 1.5, n).astype(np.float32)
            layer.bn.gamma.data = rng.uniform(0.5, 1.5, n).astype(np.float32)
            layer.bn.beta.data = rng.normal(0, 0.1, n).astype(np.float32)


def _small(seed, **options):
    strata.seed(seed)
    model = yolov2(**{**SMALL, **options})
    model.build(SMALL["input_shape"])
    _randomize_averages(model, seed)
    return model.eval()


# --- layout and formulas -----------------------------------------------------------------------

def _tiny():
    """Darknet's [convolutional] batch_normalize=1 size=3 filters=4 activation=leaky, then
    [convolutional] size=1 filters=3 activation=linear, on 5x5x2 images."""
    model = nn.Sequential([*conv_bn_leaky(4, 3), nn.Conv2D(3, 1)])
    model.build((5, 5, 2))
    return model.eval()


def _darknet_arrays(seed=0):
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return {"biases": rng.normal(0, 0.5, 4).astype(f32), "scales": rng.uniform(0.5, 2, 4)
            .astype(f32), "mean": rng.normal(0, 0.5, 4).astype(f32),
            "variance": rng.uniform(0.01, 2, 4).astype(f32),
            "weights": rng.normal(0, 0.5, (4, 2, 3, 3)).astype(f32),
            "biases2": rng.normal(0, 0.5, 3).astype(f32),
            "weights2": rng.normal(0, 0.5, (3, 4, 1, 1)).astype(f32)}


def _handwritten(path, a, header=(0, 2, 0), seen=12800):
    """What Darknet's save_weights writes: the header, then each layer's vectors and its
    weights in (n_C, n_C_prev, f, f) order, little-endian."""
    wide = header[0] * 10 + header[1] >= 2
    parts = [np.asarray(header, "<i4").tobytes(), np.asarray([seen], "<i8" if wide else "<i4")
             .tobytes()]
    parts += [a[k].astype("<f4").tobytes() for k in ("biases", "scales", "mean", "variance",
                                                       "weights", "biases2", "weights2")]
    path.write_bytes(b"".join(parts))
    return path


def _darknet_forward(x, a):
    """Darknet's forward pass (cuDNN / GPU formulas) on NHWC x, in torch on NCHW."""
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2)
    z = torch.nn.functional.conv2d(t, torch.from_numpy(a["weights"]).double(), padding=1)

    def per_channel(v):
        return torch.from_numpy(v).double().reshape(1, -1, 1, 1)
    z = (z - per_channel(a["mean"])) / torch.sqrt(per_channel(a["variance"]) + 1e-5)
    z = per_channel(a["scales"]) * z + per_channel(a["biases"])
    z = torch.where(z > 0, z, 0.1 * z)
    out = torch.nn.functional.conv2d(z, torch.from_numpy(a["weights2"]).double(),
                                     torch.from_numpy(a["biases2"]).double())
    return out.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("header, size", [((0, 2, 0), 20), ((0, 1, 0), 16)])
def test_a_handwritten_file_loads_and_computes_darknets_formula(tmp_path, header, size):
    a = _darknet_arrays()
    path = _handwritten(tmp_path / "tiny.weights", a, header)
    model = _tiny()
    assert load_darknet_weights(model, path) == DarknetHeader(*header, 12800)
    assert DarknetHeader(*header, 0).size == size
    conv, bn = model.layers[0], model.layers[1]
    np.testing.assert_array_equal(conv.W.data, a["weights"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(bn.beta.data, a["biases"])
    np.testing.assert_array_equal(bn.running_var.data, a["variance"])
    x = _images((5, 5, 2), m=3)
    np.testing.assert_allclose(model.predict(x), _darknet_forward(x, a), rtol=1e-5, atol=1e-5)
    # write_darknet_weights writes exactly Darknet's bytes.
    copy = write_darknet_weights(model, tmp_path / "copy.weights", header, seen=12800)
    assert copy.read_bytes() == path.read_bytes()


# --- round trips -------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [(0, 2, 0), (0, 1, 0)])
def test_small_yolov2_round_trips_exactly(tmp_path, version):
    model, fresh = _small(0), _small(1)
    x = _images()
    assert not np.array_equal(model.predict(x), fresh.predict(x))
    path = write_darknet_weights(model, tmp_path / "yolo.weights", version, seen=640)
    n = sum(layer.size for layer in darknet_layers(model))
    assert path.stat().st_size == DarknetHeader(*version, 0).size + 4 * n
    assert load_darknet_weights(fresh, path) == DarknetHeader(*version, 640)
    np.testing.assert_array_equal(fresh.predict(x), model.predict(x))
    assert [p.name for p in tmp_path.iterdir()] == ["yolo.weights"]  # nothing left behind


def test_one_file_loads_into_both_reorg_orders_and_unbuilt_models(tmp_path):
    model = _small(0)
    path = write_darknet_weights(model, tmp_path / "yolo.weights")
    darknet = yolov2(**SMALL, reorg="darknet")  # never called: built from its input shape
    load_darknet_weights(darknet, path)
    assert all(np.array_equal(a, b) for a, b in zip(
        model.state_dict().values(), darknet.state_dict().values(), strict=True))


def test_full_size_yolov2_needs_exactly_pjreddies_file_size():
    layers = darknet_layers(yolov2())  # from shapes: nothing is built
    # pjreddie.com/media/files/yolov2.weights: 203,934,260 bytes, a 16-byte (v0.1) header.
    assert len(layers) == 23 and 16 + 4 * sum(la.size for la in layers) == 203_934_260
    # The cfg's order: the deep path (layers 18-24) before the passthrough (26).
    assert [la.conv.filters for la in layers[-5:]] == [1024, 1024, 64, 1024, 425]
    assert layers[20].n_c_prev == 512 and layers[21].n_c_prev == 1280


# --- malformed files ---------------------------------------------------------------------------

@pytest.fixture
def written(tmp_path):
    model = _small(0)
    return model, write_darknet_weights(model, tmp_path / "yolo.weights").read_bytes()


def _refused(model, path, pattern):
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=pattern):
        load_darknet_weights(model, path)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before), "the model changed"


def test_a_file_one_float_short_names_the_last_layer(tmp_path, written):
    model, data = written
    n = (len(data) - 20) // 4
    (path := tmp_path / "short.weights").write_bytes(data[:-4])
    _refused(_small(1), path, rf"need {n:,} float32 values .* holds {4 * n - 4:,} bytes "
                              rf"\({n - 1:,} values\): it ends inside convolutional layer 23 "
                              r"\(model\.layers\.47: Conv2D\(16\) 1x1, 128 -> 16 channels, "
                              r"with biases\).* finds 2,063 of its 2,064")


def test_a_file_ending_early_names_the_layer_it_ends_in(tmp_path, written):
    model, data = written
    (path := tmp_path / "cut.weights").write_bytes(data[:20 + 4 * 1000])
    # Layers 1-2 take 4 * 4 + 27 * 4 and 8 * 4 + 36 * 8 values: 444; layer 3 takes 1,216.
    _refused(_small(1), path, r"it ends inside convolutional layer 3 \(model\.layers\.8: "
                              r"Conv2D\(16\) 3x3, 8 -> 16 channels, batch-normalized\), "
                              r"which needs values 444 to 1,660 and finds 556 of its 1,216")


def test_a_file_too_long_or_with_stray_bytes_is_refused(tmp_path, written):
    model, data = written
    (path := tmp_path / "long.weights").write_bytes(data + bytes(8))
    _refused(_small(1), path, r"2 values are left after the last layer, convolutional "
                              r"layer 23")
    path.write_bytes(data + bytes(2))
    _refused(_small(1), path, r"and 2 stray bytes\): 0 values are left")


@pytest.mark.parametrize("header, pattern", [
    (np.asarray([0, 2], "<i4").tobytes(), r"header of at least 16 bytes, the file has 8"),
    (np.asarray([-1, 2, 0, 0, 0], "<i4").tobytes(), r"bad header.*got -1\.2\.0"),
    (np.asarray([0, 1000, 0, 0, 0], "<i4").tobytes(), r"bad header.*\[0, 1000\), got 0\.1000"),
    (np.asarray([0, 1, 0, -5], "<i4").tobytes(), r"bad header: expected seen >= 0, got -5"),
])
def test_a_bad_header_is_refused(tmp_path, written, header, pattern):
    model, data = written
    (path := tmp_path / "bad.weights").write_bytes(header + data[20:] if len(header) >= 16
                                                   else header)
    _refused(_small(1), path, pattern)


def test_a_header_of_the_other_version_shifts_every_value_and_is_refused(tmp_path, written):
    model, data = written
    (path := tmp_path / "v1.weights").write_bytes(np.asarray([0, 1, 0], "<i4").tobytes()
                                                  + data[12:])
    _refused(_small(1), path, r"after the 16-byte header\), the file holds .*1 values are left")


# --- models Darknet cannot describe ---------------------------------------------------------

@pytest.mark.parametrize("layers, error, pattern", [
    ([nn.Conv2D(4, 3), nn.BatchNorm()], ValueError, r"has a bias and a BatchNorm after it"),
    ([nn.Conv2D(4, 3, use_bias=False)], ValueError, r"has no bias and no BatchNorm"),
    ([nn.Flatten(), nn.Dense(3)], TypeError, r"model\.layers\.0 is a Flatten"),
    ([nn.Conv2D(4, 1), nn.MaxPool2D(), nn.BatchNorm()], TypeError, r"layers\.2 is a BatchNorm"),
])
def test_models_without_a_darknet_layout_are_refused(tmp_path, layers, error, pattern):
    model = nn.Sequential(layers)
    model.input_shape = (4, 4, 2)
    with pytest.raises(error, match=pattern):
        darknet_layers(model)


def test_an_unbuilt_model_without_input_shape_and_bad_writer_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"no input shape and is not built"):
        darknet_layers(nn.Sequential([nn.Conv2D(4, 1)]))
    with pytest.raises(ValueError, match=r"convolutional layer 1 .* is not built"):
        write_darknet_weights(yolov2(**SMALL), tmp_path / "x.weights")
    model = _small(0)
    with pytest.raises(ValueError, match=r"version \(major, minor, revision\)"):
        write_darknet_weights(model, tmp_path / "x.weights", (0, 2))
    with pytest.raises(ValueError, match=r"seen >= 0"):
        write_darknet_weights(model, tmp_path / "x.weights", seen=-1)
    assert list(tmp_path.iterdir()) == []


def test_pjreddies_yolov2_weights_when_present():
    path = strata.data.download.data_dir() / "yolo" / "yolov2.weights"
    if not path.exists():
        pytest.skip(f"no {path} (pjreddie.com/media/files/yolov2.weights; set STRATA_DATA)")
    model = yolov2((256, 256, 3), reorg="darknet")
    assert load_darknet_weights(model, path).major == 0
    out = model.predict(_images((256, 256, 3), m=1))
    assert out.shape == (1, 8, 8, 425) and np.isfinite(out).all()
