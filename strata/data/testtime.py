"""Test-time tricks of course 4 week 2: multi-crop (10-crop) evaluation and ensembling."""

from __future__ import annotations

import numpy as np

from strata.data.augment import _check_batch, _pair


def ten_crop(X, size) -> np.ndarray:
    """10-crop (test time): the four corners and the centre of each image, then the same five of
    the mirrored image; returns (10, m, h, w, n_C) in the order top-left, top-right,
    bottom-left, bottom-right, centre, then mirrored likewise."""
    X = _check_batch(X, "ten_crop")
    (h, w), (H, W) = _pair(size, "ten_crop"), X.shape[1:3]
    if h > H or w > W:
        raise ValueError(f"ten_crop: crop size {(h, w)} is larger than the image {(H, W)}")
    corners = [(0, 0), (0, W - w), (H - h, 0), (H - h, W - w), ((H - h) // 2, (W - w) // 2)]
    crops = [img[:, r:r + h, c:c + w] for img in (X, X[:, :, ::-1]) for r, c in corners]
    return np.stack(crops)


def _as_predict(model, name: str):
    if hasattr(model, "predict"):
        return model.predict
    if callable(model):
        return model
    raise TypeError(f"{name}: expected a callable or an object with .predict, got {model!r}")


def multi_crop_predict(predict, X, size) -> np.ndarray:
    """Average predict(crop) over the 10 crops of ten_crop(X, size) (the course's 10-crop);
    ``predict`` is a callable or an object with ``.predict``."""
    fn = _as_predict(predict, "multi_crop_predict")
    return np.mean([np.asarray(fn(crop)) for crop in ten_crop(X, size)], axis=0)


def ensemble_predict(predicts_or_models, X) -> np.ndarray:
    """Ensembling: average the predictions of several models (callables or objects with
    ``.predict``) on the same X."""
    fns = [_as_predict(p, "ensemble_predict") for p in predicts_or_models]
    if not fns:
        raise ValueError("ensemble_predict: expected at least one model, got none")
    outputs = [np.asarray(fn(X)) for fn in fns]
    shapes = {o.shape for o in outputs}
    if len(shapes) != 1:
        raise ValueError(f"ensemble_predict: the models' predictions differ in shape: "
                         f"{[o.shape for o in outputs]}")
    return np.mean(outputs, axis=0)
