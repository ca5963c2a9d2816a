"""The face encoders of the zoo: the course's FaceNet (NN4-small2, 3,743,280 parameters) and the
small encoder; shapes, unit-norm encodings, saving whole."""

import numpy as np
import pytest

import strata
from strata.models import count_parameters, face_encoder, facenet
from strata.models.facenet import FACENET_PARAMETERS


def test_facenet_has_the_course_s_parameter_count():
    counts = count_parameters(facenet(), (96, 96, 3))
    assert counts.total == FACENET_PARAMETERS == 3_743_280
    assert counts.output_shape == (128,)
    assert (counts.trainable, counts.non_trainable) == (3_733_968, 9_312)


def test_facenet_encodes_96x96x3_images_on_the_unit_sphere():
    strata.seed(0)
    model = facenet()
    x = np.random.default_rng(0).random((2, 96, 96, 3)).astype(np.float32)
    model.eval()
    E = model(x).numpy()
    assert E.shape == (2, 128) and E.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, rtol=1e-5)
    assert sum(t.size for _, t in model._named_tensors()) == FACENET_PARAMETERS


def test_small_encoder_shapes_and_round_trip(tmp_path):
    strata.seed(0)
    model = face_encoder((8, 16), encoding_size=16)
    x = np.random.default_rng(1).random((3, 56, 46, 1)).astype(np.float32)
    assert count_parameters(model, (56, 46, 1)).output_shape == (16,)
    before = model.predict(x)
    np.testing.assert_allclose(np.linalg.norm(before, axis=1), 1.0, rtol=1e-5)
    strata.save_model(model, tmp_path / "enc.safetensors")
    np.testing.assert_array_equal(strata.load_model(tmp_path / "enc.safetensors").predict(x),
                                  before)
    average = face_encoder((8,), encoding_size=4, head="average")
    assert average.predict(x).shape == (3, 4)


def test_small_encoder_bad_arguments():
    with pytest.raises(ValueError, match="encoding_size"):
        face_encoder(encoding_size=0)
    with pytest.raises(ValueError, match="head"):
        face_encoder(head="max")
    with pytest.raises(ValueError, match="widths"):
        face_encoder(widths=())
