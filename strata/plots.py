"""Plots of training (matplotlib, headless): cost curves, train vs dev curves, decision
boundaries of 2-D classifiers. Each function writes a PNG and returns its path."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    from strata.io import atomic_write

    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png"))
    _pyplot().close(fig)
    return path


def plot_costs(costs, path, per: str = "iteration", learning_rate=None) -> Path:
    """The course's cost curve: cost against iterations (or epochs)."""
    plt = _pyplot()
    costs = np.asarray(costs, dtype=float)
    if costs.ndim != 1 or costs.size == 0:
        raise ValueError(f"plot_costs: expected a non-empty list of costs, got shape {costs.shape}")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.arange(costs.size), costs)
    ax.set_xlabel(per + "s")
    ax.set_ylabel("cost")
    ax.set_title("Cost" + (f", learning rate = {learning_rate}" if learning_rate else ""))
    return _save(fig, path)


def plot_learning_curves(history, path) -> Path:
    """Train vs dev loss (and every metric with a val_ twin) per epoch, one panel each."""
    plt = _pyplot()
    logs = history.history if hasattr(history, "history") else dict(history)
    names = [k for k in logs if not k.startswith("val_") and k != "lr"]
    if not names:
        raise ValueError("plot_learning_curves: the history holds no epochs yet")
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = np.arange(len(logs[name]))
        ax.plot(epochs, logs[name], label="train")
        if f"val_{name}" in logs:
            ax.plot(epochs, logs[f"val_{name}"], label="dev")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend()
    return _save(fig, path)


def plot_decision_boundary(predict, X, Y, path, resolution: int = 300) -> Path:
    """Color the plane by ``predict`` (2-D inputs -> class or probability) and draw the data."""
    plt = _pyplot()
    X, Y = np.asarray(X), np.asarray(Y).reshape(-1)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary: expected X of shape (m, 2), got {X.shape}")
    lo, hi = X.min(axis=0) - 1, X.max(axis=0) + 1
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], resolution),
                         np.linspace(lo[1], hi[1], resolution))
    grid = np.c_[xx.ravel(), yy.ravel()].astype(X.dtype)
    out = np.asarray(predict(grid))
    z = (out.argmax(axis=1) if out.ndim == 2 and out.shape[1] > 1 else out.reshape(-1) > 0.5)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.contourf(xx, yy, z.reshape(xx.shape), cmap=plt.cm.Spectral, alpha=0.8)
    ax.scatter(X[:, 0], X[:, 1], c=Y, cmap=plt.cm.Spectral, s=12, edgecolors="k")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    return _save(fig, path)


def _as_images(X) -> np.ndarray:
    """(m, n_H, n_W) or (m, n_H, n_W, n_C) images; square rows of pixels are unflattened."""
    X = np.asarray(X)
    if X.ndim == 2:
        side = int(round(np.sqrt(X.shape[1])))
        if side * side != X.shape[1]:
            raise ValueError(f"plot_image_grid: rows of {X.shape[1]} values are not square "
                             f"images; pass X as (m, n_H, n_W[, n_C])")
        X = X.reshape(len(X), side, side)
    if X.ndim == 4 and X.shape[-1] == 1:
        X = X[..., 0]
    if X.ndim not in (3, 4) or (X.ndim == 4 and X.shape[-1] not in (3, 4)):
        raise ValueError(f"plot_image_grid: expected images (m, n_H, n_W), (m, n_H, n_W, 1) or "
                         f"(m, n_H, n_W, 3), got shape {X.shape}")
    return X


def plot_image_grid(images, titles, path, cols: int = 8) -> Path:
    """A grid of images (gray or RGB), each with its title; for looking at examples."""
    plt = _pyplot()
    images = _as_images(images)
    if len(titles) != len(images) or len(images) == 0:
        raise ValueError(f"plot_image_grid: expected one title per image and at least one "
                         f"image, got {len(images)} images and {len(titles)} titles")
    cols = min(cols, len(images))
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, title in zip(axes.ravel(), images, titles):
        lo, hi = float(image.min()), float(image.max())
        ax.imshow((image - lo) / (hi - lo or 1.0), cmap="gray" if image.ndim == 2 else None)
        ax.set_title(title, fontsize=7)
    return _save(fig, path)
