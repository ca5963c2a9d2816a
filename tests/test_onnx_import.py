"""strata.onnx.load: networks written directly with onnx.helper (NCHW conv nets, a Gemm MLP, a
ResNet-style block, recurrent networks, an embedding) give onnxruntime's outputs once loaded
(images fed NHWC); the loaded models fine-tune, save and cut into feature extractors; ops it
cannot import are all named before any work. Round trips of strata's own exports are in
tests/test_onnx_export.py."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import strata  # noqa: E402
from strata import nn  # noqa: E402
from strata.onnx import GraphModel, load  # noqa: E402

RNG = np.random.default_rng(0)


def w(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def write(tmp_path, nodes, inputs, outputs, weights, opset=17, name="net.onnx"):
    """An ONNX file of ``nodes``; ``inputs``/``outputs``: (name, shape, elem type)."""
    def info(n, shape, elem=TensorProto.FLOAT):
        return helper.make_tensor_value_info(n, elem, shape)

    graph = helper.make_graph(nodes, "test", [info(*i) for i in inputs],
                              [info(*o) for o in outputs],
                              [numpy_helper.from_array(np.asarray(v), k)
                               for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def reference(path, feeds):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None,
                                                                                    feeds)


def node(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, **attrs)


def bn_weights(prefix, n):
    return {f"{prefix}_s": RNG.uniform(0.5, 1.5, n).astype(np.float32),
            f"{prefix}_b": w(n), f"{prefix}_m": w(n),
            f"{prefix}_v": RNG.uniform(0.5, 2, n).astype(np.float32)}


def bn(prefix, x, out, eps=1e-5):
    return node("BatchNormalization", [x, f"{prefix}_s", f"{prefix}_b", f"{prefix}_m",
                                       f"{prefix}_v"], [out], epsilon=eps)


def conv_net(tmp_path):
    """A VGG/Tiny-YOLO-like NCHW network: pads of every kind, BN, pools, Flatten, Gemm."""
    weights = {"W1": w(6, 3, 3, 3), "B1": w(6), "W2": w(8, 6, 3, 3), "W3": w(4, 8, 1, 1),
               "B3": w(4), "G": w(5, 4 * 4 * 4), "C": w(5), **bn_weights("bn", 6)}
    nodes = [node("Conv", ["x", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1]),
             bn("bn", "c1", "b1"), node("LeakyRelu", ["b1"], ["a1"], alpha=0.1),
             node("MaxPool", ["a1"], ["p1"], kernel_shape=[2, 2], strides=[1, 1],
                  pads=[0, 0, 1, 1]),
             node("Conv", ["p1", "W2"], ["c2"], strides=[2, 2], auto_pad="SAME_UPPER"),
             node("Relu", ["c2"], ["a2"]),
             node("AveragePool", ["a2"], ["p2"], kernel_shape=[3, 3], strides=[2, 2],
                  pads=[1, 1, 1, 1], count_include_pad=1),
             node("Conv", ["p2", "W3", "B3"], ["c3"], pads=[0, 1, 1, 0]),
             node("Sigmoid", ["c3"], ["a3"]), node("Dropout", ["a3"], ["d3"]),
             node("Flatten", ["d3"], ["f"]),
             node("Gemm", ["f", "G", "C"], ["g"], transB=1, alpha=0.5, beta=2.0),
             node("Softmax", ["g"], ["y"], axis=-1)]
    return write(tmp_path, nodes, [("x", [None, 3, 11, 11])], [("y", [None, 5])], weights)


def test_nchw_conv_net_matches_onnxruntime_on_nhwc_images(tmp_path):
    path = conv_net(tmp_path)
    x = w(2, 3, 11, 11, scale=1.0)
    (expected,) = reference(path, {"x": x})
    model = load(path)
    assert isinstance(model, nn.Sequential) and model.input_shape == (11, 11, 3)
    np.testing.assert_allclose(model.predict(x.transpose(0, 2, 3, 1)), expected, atol=1e-5)


def test_unknown_image_sizes_need_input_shape(tmp_path):
    weights = {"W": w(2, 3, 3, 3)}
    path = write(tmp_path, [node("Conv", ["x", "W"], ["y"], auto_pad="SAME_UPPER")],
                 [("x", ["N", 3, "H", "W"])], [("y", ["N", 2, "H", "W"])], weights)
    with pytest.raises(ValueError, match="input_shape"):
        load(path)
    x = w(1, 3, 6, 7, scale=1.0)
    (expected,) = reference(path, {"x": x})
    out = load(path, input_shape=(6, 7, 3)).predict(x.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(out, expected.transpose(0, 2, 3, 1), atol=1e-5)


@pytest.mark.parametrize("matmul", [False, True])
def test_mlp_of_gemm_or_matmul_add(tmp_path, matmul):
    weights = {"W1": w(6, 4), "b1": w(4), "W2": w(4, 3), "b2": w(3)}
    if matmul:
        nodes = [node("MatMul", ["x", "W1"], ["z1"]), node("Add", ["z1", "b1"], ["h1"]),
                 node("Tanh", ["h1"], ["a1"]), node("MatMul", ["a1", "W2"], ["z2"]),
                 node("Add", ["b2", "z2"], ["y"])]
    else:
        nodes = [node("Gemm", ["x", "W1", "b1"], ["h1"]), node("Relu", ["h1"], ["a1"]),
                 node("Gemm", ["a1", "W2", "b2"], ["z2"]), node("Sigmoid", ["z2"], ["y"])]
    path = write(tmp_path, nodes, [("x", ["N", 6])], [("y", ["N", 3])], weights)
    x = w(5, 6, scale=1.0)
    (expected,) = reference(path, {"x": x})
    model = load(path)
    assert [type(layer).__name__ for layer in model.layers][0] == "Dense"
    np.testing.assert_allclose(model.predict(x), expected, atol=1e-6)


def resnet_block(tmp_path):
    weights = {"W1": w(4, 4, 3, 3), "W2": w(4, 4, 3, 3), "W3": w(2, 4, 1, 1), "G": w(6, 3),
               "C": w(3), **bn_weights("bn1", 4), **bn_weights("bn2", 4)}
    nodes = [node("Conv", ["x", "W1"], ["c1"], pads=[1, 1, 1, 1]), bn("bn1", "c1", "b1"),
             node("Relu", ["b1"], ["a1"]),
             node("Conv", ["a1", "W2"], ["c2"], pads=[1, 1, 1, 1]), bn("bn2", "c2", "b2"),
             node("Add", ["b2", "x"], ["s"]), node("Relu", ["s"], ["r"]),
             node("Conv", ["r", "W3"], ["c3"]), node("Concat", ["r", "c3"], ["cat"], axis=1),
             node("GlobalAveragePool", ["cat"], ["gap"]),
             node("Reshape", ["gap", "shape"], ["flat"]), node("Gemm", ["flat", "G", "C"],
                                                               ["y"])]
    weights["shape"] = np.array([0, -1], np.int64)
    return write(tmp_path, nodes, [("x", ["N", 4, 6, 6])], [("y", ["N", 3])], weights)


def test_resnet_style_block_with_add_and_concat(tmp_path):
    path = resnet_block(tmp_path)
    x = w(3, 4, 6, 6, scale=1.0)
    (expected,) = reference(path, {"x": x})
    model = load(path)
    assert isinstance(model, GraphModel)
    np.testing.assert_allclose(model.predict(x.transpose(0, 2, 3, 1)), expected, atol=1e-5)


def test_graph_model_fine_tunes_saves_and_extracts_features(tmp_path):
    path = resnet_block(tmp_path)
    x = w(3, 4, 6, 6, scale=1.0).transpose(0, 2, 3, 1)
    features = load(path, outputs="r")  # the block's output, before the head
    (expected,) = reference(path, {"x": x.transpose(0, 3, 1, 2)})
    assert features.predict(x).shape == (3, 6, 6, 4)
    model = load(path)
    saved = strata.save_model(model, tmp_path / "m.safetensors")
    np.testing.assert_allclose(strata.load_model(saved).predict(x), expected, atol=1e-5)
    before = model.nodes[-1].W.data.copy()
    model.compile(optimizer="adam", lr=0.01, loss="mse")
    model.fit(x, np.zeros((3, 3), np.float32), epochs=2, batch_size=3, verbose=0)
    assert not np.allclose(model.nodes[-1].W.data, before)


def _recurrent_weights(op, gates, n, n_x, direction=1):
    return {f"{op}_W": w(direction, gates * n, n_x), f"{op}_R": w(direction, gates * n, n),
            f"{op}_B": w(direction, 2 * gates * n)}


def test_lstm_gru_rnn_match_onnxruntime(tmp_path):
    T, m, n_x = 5, 3, 4
    weights = {**_recurrent_weights("lstm", 4, 3, n_x), **_recurrent_weights("gru", 3, 2, n_x),
               **_recurrent_weights("gru2", 3, 2, 2), **_recurrent_weights("rnn", 1, 2, 2),
               "axes0": np.array([0], np.int64), "axes1": np.array([1], np.int64),
               "G": w(8, 2), "C": w(2)}
    nodes = [  # x is time-major [T, m, n_x], as ONNX's recurrent ops read it
        node("LSTM", ["x", "lstm_W", "lstm_R", "lstm_B"], ["", "h", "c"], hidden_size=3),
        node("GRU", ["x", "gru_W", "gru_R", "gru_B"], ["seq"], hidden_size=2),
        node("Squeeze", ["seq", "axes1"], ["seq_s"]),
        node("GRU", ["seq_s", "gru2_W", "gru2_R", "gru2_B"], ["seq2"], hidden_size=2,
             linear_before_reset=1, direction="reverse"),
        node("Squeeze", ["seq2", "axes1"], ["seq2_s"]),
        node("RNN", ["seq2_s", "rnn_W", "rnn_R", "rnn_B"], ["", "hr"], hidden_size=2,
             activations=["Relu"]),
        node("Squeeze", ["h", "axes0"], ["h_s"]), node("Squeeze", ["c", "axes0"], ["c_s"]),
        node("Squeeze", ["hr", "axes0"], ["hr_s"]),
        node("Concat", ["h_s", "c_s", "hr_s"], ["hc"], axis=1),
        node("Gemm", ["hc", "G", "C"], ["y"])]
    path = write(tmp_path, nodes, [("x", [T, "N", n_x])], [("y", ["N", 2])], weights)
    x = w(T, m, n_x, scale=1.0)
    (expected,) = reference(path, {"x": x})
    model = load(path)  # takes batch-first (m, T_x, n_x)
    np.testing.assert_allclose(model.predict(x.transpose(1, 0, 2)), expected, atol=1e-5)


def test_embedding_and_batch_first_gru_sequence_output(tmp_path):
    weights = {"E": w(10, 4), **_recurrent_weights("gru", 3, 3, 4),
               "axes1": np.array([1], np.int64)}
    nodes = [node("Gather", ["E", "ids"], ["e"]), node("Transpose", ["e"], ["et"],
                                                      perm=[1, 0, 2]),
             node("GRU", ["et", "gru_W", "gru_R", "gru_B"], ["seq"], hidden_size=3),
             node("Squeeze", ["seq", "axes1"], ["s"]),
             node("Transpose", ["s"], ["y"], perm=[1, 0, 2])]
    path = write(tmp_path, nodes, [("ids", ["N", 6], TensorProto.INT64)],
                 [("y", ["N", 6, 3])], weights)
    ids = RNG.integers(0, 10, (2, 6)).astype(np.int64)
    (expected,) = reference(path, {"ids": ids})
    model = load(path)
    assert [type(layer).__name__ for layer in model.layers] == ["Embedding", "GRU"]
    np.testing.assert_allclose(model.predict(ids), expected, atol=1e-6)


def test_unsupported_ops_are_all_named_first(tmp_path):
    weights = {"W": w(2, 3, 3, 3), "k": np.float32(2.0)}
    nodes = [node("Mul", ["x", "k"], ["m"]), node("Conv", ["m", "W"], ["c"]),
             node("Resize", ["c", "", "scales"], ["y"])]
    weights["scales"] = np.array([1, 1, 2, 2], np.float32)
    path = write(tmp_path, nodes, [("x", ["N", 3, 5, 5])], [("y", ["N", 2, 6, 6])], weights)
    with pytest.raises(ValueError, match="cannot import: Mul, Resize; supported: "):
        load(path)


def test_unsupported_attributes_and_bad_files_are_refused(tmp_path):
    path = write(tmp_path, [node("Conv", ["x", "W"], ["y"], group=2)],
                 [("x", ["N", 4, 5, 5])], [("y", ["N", 2, 3, 3])], {"W": w(2, 2, 3, 3)})
    with pytest.raises(ValueError, match="group=2"):
        load(path)
    with pytest.raises(FileNotFoundError, match="no ONNX file"):
        load(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(ValueError, match="not a valid ONNX model"):
        load(bad)
    with pytest.raises(ValueError, match="no computed value 'nope'"):
        load(conv_net(tmp_path), outputs="nope")
    with pytest.raises(ValueError, match="input_shape"):
        load(conv_net(tmp_path), input_shape=(11, 11))
