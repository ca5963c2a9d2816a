"""Face verification and recognition of course 4 week 4 on encodings f(x).

- verification: "is this the claimed person?" d(x1, x2) = ||f(x1) - f(x2)|| (plain Euclidean
  distance, as the course's ``verify``) against a threshold tau; ``choose_threshold`` picks the
  tau that maximizes accuracy on a dev set, ``verification_report`` gives the accuracy at tau
  and the ROC curve and AUC over every pair. ``PairClassifier`` is the course's alternative: a
  logistic unit on |f(x_i) - f(x_j)| (or the chi-square form) trained on pairs.
- recognition: ``FaceDatabase`` maps names to one or several encodings, saved as safetensors;
  ``identify`` returns the nearest identity if its distance is under tau, else None ("not in
  the database").
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from strata.autograd import ShapeError
from strata.vision.faces import _encodings, pairwise_distances

#: The ``format`` written in a face database file's metadata.
DATABASE_FORMAT = "strata.faces.database/1"


def all_pairs(E, labels):
    """(distances, same) over the pairs i < j of a set: plain distances ||e_i - e_j|| and
    whether the two encodings belong to the same person."""
    E = _encodings(E, "all_pairs")
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(E):
        raise ShapeError(f"all_pairs: expected {len(E)} labels, got {len(labels)}")
    i, j = np.triu_indices(len(E), k=1)
    return pairwise_distances(E)[i, j], labels[i] == labels[j]


def _pairs(distances, same, name: str):
    d = np.asarray(distances, dtype=np.float64).reshape(-1)
    same = np.asarray(same, dtype=bool).reshape(-1)
    if len(d) != len(same) or len(d) == 0:
        raise ShapeError(f"{name}: expected as many distances as same/different flags (at "
                         f"least one), got {len(d)} and {len(same)}")
    if not np.all(np.isfinite(d)):
        raise ValueError(f"{name}: the distances hold NaN or inf")
    return d, same


def choose_threshold(distances, same) -> tuple[float, float]:
    """(tau, accuracy): the threshold that maximizes the accuracy of "same person when
    d < tau" on these pairs (a dev set), placed halfway between two consecutive distances."""
    d, same = _pairs(distances, same, "choose_threshold")
    order = np.argsort(d, kind="stable")
    d, same = d[order], same[order]
    # Cut k: the first k pairs (the closest) are called "same", the rest "different".
    correct = np.concatenate([[0], np.cumsum(same)]) + np.concatenate(
        [np.cumsum((~same)[::-1])[::-1], [0]])
    valid = np.concatenate([[True], d[1:] > d[:-1], [True]])  # no cut between equal distances
    k = int(np.argmax(np.where(valid, correct, -1)))
    if k == 0:
        tau = d[0] - 1e-6
    elif k == len(d):
        tau = d[-1] + 1e-6
    else:
        tau = (d[k - 1] + d[k]) / 2
    return float(tau), float(correct[k] / len(d))


@dataclass
class VerificationReport:
    """Verification at one threshold tau over a set of pairs, with its ROC curve."""

    tau: float
    accuracy: float
    auc: float
    fpr: np.ndarray
    tpr: np.ndarray
    n_same: int
    n_different: int


def verification_report(distances, same, tau: float) -> VerificationReport:
    """Accuracy of "same when d < tau" and the ROC curve (scores -d) with its AUC, computed by
    scikit-learn's ``roc_curve`` and ``roc_auc_score``."""
    from sklearn.metrics import roc_auc_score, roc_curve

    d, same = _pairs(distances, same, "verification_report")
    if same.all() or not same.any():
        raise ValueError("verification_report: expected pairs of both kinds (same and "
                         "different people)")
    fpr, tpr, _ = roc_curve(same, -d)
    accuracy = float(np.mean((d < tau) == same))
    return VerificationReport(float(tau), accuracy, float(roc_auc_score(same, -d)), fpr, tpr,
                              int(same.sum()), int((~same).sum()))


def pair_features(E1, E2, form: str = "abs") -> np.ndarray:
    """The course's pair features: |f(x_i) - f(x_j)| (``form="abs"``) or the chi-square form
    (f(x_i) - f(x_j))^2 / (|f(x_i) + f(x_j)| + 1e-8) (absolute value: L2-normalized encodings
    may be negative), one row per pair."""
    E1, E2 = _encodings(E1, "pair_features"), _encodings(E2, "pair_features")
    if E1.shape != E2.shape:
        raise ShapeError(f"pair_features: expected two (m, d) arrays of one shape, got "
                         f"{E1.shape} and {E2.shape}")
    if form == "abs":
        return np.abs(E1 - E2)
    if form == "chi2":
        return (E1 - E2) ** 2 / (np.abs(E1 + E2) + 1e-8)
    raise ValueError(f"pair_features: expected form 'abs' or 'chi2', got {form!r}")


