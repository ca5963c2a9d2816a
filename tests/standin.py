"""A strict CPU stand-in for CuPy: ``StrictArray`` and the ``standin_xp`` namespace.

It catches what would break on a GPU, and pretends nothing else. A StrictArray holds a NumPy
array but is not an ``np.ndarray``, and like a CuPy array it refuses to become one implicitly:
``np.asarray(a)`` raises "Implicit conversion to a NumPy array is not allowed", every ``np.*``
function or ufunc called on it raises TypeError, and mixing it with an ``np.ndarray`` in an
operator raises "Unsupported type", as CuPy does (Python and NumPy scalars mix freely).
``standin_xp`` mirrors the part of ``cupy``'s namespace strata uses, computing with NumPy and
wrapping the results; ``asnumpy(a)`` or ``a.get()`` copies back explicitly, and
``asarray(ndarray)`` copies in. Reductions return 0-d arrays, not scalars, as CuPy's do.

Importing this module registers the type with strata.backend, so ``array_module`` returns
``standin_xp`` for StrictArrays and ``Tensor.to("standin")`` / ``Module.to("standin")`` move
tensors onto the stand-in "device".
"""

from __future__ import annotations

import types

import numpy as np

from strata import backend

IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
            "construct a NumPy array explicitly.")
_SCALARS = (bool, int, float, complex, np.generic)


def _unwrap(x):
    """The NumPy value behind an operand: StrictArrays open, scalars pass, ndarrays refused."""
    if type(x) is StrictArray:
        return x._a
    if isinstance(x, _SCALARS) or x is None:
        return x
    raise TypeError(f"Unsupported type {type(x)}")


def _unwrap_deep(x):
    """Like _unwrap, inside lists and tuples too (function arguments such as concatenate's)."""
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap_deep(v) for v in x)
    if isinstance(x, (slice, str, np.dtype, type)) or x is Ellipsis:
        return x
    return _unwrap(x)


def _wrap(r):
    """Results back as StrictArrays; NumPy scalars from reductions become 0-d arrays."""
    if isinstance(r, np.ndarray):
        return StrictArray(r)
    if isinstance(r, np.generic):
        return StrictArray(np.asarray(r))
    if isinstance(r, (tuple, list)):
        return type(r)(_wrap(v) for v in r)
    return r


def _index(index):
    """An index for a StrictArray: StrictArrays, ints, slices, None, ..., and lists of ints or
    booleans (CuPy converts those); a NumPy array in it is refused."""
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    if type(index) is StrictArray:
        return index._a
    if isinstance(index, list):
        return np.asarray(_unwrap_deep(index))
    if isinstance(index, np.ndarray):
        raise TypeError(f"Unsupported type {type(index)} in an index: move it with "
                        f"xp.asarray first")
    return index


def _binary(name):
    op = getattr(np.ndarray, name)

    def method(self, other):
        return _wrap(op(self._a, _unwrap(other)))

    method.__name__ = name
    return method


def _inplace(name):
    op = getattr(np.ndarray, name)

    def method(self, other):
        op(self._a, _unwrap(other))
        return self

    method.__name__ = name
    return method


def _unary(name):
    op = getattr(np.ndarray, name)

    def method(self):
        return _wrap(op(self._a))

    method.__name__ = name
    return method


def _method(name):
    def method(self, *args, **kwargs):
        kwargs = {k: _unwrap_deep(v) for k, v in kwargs.items()}
        return _wrap(getattr(self._a, name)(*_unwrap_deep(args), **kwargs))

    method.__name__ = name
    return method


class StrictArray:
    """A NumPy array behind a CuPy-like wall: see the module docstring."""

    __slots__ = ("_a", "__weakref__")
    __array_ufunc__ = None  # np.exp(a), ndarray + a: TypeError (ndarray's operators defer)
    __hash__ = None

    def __init__(self, array: np.ndarray):
        if type(array) is not np.ndarray:
            raise TypeError(f"StrictArray wraps an np.ndarray, got {type(array)}")
        self._a = array

    def __array__(self, *args, **kwargs):
        raise TypeError(IMPLICIT)

    def __array_function__(self, func, types, args, kwargs):
        return NotImplemented  # np.concatenate(a, ...) etc.: TypeError from NumPy

    # --- explicit transfer, conversions to Python ---------------------------------------------
    def get(self) -> np.ndarray:
        """A NumPy copy (CuPy's device-to-host transfer)."""
        return self._a.copy()

    def item(self):
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (StrictArray(np.asarray(v)) for v in self._a)

    def __repr__(self):
        return f"StrictArray({self._a!r})"

    # --- attributes ---------------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: StrictArray(self._a.T))  # noqa: N815 -- NumPy's name

    @property
    def base(self):
        return None if self._a.base is None else StrictArray(np.asarray(self._a.base))

    # --- indexing -----------------------------------------------------------------------------
    def __getitem__(self, index):
        return _wrap(self._a[_index(index)])

    def __setitem__(self, index, value):
        self._a[_index(index)] = _unwrap(value)

    # --- operators ----------------------------------------------------------------------------
    for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and",
                  "or", "xor", "lt", "le", "gt", "ge", "eq", "ne"):
        locals()[f"__{_name}__"] = _binary(f"__{_name}__")
        if _name not in ("lt", "le", "gt", "ge", "eq", "ne"):
            locals()[f"__r{_name}__"] = _binary(f"__r{_name}__")
            locals()[f"__i{_name}__"] = _inplace(f"__i{_name}__")
    for _name in ("neg", "pos", "abs", "invert"):
        locals()[f"__{_name}__"] = _unary(f"__{_name}__")
    del _name

    # --- methods (NumPy's, results wrapped) ---------------------------------------------------
    for _name in ("reshape", "transpose", "astype", "copy", "ravel", "flatten", "squeeze",
                  "swapaxes", "sum", "mean", "max", "min", "prod", "var", "std", "any", "all",
                  "argmax", "argmin", "clip", "cumsum", "nonzero", "fill", "dot", "view",
                  "repeat", "take", "round"):
        locals()[_name] = _method(_name)
    del _name


