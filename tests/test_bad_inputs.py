"""Crafted and corrupt inputs are refused clearly, before any work: model files (safetensors
header, architecture JSON, sizes against the file's tensors), run folders and the keep_prob of
`strata train`. Every file here is written by the test, inside tmp_path."""

from __future__ import annotations

import json
import re
import struct
from dataclasses import asdict

import numpy as np
import pytest
from memory import peak_bytes
from safetensors.numpy import save_file

import strata
import strata.nn as nn
from strata import cli, runs

FORMAT = "strata-model/1"


def _dense_net(units=2, input_shape=(3,), **dense):
    return {"class": "Sequential", "config": {
        "layers": [{"class": "Dense", "config": {"units": units, **dense}}],
        "input_shape": list(input_shape)}}


def _tensors(n_prev=3, units=2):
    return {"layers.0.W": np.zeros((n_prev, units), np.float32),
            "layers.0.b": np.zeros(units, np.float32)}


def _model_file(path, architecture, tensors=None):
    """A model file as save_model writes it, with any architecture (a dict or raw text)."""
    text = architecture if isinstance(architecture, str) else json.dumps(architecture)
    save_file(_tensors() if tensors is None else tensors, str(path),
              {"format": FORMAT, "architecture": text})
    return path


def _raw_file(path, header: dict, data: bytes = b"", length: int | None = None):
    """A file of the safetensors layout with any header, data and claimed header length."""
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


def _load_fails(path, *fragments):
    """load_model(path) raises a ValueError naming the file and every fragment, in order."""
    pattern = ".*".join([re.escape(str(path))] + [re.escape(f) for f in fragments])
    with pytest.raises(ValueError, match=pattern):
        strata.load_model(path)


# --- model files: sizes the file's tensors cannot back ------------------------------------------

def test_a_tiny_file_cannot_make_load_model_allocate_gigabytes(tmp_path):
    # 100,000 units on 1,000 inputs: a 400 MB W, from a file holding a 3 x 2 one.
    path = _model_file(tmp_path / "tiny.safetensors", _dense_net(100_000, (1000,)))
    assert path.stat().st_size < 400

    errors = []

    def load():
        with pytest.raises(ValueError) as error:
            strata.load_model(path)
        errors.append(str(error.value))

    assert peak_bytes(load) < 20 * 2 ** 20
    assert re.search(re.escape(str(path)) + r".*layers.0 \(Dense\) would create tensors of "
                     r"shape \(1000, 100000\).*W \(3, 2\)", errors[0]), errors[0]


def test_absurd_units_are_refused_before_anything_is_built(tmp_path):
    # 2**25 units: above the cap of 2**24 whatever the file holds (a 128 MB W on one input).
    path = _model_file(tmp_path / "absurd.safetensors", _dense_net(2 ** 25, (1,)))
    assert peak_bytes(lambda: pytest.raises(ValueError, strata.load_model, path)) < 2 ** 20
    _load_fails(path, "layers[0].units (Dense)", "expected an int in [1, ", f"got {2 ** 25}")


@pytest.mark.parametrize("architecture, tensors, fragments", [
    (_dense_net(2, (4,)), None, ["would create tensors of shape (4, 2), (2,)",
                                 "holds W (3, 2), b (2,)"]),
    (_dense_net(), {}, ["layers.0 (Dense) would create", "holds no tensors for it"]),
    ({"class": "Sequential", "config": {"layers": [{"class": "LSTM", "config": {"units": 500}}],
                                        "input_shape": [5, 3]}},
     {"layers.0.Wf": np.zeros((4, 2), np.float32)}, ["layers.0 (LSTM) would create"]),
])
def test_architecture_and_tensors_must_agree(tmp_path, architecture, tensors, fragments):
    _load_fails(_model_file(tmp_path / "m.safetensors", architecture, tensors), *fragments)


def test_a_model_that_builds_itself_counts_first(tmp_path):
    # GoogLeNet builds in its from_config: its 13 M parameters must be in the file first.
    path = _model_file(tmp_path / "g.safetensors", {"class": "GoogLeNet", "config": {
        "input_shape": [256, 256, 3], "classes": 1000, "aux": True}})

    def load():
        with pytest.raises(ValueError, match=re.escape(str(path)) + r".*\(GoogLeNet\) would "
                           r"create 13,378,280 values, but the file holds 8"):
            strata.load_model(path)

    assert peak_bytes(load) < 20 * 2 ** 20


def test_extra_tensors_are_named(tmp_path):
    tensors = {**_tensors(), "zzz": np.zeros(1, np.float32)}
    _load_fails(_model_file(tmp_path / "m.safetensors", _dense_net(), tensors),
                "do not fit its architecture", "unexpected ['zzz']")


# --- model files: the safetensors header --------------------------------------------------------

