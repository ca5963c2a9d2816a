"""The measured faces task of course 4 week 4: train an encoder with the triplet loss on some
people, then one-shot recognition and verification on people it never saw, next to two
baselines (nearest neighbour on raw pixels and on PCA "eigenfaces")."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from strata.autograd import ShapeError
from strata.vision.faces import PKSampler, pairwise_distances
from strata.vision.faces_verify import all_pairs, choose_threshold, verification_report

METHODS = ("encoder", "pixels", "pca")


def downscale(X, factor: int = 2) -> np.ndarray:
    """Images (m, n_H, n_W, n_C) shrunk by averaging factor x factor blocks (the AT&T faces'
    112 x 92 become 56 x 46 with factor 2); a side that does not divide is cropped."""
    X = np.asarray(X)
    if X.ndim != 4:
        raise ShapeError(f"downscale: expected images (m, n_H, n_W, n_C), got {X.shape}")
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"downscale: expected a positive int factor, got {factor!r}")
    m, h, w, c = X.shape
    h, w = h // factor * factor, w // factor * factor
    blocks = X[:, :h, :w].reshape(m, h // factor, factor, w // factor, factor, c)
    return blocks.mean((2, 4)).astype(X.dtype)


def encode_flip(model, X, batch_size: int = 256) -> np.ndarray:
    """Encodings of X averaged with those of its mirror images, renormalized: a face and its
    mirror are the same person, and averaging the two evens out pose noise."""
    from strata.vision.faces import encode

    E = encode(model, X, batch_size) + encode(model, X[:, :, ::-1], batch_size)
    return E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)


def whiten(model, X, eps: float = 0.01, batch_size: int = 256):
    """``model`` followed by PCA whitening of its encodings, then L2 normalization again: the
    mean encoding of the images X and of their mirrors (the training images) is subtracted and
    each principal direction of their covariance scaled by 1 / sqrt(variance + eps * the
    largest variance), so that directions the training people barely use count as much as the
    dominant ones, ``eps`` keeping the near-empty directions from exploding. A fixed Dense
    layer, so the whitened encoder saves and loads as one model. Returns a new Sequential
    sharing ``model``'s layers."""
    from strata.nn import Dense, Sequential
    from strata.vision.faces import L2Normalize, encode

    if not isinstance(eps, (int, float, np.floating)) or isinstance(eps, bool) or eps <= 0:
        raise ValueError(f"whiten: expected eps > 0, got {eps!r}")
    X = np.asarray(X)
    E = np.concatenate([encode(model, X, batch_size), encode(model, X[:, :, ::-1], batch_size)])
    E = E.astype(np.float64)
    mu = E.mean(0)
    variances, V = np.linalg.eigh(np.cov((E - mu).T))
    variances = np.maximum(variances, 0.0)
    W = V / np.sqrt(variances + eps * max(variances.max(), 1e-12))
    dense = Dense(W.shape[1])
    dense.build(W.shape[0])
    dense.W.data[...] = W
    dense.b.data[...] = -mu @ W
    return Sequential([*model.layers, dense, L2Normalize()])


def train_encoder(X, labels, epochs: int = 150, P: int = 10, K: int = 5, alpha: float = 0.5,
                  lr: float = 3e-3, mining: str = "batch-all", widths=(32, 64, 128, 128),
                  encoding_size: int = 128, augment: bool = True, rotate: float = 0.0,
                  zoom: float = 0.1, whiten_eps: float | None = 0.01, members: int = 1,
                  seed: int = 0, progress: bool = False):
    """Train ``face_encoder`` with the triplet loss on labelled images: batches of P people x K
    images (PKSampler), triplets mined in each batch, Adam with a cosine-decayed learning rate,
    random mirror, zoom by up to ``zoom`` (RandomZoom), rotation up to ``rotate`` degrees and
    3-pixel shifts when ``augment``; then, unless ``whiten_eps`` is None, PCA whitening of the
    encodings fitted on X (``whiten``). With ``members`` > 1, that many encoders are trained
    (seeds ``seed``, ``seed + 1``, ...) and joined into one model (``join``). Returns (model,
    the mean loss per epoch: a list, or one list per member when ``members`` > 1)."""
    X, labels = np.asarray(X), np.asarray(labels).reshape(-1)
    if X.ndim != 4 or len(X) != len(labels):
        raise ShapeError(f"train_encoder: expected images (m, n_H, n_W, n_C) and m labels, got "
                         f"{X.shape} and {labels.shape}")
    if isinstance(members, bool) or not isinstance(members, int) or members < 1:
        raise ValueError(f"train_encoder: expected a positive int members, got {members!r}")
    models, histories = [], []
    for k in range(members):
        model, history = _train_one(X, labels, epochs, P, K, alpha, lr, mining, widths,
                                    encoding_size, augment, rotate, zoom, seed + k, progress)
        models.append(model if whiten_eps is None else whiten(model, X, whiten_eps))
        histories.append(history)
    if members == 1:
        return models[0], histories[0]
    return join(models), histories


