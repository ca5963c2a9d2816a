"""Ready-made models. course: the networks of courses 1 and 2. The classic and modern
convolutional networks of course 4 week 2 (lenet, alexnet, vgg, resnet, inception), the
arithmetic of convolutions (output shapes, parameter and multiplication counts), and course 4
week 3's YOLOv2 with a reader and writer of Darknet's .weights files, and week 4's face
encoders (the course's FaceNet and a small encoder)."""

from strata.models.alexnet import alexnet
from strata.models.arithmetic import (
    BottleneckCost,
    ParameterCount,
    bottleneck_cost,
    conv_multiplications,
    conv_output_shape,
    conv_parameters,
    count_parameters,
)
from strata.models.course import deep_network, logistic_regression, shallow_network
from strata.models.darknet import load_darknet_weights, write_darknet_weights
from strata.models.facenet import face_encoder, facenet
from strata.models.inception import (
    GoogLeNet,
    googlenet,
    inception_module,
    naive_inception_module,
)
from strata.models.lenet import lenet5
from strata.models.named import NamedSequential
from strata.models.pretrained import WeightsError, load_weights
from strata.models.resnet import (
    basic_block,
    convolutional_block,
    identity_block,
    resnet34,
    resnet50,
)
from strata.models.resnet_imagenet import keras_resnet50, torchvision_resnet
from strata.models.signs import signs_convnet, small_convnet
from strata.models.vgg import (
    IMAGENET_MEAN_RGB,
    TORCH_MEAN,
    TORCH_STD,
    FeatureExtractor,
    feature_extractor,
    vgg,
    vgg16,
    vgg19,
    vgg_deprocess,
    vgg_preprocess,
)
from strata.models.yolo import yolov2

__all__ = [
    "logistic_regression", "shallow_network", "deep_network",
    "signs_convnet", "small_convnet", "lenet5", "alexnet", "vgg16",
    "identity_block", "convolutional_block", "resnet50", "basic_block", "resnet34",
    "inception_module", "naive_inception_module", "GoogLeNet", "googlenet",
    "conv_output_shape", "conv_parameters", "conv_multiplications", "bottleneck_cost",
    "BottleneckCost", "count_parameters", "ParameterCount",
    "yolov2", "load_darknet_weights", "write_darknet_weights",
    "vgg19", "NamedSequential", "FeatureExtractor", "feature_extractor", "vgg_preprocess",
    "vgg_deprocess", "IMAGENET_MEAN_RGB", "TORCH_MEAN", "TORCH_STD", "vgg",
    "load_weights", "WeightsError", "keras_resnet50", "torchvision_resnet",
    "facenet", "face_encoder",
]
