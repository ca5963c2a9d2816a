"""Model: compile, fit, evaluate, predict, summary, callbacks."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import strata
import strata.nn as nn
from strata.data import circles, moons, planar_flower


def _net(init="he", hidden=(10, 5)):
    layers = [nn.Dense(n, "relu", kernel_initializer=init) for n in hidden]
    return nn.Sequential([*layers, nn.Dense(1, "sigmoid", kernel_initializer=init)])


def test_planar_flower_reaches_the_course_accuracy():
    strata.seed(1)
    X, Y = planar_flower()
    model = nn.Sequential([nn.Dense(4, "tanh", kernel_initializer=nn.RandomNormal(0.01)),
                           nn.Dense(1, "sigmoid", kernel_initializer=nn.RandomNormal(0.01))])
    model.compile(optimizer="gd", lr=1.2, loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(X, Y, epochs=2000, batch_size=None, verbose=0)
    assert len(history.costs) == 2000 and history["loss"][-1] < history["loss"][0]
    assert model.evaluate(X, Y)["accuracy"] >= 0.88


@pytest.mark.parametrize("init, epochs, low, high", [("zeros", 2000, 0.4, 0.6),
                                                     ("he", 15000, 0.96, 1.0)])
def test_initialization_on_circles(init, epochs, low, high):
    strata.seed(3)
    X, Y = circles(300, noise=0.05)
    model = _net(init)
    model.compile(optimizer="gd", lr=0.01, loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(X, Y, epochs=epochs, batch_size=None, verbose=0)  # the course's lr, 15000 its
    assert low <= model.evaluate(X, Y)["accuracy"] <= high


def test_predict_evaluate_and_validation_logs():
    strata.seed(0)
    X, Y = planar_flower(200)
    model = _net()
    model.compile(optimizer="adam", lr=0.01, loss="binary_crossentropy",
                  metrics=["accuracy", "f1"])
    history = model.fit(X, Y, epochs=3, batch_size=32, validation_data=(X[:50], Y[:50]),
                        verbose=0)
    assert set(history.history) == {"loss", "accuracy", "f1", "val_loss", "val_accuracy",
                                    "val_f1"}
    assert len(history.costs) == 3 * 7  # ceil(200 / 32) iterations per epoch
    probs = model.predict(X)
    assert probs.shape == (200, 1) and ((probs > 0) & (probs < 1)).all()
    expected = -np.mean(Y * np.log(probs) + (1 - Y) * np.log(1 - probs))
    assert model.evaluate(X, Y)["loss"] == pytest.approx(expected, rel=1e-4)


def test_fit_rejects_bad_input():
    model = _net()
    X, Y = np.ones((10, 2), dtype=np.float32), np.ones((10, 1), dtype=np.float32)
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(X, Y)
    model.compile(loss="binary_crossentropy")
    with pytest.raises(ValueError, match="X has 10 examples but Y has 9"):
        model.fit(X, Y[:9])
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.full((10, 2), np.nan), Y)
    with pytest.raises(ValueError, match="epochs to be an integer >= 1"):
        model.fit(X, Y, epochs=0)
    with pytest.raises(ValueError, match="unknown optimizer|expected one of"):
        _net().compile(optimizer="adamm").fit(X, Y, verbose=0)


def test_fit_takes_a_background_pipeline_with_augmentation():
    import threading

    strata.seed(0)
    X, Y = moons(300, noise=0.1)
    seen = []

    def jitter(xb, rng):  # a tiny augmentation, recording the thread it runs in
        seen.append(threading.current_thread() is threading.main_thread())
        return xb + rng.normal(0, 0.01, xb.shape).astype(xb.dtype)

    model = _net().compile(optimizer="adam", lr=0.05, loss="binary_crossentropy",
                           metrics=["accuracy"])
    pipeline = strata.data.Pipeline(X, Y, batch_size=32, transform=jitter)
    history = model.fit(pipeline, epochs=15, verbose=0)
    assert len(history.costs) == 15 * len(pipeline) and len(seen) == 15 * len(pipeline)
    assert not any(seen)  # prepared by the background thread
    assert model.evaluate(X, Y)["accuracy"] > 0.85
    with pytest.raises(ValueError, match="Pipeline brings its own labels"):
        model.fit(pipeline, Y)


def test_divergence_is_reported():
    X = np.random.default_rng(0).standard_normal((20, 2)).astype(np.float32) * 100
    model = nn.Sequential([nn.Dense(1)])
    model.compile(optimizer="gd", lr=1e6, loss="mse")
    with pytest.raises(FloatingPointError, match="(?i)lower the learning rate"), \
            np.errstate(all="ignore"):
        model.fit(X, X[:, :1] * 3, epochs=50, batch_size=None, verbose=0)


def test_early_stopping_restores_the_best_weights():
    strata.seed(0)
    X, Y = planar_flower(100)
    model = _net()
    model.compile(optimizer="adam", lr=0.5, loss="binary_crossentropy")  # noisy on purpose
    stop = nn.EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    history = model.fit(X, Y, epochs=200, batch_size=10, callbacks=[stop], verbose=0)
    assert stop.stopped_epoch is not None and len(history["loss"]) < 200
    best = min(history["loss"])
    assert model.evaluate(X, Y)["loss"] <= best + 0.5  # back at the best epoch's weights


def test_checkpoint_csv_and_lr_schedule(tmp_path):
    strata.seed(0)
    X, Y = planar_flower(60)
    model = _net()
    model.compile(optimizer="gd", lr=0.1, loss="binary_crossentropy", metrics=["accuracy"])
    schedule = strata.optim.InverseTimeDecay(lr0=0.1, decay_rate=1.0)
    callbacks = [nn.ModelCheckpoint(tmp_path / "best.safetensors", monitor="loss",
                                    save_best_only=True),
                 nn.CSVLogger(tmp_path / "log.csv"), nn.LearningRateScheduler(schedule)]
    history = model.fit(X, Y, epochs=4, batch_size=None, callbacks=callbacks, verbose=0)
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3, 0.025])
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3] and "accuracy" in rows[0]
    restored = strata.load_model(tmp_path / "best.safetensors")
    assert isinstance(restored, nn.Sequential) and len(restored) == 3


def test_cost_printer_uses_the_course_format(capsys):
    X, Y = planar_flower(40)
    model = _net()
    model.compile(optimizer="gd", lr=0.1, loss="binary_crossentropy")
    model.fit(X, Y, epochs=201, batch_size=None, callbacks=[nn.CostPrinter(100)], verbose=0)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "Cost after iteration 0", "Cost after iteration 100", "Cost after iteration 200"]


def test_summary_counts_the_course_networks(capsys):
    model = nn.Sequential([nn.Dense(20, "relu"), nn.Dense(7, "relu"), nn.Dense(5, "relu"),
                           nn.Dense(1, "sigmoid")])
    assert model.summary((12288,)) == 12288 * 20 + 20 + 20 * 7 + 7 + 7 * 5 + 5 + 5 + 1
    out = capsys.readouterr().out
    assert "(None, 20)" in out and "Total params: 245,973" in out
    bn = nn.Sequential([nn.Dense(4, use_bias=False), nn.BatchNorm()])
    bn.summary((3,))
    assert "Non-trainable params: 8" in capsys.readouterr().out  # running mean and variance
    with pytest.raises(ValueError, match="input_shape"):
        nn.Sequential([nn.Dense(2)]).summary()


def test_fit_builds_lazy_layers_behind_a_built_one_before_binding_the_optimizer():
    strata.seed(0)
    first = nn.Dense(4, "relu")
    first.build(3)  # built by hand; the next layer is still lazy
    model = nn.Sequential([first, nn.Dense(1, "sigmoid")])
    X = np.random.default_rng(0).standard_normal((32, 3)).astype(np.float32)
    Y = (X[:, :1] > 0).astype(np.float32)
    model.compile(optimizer="adam", lr=0.05, loss="binary_crossentropy")
    model.fit(X, Y, epochs=1, verbose=0)
    assert [p.shape for p in model.optimizer.params] == [(3, 4), (4,), (4, 1), (1,)]
    before = model.layers[1].W.data.copy()
    model.fit(X, Y, epochs=1, verbose=0)
    assert not np.array_equal(model.layers[1].W.data, before)  # the lazy layer trains too
