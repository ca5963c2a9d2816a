"""VGG-16/VGG-19 with named layers, the feature extractor and the pixel preprocessing."""

import numpy as np
import pytest

import strata
from strata import backend, nn
from strata.models import (
    IMAGENET_MEAN_RGB,
    NamedSequential,
    count_parameters,
    feature_extractor,
    vgg16,
    vgg19,
    vgg_deprocess,
    vgg_preprocess,
)

CONVS19 = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", *[f"conv{s}_{i}" for s in (3, 4, 5)
                                                         for i in range(1, 5)]]


def test_vgg19_names_and_counts():
    model = vgg19()
    convs = [n for n in model.layer_names if n.startswith("conv")]
    assert convs == CONVS19
    assert [n for n in model.layer_names if n.startswith("pool")] == [f"pool{i}" for i in
                                                                     range(1, 6)]
    assert model.layer_names[-6:] == ["flatten", "fc6", "drop6", "fc7", "drop7", "fc8"]
    count = count_parameters(model, (224, 224, 3))
    assert count.total == 143_667_240 and count.output_shape == (1000,)
    assert isinstance(model["conv4_2"], nn.Conv2D) and model["conv4_2"].filters == 512
    assert [n for n, _ in model.named_modules()][1:3] == ["conv1_1.", "conv1_2."]


def test_vgg16_names_and_include_top_false_takes_any_size():
    model = vgg16(include_top=False, input_shape=None)
    assert [n for n in model.layer_names if n.startswith("conv5")] == ["conv5_1", "conv5_2",
                                                                       "conv5_3"]
    assert model.layer_names[-1] == "pool5" and model.input_shape is None
    assert count_parameters(model, (224, 224, 3)).total == 14_714_688
    strata.seed(0)
    assert model(np.zeros((1, 40, 72, 3), np.float32)).shape == (1, 1, 2, 512)
    assert model(np.zeros((1, 64, 64, 3), np.float32)).shape == (1, 2, 2, 512)


def test_pool_avg_and_bad_arguments():
    assert isinstance(vgg19(include_top=False, pool="avg")["pool3"], nn.AvgPool2D)
    with pytest.raises(ValueError, match="pool 'max' or 'avg'"):
        vgg19(pool="min")
    with pytest.raises(ValueError, match="include_top=True needs an input_shape"):
        vgg16(input_shape=None)
    with pytest.raises(strata.ShapeError, match="MaxPool2D"):
        vgg19((16, 16, 3), include_top=False)
    with pytest.raises(KeyError, match="no layer named 'conv6_1'.*conv1_1"):
        vgg16()["conv6_1"]
    with pytest.raises(ValueError, match="unique"):
        NamedSequential([("a", nn.Flatten()), ("a", nn.Flatten())])
    with pytest.raises(ValueError, match="one name per layer"):
        NamedSequential([nn.Flatten()], names=["a", "b"])


def _tiny(dtype=np.float32):
    with backend.default_dtype(dtype):
        strata.seed(0)
        model = NamedSequential([("conv1_1", nn.Conv2D(3, 3, padding="same", activation="relu")),
                                 ("pool1", nn.AvgPool2D(2)),
                                 ("conv2_1", nn.Conv2D(4, 3, padding="same", activation="relu")),
                                 ("conv2_2", nn.Conv2D(2, 3, padding="same"))])
        model.build((6, 6, 2))
    return model


def test_feature_extractor_stops_at_the_deepest_layer_and_matches_the_model():
    model = _tiny()
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 2)).astype(np.float32)
    extractor = feature_extractor(model, ["conv2_1", "conv1_1"])
    assert len(extractor.layers) == 3  # conv2_2 never runs
    out = extractor(x)
    assert list(out) == ["conv2_1", "conv1_1"]
    a1 = model[0](x)
    np.testing.assert_allclose(out["conv1_1"].data, a1.data)
    np.testing.assert_allclose(out["conv2_1"].data, model[2](model[1](a1)).data, rtol=1e-6)
    assert feature_extractor(model, "pool1")(x)["pool1"].shape == (2, 3, 3, 3)
    with pytest.raises(KeyError, match="no layer named 'conv9'"):
        feature_extractor(model, ["conv9"])
    with pytest.raises(TypeError, match="named layers"):
        feature_extractor(nn.Sequential([nn.Flatten()]), ["a"])


def test_feature_extractor_gradient_to_the_pixels_float64():
    model = _tiny(np.float64)
    model.trainable = False  # style transfer: only the pixels train
    extractor = feature_extractor(model, ["conv1_1", "conv2_1"])
    # pixels near the mean: preprocessed values of order 1, as finite differences need
    x = np.array(IMAGENET_MEAN_RGB) + np.random.default_rng(1).standard_normal((1, 6, 6, 3))

    def cost(pixels):
        # the 2-channel tiny model reads the first two channels of the preprocessed image
        out = extractor(vgg_preprocess(pixels, "caffe")[..., :2])
        return (out["conv1_1"] ** 2).sum() + (out["conv2_1"] ** 2).sum()

    assert strata.gradcheck(cost, x)[0] < 1e-7
    assert all(p.grad is None for p in model.modules() for p in vars(p).values()
               if isinstance(p, strata.Tensor))


def test_preprocess_constants_by_hand():
    pixel = np.array([[[1.0, 2.0, 3.0]]], np.float32)
    mean = np.array(IMAGENET_MEAN_RGB)
    np.testing.assert_allclose(vgg_preprocess(pixel, "matconvnet")[0, 0], [1, 2, 3] - mean,
                               rtol=1e-6)
    np.testing.assert_allclose(vgg_preprocess(pixel, "caffe")[0, 0],
                               [3 - 103.939, 2 - 116.779, 1 - 123.68], rtol=1e-6)
    np.testing.assert_allclose(vgg_preprocess(pixel, "torch")[0, 0],
                               (np.array([1, 2, 3]) / 255 - [0.485, 0.456, 0.406])
                               / [0.229, 0.224, 0.225], rtol=1e-5)
    assert vgg_preprocess(np.zeros((2, 4, 4, 3), np.uint8)).dtype == np.float32
    images = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3)).astype(np.uint8)
    for mode in ("matconvnet", "caffe", "torch", None):
        assert (vgg_deprocess(vgg_preprocess(images, mode), mode) == images).all()
    with pytest.raises(ValueError, match="expected mode"):
        vgg_preprocess(images, "keras")
    with pytest.raises(ValueError, match=r"\(m, n_H, n_W, 3\).*\(2, 5\)"):
        vgg_preprocess(np.zeros((2, 5)))


def test_named_model_round_trips_with_names(tmp_path):
    model = _tiny()
    model.preprocessing = "caffe"
    loaded = strata.load_model(model.save(tmp_path / "tiny.safetensors"))
    assert isinstance(loaded, NamedSequential) and loaded.layer_names == model.layer_names
    assert loaded.preprocessing == "caffe"
    x = np.ones((1, 6, 6, 2), np.float32)
    np.testing.assert_allclose(loaded(x).data, model(x).data)
