"""The named data sets of ``strata train``: each one's train/dev/test sets, kept as the course
keeps them, and a line that says what was used (the command prints it; the run folder keeps it
in report.md and data.json).

A data set that ships with its own test set keeps it: cat/non-cat's 50 and SIGNS's 120 test
images, MNIST's 10,000; dev is carved (seeded) from the training images. The others get a
seeded 60/20/20 split (train_dev_test_split). When MNIST's training images are missing and
cannot be downloaded, the run falls back to a split of MNIST's test images and says so.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from strata.data import datasets, download
from strata.data.generated import circles, moons, planar_flower
from strata.data.splits import carve_train_dev, suggested_ratios, train_dev_test_split

DATASETS = ("digits", "moons", "circles", "planar", "catvnoncat", "mnist", "fashion_mnist",
            "signs")
#: Datasets of images, kept NHWC for the conv archs (the MLP flattens them).
IMAGE_DATASETS = ("digits", "catvnoncat", "mnist", "fashion_mnist", "signs")
#: Image datasets whose labels survive a left-right mirror (hands and cats do; digits do not).
MIRROR_SAFE = ("catvnoncat", "signs")
#: Share of the training images set aside as dev set where a data set has its own test set.
DEV_SHARE = {"catvnoncat": 0.2, "signs": 0.1}
_GENERATED = {"moons": (moons, 300, "scikit-learn's make_moons, noise 0.2"),
              "circles": (circles, 300, "scikit-learn's make_circles, noise 0.05, factor 0.8"),
              "planar": (planar_flower, 400, "the course's planar flower")}


@dataclass
class RunData:
    """A run's data: the train/dev/test sets as (X, Y) pairs, the number of classes, ``summary``
    (the sets, their sizes and where they come from, on one line) and ``note`` (a warning about
    the data used, such as a fallback; empty when there is none)."""

    name: str
    train: tuple
    dev: tuple
    test: tuple
    n_classes: int
    summary: str
    note: str = ""
    sizes: dict = field(init=False)

    def __post_init__(self):
        self.sizes = {part: len(getattr(self, part)[0]) for part in ("train", "dev", "test")}

    def record(self) -> dict:
        """What the run folder's data.json keeps."""
        return {"dataset": self.name, "summary": self.summary, "sizes": self.sizes,
                "note": self.note}


def _line(name: str, sets, groups) -> str:
    """'name: train 167 / dev 42 (from ...) / test 50 (...)' from ``groups``: (the indices of
    consecutive sets, where they come from)."""
    counts = [f"{part} {len(sets[i][0])}" for i, part in enumerate(("train", "dev", "test"))]
    return f"{name}: " + " / ".join(" / ".join(counts[i] for i in indices) + f" ({origin})"
                                    for indices, origin in groups)


def _split(name: str, X, Y, n_classes: int, what: str, note: str = "") -> RunData:
    ratios = suggested_ratios(len(X))
    sets = train_dev_test_split(X, Y, ratios)
    origin = f"a seeded {'/'.join(f'{100 * r:g}' for r in ratios)} split of {what}"
    return RunData(name, *sets, n_classes, _line(name, sets, [((0, 1, 2), origin)]), note)


def _own_test_set(name: str, train, test, n_classes: int, dev, train_what: str,
                  test_what: str, note: str = "") -> RunData:
    """Dev carved (seeded) from the training images: ``dev`` is a count or a share."""
    sets = (*carve_train_dev(*train, dev), test)
    groups = [((0, 1), f"from {train_what}"), ((2,), test_what)]
    return RunData(name, *sets, n_classes, _line(name, sets, groups), note)


def _idx_digits(name: str, flatten: bool) -> RunData:
    """MNIST or Fashion-MNIST: the training images, with a dev set as large as the test set
    carved from them (10,000 of 60,000), and the test set; when the training files are missing
    and cannot be downloaded, a split of the test images."""
    load, title = ((datasets.load_mnist, "MNIST") if name == "mnist"
                   else (datasets.load_fashion_mnist, "Fashion-MNIST"))
    try:
        train = load("train", flatten=flatten)
    except download.DownloadError as e:
        test = load("test", flatten=flatten)
        note = (f"{title}'s training images are not available, so this run trains on a split "
                f"of {title}'s {len(test[0])} test images instead of its 60000 training images: "
                f"{e}")
        print(f"strata: {note}", file=sys.stderr)
        return _split(name, *test, 10, f"{title}'s {len(test[0])} test images: the training "
                      f"images are missing", note)
    test = load("test", flatten=flatten)
    return _own_test_set(name, train, test, 10, len(test[0]),
                         f"{title}'s {len(train[0])} training images", f"{title}'s test set")


def _course_images(name: str, flatten: bool) -> RunData:
    """cat/non-cat and SIGNS keep the course's own training and test sets."""
    if name == "catvnoncat":
        train, test, classes = datasets.load_catvnoncat(flatten=flatten)
    else:
        train, test, classes = datasets.load_signs(flatten=flatten)
    n_classes = 2 if name == "catvnoncat" else len(classes)
    return _own_test_set(name, train, test, n_classes, DEV_SHARE[name],
                         f"the course's {len(train[0])} training images", "the course's test set")


def load_run_data(name: str, images: bool = False) -> RunData:
    """The data of ``strata train --dataset name`` (seeded by strata's random Generator).
    Images are NHWC (m, n_H, n_W, n_C) when ``images``, else flattened rows; Y holds class
    indices (m,) or 0/1 labels (m, 1)."""
    if name == "digits":
        X, Y = datasets.load_digits(flatten=not images)
        return _split(name, X, Y, 10, f"scikit-learn's {len(X)} 8x8 digit images")
    if name in ("mnist", "fashion_mnist"):
        return _idx_digits(name, not images)
    if name in DEV_SHARE:
        return _course_images(name, not images)
    if name not in _GENERATED:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    make, m, what = _GENERATED[name]
    X, Y = make(m)
    return _split(name, X, Y, 2, f"{m} examples generated by {what}")
