"""Every layer of strata.nn with a ``build`` method: build -> load_state_dict -> call keeps the
loaded weights and computes with them (issue 14: the recurrent layers' build did not mark them
built, so their first call replaced loaded weights with new random ones)."""

import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import strata
from strata import nn, vision
from strata.models.inception import googlenet
from strata.nn.module import Module


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _ids(*shape):
    return np.random.default_rng(0).integers(0, 7, shape)


#: class name -> cases of (make the layer, build's arguments, a batch to call it on). A layer
#: class with a build method and no entry here fails test_every_layer_with_build_has_a_case.
CASES = {
    "Dense": [(lambda: nn.Dense(3, "tanh"), (5,), _x(4, 5)),
              (lambda: nn.Dense(3, use_bias=False), (5,), _x(2, 6, 5))],
    "BatchNorm": [(lambda: nn.BatchNorm(), (5,), _x(4, 5)),
                  (lambda: nn.BatchNorm(), (3,), _x(2, 4, 4, 3))],
    "Conv2D": [(lambda: nn.Conv2D(4, 3, padding="same", activation="relu"), (2,),
                _x(2, 5, 5, 2))],
    "Embedding": [(lambda: nn.Embedding(7, 3), (), _ids(2, 5))],
    "SimpleRNN": [(lambda: nn.SimpleRNN(4), (3,), _x(2, 5, 3)),
                  (lambda: nn.SimpleRNN(4, activation="relu", return_sequences=True,
                                        reverse=True), (3,), _x(2, 5, 3))],
    "LSTM": [(lambda: nn.LSTM(4), (3,), _x(2, 5, 3)),
             (lambda: nn.LSTM(4, unit_forget_bias=False, return_sequences=True), (3,),
              _x(2, 5, 3))],
    "GRU": [(lambda: nn.GRU(4), (3,), _x(2, 5, 3)),
            (lambda: nn.GRU(4, reset_after=True, return_sequences=True), (3,), _x(2, 5, 3))],
    "Sequential": [(lambda: nn.Sequential([nn.Dense(4, "relu"), nn.BatchNorm(), nn.Dense(2)]),
                    ((5,),), _x(4, 5)),
                   (lambda: nn.Sequential([nn.Embedding(7, 3), nn.LSTM(4, return_sequences=True),
                                           nn.TimeDistributed(nn.Dense(2))]),
                    ((5,),), _ids(2, 5))],
    # Registered in nn.LAYERS by strata.models; its build takes the image shape (or None).
    "GoogLeNet": [(lambda: googlenet((64, 64, 3), classes=3, aux=False), (), _x(2, 64, 64, 3))],
    # Registered by strata.models: a Sequential whose layers carry names (VGG's conv1_1 ...).
    "NamedSequential": [(lambda: strata.models.NamedSequential([
        ("conv1_1", nn.Conv2D(3, 3, padding="same", activation="relu")),
        ("flatten", nn.Flatten()), ("fc", nn.Dense(2))]), ((6, 6, 2),), _x(2, 6, 6, 2))],
    # Registered by strata.vision: Dense heads for localization and landmarks.
    "LocalizationHead": [(lambda: vision.LocalizationHead(3), (5,), _x(4, 5))],
    "LandmarkHead": [(lambda: vision.LandmarkHead(2), (5,), _x(4, 5))],
}
PARAMS = [pytest.param(name, i, id=f"{name}-{i}") for name in CASES
          for i in range(len(CASES[name]))]


def _layer_classes_with_build() -> set[str]:
    """Module subclasses defined in strata.nn's modules (and exported ones) with a build."""
    found = {cls for cls in nn.LAYERS.values() if hasattr(cls, "build")}
    for info in pkgutil.iter_modules(nn.__path__):
        module = importlib.import_module(f"strata.nn.{info.name}")
        found |= {cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, Module) and cls.__module__.startswith("strata.nn")
                  and hasattr(cls, "build")}
    return {cls.__name__ for cls in found}