class PairClassifier:
    """The course's learned similarity: y_hat = sigmoid(sum_k w_k x_k + b) on the pair features
    x of two encodings (``pair_features``), trained with binary cross-entropy on pairs labelled
    1 (same person) or 0; ``predict_proba(E1, E2)`` gives P(same)."""

    def __init__(self, form: str = "abs"):
        pair_features(np.zeros((1, 1)), np.zeros((1, 1)), form)  # checks the form
        self.form, self.model = form, None

    def fit(self, E1, E2, same, epochs: int = 200, lr: float = 0.05, seed: int = 0):
        """Train the logistic unit (Adam, full batch) on pairs (E1[i], E2[i], same[i])."""
        import strata
        from strata import nn

        X = pair_features(E1, E2, self.form).astype(strata.get_default_dtype())
        y = np.asarray(same, dtype=X.dtype).reshape(-1, 1)
        if len(y) != len(X):
            raise ShapeError(f"PairClassifier.fit: expected {len(X)} labels, got {len(y)}")
        strata.seed(seed)
        self.model = nn.Sequential([nn.Dense(1, "sigmoid")])
        self.model.compile("adam", "binary_crossentropy", lr=lr)
        self.model.fit(X, y, epochs=epochs, batch_size=None, verbose=0)
        return self

    def predict_proba(self, E1, E2) -> np.ndarray:
        """P(same person) for each pair, shape (m,)."""
        if self.model is None:
            raise RuntimeError("PairClassifier: call fit first")
        return self.model.predict(pair_features(E1, E2, self.form))[:, 0]


class FaceDatabase:
    """Known people: name -> one or several encodings (precomputed, so a new photo is compared
    without encoding the database again). ``identify`` gives the nearest identity under tau."""

    def __init__(self, tau: float = 0.7):
        self.tau = _tau(tau)
        self.names: list[str] = []
        self.encodings: list[np.ndarray] = []  # one (k_i, d) array per name

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name) -> bool:
        return name in self.names

    def add(self, name: str, encodings) -> None:
        """Enroll ``name`` with encodings (k, d) or (d,); adds to the ones it already has."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"FaceDatabase.add: expected a non-empty name, got {name!r}")
        E = _encodings(np.atleast_2d(np.asarray(encodings, np.float32)), "FaceDatabase.add")
        if self.encodings and E.shape[1] != self.encodings[0].shape[1]:
            raise ShapeError(f"FaceDatabase.add: the database holds {self.encodings[0].shape[1]}"
                             f"-d encodings, got {E.shape[1]}-d ones for {name!r}")
        if name in self.names:
            i = self.names.index(name)
            self.encodings[i] = np.concatenate([self.encodings[i], E])
        else:
            self.names.append(name)
            self.encodings.append(E)

    def distances(self, encoding) -> np.ndarray:
        """The distance of one encoding (d,) to each person: the smallest over their
        encodings."""
        if not self.names:
            raise ValueError("FaceDatabase: the database is empty; enroll someone first")
        e = _encodings(np.asarray(encoding, np.float32).reshape(1, -1), "FaceDatabase")
        if e.shape[1] != self.encodings[0].shape[1]:
            raise ShapeError(f"FaceDatabase: expected a {self.encodings[0].shape[1]}-d "
                             f"encoding, got {e.shape[1]}-d")
        return np.array([pairwise_distances(e, E).min() for E in self.encodings])

    def verify(self, encoding, name: str) -> tuple[bool, float]:
        """(is it ``name``?, distance): the course's ``verify``, d < tau."""
        if name not in self.names:
            raise ValueError(f"FaceDatabase.verify: {name!r} is not in the database (known: "
                           f"{', '.join(self.names) or 'nobody'})")
        d = float(self.distances(encoding)[self.names.index(name)])
        return d < self.tau, d

    def identify(self, encoding) -> tuple[str | None, float]:
        """(name, distance) of the nearest person, or (None, distance) when even the nearest
        is at tau or more: "not in the database" (the course's ``who_is_it``)."""
        d = self.distances(encoding)
        best = int(np.argmin(d))
        return (self.names[best] if d[best] < self.tau else None), float(d[best])

    def save(self, path) -> None:
        """Write the database as safetensors (one (k, d) tensor per person; names, order and tau
        in the metadata), atomically."""
        from safetensors.numpy import save

        from strata.files import atomic_write

        tensors = {f"person_{i}": E for i, E in enumerate(self.encodings)}
        metadata = {"format": DATABASE_FORMAT, "names": json.dumps(self.names),
                    "tau": repr(self.tau)}
        atomic_write(path, save(tensors, metadata))

    @classmethod
    def load(cls, path) -> FaceDatabase:
        """Read a database written by ``save``; a clear error for any other file."""
        from safetensors.numpy import load_file

        from strata.safetensors_header import HeaderError, read_header

        try:
            _, metadata = read_header(path)
            tensors = load_file(str(path))
            names = json.loads(metadata["names"])
            db = cls(float(metadata["tau"]))
        except (HeaderError, KeyError, ValueError, OSError) as e:
            raise ValueError(f"FaceDatabase.load: {path} is not a face database written by "
                             f"strata ({e})") from None
        if metadata.get("format") != DATABASE_FORMAT or sorted(tensors) != sorted(
                f"person_{i}" for i in range(len(names))):
            raise ValueError(f"FaceDatabase.load: {path} is not a {DATABASE_FORMAT} file")
        for i, name in enumerate(names):
            db.add(name, tensors[f"person_{i}"])
        return db


def _tau(tau) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating)) or not tau > 0 \
            or not np.isfinite(tau):
        raise ValueError(f"FaceDatabase: expected a threshold tau > 0, got {tau!r}")
    return float(tau)
