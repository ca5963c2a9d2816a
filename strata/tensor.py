"""Tensor: an array (``.data``) with an optional gradient (``.grad``) and a place in the graph."""

from __future__ import annotations

import numpy as np

from strata import autograd, backend


class Tensor:
    """An n-dimensional array that records the ops applied to it so gradients can flow back.

    ``data`` is the array (NumPy ndarray), ``grad`` is d(loss)/d(data) after ``backward()`` (or
    None), ``requires_grad`` says whether gradients are wanted for it.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_retain", "__weakref__")
    # Make ndarray (op) Tensor defer to Tensor's reflected operators instead of looping.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        array = _to_array(data, dtype)
        if backend._placement is not None:  # inside a module moved by Module.to
            array = backend.to_device(array, backend._placement)
        if requires_grad and not backend.is_float(array.dtype):
            raise TypeError(f"tensor: only floating tensors can require gradients, got dtype "
                            f"{array.dtype}")
        self.data = array
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._retain = False

    @classmethod
    def _wrap(cls, array, requires_grad: bool) -> Tensor:
        """Fast constructor for op outputs (no conversion or checks)."""
        t = cls.__new__(cls)
        t.data = array
        t.grad = None
        t.requires_grad = requires_grad
        t._ctx = None
        t._retain = False
        return t

    # --- array-like attributes -------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        """The array's shape."""
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        """The array's dtype."""
        return self.data.dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """Number of elements."""
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user rather than by an op (gradients land here)."""
        return self._ctx is None

    @property
    def T(self) -> Tensor:  # noqa: N802 -- NumPy's name
        """Transpose (reverses all axes)."""
        return ops.transpose(self)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def device(self) -> str:
        """Where the data lives: "cpu" (NumPy), "gpu" (CuPy) or another registered device."""
        return backend.device_of(self.data)

    def to(self, device: str) -> Tensor:
        """This tensor on ``device`` ("cpu" or "gpu"): itself when already there, else a new
        leaf holding a copy (keeping requires_grad, cut from the graph), as PyTorch's ``to``."""
        data = backend.to_device(self.data, device)
        if data is self.data:
            return self
        return Tensor._wrap(data, self.requires_grad)

    def __repr__(self) -> str:
        body = np.array2string(backend.to_numpy(self.data), separator=", ", prefix="tensor(")
        flag = ", requires_grad=True" if self.requires_grad else ""
        where = "" if type(self.data) is np.ndarray else f", device={self.device!r}"
        return f"tensor({body}, dtype={self.dtype}{where}{flag})"

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        return bool(self.data)

    # --- autograd ---------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Compute d(self)/d(leaf) for every leaf that requires grad, accumulating into ``.grad``.

        ``grad`` is d(loss)/d(self); it defaults to 1 for a single-element tensor (a loss).
        The graph's saved arrays are released afterwards unless ``retain_graph=True``.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad; create the inputs "
                               "with requires_grad=True")
        if grad is None:
            if self.size != 1:
                raise ShapeError(f"backward: grad can be omitted only for a single-element "
                                 f"output (a loss); got shape {self.shape}, pass grad of that "
                                 f"shape")
            grad = backend.array_module(self.data).ones_like(self.data)
        else:
            grad = _to_array(grad.data if isinstance(grad, Tensor) else grad, self.dtype)
            if grad.shape != self.shape:
                raise ShapeError(f"backward: expected grad of shape {self.shape}, got "
                                 f"{grad.shape}")
        autograd.backward(self, grad, retain_graph=retain_graph)

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` on this non-leaf tensor after backward (to inspect dZ, dA, ...)."""
        self._retain = True
        return self

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, cut from the graph (no gradient flows through)."""
        return Tensor._wrap(self.data, False)

    def numpy(self) -> np.ndarray:
        """The underlying NumPy array (shared, not copied); a host copy for a device tensor."""
        return backend.to_numpy(self.data)

    def item(self) -> float:
        """The value of a single-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item: expected a single-element tensor, got shape {self.shape}")
        return self.data.item()

    def astype(self, dtype) -> Tensor:
        """A differentiable cast to another floating dtype."""
        return ops.astype(self, dtype)

    # --- operators --------------------------------------------------------------------------
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __pow__(self, other):
        return ops.pow(self, other)

    def __rpow__(self, other):
        return ops.pow(other, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __abs__(self):
        return ops.abs(self)

    def __getitem__(self, index):
        return ops.getitem(self, index)

    # Comparisons give boolean tensors outside the graph (they have no gradient).
    def __lt__(self, other):
        return Tensor._wrap(self.data < _raw(other), False)

    def __le__(self, other):
        return Tensor._wrap(self.data <= _raw(other), False)

    def __gt__(self, other):
        return Tensor._wrap(self.data > _raw(other), False)

    def __ge__(self, other):
        return Tensor._wrap(self.data >= _raw(other), False)

    def __eq__(self, other):
        return Tensor._wrap(self.data == _raw(other), False)

    def __ne__(self, other):
        return Tensor._wrap(self.data != _raw(other), False)

    # --- methods mirroring ops (NumPy style) ---------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        """Sum over ``axis`` (all axes when None)."""
        return ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        """Mean over ``axis`` (all axes when None)."""
        return ops.mean(self, axis, keepdims)

    def var(self, axis=None, keepdims=False, ddof=0):
        """Variance over ``axis`` (population variance, ddof=0, by default)."""
        return ops.var(self, axis, keepdims, ddof)

    def max(self, axis=None, keepdims=False):
        """Maximum over ``axis``."""
        return ops.max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        """Minimum over ``axis``."""
        return ops.min(self, axis, keepdims)

    def reshape(self, *shape):
        """Same data, new shape (one dimension may be -1)."""
        return ops.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes):
        """Permute axes (reverse them when none are given)."""
        return ops.transpose(self, axes[0] if len(axes) == 1 else (axes or None))

    def exp(self):
        """Elementwise e**x."""
        return ops.exp(self)

    def log(self):
        """Elementwise natural logarithm."""
        return ops.log(self)

    def sqrt(self):
        """Elementwise square root."""
        return ops.sqrt(self)

    def tanh(self):
        """Elementwise tanh."""
        return ops.tanh(self)

    def sigmoid(self):
        """Elementwise 1 / (1 + e**-x), numerically stable."""
        return ops.sigmoid(self)

    def relu(self):
        """Elementwise max(0, x)."""
        return ops.relu(self)

    def clip(self, low=None, high=None):
        """Clamp values into [low, high]."""
        return ops.clip(self, low, high)


ShapeError = autograd.ShapeError


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _to_array(data, dtype=None) -> np.ndarray:
    """Convert ``data`` to an array: Python floats and lists get the default dtype, arrays keep
    theirs."""
    if isinstance(data, Tensor):
        data = data.data
    xp = backend.array_module(data)
    if dtype is not None:
        return xp.asarray(data, dtype=dtype)
    is_array = hasattr(data, "__array__") and hasattr(data, "dtype")
    array = xp.asarray(data)
    if not is_array and array.dtype.kind == "f":
        array = array.astype(backend.get_default_dtype(), copy=False)
    return array


def tensor(data, requires_grad: bool = False, dtype=None, device: str | None = None) -> Tensor:
    """Create a Tensor from an array, list or number.

    Python floats and lists of floats get the default dtype (float32); arrays keep their dtype
    unless ``dtype`` is given. Only floating tensors can have ``requires_grad=True``.
    ``device="gpu"`` puts the data on the GPU (needs CuPy: ``pip install 'strata[gpu]'``);
    None keeps it where it is (NumPy data on the CPU).

    >>> import strata
    >>> x = strata.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    array([2., 4., 6.], dtype=float32)
    """
    if device is not None:
        module = backend.device_module(device)  # first: a missing CuPy is the error to see
        data = data.data if isinstance(data, Tensor) else data
        if backend.array_module(data) is not module:
            data = backend.to_device(_to_array(data, dtype), module)
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


from strata import ops  # noqa: E402 -- ops build on Tensor, so they are imported after it
