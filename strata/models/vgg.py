"""VGG-16 (Simonyan and Zisserman, 2014): only 3x3 "same" convolutions and 2x2 max pools."""

from __future__ import annotations

from strata.models.arithmetic import classifier, with_input_shape
from strata.nn import Conv2D, Dense, Dropout, Flatten, MaxPool2D, Sequential

#: (filters, convolutions) of each of VGG-16's five stages, each ending in a 2x2/2 max pool.
VGG16_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def vgg16(input_shape=(224, 224, 3), classes: int = 1000,
          classifier_activation="softmax") -> Sequential:
    """VGG-16: five stages of 3x3 "same" ReLU convolutions (64, 64 | 128, 128 | 256 x 3 |
    512 x 3 | 512 x 3), each followed by a 2x2/2 max pool (224 -> 7), then Flatten (25,088),
    Dense 4096, Dropout(keep_prob=0.5), Dense 4096, Dropout(0.5), Dense ``classes`` with
    ``classifier_activation`` (softmax probabilities; None for logits, to train with
    ``from_logits=True``). He initialization.

    138,357,544 parameters at 224x224x3 with 1000 classes (14,714,688 in the 13 convolutions,
    123,642,856 in the three dense layers): about 550 MB in float32, created on the first call.

    >>> from strata.models import count_parameters
    >>> count_parameters(vgg16(), (224, 224, 3)).total
    138357544
    """
    layers = []
    for filters, convs in VGG16_STAGES:
        layers += [Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer="he")
                   for _ in range(convs)]
        layers.append(MaxPool2D(2, 2))
    layers += [Flatten(), Dense(4096, "relu", kernel_initializer="he"), Dropout(0.5),
               Dense(4096, "relu", kernel_initializer="he"), Dropout(0.5),
               classifier(classes, classifier_activation, "vgg16")]
    return with_input_shape(Sequential(layers), input_shape)
