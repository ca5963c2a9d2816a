"""Recurrent layers: gradient checks of whole models in float64, the output options
(many-to-many, many-to-one, encoder-decoder with T_x != T_y), masks, reversed runs, long
sequences, saving, and clear errors on bad input."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import strata
import strata.nn as nn
from strata.losses import sequence_crossentropy
from strata.optim import Adam

CELLS = {"rnn": nn.SimpleRNN, "gru": nn.GRU, "lstm": nn.LSTM}


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _check(loss_fn, model):
    report = strata.check_model_gradients(loss_fn, dict(model.named_parameters()))
    assert report.difference < 1e-7, str(report)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_character_model_gradients_with_padding(cell):
    strata.seed(0)
    ids = np.random.default_rng(1).integers(0, 7, (3, 6))
    labels = np.random.default_rng(2).integers(0, 7, (3, 6))
    mask = np.arange(6)[None, :] < np.array([[6], [4], [2]])
    labels[~mask] = -1
    with strata.default_dtype(np.float64):
        model = nn.Sequential([nn.Embedding(7, 4), CELLS[cell](5, return_sequences=True),
                               nn.TimeDistributed(nn.Dense(7))])
        model(ids)
    _check(lambda: sequence_crossentropy(model(ids, mask=mask), labels), model)


def test_bidirectional_stack_many_to_one_gradients():
    strata.seed(1)
    x, mask = _x(4, 5, 3), np.arange(5)[None, :] < np.array([[5], [3], [5], [1]])
    with strata.default_dtype(np.float64):
        model = nn.Sequential([nn.Bidirectional(nn.GRU(4, return_sequences=True)),
                               nn.Bidirectional(nn.LSTM(3), merge_mode="sum"), nn.Dense(1)])
        model(x)
    y = _x(4, 1, seed=3)
    _check(lambda: ((model(x, mask=mask) - y) ** 2).mean(), model)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_encoder_decoder_with_different_lengths(cell):
    """T_x = 6 inputs, T_y = 4 outputs: the encoder's final states start the decoder, and
    the gradient reaches the encoder through them."""
    strata.seed(2)
    with strata.default_dtype(np.float64):
        encoder = CELLS[cell](5, return_state=True)
        decoder = CELLS[cell](5, return_sequences=True)
        head = nn.TimeDistributed(nn.Dense(3))
        source, target_in = _x(2, 6, 4, seed=4), _x(2, 4, 3, seed=5)
        encoder(source)
        decoder(target_in)
    labels = np.random.default_rng(6).integers(0, 3, (2, 4))

    def loss():
        _, *states = encoder(source)
        out = head(decoder(target_in, initial_state=states))
        return sequence_crossentropy(out, labels)

    assert loss().shape == ()
    params = {f"{name}.{k}": v for name, layer in (("enc", encoder), ("dec", decoder),
                                                    ("head", head))
              for k, v in layer.named_parameters()}
    report = strata.check_model_gradients(loss, params)
    assert report.difference < 1e-7, str(report)
    for p in params.values():
        p.grad = None
    loss().backward()
    assert all(np.abs(p.grad).max() > 0 for p in encoder.parameters())


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_output_options(cell):
    x = _x(3, 5, 2).astype(np.float32)
    strata.seed(3)
    full = CELLS[cell](4, return_sequences=True, return_state=True)
    seq, *states = full(x)
    assert seq.shape == (3, 5, 4) and seq.dtype == np.float32
    assert len(states) == (2 if cell == "lstm" else 1)
    np.testing.assert_array_equal(states[0].data, seq.data[:, -1])
    last = CELLS[cell].from_config({**full.get_config(), "return_sequences": False,
                                    "return_state": False})
    last.build(2)
    last.load_state_dict(full.state_dict())
    np.testing.assert_array_equal(last(x).data, seq.data[:, -1])  # many-to-one
    other = full(x, initial_state=[s.data + 1 for s in states])[0]
    assert not np.allclose(other.data, seq.data)  # the initial state is used


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_reverse_is_the_forward_run_of_the_flipped_sequence(cell):
    x = _x(2, 6, 3)
    with strata.default_dtype(np.float64):
        fwd = CELLS[cell](4, return_sequences=True)
        fwd(x)
        bwd = CELLS[cell](4, return_sequences=True, reverse=True)
        bwd(x)
    bwd.load_state_dict(fwd.state_dict())
    np.testing.assert_allclose(bwd(x).data, fwd(x[:, ::-1]).data[:, ::-1], atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_a_padded_sequence_behaves_like_the_truncated_one(cell):
    """Masked steps keep the state: outputs at real steps and the final state equal those of
    the unpadded sequence, padding values change nothing and get no gradient."""
    with strata.default_dtype(np.float64):
        layer = CELLS[cell](4, return_sequences=True, return_state=True)
        x = strata.tensor(_x(2, 7, 3), requires_grad=True)
        layer(x)
    mask = np.array([[1] * 7, [1] * 3 + [0] * 4])
    seq, *states = layer(x, mask=mask)
    short_seq, *short_states = layer(x.data[1:, :3])
    np.testing.assert_allclose(seq.data[1, :3], short_seq.data[0], atol=1e-12)
    np.testing.assert_allclose(seq.data[1, 3:], np.repeat(short_seq.data[:, -1], 4, 0))
    for s, short in zip(states, short_states, strict=True):
        np.testing.assert_allclose(s.data[1], short.data[0], atol=1e-12)
    (seq.sum() + sum(s.sum() for s in states)).backward()
    assert np.all(x.grad[1, 3:] == 0) and np.abs(x.grad[1, :3]).min() > 0


def test_long_sequences_train_without_recursion_or_memory_blow_up():
    """T = 1000: one Function per layer, so no deep graph; the caches are what memory holds."""
    strata.seed(4)
    m, T = 4, 1000
    model = nn.Sequential([nn.LSTM(32, return_sequences=True), nn.GRU(16),
                           nn.Dense(1)])
    x, y = _x(m, T, 8).astype(np.float32), _x(m, 1).astype(np.float32)
    model(x[:, :2])
    opt = Adam(model.parameters(), lr=1e-3)
    tracemalloc.start()
    for _ in range(2):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.isfinite(loss.item())
    assert all(np.isfinite(p.grad).all() for p in model.parameters())
    # The caches (LSTM gates (T, m, 128), states, cells and tanh(c) (T, m, 32); GRU gates
    # (T, m, 48) and states) and backward's dZ hold about 6 MB in float32; 9 MB measured.
    assert peak < 25e6, f"peak traced memory {peak / 1e6:.1f} MB"


def test_layers_save_and_load(tmp_path):
    strata.seed(5)
    model = nn.Sequential([
        nn.Embedding(9, 4), nn.Bidirectional(nn.GRU(3, return_sequences=True, reset_after=True)),
        nn.SimpleRNN(5, return_sequences=True, activation="relu"),
        nn.LSTM(4, return_sequences=True, reverse=True), nn.TimeDistributed(nn.Dense(9))])
    ids = np.random.default_rng(0).integers(0, 9, (2, 6))
    expected = model(ids).data
    strata.save_model(model, tmp_path / "m.safetensors")
    loaded = strata.load_model(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded(ids).data, expected)
    one_hot = nn.Sequential([nn.OneHot(9), nn.SimpleRNN(3)])
    one_hot(ids)
    strata.save_model(one_hot, tmp_path / "o.safetensors")
    np.testing.assert_array_equal(strata.load_model(tmp_path / "o.safetensors")(ids).data,
                                  one_hot(ids).data)


def test_course_parameter_names_and_shapes():
    lstm, gru, rnn = nn.LSTM(5), nn.GRU(5, reset_after=True), nn.SimpleRNN(5)
    for layer in (lstm, gru, rnn):
        layer(np.zeros((1, 2, 3), np.float32))
    assert {k: v.shape for k, v in lstm.named_parameters()} == {
        **{f"W{g}": (8, 5) for g in "fuco"}, **{f"b{g}": (5,) for g in "fuco"}}
    assert [k for k, _ in gru.named_parameters()] == ["Wu", "bu", "Wr", "br", "Wc", "bc",
                                                     "bc_rec"]
    assert {k: v.shape for k, v in rnn.named_parameters()} == {"Wax": (3, 5), "Waa": (5, 5),
                                                              "ba": (5,)}
    np.testing.assert_array_equal(lstm.bf.data, 1)  # unit forget bias
    Waa = rnn.Waa.data.astype(np.float64)
    np.testing.assert_allclose(Waa.T @ Waa, np.eye(5), atol=1e-5)  # orthogonal start


def test_one_hot_and_time_distributed():
    out = nn.OneHot(4)([[0, 3], [2, 2]])
    np.testing.assert_array_equal(out.data.argmax(-1), [[0, 3], [2, 2]])
    assert out.data.sum() == 4
    dense = nn.Dense(2)
    td = nn.TimeDistributed(dense)
    x = _x(3, 4, 5).astype(np.float32)
    np.testing.assert_allclose(td(x).data, dense(x.reshape(12, 5)).data.reshape(3, 4, 2))


def test_bad_inputs_give_clear_errors():
    layer = nn.LSTM(8)
    layer(np.zeros((2, 3, 32), np.float32))
    with pytest.raises(strata.ShapeError, match=r"LSTM\(8\): expected input of shape "
                                                r"\(m, T_x, 32\), got \(4, 10, 16\)"):
        layer(np.zeros((4, 10, 16), np.float32))
    with pytest.raises(strata.ShapeError, match=r"expected input of shape \(m, T_x, n_x\)"):
        nn.GRU(3)(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"3 sequences of different lengths \(4, 2, 3\).*mask"):
        nn.SimpleRNN(3)([np.zeros((4, 2)), np.zeros((2, 2)), np.zeros((3, 2))])
    with pytest.raises(ValueError, match="different lengths"):
        nn.Embedding(5, 2)([[1, 2, 3], [1]])
    with pytest.raises(TypeError, match="Embedding or OneHot"):
        nn.LSTM(3)(np.zeros((2, 4, 1), np.int64))
    with pytest.raises(strata.ShapeError, match=r"mask of shape \(m, T_x\) = \(2, 3\)"):
        layer(np.zeros((2, 3, 32), np.float32), mask=np.ones((2, 4)))
    with pytest.raises(ValueError, match="0 .padding. or 1"):
        layer(np.zeros((2, 3, 32), np.float32), mask=np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=r"initial_state \(a0, c0\)"):
        layer(np.zeros((2, 3, 32), np.float32), initial_state=[np.zeros((2, 8))])
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 5\).*e.g. 7.*<UNK>"):
        nn.Embedding(5, 2)([[1, 7]])
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        nn.OneHot(4)([[4]])
    with pytest.raises(ValueError, match="positive number of units"):
        nn.GRU(0)


def test_ops_check_weights_and_states():
    x = np.zeros((2, 3, 4))
    params = {k: np.zeros((9, 5)) if k[0] == "W" else np.zeros(5)
              for k in strata.ops.recurrent.LSTM_PARAMETERS}
    with pytest.raises(strata.ShapeError, match=r"lstm: expected Wf of shape \(8, 5\) for x "
                                                r"\(2, 3, 3\) and n_a = 5, got \(9, 5\)"):
        strata.lstm(np.zeros((2, 3, 3)), None, params)
    with pytest.raises(strata.ShapeError, match=r"expected a0 of shape \(m, n_a\) = \(2, 5\)"):
        strata.lstm(x, np.zeros((2, 4)), params)
    with pytest.raises(KeyError, match="parameters lack"):
        strata.gru(x, None, params)
    with pytest.raises(TypeError, match="float32 but x is float64"):
        strata.lstm(x, None, {**params, "Wf": params["Wf"].astype(np.float32)})
    with pytest.raises(strata.ShapeError, match=r"expected x of shape \(m, T_x, n_x\)"):
        strata.rnn(np.zeros((2, 0, 4)), None, {"Wax": 0, "Waa": 0, "ba": 0})
