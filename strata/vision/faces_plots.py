"""Pictures of a faces run: ROC curves, distance histograms of same vs different people, and
the hardest verification errors. Each function writes a PNG (matplotlib, atomic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from strata.plots import _pyplot, _save


def plot_roc(reports, path) -> Path:
    """ROC curves (true-accept rate against false-accept rate) of verification reports, one per
    fold, with their AUC in the legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    for k, report in enumerate(reports):
        ax.plot(report.fpr, report.tpr, lw=1.2, label=f"fold {k + 1}: AUC {report.auc:.4f}")
    ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=0.8)
    ax.set(xlabel="false accepts (different people called same)",
           ylabel="true accepts (same person called same)", xlim=(0, 1), ylim=(0, 1.01),
           title="Verification ROC on unseen people")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _pairs_of(parts):
    """(distances, same, i, j, part index) over the pairs of each part's unseen people."""
    from strata.vision.faces import pairwise_distances

    out = []
    for k, (_, labels, E, _) in enumerate(parts):
        i, j = np.triu_indices(len(E), k=1)
        d = pairwise_distances(E)[i, j]
        out.append((d, labels[i] == labels[j], i, j, np.full(len(i), k)))
    return [np.concatenate(col) for col in zip(*out)]


def plot_distances(parts, path) -> Path:
    """Histograms of the distances between encodings of the same person and of different
    people (unseen people of every fold), with each fold's threshold tau."""
    plt = _pyplot()
    d, same, *_ = _pairs_of(parts)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    bins = np.linspace(0, max(d.max(), 1e-6), 60)
    ax.hist(d[same], bins, density=True, alpha=0.6, label=f"same person ({same.sum()} pairs)")
    ax.hist(d[~same], bins, density=True, alpha=0.6,
            label=f"different people ({(~same).sum()} pairs)")
    for k, (*_, tau) in enumerate(parts):
        ax.axvline(tau, c="k", ls="--", lw=0.8, label="tau of each fold" if k == 0 else None)
    ax.set(xlabel="||f(x_i) - f(x_j)||", ylabel="density",
           title="Distances between encodings of unseen people")
    ax.legend(fontsize=8)
    return _save(fig, path)


def hardest_errors(parts, path, n: int = 4) -> Path:
    """A grid of the ``n`` hardest errors of each kind at each fold's tau: the same person
    farthest apart (rejected) and different people closest together (accepted)."""
    plt = _pyplot()
    d, same, i, j, part = _pairs_of(parts)
    taus = np.array([p[3] for p in parts])[part]
    rejected = np.flatnonzero(same & (d >= taus))
    accepted = np.flatnonzero(~same & (d < taus))
    # Without errors of a kind, show its closest calls instead.
    rows = [("same person, far", rejected[np.argsort(-d[rejected])][:n] if len(rejected)
             else np.flatnonzero(same)[np.argsort(-d[same])][:n]),
            ("different people, close", accepted[np.argsort(d[accepted])][:n] if len(accepted)
             else np.flatnonzero(~same)[np.argsort(d[~same])][:n])]
    fig, axes = plt.subplots(2, 2 * n, figsize=(1.3 * 2 * n, 3.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, (title, chosen) in enumerate(rows):
        for c, q in enumerate(chosen):
            X, labels = parts[part[q]][0], parts[part[q]][1]
            for side, index in enumerate((i[q], j[q])):
                ax = axes[r, 2 * c + side]
                ax.imshow(X[index, ..., 0] if X.shape[-1] == 1 else X[index], cmap="gray",
                          vmin=0, vmax=1)
                ax.set_title(f"s{labels[index] + 1}" + (f" d={d[q]:.2f}" if side else ""),
                             fontsize=7)
        axes[r, 0].text(-0.1, 0.5, title, transform=axes[r, 0].transAxes, rotation=90,
                        ha="right", va="center", fontsize=8)
    return _save(fig, path)
