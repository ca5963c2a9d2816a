"""Checks of a saved model's architecture (the JSON in its file's metadata) before anything is
built, and the guarded build that rebuilds it.

``parse_architecture`` / ``check_spec`` walk the JSON: every class from the registry
(strata.nn.LAYERS), every config a dict whose keys are the class's constructor arguments and
whose values have the right types and sane sizes (``MAX_UNITS``, ``MAX_WINDOW``,
``MAX_INPUT``), nesting at most ``MAX_DEPTH`` deep. ``build`` then constructs the modules as
their from_config would (nothing is allocated yet: layers create their parameters on the
first call) and runs the recorded builds with every layer's initializers guarded: a layer may
create no more values than the file's tensors hold for it, so a file of a few hundred bytes
cannot make loading allocate gigabytes. The activations of those builds (one example) are
bounded by the size caps only.
"""

from __future__ import annotations

import inspect
import json
import math
from contextlib import contextmanager

#: Deepest nesting of layer specs ({"class", "config"} inside configs).
MAX_DEPTH = 64
#: Largest units, filters, depth, vocabulary or embedding size, number of classes.
MAX_UNITS = 2 ** 24
#: Largest kernel size, pool size, stride or padding.
MAX_WINDOW = 2 ** 12
#: Most values in one example of a recorded input shape (e.g. 4096 x 4096 x 4).
MAX_INPUT = 2 ** 26

BOOLS = {"use_bias", "return_sequences", "return_state", "reverse", "unit_forget_bias",
         "reset_after", "aux"}
SIZES = {"units", "filters", "depth", "input_dim", "output_dim", "classes"}
WINDOWS = {"kernel_size", "pool_size", "strides"}
NUMBERS = {"keep_prob", "momentum", "epsilon", "l2", "l1"}
SPEC_KEYS = {"main": "a layer", "layer": "a layer", "shortcut": "a layer or null",
             "layers": "a list of layers", "branches": "a list of layers"}


class ArchitectureError(ValueError):
    """A saved architecture that cannot be rebuilt; the message says where in the JSON."""


