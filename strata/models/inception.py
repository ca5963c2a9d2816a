"""Inception (Szegedy et al., 2014, "Going deeper with convolutions"): course 4 week 2's
inception module, naive and with 1x1 bottlenecks, and GoogLeNet with its auxiliary classifiers."""

from __future__ import annotations

import numpy as np

from strata import backend, nn
from strata.autograd import ShapeError, no_grad
from strata.models.arithmetic import (
    ParameterCount,
    _image_shape,
    classifier,
    count_parameters,
)
from strata.nn import (
    AvgPool2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    MaxPool2D,
    Model,
    Parallel,
    Sequential,
)
from strata.nn.sequential import print_summary


def _conv(filters: int, f: int, s: int = 1) -> Conv2D:
    return Conv2D(filters, f, s, "same", activation="relu", kernel_initializer="he")


def naive_inception_module(filters_1x1: int, filters_3x3: int, filters_5x5: int) -> Parallel:
    """The naive inception module: 1x1, 3x3 and 5x5 "same" ReLU convolutions and a 3x3/1 "same"
    max pool side by side, concatenated along channels (f1 + f3 + f5 + n_C_prev channels)."""
    return Parallel([[_conv(filters_1x1, 1)], [_conv(filters_3x3, 3)], [_conv(filters_5x5, 5)],
                     [MaxPool2D(3, 1, "same")]])


def inception_module(filters_1x1: int, filters_3x3_reduce: int, filters_3x3: int,
                     filters_5x5_reduce: int, filters_5x5: int,
                     filters_pool_proj: int) -> Parallel:
    """The inception module with dimension reduction: 1x1 conv | 1x1 reduce -> 3x3 conv |
    1x1 reduce -> 5x5 conv | 3x3/1 max pool -> 1x1 projection, ReLU and "same" padding,
    concatenated: f1 + f3 + f5 + f_pool channels. The 1x1 bottlenecks cut the multiplications
    about tenfold (see ``bottleneck_cost``)."""
    return Parallel([
        [_conv(filters_1x1, 1)],
        [_conv(filters_3x3_reduce, 1), _conv(filters_3x3, 3)],
        [_conv(filters_5x5_reduce, 1), _conv(filters_5x5, 5)],
        [MaxPool2D(3, 1, "same"), _conv(filters_pool_proj, 1)]])


#: The paper's Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj of each module.
GOOGLENET_INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128)}
#: Weight of each auxiliary classifier's loss in the training cost.
AUX_WEIGHT = 0.3


def _auxiliary(classes: int, activation) -> Sequential:
    return Sequential([AvgPool2D(5, 3), _conv(128, 1), Flatten(),
                       Dense(1024, "relu", kernel_initializer="he"), Dropout(0.3),
                       classifier(classes, activation, "GoogLeNet")])


