"""strata.onnx.export: on every zoo model and on a small model of each layer kind, onnxruntime's
outputs equal strata's (inference mode) to float32 tolerance, onnx.checker accepts the file, and
strata.onnx.load reads it back to the same outputs; bad input is refused by name."""

from __future__ import annotations

import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import strata  # noqa: E402
from strata import models, nn  # noqa: E402
from strata.onnx import export, load, register_exporter  # noqa: E402


def run_onnx(path, x):
    """onnxruntime's output for the batch x."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def randomize_batch_norms(model, seed: int = 0) -> None:
    """Running averages and gamma/beta away from 0/1, so that exporting them is tested."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm) and m.gamma is not None:
            n = m.gamma.shape[0]
            for t, (low, high) in ((m.gamma, (0.5, 1.5)), (m.beta, (-0.5, 0.5)),
                                   (m.running_mean, (-0.5, 0.5)), (m.running_var, (0.5, 2))):
                t.data = rng.uniform(low, high, n).astype(t.dtype)


def example(shape, ids=None, m: int = 2):
    rng = np.random.default_rng(1)
    if ids is not None:
        return rng.integers(0, ids, (m, *shape)).astype(np.int64)
    return rng.standard_normal((m, *shape)).astype(np.float32)


def check_export(model, x, tmp_path, round_trip=True, rtol=1e-4):
    """Export, check, compare with onnxruntime and (``round_trip``) with load's model."""
    strata.seed(0)
    model.eval()
    if not model.state_dict():
        model(x[:1])
    randomize_batch_norms(model)
    expected = model.predict(x)
    path = export(model, tmp_path / "model.onnx", input_shape=x.shape[1:])
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    atol = 1e-5 * max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(run_onnx(path, x), expected, rtol=rtol, atol=atol)
    if round_trip:
        np.testing.assert_allclose(load(path).predict(x), expected, rtol=rtol, atol=atol)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # nothing else left behind
    return path


ZOO = {
    "logistic_regression": (lambda: models.logistic_regression(5), (5,)),
    "shallow_network": (lambda: models.shallow_network(5), (5,)),
    "deep_network": (lambda: models.deep_network((10, 8, 5, 3)), (10,)),
    "lenet5_classic": (lambda: models.lenet5(), (32, 32, 1)),
    "lenet5_modern": (lambda: models.lenet5("modern", classifier_activation=None), (32, 32, 1)),
    "signs_convnet": (lambda: models.signs_convnet(input_shape=(32, 32, 3)), (32, 32, 3)),
    "small_convnet": (lambda: models.small_convnet(input_shape=(32, 32, 3)), (32, 32, 3)),
    "alexnet": (lambda: models.alexnet((67, 67, 3), 10), (67, 67, 3)),
    "vgg16": (lambda: models.vgg16((32, 32, 3), 10, None), (32, 32, 3)),
    "resnet50": (lambda: models.resnet50((64, 64, 3), 6, None), (64, 64, 3)),
    "resnet34": (lambda: models.resnet34((32, 32, 3), 5, None), (32, 32, 3)),
    "googlenet": (lambda: models.googlenet((32, 32, 3), 5, False, None), (32, 32, 3)),
    "identity_block": (lambda: nn.Sequential([models.identity_block(3, (4, 4, 6))]), (8, 8, 6)),
    "convolutional_block": (lambda: nn.Sequential([models.convolutional_block(3, (4, 4, 6))]),
                            (8, 8, 3)),
    "basic_block": (lambda: nn.Sequential([models.basic_block(4, 2)]), (8, 8, 3)),
    "inception_module": (lambda: nn.Sequential([models.inception_module(2, 3, 4, 2, 3, 2)]),
                         (8, 8, 5)),
    "naive_inception": (lambda: nn.Sequential([models.naive_inception_module(2, 3, 4)]),
                        (8, 8, 5)),
    "yolov2": (lambda: models.yolov2((64, 64, 3), 2, 3, width=0.125), (64, 64, 3)),
    "vgg19": (lambda: models.vgg19((32, 32, 3), 10, None), (32, 32, 3)),
    "keras_resnet50": (lambda: models.keras_resnet50((32, 32, 3), 4, None), (32, 32, 3)),
    "facenet": (lambda: models.facenet(), (96, 96, 3)),
    "face_encoder": (lambda: models.face_encoder(), (32, 32, 1)),
}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_models_match_onnxruntime_and_round_trip(name, tmp_path):
    build, shape = ZOO[name]
    check_export(build(), example(shape), tmp_path)


