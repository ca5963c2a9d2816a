"""Datasets and data handling: generated and real data sets, mini-batches, splits,
normalization, augmentation and a background batch pipeline, test-time crops."""

from strata.data.augment import (
    ColorShift,
    Compose,
    PCAColor,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomShear,
    RandomWarp,
    RandomZoom,
    Transform,
    bilinear_sample,
)
from strata.data.batches import iterate_minibatches, random_mini_batches
from strata.data.datasets import (
    load_catvnoncat,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_signs,
    read_idx,
)
from strata.data.download import ChecksumError, DownloadError, data_dir, fetch
from strata.data.faces import load_att_faces
from strata.data.generated import circles, moons, planar_flower
from strata.data.pipeline import Pipeline
from strata.data.preprocessing import Normalizer
from strata.data.splits import carve_train_dev, suggested_ratios, train_dev_test_split
from strata.data.testtime import ensemble_predict, multi_crop_predict, ten_crop

__all__ = [
    "planar_flower", "moons", "circles", "random_mini_batches", "iterate_minibatches",
    "Normalizer", "train_dev_test_split", "carve_train_dev", "suggested_ratios",
    "data_dir", "fetch", "read_idx", "load_catvnoncat", "load_mnist", "load_fashion_mnist",
    "load_digits", "load_signs", "load_att_faces", "DownloadError", "ChecksumError",
    "Transform", "RandomFlip", "RandomCrop", "RandomRotation", "RandomShear", "RandomWarp",
    "RandomZoom", "ColorShift", "PCAColor", "Compose", "bilinear_sample", "Pipeline",
    "ten_crop", "multi_crop_predict", "ensemble_predict",
]
