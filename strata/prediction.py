"""What ``strata predict`` reads and writes: examples from .npy arrays, .csv files (with or
without a header row) and image files or folders of images, and a CSV of classes and
probabilities.

>>> import numpy as np
>>> probabilities = np.array([[0.9, 0.1], [0.2, 0.8]])
>>> print(prediction_csv(probabilities, ["a.png", "b.png"]), end="")
example,class,p_0,p_1
a.png,0,0.9,0.1
b.png,1,0.2,0.8
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff")


def _read_csv(path: Path) -> np.ndarray:
    """The numbers of a .csv file; a first row that is not numbers is a header and skipped."""
    with open(path) as f:
        first = f.readline()
    try:
        [float(v) for v in first.strip().split(",")]
        header = 0
    except ValueError:
        header = 1
    try:
        return np.loadtxt(path, delimiter=",", ndmin=2, skiprows=header)
    except ValueError as e:
        raise ValueError(f"{path}: expected rows of numbers separated by commas (after an "
                         f"optional header row): {e}") from None


def _read_image(path: Path, shape) -> np.ndarray:
    """One image file as uint8 pixels (n_H, n_W, n_C) of the model's input ``shape``."""
    from PIL import Image, UnidentifiedImageError

    if shape is None or len(shape) != 3 or shape[-1] not in (1, 3):
        raise ValueError(f"{path}: images need a model of image input (n_H, n_W, 1 or 3); "
                         f"this model's input shape is {shape}")
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L" if shape[-1] == 1 else "RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None
    pixels = pixels.reshape(*pixels.shape[:2], shape[-1])
    if pixels.shape != tuple(shape):
        raise ValueError(f"{path}: the model expects {shape[0]}x{shape[1]} images "
                         f"(n_H, n_W, n_C) = {tuple(shape)}, got {pixels.shape}; resize it first")
    return pixels


def read_examples(paths, shape) -> tuple[np.ndarray, list[str]]:
    """(X, names): the examples of ``paths`` (.npy, .csv, images, folders of images) and one
    name per example (the image's file name, else 'file:row')."""
    arrays, names, images = [], [], []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in it")
            images += found
        elif not path.is_file():
            raise ValueError(f"{path}: no such file or folder")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
        elif path.suffix.lower() in (".npy", ".csv"):
            X = np.load(path) if path.suffix.lower() == ".npy" else _read_csv(path)
            X = X[None] if shape is not None and X.shape == tuple(shape) else X
            arrays.append(X)
            names += [f"{path.name}:{i}" for i in range(len(X))]
        else:
            raise ValueError(f"{path}: expected a .npy or .csv file, an image "
                             f"({', '.join(IMAGE_SUFFIXES)}) or a folder of images")
    if images:
        arrays.append(np.stack([_read_image(p, shape) for p in images]))
        names += [p.name for p in images]
    if len({a.dtype.kind == "u" for a in arrays}) > 1:
        raise ValueError("predict: give either images (0-255 pixels) or arrays, not both")
    if len(arrays) > 1 and len({a.shape[1:] for a in arrays}) > 1:
        raise ValueError(f"predict: the inputs' examples differ in shape: "
                         f"{sorted({a.shape[1:] for a in arrays})}")
    return np.concatenate(arrays) if len(arrays) > 1 else arrays[0], names


def classes_of(probabilities: np.ndarray) -> np.ndarray:
    """The predicted class of each row: the argmax, or p > 0.5 for one sigmoid output."""
    if probabilities.shape[1] > 1:
        return probabilities.argmax(axis=1)
    return (probabilities[:, 0] > 0.5).astype(int)


def prediction_csv(probabilities: np.ndarray, names) -> str:
    """CSV text: example, class, and the probability of each class (p_1 alone for a single
    sigmoid output)."""
    probabilities = np.asarray(probabilities)
    single = probabilities.shape[1] == 1
    columns = ["p_1"] if single else [f"p_{k}" for k in range(probabilities.shape[1])]
    lines = [",".join(["example", "class", *columns])]
    for name, c, row in zip(names, classes_of(probabilities), probabilities):
        lines.append(",".join([str(name), str(int(c)), *(f"{p:.6g}" for p in row)]))
    return "\n".join(lines) + "\n"


def predict_files(model, paths, out=None) -> np.ndarray:
    """The classes of the examples in ``paths`` by ``model``; with ``out``, also a CSV of
    classes and probabilities written atomically there."""
    from strata.cli import model_input
    from strata.files import write_text_atomic

    shape = getattr(model, "input_shape", None)
    X, names = read_examples(paths, shape)
    probabilities = np.asarray(model.predict(model_input(X, shape, ", ".join(map(str, paths)))))
    if out is not None:
        write_text_atomic(out, prediction_csv(probabilities, names))
    return classes_of(probabilities)


__all__ = ["read_examples", "classes_of", "prediction_csv", "predict_files"]