META = {"format": FORMAT, "architecture": json.dumps(_dense_net(2, (1,)))}
W = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize("header, data, length, fragment", [
    ({"W": W, "__metadata__": META}, b"\0" * 8, 10 ** 12, "the header claims 1,000,000,000,000"),
    ({"W": W, "__metadata__": META}, b"\0" * 8, 4, "not valid JSON"),
    ({"W": {**W, "dtype": "X9"}, "__metadata__": META}, b"\0" * 8, None, "expected a dtype"),
    ({"W": {**W, "shape": [-2]}, "__metadata__": META}, b"\0" * 8, None, "list of ints >= 0"),
    ({"W": {**W, "shape": "2"}, "__metadata__": META}, b"\0" * 8, None, "list of ints >= 0"),
    ({"W": {**W, "shape": [3]}, "__metadata__": META}, b"\0" * 8, None,
     "shape (3,) need 12 bytes, but its data_offsets [0, 8] span 8"),
    ({"W": {**W, "shape": [4], "data_offsets": [0, 16]}, "__metadata__": META}, b"\0" * 8, None,
     "end at byte 16, but the file holds 8"),
    ({"W": W, "V": {**W, "shape": [1], "data_offsets": [4, 8]}, "__metadata__": META},
     b"\0" * 8, None, "overlaps the previous tensor"),
    ({"W": {**W, "shape": [1], "data_offsets": [4, 8]}, "__metadata__": META}, b"\0" * 8, None,
     "leaves a gap"),
    ({"W": W, "__metadata__": META}, b"\0" * 12, None, "end at byte 8, but the file holds 12"),
    ({"W": {**W, "extra": 1}, "__metadata__": META}, b"\0" * 8, None, "expected an object"),
    ({"W": W, "__metadata__": {"format": 1}}, b"\0" * 8, None, "map names to strings"),
])
def test_malformed_headers_are_refused_before_reading_tensors(tmp_path, header, data, length,
                                                              fragment):
    path = _raw_file(tmp_path / "h.safetensors", header, data, length)
    _load_fails(path, "is not a readable safetensors file", fragment)


def test_short_files_and_duplicate_names_are_refused(tmp_path):
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\x01\x02")
    _load_fails(short, "expected an 8-byte header length, got a file of 2 bytes")
    dup = tmp_path / "dup.safetensors"
    text = b'{"W": %s, "W": %s}' % (json.dumps(W).encode(), json.dumps(W).encode())
    dup.write_bytes(struct.pack("<Q", len(text)) + text + b"\0" * 8)
    _load_fails(dup, "names ['W'] more than once")


def test_metadata_must_name_the_format_and_hold_an_architecture(tmp_path):
    path = _raw_file(tmp_path / "m.safetensors", {"W": W, "__metadata__": {"format": FORMAT}},
                     b"\0" * 8)
    _load_fails(path, "has no architecture in its metadata")
    path = _raw_file(tmp_path / "f.safetensors", {"W": W, "__metadata__": {
        "architecture": META["architecture"]}}, b"\0" * 8)
    _load_fails(path, "was not written by strata.save_model (format None")


# --- model files: the architecture JSON ---------------------------------------------------------

def _nested(depth: int) -> dict:
    spec = {"class": "Dense", "config": {"units": 2}}
    for _ in range(depth):
        spec = {"class": "Sequential", "config": {"layers": [spec], "input_shape": None}}
    return spec


