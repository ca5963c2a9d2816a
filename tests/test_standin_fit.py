"""fit, evaluate, predict, the losses, the metrics, the Pipeline, save_model and checkpoints on
the strict CPU stand-in for CuPy (tests/standin.py): NumPy data given to a model moved to the
"device" gives the history, the evaluation and the predictions of the same model on the CPU,
and any stray implicit conversion to NumPy (or np.* call on device data) fails the test."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from standin import StrictArray, wrap

import strata
import strata.nn as nn
from strata import backend, losses, metrics
from strata.data import Pipeline, RandomFlip

#: float32 on both paths: the numba loops and the array-module expressions add in other orders.
RTOL, ATOL = 1e-4, 1e-6
EPOCHS = 2


def _data(kind: str, m: int = 48):
    rng = np.random.default_rng(0)
    shape = {"mlp": (m, 6), "conv": (m, 8, 8, 2), "lstm": (m, 5, 4)}[kind]
    X = rng.standard_normal(shape).astype(np.float32)
    Y = (X.reshape(m, -1)[:, :3].sum(axis=1) > 0).astype(np.int64) + (X.reshape(m, -1)[:, 0] > 1)
    return X, Y


def _model(kind: str):
    """MLP (sparse labels, L2, dropout), conv net (one-hot labels), LSTM (logits)."""
    if kind == "mlp":
        model = nn.Sequential([nn.Dense(16, "relu"), nn.BatchNorm(), nn.Dropout(0.8),
                               nn.Dense(3, "softmax")])
        return model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"],
                             lr=0.01, l2=0.01)
    if kind == "conv":
        model = nn.Sequential([nn.Conv2D(4, 3, padding="same", activation="relu"),
                               nn.BatchNorm(), nn.MaxPool2D(2), nn.Flatten(),
                               nn.Dense(3, "softmax")])
        return model.compile("momentum", "categorical_crossentropy",
                             metrics=["accuracy", "f1_macro"], lr=0.05)
    model = nn.Sequential([nn.LSTM(8), nn.Dense(3)])
    return model.compile("rmsprop", losses.SparseCategoricalCrossentropy(from_logits=True),
                         metrics=["accuracy"], lr=0.01)


class _Floats(nn.Callback):
    """Records every log value, checking that each is a Python float (or int)."""

    def __init__(self):
        self.seen = []

    def _check(self, logs):
        for key, value in logs.items():
            assert type(value) in (float, int), f"{key}: {type(value).__name__}"
        self.seen.append(dict(logs))

    def on_batch_end(self, iteration, logs):
        self._check(logs)

    def on_epoch_end(self, epoch, logs):
        self._check(logs)


def _callbacks(tmp_path):
    callbacks = [_Floats(), nn.CSVLogger(tmp_path / "log.csv"),
                 nn.EarlyStopping("val_loss", patience=3, restore_best_weights=True),
                 nn.LearningRateScheduler(lambda epoch: 0.01 / (1 + epoch)),
                 nn.ModelCheckpoint(tmp_path / "best.safetensors")]
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        return callbacks
    return [*callbacks, nn.TensorBoard(tmp_path / "board", histogram_freq=1)]


def _train(kind, device, tmp_path, **fit):
    X, Y = _data(kind)
    labels = np.eye(3, dtype=np.float32)[Y] if kind == "conv" else Y
    strata.seed(0)
    model = _model(kind).to(device)  # built by fit, on the device, from host draws
    callbacks = _callbacks(tmp_path / device)
    history = model.fit(X, labels, epochs=EPOCHS, batch_size=16, verbose=0,
                        validation_data=(X[:20], labels[:20]), callbacks=callbacks, **fit)
    return model, history, callbacks[0].seen, model.evaluate(X, labels), model.predict(X)


def _host(a):
    return a.get() if type(a) is StrictArray else a


def _assert_logs_close(got: dict, ref: dict, what: str):
    assert got.keys() == ref.keys(), what
    for key, value in got.items():
        np.testing.assert_allclose(value, ref[key], rtol=RTOL, atol=ATOL,
                                   err_msg=f"{what}: {key}")


@pytest.mark.parametrize("kind", ["mlp", "conv", "lstm"])
def test_fit_on_the_standin_matches_the_cpu(kind, tmp_path):
    model, history, seen, results, predictions = _train(kind, "standin", tmp_path)
    ref_model, ref_history, ref_seen, ref_results, ref_predictions = _train(kind, "cpu",
                                                                            tmp_path)
    assert all(type(t.data) is StrictArray for _, t in model._named_tensors())
    _assert_logs_close(history.history, ref_history.history, "history")
    np.testing.assert_allclose(history.costs, ref_history.costs, rtol=RTOL, atol=ATOL)
    assert len(seen) == len(ref_seen)
    for i, (logs, ref) in enumerate(zip(seen, ref_seen, strict=True)):
        _assert_logs_close(logs, ref, f"callback logs {i}")
    _assert_logs_close(results, ref_results, "evaluate")
    assert all(type(v) is float for v in results.values())
    assert type(predictions) is np.ndarray  # predict returns host arrays
    np.testing.assert_allclose(predictions, ref_predictions, rtol=RTOL, atol=ATOL)
    for (name, t), (_, ref) in zip(model._named_tensors(), ref_model._named_tensors(),
                                   strict=True):
        # RMSprop divides by sqrt(s): last-bit differences of tiny gradients show at 1e-5
        np.testing.assert_allclose(t.data.get(), ref.data, rtol=RTOL, atol=1e-4, err_msg=name)
    saved = strata.load_model(tmp_path / "standin" / "best.safetensors")  # ModelCheckpoint
    np.testing.assert_allclose(saved.predict(_data(kind)[0]), predictions, rtol=RTOL, atol=ATOL)
    assert (tmp_path / "standin" / "log.csv").read_text().count("\n") == EPOCHS + 1


def test_fit_with_weights_and_a_validation_split_on_the_standin(tmp_path):
    X, Y = _data("mlp")
    weights = np.linspace(0.5, 1.5, len(X))
    runs = []
    for device in ("standin", "cpu"):
        strata.seed(0)
        model = _model("mlp").to(device)
        runs.append(model.fit(X, Y, epochs=EPOCHS, batch_size=16, verbose=0,
                              sample_weight=weights, class_weight={0: 1.0, 1: 2.0, 2: 0.5},
                              validation_split=0.25).history)
    _assert_logs_close(*runs, "history")


def _pipeline_fit(device, **pipeline):
    X, Y = _data("conv")
    strata.seed(0)
    model = nn.Sequential([nn.Conv2D(3, 3, activation="relu"), nn.Flatten(),
                           nn.Dense(3, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], lr=0.01)
    model.to(device)
    data = Pipeline(X, Y, batch_size=16, transform=RandomFlip(), **pipeline)
    return model.fit(data, epochs=EPOCHS, verbose=0, validation_data=(X[:20], Y[:20])).history


@pytest.mark.parametrize("prefetch", [0, 2])
def test_a_pipeline_feeds_a_model_on_the_standin(prefetch):
    _assert_logs_close(_pipeline_fit("standin", prefetch=prefetch),
                       _pipeline_fit("cpu", prefetch=prefetch), "history")


def test_a_pipeline_given_a_device_prefetches_there():
    X, Y = _data("mlp", m=20)
    data = Pipeline(X, Y, batch_size=8, device="standin")
    assert "device='standin'" in repr(data)
    batches = list(data)
    assert len(batches) == 3 and all(type(xb) is StrictArray and type(yb) is StrictArray
                                     for xb, yb in batches)
    strata.seed(1)
    rows = np.concatenate([xb.get() for xb, _ in data])
    strata.seed(1)
    np.testing.assert_array_equal(rows, np.concatenate([xb for xb, _ in
                                                         Pipeline(X, Y, batch_size=8)]))
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        Pipeline(X, Y, device="tpu")


def test_save_model_from_the_standin_and_load_it(tmp_path):
    model, _, _, results, predictions = _train("conv", "standin", tmp_path)
    path = strata.save_model(model, tmp_path / "model.safetensors")
    loaded = strata.load_model(path)
    assert loaded.device == "cpu"  # the user moves it: loaded.to(device)
    for (name, t), (_, u) in zip(model._named_tensors(), loaded._named_tensors(), strict=True):
        np.testing.assert_array_equal(t.data.get(), u.data, err_msg=name)
    for key, value in model.optimizer.state_dict().items():
        np.testing.assert_array_equal(_host(value), _host(loaded.optimizer.state_dict()[key]))
    X, Y = _data("conv")
    labels = np.eye(3, dtype=np.float32)[Y]
    _assert_logs_close(loaded.evaluate(X, labels), results, "evaluate")
    np.testing.assert_allclose(loaded.predict(X), predictions, rtol=RTOL, atol=ATOL)
    # trained on from the file, on the device or on the CPU: the same steps
    reloaded = strata.load_model(path).to("standin")
    strata.seed(5)  # after loading, which draws initial weights before reading the file's
    on_device = reloaded.fit(X, labels, epochs=1, verbose=0)
    strata.seed(5)
    on_cpu = loaded.fit(X, labels, epochs=1, verbose=0)
    _assert_logs_close(on_device.history, on_cpu.history, "history after loading")


class _InterruptAt(nn.Callback):
    """Ctrl-C (SIGINT to this process) after a given iteration."""

    def __init__(self, iteration):
        self.iteration = iteration

    def on_batch_end(self, iteration, logs):
        if iteration == self.iteration:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("source", ["arrays", "pipeline"])
def test_a_checkpointed_fit_on_the_standin_resumes(source, tmp_path):
    """Interrupted in the middle of an epoch (partial predictions on the device), resumed on
    the device: the history and weights equal an uninterrupted run's, bit for bit."""
    X, Y = _data("mlp")

    def fit(**options):
        strata.seed(3)
        model = _model("mlp").to("standin")
        data = (Pipeline(X, Y, batch_size=16),) if source == "pipeline" else (X, Y)
        callbacks = [nn.EarlyStopping("loss", patience=5, restore_best_weights=True),
                     *options.pop("callbacks", ())]
        batches = {} if source == "pipeline" else {"batch_size": 16}
        return model, model.fit(*data, epochs=3, verbose=0, callbacks=callbacks, **batches,
                                **options)

    reference, expected = fit()
    path = tmp_path / "run.safetensors"
    with pytest.raises(nn.TrainingInterrupted):
        fit(checkpoint=path, callbacks=[_InterruptAt(4)])
    resumed, history = fit(checkpoint=path, resume=True)
    assert history.history == expected.history
    for (name, t), (_, u) in zip(resumed._named_tensors(), reference._named_tensors(),
                                 strict=True):
        assert type(t.data) is StrictArray
        np.testing.assert_array_equal(t.data.get(), u.data.get(), err_msg=name)