class GoogLeNet(Model):
    """GoogLeNet (Inception v1) as the paper's Table 1, without local response normalization:
    ``stem`` (conv 7x7/2 64, max pool 3/2, conv 1x1 64, conv 3x3 192, max pool 3/2, inception
    3a, 3b, max pool 3/2, 4a), ``middle`` (4b, 4c, 4d), ``head`` (4e, max pool 3/2, 5a, 5b,
    global average pooling, Dropout(keep_prob=0.6), Dense ``classes``). Pools and convolutions
    use "same" padding, ReLU and He initialization. Every classifier ends in
    ``classifier_activation``: softmax probabilities by default, None for logits (train with
    ``from_logits=True``).

    With ``aux=True`` the auxiliary classifiers ``aux1`` (after 4a) and ``aux2`` (after 4d):
    average pool 5x5/3, conv 1x1 128, Dense 1024, Dropout(keep_prob=0.3), Dense ``classes``.
    In training mode forward stores their outputs in ``aux_outputs`` and the cost adds
    ``AUX_WEIGHT`` (0.3) times each one's loss; at inference they are skipped.

    At 224x224x3 with 1000 classes: 6,998,552 parameters without the auxiliary classifiers
    (Table 1's column sums to "6.8M" counting K as 1,024 and leaving out the 8,280 biases),
    13,378,280 with them (aux1 3,188,840, aux2 3,190,888). Parameters are created on the
    first call (``build``/``summary``/``fit``).
    """

    def __init__(self, input_shape=(224, 224, 3), classes: int = 1000, aux: bool = True,
                 classifier_activation="softmax"):
        if not isinstance(classes, (int, np.integer)) or classes < 1:
            raise ValueError(f"GoogLeNet: expected a positive number of classes, got {classes!r}")
        self.input_shape = _image_shape(input_shape, "GoogLeNet")
        self.classes, self.aux = int(classes), bool(aux)
        self.classifier_activation = classifier_activation
        m = {name: inception_module(*f) for name, f in GOOGLENET_INCEPTION.items()}
        self.stem = Sequential([_conv(64, 7, 2), MaxPool2D(3, 2, "same"), _conv(64, 1),
                                _conv(192, 3), MaxPool2D(3, 2, "same"), m["3a"], m["3b"],
                                MaxPool2D(3, 2, "same"), m["4a"]])
        self.middle = Sequential([m["4b"], m["4c"], m["4d"]])
        self.head = Sequential([m["4e"], MaxPool2D(3, 2, "same"), m["5a"], m["5b"],
                                GlobalAveragePooling2D(), Dropout(0.6),
                                classifier(self.classes, classifier_activation, "GoogLeNet")])
        self.aux1 = _auxiliary(self.classes, classifier_activation) if aux else None
        self.aux2 = _auxiliary(self.classes, classifier_activation) if aux else None
        self.aux_outputs = []
        self.count_parameters(self.input_shape)  # a too-small input fails now, clearly

    def _run(self, x, with_aux: bool):
        x = self.stem(x)
        aux = [self.aux1(x)] if with_aux else []
        x = self.middle(x)
        if with_aux:
            aux.append(self.aux2(x))
        return self.head(x), aux

    def forward(self, x):
        # The auxiliary classifiers also run once in eval mode if still unbuilt, so that their
        # parameters exist before an optimizer collects the model's parameters.
        with_aux = self.aux and (self.training or self.aux1[-1].W is None)
        out, aux = self._run(x, with_aux)
        self.aux_outputs = aux if self.training else []
        return out

    def _cost(self, out, y, penalties=None, sample_weight=None):
        """The main loss plus AUX_WEIGHT times each auxiliary classifier's loss in training
        mode (the auxiliary outputs of the same batch, from ``aux_outputs``), plus penalties."""
        cost = super()._cost(out, y, penalties, sample_weight)
        weights = {} if sample_weight is None else {"sample_weight": sample_weight}
        if self.training:
            for aux in self.aux_outputs:
                cost = cost + self.loss(aux, y, **weights) * AUX_WEIGHT
        return cost

    def build(self, input_shape=None) -> None:
        """Create every parameter, the auxiliary classifiers' included, with one example."""
        shape = self.input_shape if input_shape is None else _image_shape(input_shape, "build")
        was_training = self.training
        self.eval()
        with no_grad():
            self._run(np.zeros((1, *shape), dtype=backend.get_default_dtype()), self.aux)
        self.train(was_training)

    def get_config(self) -> dict:
        return {"input_shape": list(self.input_shape), "classes": self.classes, "aux": self.aux,
                "classifier_activation": self.classifier_activation}

    @classmethod
    def from_config(cls, config: dict) -> GoogLeNet:
        # A model saved before classifier_activation existed ended in logits: keep them.
        model = cls(**{"classifier_activation": None, **config})
        model.build()
        return model

    def count_parameters(self, input_shape=None) -> ParameterCount:
        """Output shape and parameter counts from shapes alone (see ``count_parameters``)."""
        shape = self.input_shape if input_shape is None else tuple(input_shape)
        stem = count_parameters(self.stem, shape)
        middle = count_parameters(self.middle, stem.output_shape)
        counts = [stem, middle, count_parameters(self.head, middle.output_shape)]
        if self.aux:
            try:
                counts += [count_parameters(self.aux1, stem.output_shape),
                           count_parameters(self.aux2, middle.output_shape)]
            except ShapeError as e:
                raise ShapeError(f"GoogLeNet: the auxiliary classifiers need inputs of at "
                                 f"least 65x65, got {shape} ({e}); pass aux=False") from None
        return ParameterCount(counts[2].output_shape, sum(c.trainable for c in counts),
                              sum(c.non_trainable for c in counts))

    def summary(self, input_shape=None, print_fn=print) -> int:
        """Print each part's layers with output shape and parameter count, then the totals
        (frozen parameters count as non-trainable); builds the model; returns the total."""
        shape = self.input_shape if input_shape is None else _image_shape(input_shape, "summary")
        self.build(shape)
        rows, was_training = [], self.training
        self.eval()

        def run(name, part, x):
            for i, layer in enumerate(part.layers):
                x = layer(x)
                rows.append((f"{name}.{i}: {type(layer).__name__}", str((None, *x.shape[1:])),
                             sum(t.size for _, t in layer._named_tensors())))
            return x

        with no_grad():
            x = run("stem", self.stem, np.zeros((1, *shape), backend.get_default_dtype()))
            aux1 = (self.aux1, x)
            x = run("middle", self.middle, x)
            for name, (part, a) in (("aux1", aux1), ("aux2", (self.aux2, x))):
                if part is not None:
                    run(name, part, a)
            run("head", self.head, x)
        self.train(was_training)
        tensors = [t for _, t in self._named_tensors()]
        total, trainable = sum(t.size for t in tensors), sum(t.size for t in self.parameters())
        print_summary(rows, total, trainable, print_fn)
        return total


def googlenet(input_shape=(224, 224, 3), classes: int = 1000, aux: bool = True,
              classifier_activation="softmax") -> GoogLeNet:
    """GoogLeNet (see ``GoogLeNet``): 6,998,552 parameters at 224x224x3 and 1000 classes,
    13,378,280 with the two auxiliary classifiers (``aux=True``).

    >>> from strata.models import count_parameters
    >>> count_parameters(googlenet(aux=False), (224, 224, 3)).total
    6998552
    >>> count_parameters(googlenet(), (224, 224, 3)).total
    13378280
    """
    return GoogLeNet(input_shape, classes, aux, classifier_activation)


# Registered so that strata.load_model can rebuild a saved GoogLeNet from its class name.
nn.LAYERS.setdefault("GoogLeNet", GoogLeNet)
