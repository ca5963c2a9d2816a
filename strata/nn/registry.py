"""The registry of classes a saved model may name: strata's layers and models, and the user's
own ``Module``/``Model`` subclasses registered with ``@strata.nn.register``.

``load_model`` rebuilds a model only from registered classes, so a file can never make strata
import or run code that the program did not register itself (Keras's
``register_keras_serializable`` works the same way). Registering a class also records its
constructor's arguments on every instance (``get_config``), so that a PyTorch-style subclass
whose ``__init__`` creates its layers saves without any more code, as long as those arguments
are JSON values (numbers, strings, lists, dicts, None). Classes whose arguments are not, define
``get_config``/``from_config`` as Keras does.
"""

from __future__ import annotations

import functools
import inspect
import json

#: Class name -> class, for every class a saved architecture may name.
REGISTRY: dict[str, type] = {}


def register(cls=None, *, name: str | None = None):
    """Class decorator: make a Module subclass loadable by ``load_model`` under ``name``
    (default: the class name), recording its constructor arguments as its config::

        @strata.nn.register
        class TwoTower(strata.nn.Model):
            def __init__(self, units=16): ...
    """
    if cls is None:
        return functools.partial(register, name=name)
    from strata.nn.module import Module

    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TypeError(f"register: expected a strata.nn.Module subclass, got {cls!r}")
    key = name or cls.__name__
    old = REGISTRY.get(key, cls)
    reloaded = (old.__module__, old.__qualname__) == (cls.__module__, cls.__qualname__)
    if old is not cls and not reloaded:  # a module run again (a notebook) replaces its class
        raise ValueError(f"register: the name {key!r} is taken by {REGISTRY[key]!r}; pass "
                         f"register(name=...) to register {cls.__qualname__} under another")
    if "get_config" not in vars(cls) and "__init__" in vars(cls):
        cls.__init__ = _recording(cls.__init__)
    cls._registered_name = key
    REGISTRY[key] = cls
    return cls


def _recording(init):
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        outermost = "_init_args" not in vars(self)
        if outermost:  # a subclass calling super().__init__ keeps its own arguments
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(list(bound.arguments.items())[1:])
            for key, kind in ((k, p.kind) for k, p in signature.parameters.items()):
                if kind is inspect.Parameter.VAR_KEYWORD and key in arguments:
                    arguments.update(arguments.pop(key))
                elif kind is inspect.Parameter.VAR_POSITIONAL and key in arguments:
                    if arguments.pop(key):
                        raise TypeError(f"{type(self).__name__}: a registered class records "
                                        f"its arguments by name; *{key} cannot be saved")
            self._init_args = arguments
        init(self, *args, **kwargs)

    return __init__


def registered_name(module) -> str:
    """The name a saved architecture uses for ``module``'s class; a TypeError for a class that
    was not registered (it could not be loaded back)."""
    cls = type(module)
    name = getattr(cls, "_registered_name", cls.__name__)
    if REGISTRY.get(name) is not cls:
        raise TypeError(f"{cls.__qualname__} is not registered, so a saved file could not "
                        f"rebuild it: decorate the class with @strata.nn.register")
    return name


def config_of(module) -> dict:
    """``module``'s config, checked to be JSON (what a file can hold)."""
    config = module.get_config()
    try:  # objects that know their saved name (an initializer such as RandomNormal) give it
        return json.loads(json.dumps(config, default=_named))
    except TypeError as e:
        raise TypeError(f"{type(module).__qualname__}.get_config() holds a value JSON cannot "
                        f"store ({e}); give activations and initializers by name, or define "
                        f"get_config/from_config") from None


def _named(value):
    name = getattr(value, "name", None)
    if isinstance(name, str):
        return name
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def lookup(name):
    """The registered class called ``name``; a ValueError listing the known ones otherwise."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"unknown class {name!r}: not a strata layer or a class registered "
                         f"with @strata.nn.register (known: {', '.join(sorted(REGISTRY))})")
    return REGISTRY[name]