def _int(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _padding(value) -> bool:
    if value in ("valid", "same") or _int(value, 0, MAX_WINDOW):
        return True
    return (isinstance(value, list) and len(value) == 2 and all(
        isinstance(p, list) and len(p) == 2 and all(_int(n, 0, MAX_WINDOW) for n in p)
        for p in value))


def _input_shape(value) -> bool:
    return value is None or (isinstance(value, list) and 1 <= len(value) <= 8 and all(
        _int(n, 1, MAX_INPUT) for n in value) and math.prod(value) <= MAX_INPUT)


def _value_error(key: str, value) -> str | None:
    """What is wrong with a config value, judged by its key; None when it is fine."""
    rules = [
        (key in BOOLS, lambda v: isinstance(v, bool), "true or false"),
        (key in SIZES, lambda v: _int(v, 1, MAX_UNITS), f"an int in [1, {MAX_UNITS}]"),
        (key in WINDOWS, lambda v: _int(v, 1, MAX_WINDOW) or (key == "strides" and v is None),
         f"an int in [1, {MAX_WINDOW}]"),
        (key in NUMBERS, lambda v: _number(v) or (key in ("l2", "l1") and v is None),
         "a finite number"),
        (key == "activation", lambda v: v is None or isinstance(v, str), "a name or null"),
        (key.endswith("initializer") or key == "merge_mode", lambda v: isinstance(v, str),
         "a name"),
        (key == "axis", lambda v: _int(v, -8, 8), "an int in [-8, 8]"),
        (key == "padding", _padding, f"'valid', 'same', an int in [0, {MAX_WINDOW}] or "
                                     f"[[top, bottom], [left, right]]"),
        (key == "input_shape", _input_shape, f"null or a list of 1 to 8 positive ints with at "
                                             f"most {MAX_INPUT:,} values in all"),
    ]
    for applies, ok, expected in rules:
        if applies:
            return None if ok(value) else f"expected {expected}, got {value!r:.80}"
    if value is None or isinstance(value, (str, bool)) or _number(value):
        return None
    if isinstance(value, list) and len(value) <= 1024 and all(  # e.g. hidden sizes
            v is None or isinstance(v, (str, bool)) or _number(v) for v in value):
        return None
    return (f"expected a number, a string, true/false, null or a list of those, got "
            f"{value!r:.80}")


def constructor_keys(cls) -> tuple[set, set]:
    """(accepted, required) constructor argument names of a layer class, ``**options``
    followed into the base classes (the recurrent layers pass them on)."""
    accepted, required = set(), set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if init is object.__init__:
            break
        params = list(inspect.signature(init).parameters.values())[1:]
        for p in params:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                accepted.add(p.name)
                if p.default is p.empty and klass is cls:
                    required.add(p.name)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return accepted, required


def check_spec(spec, where: str = "architecture", depth: int = 0) -> None:
    """Raise ArchitectureError naming the place in the JSON where ``spec`` (``{"class",
    "config"}``, nested specs included) is not something the registry's classes accept."""
    from strata.nn import LAYERS, Sequential

    if depth > MAX_DEPTH:
        raise ArchitectureError(f"layers nested more than {MAX_DEPTH} deep (at "
                                f"{where:.60}...)")
    if not isinstance(spec, dict) or set(spec) != {"class", "config"}:
        raise ArchitectureError(f"{where}: expected {{\"class\": name, \"config\": {{...}}}}, "
                                f"got {spec!r:.80}")
    name, config = spec["class"], spec["config"]
    if not isinstance(name, str) or name not in LAYERS:
        raise ArchitectureError(f"{where}: expected a layer class among {sorted(LAYERS)}, got "
                                f"{name!r:.80}")
    if not isinstance(config, dict):
        raise ArchitectureError(f"{where} ({name}): expected the config to be an object, got "
                                f"{type(config).__name__}")
    accepted, required = constructor_keys(LAYERS[name])
    if issubclass(LAYERS[name], Sequential):
        accepted.add("input_shape")
    if unknown := sorted(set(config) - accepted):
        raise ArchitectureError(f"{where} ({name}): unknown config key {unknown[0]!r:.80}; "
                                f"expected among {sorted(accepted)}")
    if missing := sorted(required - set(config)):
        raise ArchitectureError(f"{where} ({name}): missing config key {missing[0]!r}")
    for key, value in config.items():
        inner = f"{where}.{key}"
        if key in SPEC_KEYS:
            _check_nested(key, value, inner, depth)
        elif (problem := _value_error(key, value)) is not None:
            raise ArchitectureError(f"{inner} ({name}): {problem}")


def _check_nested(key: str, value, where: str, depth: int) -> None:
    if key in ("layers", "branches"):
        if not isinstance(value, list):
            raise ArchitectureError(f"{where}: expected {SPEC_KEYS[key]}, got {value!r:.80}")
        for i, item in enumerate(value):
            check_spec(item, f"{where}[{i}]", depth + 1)
    elif not (key == "shortcut" and value is None):
        check_spec(value, where, depth + 1)


def parse_architecture(text) -> dict:
    """The architecture JSON of a model file's metadata, checked by ``check_spec``."""
    if not isinstance(text, str):
        raise ArchitectureError("the metadata has no architecture")
    try:
        spec = json.loads(text)
    except RecursionError:
        raise ArchitectureError("the architecture's JSON is nested too deeply") from None
    except json.JSONDecodeError as e:
        raise ArchitectureError(f"the architecture is not valid JSON ({e})") from None
    check_spec(spec)
    return spec


class _Construction:
    """Constructs the modules of a checked spec as their classes' from_config would, nested
    layers first, but leaves the builds from_config would run in ``builds`` (module, input
    shape), to run under guard. A class that builds itself in its from_config (GoogLeNet)
    must count its parameters first (``count_parameters()``), within the file's ``values``."""

    def __init__(self, values: int):
        self.builds, self.values = [], values

    def module(self, spec: dict, where: str = "architecture"):
        from strata.nn import LAYERS, Module, Sequential

        cls, config = LAYERS[spec["class"]], dict(spec["config"])
        nested, shape = SPEC_KEYS.keys() & config.keys(), None
        try:
            if not nested and cls.from_config.__func__ is not Module.from_config.__func__:
                return self._self_building(cls, config, where)
            if issubclass(cls, Sequential):
                shape = config.pop("input_shape", None)
            for key in nested:
                value, inner = config[key], f"{where}.{key}"
                config[key] = ([self.module(s, f"{inner}[{i}]") for i, s in enumerate(value)]
                               if isinstance(value, list) else None if value is None
                               else self.module(value, inner))
            module = cls(**config)
        except (TypeError, ValueError) as e:
            if isinstance(e, ArchitectureError):
                raise
            raise ArchitectureError(f"{where}: {e}") from None
        if shape is not None:
            self.builds.append((module, tuple(shape)))
        return module

    def _self_building(self, cls, config: dict, where: str):
        if not callable(getattr(cls, "count_parameters", None)):
            raise ArchitectureError(f"{where} ({cls.__name__}): builds itself when loaded "
                                    f"without counting its parameters first; refused")
        need = cls(**config).count_parameters().total
        if need > self.values:
            raise ArchitectureError(f"{where} ({cls.__name__}) would create {need:,} values, "
                                    f"but the file holds {self.values:,}")
        self.values -= need
        return cls.from_config(config)


def named_modules(module, prefix: str = ""):
    """(prefix, module) for ``module`` and its sub-modules, prefixes as in ``state_dict``."""
    from strata.nn import Module

    yield prefix, module
    for name, value in vars(module).items():
        if isinstance(value, Module):
            yield from named_modules(value, f"{prefix}{name}.")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, Module):
                    yield from named_modules(item, f"{prefix}{name}.{i}.")