def test_every_layer_with_build_has_a_case():
    found = _layer_classes_with_build()
    assert {"Dense", "SimpleRNN", "LSTM", "GRU", "Sequential"} <= found  # the scan works
    assert found == set(CASES), f"add build cases for {sorted(found - set(CASES))}"


def _known_weights(layer: Module, seed: int) -> dict:
    """New values for every tensor, of the built ones' scale (so deep nets stay finite) but
    unlike what a second build would draw; biases and running averages move off 0 and 1."""
    rng = np.random.default_rng(seed)
    return {name: (rng.uniform(0.5, 1.5, value.shape) if name.endswith("running_var") else
                   value * rng.uniform(0.5, 1.5, value.shape)
                   + rng.standard_normal(value.shape) * 0.1)
            for name, value in layer.state_dict().items()}


def _assert_state(layer: Module, known: dict) -> None:
    state = layer.state_dict()
    assert state.keys() == known.keys()
    for name, value in known.items():
        np.testing.assert_allclose(state[name], value, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("name, case", PARAMS)
def test_weights_loaded_after_build_are_kept_by_the_first_call(name, case):
    make, build_args, x = CASES[name][case]
    strata.seed(0)
    layer = make()
    layer.build(*build_args)
    known = _known_weights(layer, seed=1)
    layer.load_state_dict(known)
    layer.eval()  # batch norm then reads (and keeps) its loaded running averages
    out = layer(x)
    _assert_state(layer, known)
    assert out.shape[0] == x.shape[0] and np.isfinite(out.data).all()
    # The same layer built lazily by its first call, then given the same weights.
    strata.seed(2)
    reference = make().eval()
    reference(x)
    reference.load_state_dict(known)
    np.testing.assert_allclose(out.data, reference(x).data, rtol=1e-5, atol=1e-6)
    layer(x)
    _assert_state(layer, known)  # and by the calls after it


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _by_hand(name: str, w: dict, x: np.ndarray) -> np.ndarray:
    """The first case of a few layers computed in NumPy from the loaded weights."""
    if name == "Dense":
        return np.tanh(x @ w["W"] + w["b"])
    if name == "BatchNorm":
        return w["gamma"] * (x - w["running_mean"]) / np.sqrt(w["running_var"] + 1e-3) + w["beta"]
    if name == "Embedding":
        return w["E"][x]
    a = np.zeros((x.shape[0], 4))
    for t in range(x.shape[1]):
        if name == "SimpleRNN":
            a = np.tanh(x[:, t] @ w["Wax"] + a @ w["Waa"] + w["ba"])
        else:  # the course's GRU, relevance gate applied to a<t-1> before the matmul
            concat = np.concatenate([a, x[:, t]], axis=1)
            gu, gr = (_sigmoid(concat @ w["W" + g] + w["b" + g]) for g in "ur")
            c = np.tanh(np.concatenate([gr * a, x[:, t]], axis=1) @ w["Wc"] + w["bc"])
            a = gu * c + (1 - gu) * a
    return a


@pytest.mark.parametrize("name", ["Dense", "BatchNorm", "Embedding", "SimpleRNN", "GRU"])
def test_output_after_build_and_load_is_computed_with_the_loaded_weights(name):
    make, build_args, x = CASES[name][0]
    strata.seed(0)
    layer = make()
    layer.build(*build_args)
    known = _known_weights(layer, seed=3)
    layer.load_state_dict(known)
    out = layer.eval()(x)
    np.testing.assert_allclose(out.data, _by_hand(name, known, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", [nn.SimpleRNN, nn.LSTM, nn.GRU])
def test_recurrent_build_records_the_input_size(cls):
    layer = cls(4)
    layer.build(3)
    assert layer.n_x == 3
    with pytest.raises(strata.ShapeError, match=r"\(m, T_x, 3\)"):
        layer(_x(2, 5, 6))  # built for 3 features: a batch of 6 is an error, not a rebuild
    for bad in (0, 2.5, (5, 3), True):
        with pytest.raises(ValueError, match=r"build: expected the number of input features"):
            cls(4).build(bad)