def join(models):
    """Several encoders as one: their L2-normalized encodings concatenated and normalized
    again, so the squared distance between two images is the mean of the members' squared
    distances (an ensemble). A Sequential of a Parallel of the members, which saves and loads
    as one model."""
    from strata.nn import Parallel, Sequential
    from strata.vision.faces import L2Normalize

    if len(models) < 2:
        raise ValueError(f"join: expected at least 2 encoders, got {len(models)}")
    return Sequential([Parallel(list(models)), L2Normalize()])


def _train_one(X, labels, epochs, P, K, alpha, lr, mining, widths, encoding_size, augment,
               rotate, zoom, seed, progress):
    """One encoder trained as ``train_encoder`` says, before whitening."""
    import strata
    from strata.data.augment import Compose, RandomCrop, RandomFlip, RandomRotation, RandomZoom
    from strata.losses.triplet import TripletLoss
    from strata.models.facenet import face_encoder
    from strata.optim import Adam

    strata.seed(seed)
    sampler = PKSampler(labels, P, K, seed=seed)
    loss = TripletLoss(alpha, mining)
    model = face_encoder(widths, encoding_size)
    model(X[:2])  # creates the parameters
    opt = Adam(model.parameters(), lr=lr)
    resample = [RandomZoom(zoom)] if zoom else []  # no resampling when neither zooming
    resample += [RandomRotation(rotate)] if rotate else []  # nor rotating
    shift = Compose([*resample, RandomFlip(), RandomCrop(X.shape[1:3], padding=3)]) \
        if augment else None
    rng, history = np.random.default_rng(seed), []
    bar = _bar(epochs * len(sampler), progress)
    for epoch in range(epochs):
        opt.lr = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs)) + 1e-6
        total = 0.0
        for index in sampler:
            xb = X[index] if shift is None else shift(X[index], rng)
            opt.zero_grad()
            J = loss(model(xb), labels[index])
            J.backward()
            opt.step()
            total += J.item()
            if bar is not None:
                bar.set_postfix({"epoch": f"{epoch + 1}/{epochs}", "loss": f"{J.item():.4f}",
                                 "triplets": loss.last_triplets}, refresh=False)
                bar.update(1)
        history.append(total / len(sampler))
    if bar is not None:
        bar.close()
    return model, history


def _bar(total: int, progress: bool):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="batch", dynamic_ncols=True)


def one_shot_accuracy(E, labels) -> float:
    """One-shot recognition top-1 accuracy: enroll one image per person, identify every other
    image by its nearest enrolled encoding; averaged over the choice of enrolled image (the
    s-th image of each person, s = 0, 1, ...)."""
    labels = np.asarray(labels).reshape(-1)
    people = np.unique(labels)
    groups = [np.flatnonzero(labels == p) for p in people]
    shots = min(len(g) for g in groups)
    if len(people) < 2 or shots < 2:
        raise ValueError(f"one_shot_accuracy: expected at least 2 people with at least 2 images "
                         f"each, got {len(people)} people, fewest images {shots}")
    accuracies = []
    for s in range(shots):
        enrolled = np.array([g[s] for g in groups])
        queries = np.setdiff1d(np.arange(len(labels)), enrolled)
        nearest = pairwise_distances(E[queries], E[enrolled]).argmin(1)
        accuracies.append(np.mean(labels[enrolled][nearest] == labels[queries]))
    return float(np.mean(accuracies))


