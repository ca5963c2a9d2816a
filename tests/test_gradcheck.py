"""The gradient checker as a feature: it passes correct backward passes, catches wrong ones and
checks whole networks in the course's notation."""

import numpy as np
import pytest

import strata
from strata.autograd import Function
from strata.gradcheck import parameters_to_vector, vector_to_parameters


class GoodSquare(Function):
    def forward(self, a):
        self.a = a
        return a * a

    def backward(self, g):
        return (g * 2 * self.a,)


class WrongSquare(GoodSquare):
    def backward(self, g):
        return (g * 3 * self.a,)  # deliberately wrong: d(a^2)/da is 2a


class WrongMatMul(Function):
    """a @ b whose gradient for b is off by a factor of 2 (the gradient for a is right)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        return g @ self.b.T, 2 * (self.a.T @ g)


def sample(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# --- gradcheck ------------------------------------------------------------------------------
def test_gradcheck_returns_small_difference_per_input():
    a, b = sample((3, 4)), sample((4, 2), seed=1)
    differences = strata.gradcheck(lambda x, y: strata.tanh(x @ y) * 2.0, a, b)
    assert len(differences) == 2
    assert all(d < 1e-7 for d in differences)


def test_gradcheck_accepts_a_correct_custom_function():
    (difference,) = strata.gradcheck(GoodSquare.apply, sample((5,)))
    assert difference < 1e-7


def test_gradcheck_detects_a_wrong_backward():
    (difference,) = strata.gradcheck(WrongSquare.apply, sample((5,)))
    assert difference > 1e-2


def test_gradcheck_reports_only_the_wrong_input():
    good, bad = strata.gradcheck(WrongMatMul.apply, sample((3, 4)), sample((4, 2), seed=1))
    assert good < 1e-7 and bad > 1e-2


def test_float32_inputs_are_promoted_to_float64():
    x = strata.tensor(sample((4,)).astype(np.float32))
    seen = []

    def fn(t):
        seen.append(t.dtype)
        return strata.sigmoid(t) * t

    (difference,) = strata.gradcheck(fn, x)
    assert difference < 1e-7
    assert set(seen) == {np.dtype(np.float64)}
    assert x.dtype == np.float32  # the caller's tensor is untouched


def test_integer_inputs_raise_type_error():
    with pytest.raises(TypeError, match="int64.*floating"):
        strata.gradcheck(lambda t: t * 2.0, np.array([1, 2, 3], dtype=np.int64))


def test_fn_casting_to_float32_raises_type_error():
    with pytest.raises(TypeError, match="float64"):
        strata.gradcheck(lambda t: t.astype(np.float32) * 2.0, sample((3,)))


@pytest.mark.parametrize("eps", [0.0, -1e-7])
def test_non_positive_eps_raises(eps):
    with pytest.raises(ValueError, match="eps"):
        strata.gradcheck(lambda t: t * 2.0, sample((3,)), eps=eps)


def test_random_direction_mode_for_large_inputs():
    x = sample((30, 20))  # 600 elements > max_elements: checked along random directions
    (good,) = strata.gradcheck(lambda t: strata.tanh(t) * t, x, max_elements=100, directions=16)
    (bad,) = strata.gradcheck(WrongSquare.apply, x, max_elements=100, directions=16)
    assert good < 1e-7
    assert bad > 1e-2


def test_gradcheck_replays_random_draws():
    def dropout(x):
        mask = strata.rng().random(x.shape) < 0.8
        return x * mask / 0.8

    strata.seed(0)
    x = strata.tensor(sample((50,)))
    masks_differ = not np.array_equal(dropout(x).numpy(), dropout(x).numpy())
    assert masks_differ  # without the replay every evaluation would drop other units
    (difference,) = strata.gradcheck(lambda t: strata.tanh(dropout(t)), x)
    assert difference < 1e-7


# --- check_model_gradients on a 2-layer network ---------------------------------------------
def make_network(n_x=4, n_h=5, m=8, seed=0):
    rng = np.random.default_rng(seed)
    parameters = {
        "W1": strata.tensor(rng.standard_normal((n_x, n_h)) * 0.5, requires_grad=True,
                            dtype=np.float32),
        "b1": strata.tensor(rng.standard_normal(n_h) * 0.1, requires_grad=True, dtype=np.float32),
        "W2": strata.tensor(rng.standard_normal((n_h, 1)) * 0.5, requires_grad=True,
                            dtype=np.float32),
        "b2": strata.tensor(rng.standard_normal(1) * 0.1, requires_grad=True, dtype=np.float32),
    }
    X = strata.tensor(rng.standard_normal((m, n_x)), dtype=np.float32)
    Y = strata.tensor((rng.random((m, 1)) < 0.5).astype(np.float32))
    return parameters, X, Y


def two_layer_cost(parameters, X, Y, matmul=strata.matmul):
    A1 = strata.tanh(X @ parameters["W1"] + parameters["b1"])
    A2 = strata.sigmoid(matmul(A1, parameters["W2"]) + parameters["b2"])
    return -(Y * strata.log(A2) + (1 - Y) * strata.log(1 - A2)).mean()


def test_check_model_gradients_passes_a_correct_network():
    parameters, X, Y = make_network()
    report = strata.check_model_gradients(lambda: two_layer_cost(parameters, X, Y), parameters)
    assert report.passed
    assert report.difference < 2e-7
    text = str(report)
    assert "works perfectly fine" in text
    for name in parameters:
        assert name in text
    assert [r["checked"] for r in report.rows] == [p.size for p in parameters.values()]


def test_check_model_gradients_finds_the_buggy_layer():
    parameters, X, Y = make_network()
    report = strata.check_model_gradients(
        lambda: two_layer_cost(parameters, X, Y, matmul=WrongMatMul.apply), parameters)
    assert not report.passed
    assert report.worst["name"] == "W2"
    assert "mistake" in str(report)
    rows = {r["name"]: r for r in report.rows}
    assert rows["W1"]["difference"] < 2e-7  # the first layer's gradient is still right


def test_parameters_are_restored_after_checking():
    parameters, X, Y = make_network()
    before = {name: p.data.copy() for name, p in parameters.items()}
    sentinel = np.full(parameters["b2"].shape, 42.0, dtype=np.float32)
    parameters["b2"].grad = sentinel
    strata.check_model_gradients(lambda: two_layer_cost(parameters, X, Y), parameters)
    for name, p in parameters.items():
        assert p.dtype == np.float32
        np.testing.assert_array_equal(p.data, before[name])
    assert parameters["b2"].grad is sentinel
    assert parameters["W1"].grad is None


def test_max_per_parameter_limits_checked_entries():
    parameters, X, Y = make_network()
    report = strata.check_model_gradients(lambda: two_layer_cost(parameters, X, Y), parameters,
                                          max_per_parameter=3)
    checked = {r["name"]: r["checked"] for r in report.rows}
    assert checked == {"W1": 3, "b1": 3, "W2": 3, "b2": 1}
    assert report.passed


def test_accepts_list_and_named_parameters_object():
    parameters, X, Y = make_network()

    def loss():
        return two_layer_cost(parameters, X, Y)

    as_list = strata.check_model_gradients(loss, list(parameters.values()))
    assert as_list.passed and len(as_list.rows) == 4

    class Model:
        def named_parameters(self):
            return iter(parameters.items())

    as_model = strata.check_model_gradients(loss, Model())
    assert as_model.passed
    assert [r["name"] for r in as_model.rows] == list(parameters)
    assert as_model.difference == pytest.approx(as_list.difference, rel=1e-6)


# --- parameters <-> vector ------------------------------------------------------------------
def test_parameters_vector_round_trip():
    parameters, _, _ = make_network()
    expected = np.concatenate([p.data.ravel() for p in parameters.values()])
    vector = parameters_to_vector(parameters)
    np.testing.assert_array_equal(vector, expected)
    for p in parameters.values():
        p.data[...] = 0
    vector_to_parameters(vector, parameters)
    np.testing.assert_array_equal(parameters_to_vector(parameters), expected)
    assert parameters["W1"].shape == (4, 5)


def test_vector_of_wrong_length_raises():
    parameters, _, _ = make_network()
    total = sum(p.size for p in parameters.values())
    with pytest.raises(ValueError, match=rf"{total}.*{total - 1}"):
        vector_to_parameters(np.zeros(total - 1), parameters)


def _regularized_net(keep_prob=1.0):
    from strata import nn

    layers = [nn.Dense(6, "tanh", l2=0.5), nn.BatchNorm(), nn.Dense(4, "relu", l1=0.1)]
    layers += [nn.Dropout(keep_prob)] if keep_prob < 1 else []
    model = nn.Sequential([*layers, nn.Dense(3, "softmax")])
    return model.compile(loss="sparse_categorical_crossentropy", l2=0.2)


def test_check_model_covers_the_loss_and_both_penalties():
    strata.seed(1)
    X, y = strata.rng().standard_normal((16, 5)), strata.rng().integers(0, 3, 16)
    model = _regularized_net()
    model.build((5,))
    state = {k: v.copy() for k, v in model.state_dict().items()}
    report = strata.check_model(model, X, y)
    assert report.passed, str(report)
    assert {r["name"] for r in report.rows} == {n for n, _ in model.named_parameters()}
    for name, value in model.state_dict().items():  # weights and running averages restored
        assert value.dtype == state[name].dtype and np.array_equal(value, state[name]), name


def test_check_model_notices_a_penalty_missing_from_backward(monkeypatch):
    from strata import losses

    strata.seed(2)
    X, y = strata.rng().standard_normal((16, 5)), strata.rng().integers(0, 3, 16)
    model = _regularized_net()
    monkeypatch.setattr(losses.L2Penalty, "backward", lambda self, g: tuple(
        np.zeros_like(w) for w in self.ws))
    assert not strata.check_model(model, X, y).passed


def test_check_model_says_dropout_must_be_off():
    strata.seed(3)
    X, y = strata.rng().standard_normal((16, 5)), strata.rng().integers(0, 3, 16)
    model = _regularized_net(keep_prob=0.8)
    with pytest.raises(ValueError, match=r"dropout must be off.*Dropout\(keep_prob=0.8\)"):
        strata.check_model(model, X, y)
    model.layers[3].eval()
    assert strata.check_model(model, X, y).passed
    with pytest.raises(RuntimeError, match="compile the model first"):
        strata.check_model(strata.nn.Sequential([strata.nn.Dense(2)]), X, y)


# --- non-contiguous parameters and inputs (issue 14) ----------------------------------------
def _layouts(array):
    """The same values as C-ordered, Fortran-ordered, strided and transposed-strided arrays."""
    wide = np.zeros((array.shape[0] * 2, array.shape[1] * 3))
    wide[::2, ::3] = array
    tall = np.zeros((array.shape[1] * 2, array.shape[0]))
    tall[::2] = array.T
    return {"C": array.copy(), "fortran": array.T.copy().T, "strided": wide[::2, ::3],
            "strided_transposed": tall[::2].T}


@pytest.mark.parametrize("layout", ["C", "fortran", "strided", "strided_transposed"])
def test_check_model_gradients_passes_non_contiguous_parameters(layout):
    parameters, X, Y = make_network()
    arranged = {}
    for name in ("W1", "W2"):
        arranged[name] = _layouts(parameters[name].data.astype(np.float64))[layout]
        np.testing.assert_array_equal(arranged[name], parameters[name].data)
        parameters[name].data = arranged[name]
    assert layout == "C" or not parameters["W1"].data.flags.c_contiguous
    report = strata.check_model_gradients(lambda: two_layer_cost(parameters, X, Y), parameters)
    assert report.difference < 1e-7, str(report)
    assert all(parameters[name].data is arranged[name] for name in arranged)  # restored


def test_check_model_passes_a_dense_layer_with_fortran_ordered_weights():
    from strata import nn

    strata.seed(4)
    X, y = strata.rng().standard_normal((8, 5)), strata.rng().integers(0, 3, 8)
    model = nn.Sequential([nn.Dense(4, "tanh"), nn.Dense(3, "softmax")]).compile(
        loss="sparse_categorical_crossentropy")
    model.build((5,))
    model.load_state_dict({k: np.asfortranarray(v) for k, v in model.state_dict().items()})
    W = model.layers[0].W.data
    assert W.flags.f_contiguous and not W.flags.c_contiguous
    report = strata.check_model(model, X, y)
    assert report.difference < 1e-7, str(report)


def test_check_model_gradients_on_a_scalar_parameter():
    scale = strata.tensor(np.float64(0.7), requires_grad=True)
    x = strata.tensor(sample((4,)))
    report = strata.check_model_gradients(lambda: strata.sum(strata.tanh(x * scale)), [scale])
    assert report.difference < 1e-7 and report.rows[0]["checked"] == 1


@pytest.mark.parametrize("layout", ["C", "fortran", "strided", "strided_transposed"])
def test_gradcheck_passes_non_contiguous_inputs(layout):
    a = _layouts(sample((3, 4)))[layout]
    b = _layouts(sample((4, 2), seed=1))[layout]
    differences = strata.gradcheck(lambda x, y: strata.tanh(x @ y) * 2.0, a, b)
    assert max(differences) < 1e-7
    (bad,) = strata.gradcheck(WrongSquare.apply, a)
    assert bad > 1e-2