@pytest.mark.parametrize("architecture, fragment", [
    ({"class": "os.system", "config": {}}, "expected a layer class among"),
    ({"class": "Sequential", "config": [1]}, "expected the config to be an object, got list"),
    ({"class": "Sequential"}, 'expected {"class": name, "config": {...}}'),
    (_dense_net(evil=1), "unknown config key 'evil'; expected among ['activation'"),
    ({"class": "Sequential", "config": {"layers": [{"class": "Dense", "config": {}}]}},
     "missing config key 'units'"),
    (_dense_net("2"), "layers[0].units (Dense): expected an int in [1, 16777216], got '2'"),
    (_dense_net(-3), "got -3"),
    (_dense_net(10 ** 12), "got 1000000000000"),
    (_dense_net(True), "got True"),
    (_dense_net(use_bias="yes"), "use_bias (Dense): expected true or false, got 'yes'"),
    (_dense_net(kernel_initializer=["x"]), "kernel_initializer (Dense): expected a name"),
    (_dense_net(kernel_initializer="os.system"), "unknown initializer 'os.system'"),
    (_dense_net(l2=float("nan")), "l2 (Dense): expected a finite number"),
    (_dense_net(input_shape=(-3,)), "input_shape (Sequential): expected null or a list"),
    (_dense_net(input_shape=(10 ** 5, 10 ** 5)), "at most 67,108,864 values"),
    ({"class": "Sequential", "config": {"layers": {"class": "Dense"}}},
     "layers: expected a list of layers"),
    ({"class": "Sequential", "config": {"layers": [
        {"class": "Dropout", "config": {"keep_prob": 2}}]}}, "expected 0 < keep_prob <= 1"),
    ({"class": "Sequential", "config": {"layers": [
        {"class": "ZeroPadding2D", "config": {"padding": -1}}]}}, "padding (ZeroPadding2D)"),
    ({"class": "Sequential", "config": {"layers": [
        {"class": "OneHot", "config": {"depth": 10 ** 9}}]}}, "depth (OneHot)"),
    (_nested(70), "layers nested more than 64 deep"),
    ("{", "the architecture is not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_bad_architectures_are_refused_naming_the_place(tmp_path, architecture, fragment):
    _load_fails(_model_file(tmp_path / "a.safetensors", architecture), fragment)


def test_legitimate_nested_models_still_round_trip(tmp_path):
    strata.seed(3)
    x = np.random.default_rng(0).standard_normal((4, 6, 5)).astype(np.float32)
    model = nn.Sequential([
        nn.Bidirectional(nn.GRU(3, return_sequences=True, reset_after=True)),
        nn.TimeDistributed(nn.Dense(2)), nn.Flatten(),
        nn.Parallel([[nn.Dense(2)], [nn.Dense(3), nn.BatchNorm()]]),
        nn.Residual([nn.Dense(5, "relu"), nn.Dense(5)]), nn.Dense(1)])
    model(x)
    loaded = strata.load_model(strata.save_model(model, tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.get_config() == model.get_config()
    assert loaded.layers[0].forward_layer.kernel_initializer is nn.glorot  # guards removed


# --- strata train --keep-prob and the run settings ----------------------------------------------

@pytest.mark.parametrize("value", ["1.5", "0", "-0.2", "nan", "abc"])
def test_train_refuses_a_keep_prob_outside_0_1(value, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--keep-prob", value, "--out", str(tmp_path / "run")])
    assert exit_.value.code == 2
    assert f"--keep-prob: expected a keep probability in (0, 1] (1 = no dropout), got {value}" \
        in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("field, value, expected", [
    ("keep_prob", 1.5, "keep_prob: expected a keep probability in (0, 1]"),
    ("keep_prob", 0, "keep_prob: expected a keep probability in (0, 1]"),
    ("lr", "0.1", "lr: expected a learning rate > 0, got '0.1'"),
    ("lr", -1, "lr: expected a learning rate > 0"),
    ("epochs", 2.5, "epochs: expected an int >= 1, got 2.5"),
    ("batch_size", 0, "batch_size: expected an int >= 1"),
    ("hidden", [8, 0], "hidden: expected a list of positive layer sizes"),
    ("hidden", "64,32", "hidden: expected a list of positive layer sizes"),
    ("dataset", "nope", "dataset: expected one of digits"),
    ("optimizer", "adamw", "optimizer: expected one of adam"),
    ("l2", -0.1, "l2: expected a number >= 0"),
    ("augment", "yes", "augment: expected true or false"),
    ("seed", -1, "seed: expected an int >= 0"),
    ("human_error", 2, "human_error: expected null or a fraction in [0, 1]"),
    ("lr_decay", 0, "lr_decay: expected a factor in (0, 1]"),
])
def test_run_settings_are_checked(field, value, expected):
    with pytest.raises(ValueError, match=re.escape(expected)):
        runs.RunConfig(**{field: value})


# --- run folders --------------------------------------------------------------------------------

def _run_folder(tmp_path, config_text: str, *extra: str):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(config_text)
    for name in extra:
        (run / name).write_text("{}")
    return run


@pytest.mark.parametrize("text, fragment", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "expected a JSON object of run settings, got list"),
    (json.dumps({**asdict(runs.RunConfig()), "evil": 1}), "unknown settings ['evil']"),
    (json.dumps({**asdict(runs.RunConfig()), "epochs": "x"}),
     "epochs: expected an int >= 1, got 'x'"),
    (json.dumps({**asdict(runs.RunConfig()), "keep_prob": 7}), "keep_prob: expected"),
])
def test_malformed_run_config_is_refused_naming_the_file(tmp_path, text, fragment):
    run = _run_folder(tmp_path, text)
    with pytest.raises(ValueError, match=re.escape(str(run / "config.json")) + ".*"
                       + re.escape(fragment)):
        runs.load_run(run)


def test_evaluate_on_a_language_model_run_says_what_it_is(tmp_path, capsys):
    from strata.text.runs import LMConfig

    run = _run_folder(tmp_path, json.dumps(asdict(LMConfig())), "vocab.json")
    assert cli.main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{run} is a language-model run folder" in err and "strata lm sample" in err
    (run / "vocab.json").unlink()  # the settings alone tell it too
    with pytest.raises(ValueError, match="language-model run folder .*'cell'"):
        runs.load_run(run)