@dataclass
class FoldResult:
    """One method on one fold: one-shot top-1 and verification (at the tau chosen on the
    training people) on the unseen people."""

    method: str
    one_shot: float
    verification: float
    auc: float
    tau: float
    seconds: float


def evaluate_method(method: str, E_train, y_train, E_unseen, y_unseen,
                    seconds: float = 0.0) -> tuple[FoldResult, object]:
    """Score one method's encodings: tau from the training people's pairs, then one-shot and
    verification on the unseen people. Returns (FoldResult, VerificationReport)."""
    tau, _ = choose_threshold(*all_pairs(E_train, y_train))
    report = verification_report(*all_pairs(E_unseen, y_unseen), tau)
    return FoldResult(method, one_shot_accuracy(E_unseen, y_unseen), report.accuracy,
                      report.auc, tau, seconds), report


def baseline_encodings(method: str, X_train, X_unseen, components: int = 50):
    """The baselines' "encodings": raw pixels (``"pixels"``), or the first ``components``
    principal components of the training people's images (``"pca"``: eigenfaces)."""
    A, B = (np.asarray(x, np.float64).reshape(len(x), -1) for x in (X_train, X_unseen))
    if method == "pixels":
        return A, B
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(min(components, len(A) - 1), random_state=0).fit(A)
        return pca.transform(A), pca.transform(B)
    raise ValueError(f"baseline_encodings: expected 'pixels' or 'pca', got {method!r}")


def run_fold(X, labels, unseen, train_options=None, progress: bool = False):
    """Train on every person but ``unseen`` and score the encoder and both baselines on the
    unseen people. Returns (results by method, the encoder, its unseen-people report,
    unseen encodings)."""
    labels = np.asarray(labels).reshape(-1)
    held = np.isin(labels, unseen)
    if not held.any() or held.all():
        raise ValueError(f"run_fold: the unseen people {list(unseen)} must be some, not all, "
                         f"of the labels")
    start = time.perf_counter()
    model, _ = train_encoder(X[~held], labels[~held], progress=progress, **(train_options or {}))
    seconds = time.perf_counter() - start
    E_train, E_unseen = encode_flip(model, X[~held]), encode_flip(model, X[held])
    results = {}
    results["encoder"], report = evaluate_method("encoder", E_train, labels[~held], E_unseen,
                                                 labels[held], seconds)
    for method in ("pixels", "pca"):
        A, B = baseline_encodings(method, X[~held], X[held])
        results[method], _ = evaluate_method(method, A, labels[~held], B, labels[held])
    return results, model, report, E_unseen


def run_folds(X, labels, folds: int = 4, train_options=None, progress: bool = False,
              on_fold=None) -> list:
    """The measured task: split the people into ``folds`` groups; for each, train on the
    others and score the encoder and the baselines on the held-out group (``run_fold``).
    ``on_fold(k, results, model, report, E_unseen)`` sees each fold as it ends. Returns the
    results by method of every fold."""
    people = np.unique(np.asarray(labels))
    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= len(people):
        raise ValueError(f"run_folds: expected 2 <= folds <= {len(people)} people, got {folds!r}")
    out = []
    for k, unseen in enumerate(np.array_split(people, folds)):
        results, model, report, E_unseen = run_fold(X, labels, unseen, train_options, progress)
        if on_fold is not None:
            on_fold(k, results, model, report, E_unseen)
        out.append(results)
    return out


def fold_table(folds: list) -> str:
    """A markdown table: each method's one-shot top-1, verification accuracy and ROC AUC on
    the unseen people, mean +- standard deviation over folds."""
    lines = ["| method | one-shot top-1 | verification accuracy | ROC AUC |",
             "|---|---|---|---|"]
    names = {"encoder": "triplet-loss encoder", "pixels": "nearest neighbour, raw pixels",
             "pca": "nearest neighbour, PCA (eigenfaces)"}
    for method in METHODS:
        cells = []
        for field in ("one_shot", "verification", "auc"):
            values = [getattr(f[method], field) for f in folds]
            cells.append(f"{np.mean(values):.4f} +- {np.std(values):.4f}")
        lines.append(f"| {names[method]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