def _function(fn, name, *, transfer=False):
    """``fn`` on unwrapped StrictArrays, results wrapped; NumPy arrays refused unless
    ``transfer`` (asarray and array copy host arrays in, as CuPy's do)."""
    def call(*args, **kwargs):
        host = transfer and bool(args) and isinstance(args[0], (np.ndarray, list, tuple))
        args = (args[0], *_unwrap_deep(args[1:])) if host else _unwrap_deep(args)
        kwargs = {k: _unwrap_deep(v) for k, v in kwargs.items()}
        result = fn(*args, **kwargs)
        if host and result is args[0]:
            result = result.copy()  # the stand-in "device" never shares the host's memory
        return _wrap(result)

    call.__name__ = name
    return call


class _Ufunc:
    """A ufunc over StrictArrays, with ``at`` (CuPy 12 and later have ufunc.at)."""

    def __init__(self, ufunc):
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__

    def __call__(self, *args, **kwargs):
        return _function(self._ufunc, self.__name__)(*args, **kwargs)

    def at(self, a, indices, values=None):
        self._ufunc.at(_unwrap(a), _index(indices), _unwrap(values))

    def reduce(self, a, **kwargs):
        return _wrap(self._ufunc.reduce(_unwrap(a), **kwargs))


_UFUNCS = ("add", "subtract", "multiply", "divide", "true_divide", "negative", "power", "exp",
           "log", "sqrt", "abs", "absolute", "sign", "tanh", "maximum", "minimum", "greater",
           "greater_equal", "less", "less_equal", "equal", "not_equal", "isnan", "isinf",
           "isfinite", "logical_and", "logical_or", "logical_not", "square", "reciprocal",
           "floor", "ceil", "log1p")
_FUNCTIONS = ("zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like",
              "full_like", "arange", "eye", "where", "clip", "matmul", "dot", "einsum",
              "concatenate", "stack", "split", "moveaxis", "swapaxes", "transpose", "reshape",
              "broadcast_to", "expand_dims", "squeeze", "pad", "take_along_axis",
              "put_along_axis", "ascontiguousarray", "sum", "mean", "max", "min", "amax",
              "amin", "prod", "cumsum", "any", "all", "argmax", "argmin", "nonzero", "unique",
              "isin", "flip", "tile", "repeat", "outer", "bincount", "copyto", "result_type",
              "sort", "diag")
_CONSTANTS = ("float16", "float32", "float64", "int8", "int32", "int64", "intp", "uint8",
              "uint32", "uint64", "bool_", "dtype", "inf", "nan", "pi", "e", "newaxis")


def _random(seed: int = 0):
    generator = np.random.default_rng(seed)
    return types.SimpleNamespace(
        random=lambda size=None, dtype=np.float64: _wrap(generator.random(size, dtype)),
        standard_normal=lambda size=None, dtype=np.float64: _wrap(
            generator.standard_normal(size, dtype)),
        uniform=lambda low=0.0, high=1.0, size=None: _wrap(generator.uniform(low, high, size)))


def _asnumpy(a, *args, **kwargs) -> np.ndarray:
    """The explicit device-to-host copy (cupy.asnumpy)."""
    return a.get() if type(a) is StrictArray else np.asarray(a, *args, **kwargs)


def _result_type(*args):
    return np.result_type(*(a.dtype if type(a) is StrictArray else a for a in args))


#: The stand-in for the ``cupy`` module (a module object: hashable, as strata's dispatch
#: tables need).
standin_xp = types.ModuleType("standin_xp", "A strict CPU stand-in for the cupy module.")
standin_xp.ndarray, standin_xp.asnumpy, standin_xp.random = StrictArray, _asnumpy, _random()
for _name in _UFUNCS:
    setattr(standin_xp, _name, _Ufunc(getattr(np, _name)))
for _name in _FUNCTIONS:
    setattr(standin_xp, _name, _function(getattr(np, _name), _name))
for _name in ("asarray", "array"):
    setattr(standin_xp, _name, _function(getattr(np, _name), _name, transfer=True))
for _name in _CONSTANTS:
    setattr(standin_xp, _name, getattr(np, _name))
standin_xp.result_type = _result_type
del _name


def wrap(array) -> StrictArray:
    """A copy of a NumPy array (or number) on the stand-in "device"."""
    return standin_xp.asarray(np.asarray(array))


backend.register_array_module(StrictArray, standin_xp)
backend.register_device("standin", lambda: standin_xp)