def _diverging_fit(device, pipeline: bool):
    X, Y = _data("mlp")
    X[20, 2] = np.nan
    strata.seed(0)
    model = nn.Sequential([nn.Dense(8, "relu"), nn.Dense(1)]).compile("adam", "mse")
    model.to(device)
    Y = Y.reshape(-1, 1).astype(np.float32)
    with pytest.raises(FloatingPointError) as caught:
        if pipeline:  # a Pipeline does not check X, so the NaN reaches the model
            model.fit(Pipeline(X, Y, batch_size=16, shuffle=False), verbose=0)
        else:  # NaN labels are allowed (missing) by fit's checks, and reach the loss
            Y[20, 0] = np.nan
            X[20, 2] = 0.0
            model.fit(X, Y, batch_size=16, shuffle=False, verbose=0)
    return str(caught.value)


@pytest.mark.parametrize("pipeline", [False, True])
def test_nan_in_the_data_is_caught_on_the_standin_as_on_the_cpu(pipeline):
    message = _diverging_fit("standin", pipeline)
    assert message == _diverging_fit("cpu", pipeline)
    assert "iteration 1" in message


# --- the losses and metrics on device arrays -------------------------------------------------

def _loss_cases():
    rng = np.random.default_rng(4)
    z = rng.standard_normal((6, 3))
    p = 1 / (1 + np.exp(-z))
    soft = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    classes = rng.integers(0, 3, 6)
    onehot = np.eye(3)[classes]
    binary = (rng.random((6, 3)) > 0.5).astype(float)
    masked = binary.copy()
    masked[0, 1], masked[2, 2] = np.nan, -1
    seq_z, seq_y = rng.standard_normal((2, 4, 5)), rng.integers(-1, 5, (2, 4))
    weights = rng.random(6) + 0.5
    return {
        "binary": (losses.binary_crossentropy, p, binary, {}),
        "binary_weighted": (losses.binary_crossentropy, p, binary, {"sample_weight": weights}),
        "binary_logits": (losses.binary_crossentropy, z, binary, {"from_logits": True}),
        "masked": (losses.masked_binary_crossentropy, p, masked, {}),
        "categorical": (losses.categorical_crossentropy, soft, onehot, {}),
        "categorical_logits": (losses.categorical_crossentropy, z, onehot,
                               {"from_logits": True, "sample_weight": weights}),
        "sparse": (losses.sparse_categorical_crossentropy, soft, classes,
                   {"sample_weight": weights}),
        "sparse_float_labels": (losses.sparse_categorical_crossentropy, z,
                                classes.astype(float), {"from_logits": True}),
        "sequence": (losses.sequence_crossentropy, seq_z, seq_y, {}),
        "sequence_probabilities": (losses.sequence_crossentropy,
                                   np.exp(seq_z) / np.exp(seq_z).sum(-1, keepdims=True), seq_y,
                                   {"from_logits": False, "reduction": "sequence"}),
        "mse": (losses.mean_squared_error, z, onehot, {"sample_weight": weights}),
    }


