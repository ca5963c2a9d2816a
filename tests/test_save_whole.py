"""Any model saved and loaded whole: a user's registered subclass with two inputs (built by fit,
summarized, trained on a tuple of arrays), compiled state kept (optimizer with its state, loss,
metrics), predictions equal bit for bit, training continuing identically; and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

import strata
from strata import nn
from strata.losses import SparseCategoricalCrossentropy
from strata.nn.registry import config_of


@nn.register
class TwoTower(nn.Model):
    """Two inputs, each through its own Dense tower, concatenated, then a softmax head."""

    def __init__(self, units=8, classes=3, hidden=(6, 4)):
        self.left = nn.Dense(units, "relu")
        self.right = nn.Sequential([nn.Dense(h, "tanh") for h in hidden])
        self.head = nn.Dense(classes, "softmax")

    def forward(self, a, b):
        return self.head(strata.concatenate([self.left(a), self.right(b)], axis=1))


def _data():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((60, 5)).astype(np.float32)
    b = rng.standard_normal((60, 3)).astype(np.float32)
    y = ((a[:, 0] > 0).astype(int) + (b[:, 0] > 0)).astype(np.int64)
    return (a, b), y


def _trained():
    strata.seed(0)
    model = TwoTower(units=8, hidden=[6, 4])
    model.compile(optimizer="adam", lr=0.01, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", "f1_macro"], l2=0.01)
    X, y = _data()
    model.fit(X, y, epochs=3, batch_size=16, verbose=0)  # fit builds it from the tuple
    return model, X, y


def test_a_registered_subclass_with_two_inputs_trains_saves_and_loads_whole(tmp_path):
    model, X, y = _trained()
    path = model.save(tmp_path / "two.safetensors")
    loaded = strata.load_model(path)
    assert type(loaded) is TwoTower and loaded.get_config() == {
        "units": 8, "classes": 3, "hidden": [6, 4]}
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.evaluate(X, y) == model.evaluate(X, y)  # compiled: loss, metrics, l2
    assert type(loaded.optimizer) is type(model.optimizer)
    for key, value in model.optimizer.state_dict().items():
        np.testing.assert_array_equal(loaded.optimizer.state_dict()[key], value)
    strata.seed(5)
    model.fit(X, y, epochs=2, batch_size=16, verbose=0)
    strata.seed(5)
    loaded.fit(X, y, epochs=2, batch_size=16, verbose=0)
    for (name, t), (_, u) in zip(model._named_tensors(), loaded._named_tensors(), strict=True):
        np.testing.assert_array_equal(t.data, u.data, err_msg=name)


def test_summary_of_a_subclass_lists_its_layers_in_call_order():
    model, _, _ = _trained()
    lines = []
    total = model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert [line.split(":")[0] for line in lines[1:4]] == ["left", "right", "head"]
    assert "(None, 8)" in text and "(None, 4)" in text and "(None, 3)" in text
    assert total == sum(p.size for p in model.parameters())


def test_an_unregistered_subclass_is_refused_at_save_not_at_load(tmp_path):
    class Plain(nn.Model):
        def __init__(self):
            self.d = nn.Dense(2)

        def forward(self, x):
            return self.d(x)

    model = Plain()
    model(np.ones((1, 3), np.float32))
    with pytest.raises(TypeError, match=r"not registered.*@strata.nn.register"):
        model.save(tmp_path / "p.safetensors")
    assert not (tmp_path / "p.safetensors").exists()


def test_a_sequential_reloads_compiled_with_a_loss_object(tmp_path):
    strata.seed(1)
    model = nn.Sequential([nn.Dense(4, "relu"), nn.Dense(3)])
    model.compile(optimizer="momentum", lr=0.05,
                  loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    (a, _), y = _data()
    model.fit(a, y, epochs=2, verbose=0)
    loaded = strata.load_model(model.save(tmp_path / "s.safetensors"))
    assert loaded.loss.from_logits and loaded.evaluate(a, y) == model.evaluate(a, y)
    assert strata.load_model(tmp_path / "s.safetensors", compile=False).loss is None


def test_a_custom_loss_saves_the_weights_and_warns(tmp_path):
    strata.seed(1)
    model = nn.Sequential([nn.Dense(1)])
    model.compile(loss=lambda out, y: ((out - y) ** 2).mean())
    (a, _), y = _data()
    model.fit(a, y[:, None].astype(np.float32), epochs=1, verbose=0)
    with pytest.warns(UserWarning, match="not the compile settings"):
        path = model.save(tmp_path / "c.safetensors")
    assert strata.load_model(path).loss is None


def test_a_class_name_not_registered_in_this_program_is_refused(tmp_path):
    model, _, _ = _trained()
    path = model.save(tmp_path / "two.safetensors")
    from strata.nn.registry import REGISTRY

    del REGISTRY["TwoTower"]
    try:
        with pytest.raises(ValueError, match="'TwoTower'"):
            strata.load_model(path)
    finally:
        REGISTRY["TwoTower"] = TwoTower


def _zoo():
    from strata import models, text

    return {
        "logistic_regression": (lambda: models.logistic_regression(4), (4,)),
        "shallow_network": (lambda: models.shallow_network(4), (4,)),
        "deep_network": (lambda: models.deep_network((4, 5, 3, 1)), (4,)),
        "signs_convnet": (lambda: models.signs_convnet(input_shape=(16, 16, 3)), (16, 16, 3)),
        "small_convnet": (lambda: models.small_convnet(input_shape=(32, 32, 3)), (32, 32, 3)),
        "lenet5": (lambda: models.lenet5("modern"), (32, 32, 1)),
        "alexnet": (lambda: models.alexnet((67, 67, 3), classes=4), (67, 67, 3)),
        "vgg16": (lambda: models.vgg16((32, 32, 3), classes=4), (32, 32, 3)),
        "resnet50": (lambda: models.resnet50((64, 64, 3), classes=4), (64, 64, 3)),
        "resnet34": (lambda: models.resnet34((32, 32, 3), classes=4), (32, 32, 3)),
        "googlenet": (lambda: models.googlenet((64, 64, 3), classes=4, aux=False), (64, 64, 3)),
        "language_model": (lambda: text.language_model(7, "gru", units=6, embedding=4), None),
    }


@pytest.mark.parametrize("name", list(_zoo()))
def test_every_model_of_the_package_round_trips_compiled(tmp_path, name):
    make, shape = _zoo()[name]
    strata.seed(3)
    model = make()
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 7, (2, 5)) if shape is None else
         rng.standard_normal((2, *shape)).astype(np.float32))
    model(x)
    loss = (SparseCategoricalCrossentropy(from_logits=True) if shape is None else
            "binary_crossentropy" if model.predict(x).shape[-1] == 1 else
            "sparse_categorical_crossentropy")
    model.compile(optimizer="rmsprop", lr=0.001, loss=loss)
    loaded = strata.load_model(model.save(tmp_path / f"{name}.safetensors"))
    assert type(loaded) is type(model) and config_of(loaded) == config_of(model)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert type(loaded.optimizer).__name__ == "RMSprop" and loaded.optimizer.lr == 0.001