def test_yolov2_darknet_reorg_matches_onnxruntime(tmp_path):
    model = models.yolov2((64, 64, 4), 2, 3, width=0.125, reorg="darknet")
    check_export(model, example((64, 64, 4)), tmp_path, round_trip=False)


def _conv(*layers):
    return nn.Sequential([nn.Conv2D(4, 3, padding="same"), *layers])


LAYERS = {
    "dense_activations": (lambda: nn.Sequential([
        nn.Dense(6, "relu"), nn.Dense(6, "tanh"), nn.Dense(6, "leaky_relu"),
        nn.LeakyReLU(0.2), nn.Dense(5, "sigmoid"), nn.Dense(4, use_bias=False),
        nn.Activation("softmax")]), (7,), None),
    "dense_on_sequences": (lambda: nn.Sequential([nn.Dense(5, "relu"), nn.BatchNorm(),
                                                  nn.Dense(3)]), (4, 6), None),
    "dense_on_images": (lambda: nn.Sequential([nn.Conv2D(3, 1), nn.Dense(5)]), (4, 4, 2), None),
    "conv_paddings": (lambda: nn.Sequential([
        nn.Conv2D(4, 3, 2, "same", "relu"), nn.Conv2D(5, 2, 1, "same"),
        nn.Conv2D(3, 3, 1, 1, use_bias=False), nn.Conv2D(4, 3, 2, "valid", "softmax")]),
        (11, 10, 3), None),
    "pools": (lambda: _conv(nn.MaxPool2D(3, 2, "same"), nn.AvgPool2D(2, 1, "same"),
                            nn.AvgPool2D(3, 2, 1), nn.MaxPool2D(2)), (13, 12, 2), None),
    "batch_norm_dropout_flatten": (lambda: _conv(nn.BatchNorm(activation="relu"),
                                                 nn.Dropout(0.5), nn.Flatten(),
                                                 nn.BatchNorm(activation="tanh"), nn.Dense(3)),
                                   (5, 6, 2), None),
    "zero_padding_global_pool": (lambda: _conv(nn.ZeroPadding2D(((1, 2), (0, 3))),
                                               nn.GlobalAveragePooling2D(), nn.Dense(2)),
                                 (5, 5, 3), None),
    "residual_parallel": (lambda: nn.Sequential([
        nn.Residual([nn.Conv2D(3, 3, padding="same"), nn.BatchNorm()], None, "relu"),
        nn.Parallel([[nn.Conv2D(2, 1)], [nn.MaxPool2D(3, 1, "same")]]),
        nn.Residual([nn.Conv2D(4, 3, 2, "same")], [nn.Conv2D(4, 1, 2)], "tanh")]),
        (6, 6, 3), None),
    "space_to_depth": (lambda: _conv(nn.SpaceToDepth(2), nn.Conv2D(3, 1)), (4, 6, 2), None),
    "embedding_simple_rnn": (lambda: nn.Sequential([
        nn.Embedding(9, 4), nn.SimpleRNN(5, "relu", return_sequences=True),
        nn.SimpleRNN(3, reverse=True)]), (6,), 9),
    "gru_lstm": (lambda: nn.Sequential([
        nn.GRU(4, return_sequences=True), nn.GRU(3, reset_after=True, reverse=True,
                                                 return_sequences=True),
        nn.LSTM(5, return_sequences=True), nn.LSTM(3, reverse=True)]), (5, 2), None),
    "bidirectional_concat_sum": (lambda: nn.Sequential([
        nn.Bidirectional(nn.LSTM(3, return_sequences=True)),
        nn.Bidirectional(nn.GRU(2), "sum")]), (4, 3), None),
    "one_hot_time_distributed": (lambda: nn.Sequential([
        nn.OneHot(6), nn.LSTM(4, return_sequences=True),
        nn.TimeDistributed(nn.Dense(6, "softmax"))]), (5,), 6),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_each_layer_kind_matches_onnxruntime_and_round_trips(name, tmp_path):
    build, shape, ids = LAYERS[name]
    check_export(build(), example(shape, ids), tmp_path)


@pytest.mark.parametrize("model, shape", [
    (nn.Sequential([nn.Bidirectional(nn.SimpleRNN(3, return_sequences=True), "mul"),
                    nn.Bidirectional(nn.GRU(2), "ave")]), (4, 3)),
    (nn.Sequential([nn.TimeDistributed(nn.Conv2D(2, 3)), nn.TimeDistributed(nn.Flatten())]),
     (3, 5, 5, 2)),
    (nn.Sequential([nn.Conv2D(4, 1), nn.SpaceToDepth(2, "darknet")]), (4, 4, 2)),
])
def test_export_only_layer_forms_match_onnxruntime(model, shape, tmp_path):
    check_export(model, example(shape), tmp_path, round_trip=False)


def test_opset_18_and_an_example_batch_as_input_shape(tmp_path):
    model = models.lenet5()
    x = example((32, 32, 1))
    model(x)
    path = export(model, tmp_path / "m.onnx", input_shape=x, opset=18)
    assert onnx.load(str(path)).opset_import[0].version == 18
    model.eval()
    np.testing.assert_allclose(run_onnx(path, x), model.predict(x), atol=1e-6)


class Doubler(nn.Module):
    """A user's layer, unknown to the export until registered."""

    def forward(self, x):
        return x * 2.0


def test_unknown_layers_are_named_and_can_be_registered(tmp_path):
    model = nn.Sequential([nn.Dense(3), Doubler(), nn.Sequential([Doubler()])])
    model.build((4,))
    with pytest.raises(ValueError, match=r"layers\.1 \(Doubler\), layers\.2\.layers\.0 "
                                         r"\(Doubler\)"):
        export(model, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())

    from strata.onnx.builder import EXPORTERS, Value

    @register_exporter(Doubler)
    def _doubler(layer, g, v, x):
        two = g.const(np.float32(2.0), "two")
        return Value(g.node("Mul", [v.name, two]), v.layout), layer(x)

    try:
        check_export(model, example((4,)), tmp_path, round_trip=False)
    finally:
        del EXPORTERS[Doubler]


def test_bad_arguments_are_refused_before_writing(tmp_path):
    target = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match="no weights yet"):
        export(nn.Sequential([nn.Dense(2)]), target, input_shape=(3,))
    custom = nn.Sequential([nn.Dense(2, activation=lambda z: z)])
    custom.build((3,))
    with pytest.raises(ValueError, match="activation"):
        export(custom, target)
    model = nn.Sequential([nn.LSTM(2, return_state=True)])
    model.build((3, 2))
    with pytest.raises(ValueError, match="return_state"):
        export(model, target)
    dense = nn.Sequential([nn.Dense(2)])
    dense.build((3,))
    with pytest.raises(ValueError, match=r"\.onnx"):
        export(dense, tmp_path / "m.bin")
    with pytest.raises(ValueError, match="opset"):
        export(dense, target, opset=9)
    with pytest.raises(ValueError, match="input_shape"):
        export(dense, target, input_shape=("a",))
    with pytest.raises(TypeError, match="Module"):
        export("model", target)
    assert not list(tmp_path.iterdir())


def test_missing_onnx_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    dense = nn.Sequential([nn.Dense(2)])
    dense.build((3,))
    with pytest.raises(ImportError, match=r"pip install 'strata\[onnx\]'"):
        export(dense, tmp_path / "m.onnx")


def test_export_command_writes_a_runs_model(tmp_path, capsys):
    from strata import cli

    run = tmp_path / "run"
    assert cli.main(["--dataset", "moons", "--epochs", "2", "--hidden", "4", "--quiet",
                     "--out", str(run)]) == 0
    out = tmp_path / "exported" / "model.onnx"
    assert cli.main(["export", str(run), "--onnx", str(out)]) == 0
    assert "opset 17" in capsys.readouterr().out
    model = strata.load_model(run / "model.safetensors")
    x = example((2,), m=5)
    np.testing.assert_allclose(run_onnx(out, x), model.predict(x), atol=1e-6)
    assert cli.main(["export", str(tmp_path / "nowhere"), "--onnx", str(out)]) == 2