@pytest.mark.parametrize("name", sorted(_loss_cases()))
@pytest.mark.parametrize("labels_on", ["device", "host"])
def test_loss_on_the_standin(name, labels_on):
    fn, pred, labels, options = _loss_cases()[name]
    results = []
    for device in ("standin", None):
        x = strata.tensor(pred, requires_grad=True, dtype=np.float64, device=device)
        y = wrap(labels) if device and labels_on == "device" else labels
        if device and "sample_weight" in options:
            options = {**options, "sample_weight": wrap(options["sample_weight"])}
        loss = fn(x, y, **options)
        loss.backward()
        results.append((loss.data, x.grad))
    (loss, grad), (ref_loss, ref_grad) = results
    assert type(loss) is StrictArray and type(grad) is StrictArray
    np.testing.assert_allclose(loss.get(), ref_loss, rtol=1e-12)
    np.testing.assert_allclose(grad.get(), ref_grad, rtol=1e-10, atol=1e-14)


def test_loss_errors_on_the_standin_match_the_cpu():
    A = np.array([[0.2], [1.3]])
    for device in ("standin", "cpu"):
        x = strata.tensor(A, device=device)
        with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*\[0.2, 1.3\]"):
            losses.binary_crossentropy(x, np.array([[0.0], [1.0]]))
        with pytest.raises(ValueError, match="labels must lie in"):
            losses.binary_crossentropy(x.clip(0, 1), backend.to_device([[0.0], [2.0]], device))
        with pytest.raises(ValueError, match=r"out of range \(e.g. 7\)"):
            losses.sparse_categorical_crossentropy(strata.tensor([[0.5, 0.5]], device=device),
                                                   backend.to_device(np.array([7]), device))