@contextmanager
def _guarded_initializers(model, shapes: dict):
    """Within the block, a layer's initializers refuse to create more values than the file's
    tensors hold for that layer (``shapes``: name -> shape, as in the file's header)."""
    held = {}
    for name, shape in shapes.items():
        prefix, _, short = name.rpartition(".")
        held.setdefault(f"{prefix}." if prefix else "", []).append((short, shape))
    saved, seen = [], set()
    for prefix, module in named_modules(model):
        if id(module) in seen:
            continue
        seen.add(id(module))
        guard = _Guard(prefix, module, held.get(prefix, []))
        for attr, init in list(vars(module).items()):
            if attr.endswith("initializer") and callable(init):
                saved.append((module, attr, init))
                setattr(module, attr, guard.wrap(init))
    try:
        yield
    finally:
        for module, attr, init in saved:
            setattr(module, attr, init)


class _Guard:
    """The values one layer may still create: what the file holds under its prefix."""

    def __init__(self, prefix: str, module, held: list):
        self.name = f"{prefix.rstrip('.') or 'the model'} ({type(module).__name__})"
        self.held, self.created = held, []
        self.left = sum(math.prod(shape) for _, shape in held)

    def wrap(self, init):
        def guarded(shape):
            self.created.append(tuple(shape))
            if math.prod(shape) > self.left:
                made = ", ".join(str(s) for s in self.created)
                has = ", ".join(f"{n} {s}" for n, s in self.held) or "no tensors"
                raise ArchitectureError(
                    f"{self.name} would create tensors of shape {made} "
                    f"({sum(math.prod(s) for s in self.created):,} values), but the file "
                    f"holds {has} for it")
            self.left -= math.prod(shape)
            return init(shape)

        return guarded


_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8")


def parse_inputs(text) -> list | None:
    """The input specs [[shape, dtype], ...] a file records for a model that is not
    Sequential (None when absent), checked like a Sequential's input shape."""
    if text is None:
        return None
    try:
        inputs = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ArchitectureError(f"the recorded inputs are not valid JSON ({e})") from None
    ok = isinstance(inputs, list) and 1 <= len(inputs) <= 16 and all(
        isinstance(i, list) and len(i) == 2 and _input_shape(i[0]) and i[1] in _DTYPES
        for i in inputs)
    if not ok:
        raise ArchitectureError(f"expected the recorded inputs as 1 to 16 [shape, dtype] "
                                f"pairs (dtype among {', '.join(_DTYPES)}), got {inputs!r:.120}")
    return inputs


def build(spec: dict, shapes: dict, inputs: list | None = None):
    """The model of a checked ``spec``, built as its from_config would build it (or, given
    ``inputs``, by one call on zeros of those shapes), but with no layer creating more values
    than ``shapes`` (the file's tensors: name -> shape) hold."""
    from strata.autograd import ShapeError

    construction = _Construction(sum(math.prod(shape) for shape in shapes.values()))
    model = construction.module(spec)
    with _guarded_initializers(model, shapes):
        steps = [(m, shape, m.build) for m, shape in construction.builds]
        if inputs is not None:
            steps.append((model, [tuple(shape) for shape, _ in inputs],
                          lambda _: _call_on_zeros(model, inputs)))
        for module, shape, run in steps:
            try:
                run(shape)
            except (ShapeError, TypeError, ValueError, IndexError) as e:
                if isinstance(e, ArchitectureError):
                    raise
                raise ArchitectureError(f"{type(module).__name__} cannot be built for input "
                                        f"shape {shape}: {e}") from None
    return model


def _call_on_zeros(model, inputs: list) -> None:
    import numpy as np

    from strata.autograd import no_grad

    model.eval()
    with no_grad():
        model(*[np.zeros((1, *shape), dtype=dtype) for shape, dtype in inputs])
    model.train()
