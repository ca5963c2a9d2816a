"""Module: the base of layers and models. Parameters are found by walking attributes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from strata import autograd, backend
from strata.tensor import Tensor

#: While Model.summary traces a forward pass: the (module, output) of every call, in order.
_trace: list | None = None


class Module:
    """Base class of layers and models.

    A subclass stores its parameters (Tensors with ``requires_grad=True``), its state (Tensors
    without gradient, such as batch norm's running averages) and its sub-modules as attributes,
    and defines ``forward``. Calling the module calls ``forward``.
    """

    training: bool = True
    #: Names of state tensors (never trained, e.g. batch norm's running averages).
    state_names: tuple = ()
    #: The device ``to`` moved this module to (None: the CPU, NumPy).
    _device: str | None = None

    def __call__(self, *args, **kwargs):
        if self._device is not None and backend._placement is None:
            # Moved by to(): tensors made inside (weights built on this first call, NumPy
            # inputs given as tensors) go to the module's device.
            with backend.placing(backend.device_module(self._device)):
                return self.__call__(*args, **kwargs)
        if autograd._anomaly is None:
            if _trace is None:
                return self.forward(*args, **kwargs)
            out = self.forward(*args, **kwargs)  # Model.summary is tracing the calls
            _trace.append((self, out))
            return out
        autograd._anomaly.append(autograd._names.get(id(self), f"layer {type(self).__name__}"))
        try:  # detect_anomaly: checks the output, and its errors name this layer
            out = self.forward(*args, **kwargs)
            if isinstance(out, Tensor) and not autograd._finite(out.data):
                raise FloatingPointError(f"detect_anomaly: {autograd._anomaly[-1]} output NaN "
                                         f"or inf")
            return out
        finally:
            autograd._anomaly.pop()

    def forward(self, *args, **kwargs):
        """Compute the module's output; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def _named_tensors(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for name, value in vars(self).items():
            if isinstance(value, Tensor):
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value._named_tensors(f"{prefix}{name}.")
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield from item._named_tensors(f"{prefix}{name}.{i}.")

    def named_parameters(self) -> Iterator[tuple[str, Tensor]]:
        """(name, tensor) for every trainable parameter, sub-modules included (``"0.W"``...)."""
        return ((n, t) for n, t in self._named_tensors() if t.requires_grad)

    def parameters(self) -> list[Tensor]:
        """Every trainable parameter, in definition order."""
        return [t for _, t in self.named_parameters()]

    def modules(self) -> Iterator[Module]:
        """This module and all its sub-modules, depth first."""
        yield self
        for value in vars(self).values():
            items = value if isinstance(value, (list, tuple)) else [value]
            for item in items:
                if isinstance(item, Module):
                    yield from item.modules()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(path, module) for this module ("" for itself) and every sub-module, depth first."""
        yield prefix, self
        for name, value in vars(self).items():
            items = ([(f"{name}.{i}", v) for i, v in enumerate(value)]
                     if isinstance(value, (list, tuple)) else [(name, value)])
            for sub, item in items:
                if isinstance(item, Module):
                    yield from item.named_modules(f"{prefix}{sub}.")

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout on, batch statistics in batch norm), for this and sub-modules."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Test mode: dropout off, batch norm uses its running averages."""
        return self.train(False)

    @property
    def trainable(self) -> bool:
        """False once frozen (``layer.trainable = False``): its parameters stop receiving
        gradients and updates, as for the frozen layers of transfer learning. Set it on a built
        layer, then compile again."""
        return not getattr(self, "_frozen", False)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        for module in self.modules():
            module._frozen = not value
            for name, t in vars(module).items():
                if isinstance(t, Tensor) and name not in module.state_names:
                    t.requires_grad = bool(value)

    def to(self, device: str) -> Module:
        """Move every parameter and state tensor (and gradient) to ``device`` ("cpu", or "gpu"
        with CuPy: ``pip install 'strata[gpu]'``), in place; returns the module. Layers not
        built yet create their weights there on their first call, and NumPy inputs given to
        the module are moved there."""
        module = backend.device_module(device)
        for _, t in self._named_tensors():
            t.data = backend.to_device(t.data, module)
            if t.grad is not None:
                t.grad = backend.to_device(t.grad, module)
        for m in self.modules():
            m._device = None if module is np else device
        return self

    @property
    def device(self) -> str:
        """The device of the module's tensors ("cpu" for NumPy), or the one ``to`` chose."""
        for _, t in self._named_tensors():
            return t.device
        return self._device or "cpu"

    def zero_grad(self) -> None:
        """Forget the gradients of every parameter."""
        for p in self.parameters():
            p.grad = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """Name -> array copy for every parameter and state tensor (what ``save`` writes)."""
        return {name: t.data.copy() for name, t in self._named_tensors()}

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays into the parameters and state tensors; names and shapes must match."""
        own = dict(self._named_tensors())
        missing, unexpected = own.keys() - state.keys(), state.keys() - own.keys()
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing {sorted(missing)}, unexpected "
                           f"{sorted(unexpected)}")
        for name, tensor in own.items():
            value = state[name]
            if backend.array_module(value) is np:  # device arrays stay as they are
                value = np.asarray(value)
            if value.shape != tensor.shape:
                raise ValueError(f"load_state_dict: {name} has shape {tensor.shape}, got "
                                 f"{value.shape}")
            # Onto the tensor's device (a copy either way).
            value = backend.to_device(value, backend.array_module(tensor.data))
            tensor.data = value.astype(tensor.dtype, copy=True)

    def get_config(self) -> dict:
        """The constructor arguments that rebuild this module (saved as JSON by strata.save):
        a layer's ``config``, or the arguments @strata.nn.register recorded."""
        return dict(getattr(self, "config", None) or getattr(self, "_init_args", {}))

    @classmethod
    def from_config(cls, config: dict) -> Module:
        """Rebuild a module from ``get_config()``'s output."""
        return cls(**config)

    def extra_repr(self) -> str:
        """The part of repr between the parentheses; layers override it."""
        return ""

    def __repr__(self) -> str:
        children = [(n, v) for n, v in vars(self).items() if isinstance(v, Module)]
        lists = [(f"{n}.{i}", m) for n, v in vars(self).items() if isinstance(v, (list, tuple))
                 for i, m in enumerate(v) if isinstance(m, Module)]
        if not children and not lists:
            return f"{type(self).__name__}({self.extra_repr()})"
        body = "\n".join(f"  ({n}): " + repr(m).replace("\n", "\n  ") for n, m in
                         children + lists)
        return f"{type(self).__name__}(\n{body}\n)"