def test_regularization_and_probabilities_on_the_standin():
    W = np.random.default_rng(0).standard_normal((4, 3))
    for penalty in (losses.l2_penalty, losses.l1_penalty):
        on_device = strata.tensor(W, requires_grad=True, device="standin")
        on_cpu = strata.tensor(W, requires_grad=True)
        penalty([on_device], 0.1, 8).backward()
        penalty([on_cpu], 0.1, 8).backward()
        np.testing.assert_allclose(on_device.grad.get(), on_cpu.grad, rtol=1e-12)
    for activation in ("sigmoid", "softmax", None):
        got = losses.to_probabilities(wrap(W), activation)
        np.testing.assert_allclose(got.get(), losses.to_probabilities(W, activation))


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1", "f1_macro",
                                    "precision_weighted"])
def test_metrics_on_the_standin(metric):
    rng = np.random.default_rng(2)
    fn = metrics.get_metric(metric)
    binary = "_" not in metric and metric != "accuracy"
    y_true = rng.integers(0, 2 if binary else 3, 30)
    y_pred = rng.random((30, 1)) if binary else rng.random((30, 3))
    expected = fn(y_true, y_pred)
    assert fn(wrap(y_true), wrap(y_pred)) == expected
    assert fn(y_true, wrap(y_pred)) == expected  # host labels, device predictions
    assert type(fn(wrap(y_true), wrap(y_pred))) is float


def test_confusion_matrix_and_metric_errors_on_the_standin():
    t, p = np.array([0, 1, 2, 2, 1]), np.array([0, 2, 2, 2, 1])
    got = metrics.confusion_matrix(wrap(t), wrap(p))
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, metrics.confusion_matrix(t, p))
    with pytest.raises(ValueError, match="NaN"):
        metrics.accuracy(wrap(t), wrap(np.array([0.1, np.nan, 0.2, 0.3, 0.9])))
    with pytest.raises(ValueError, match=r"logits \(values in \[-1, 2\]\)"):
        metrics.accuracy(wrap(np.array([0, 1])), wrap(np.array([-1.0, 2.0])))
