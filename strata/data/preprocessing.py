"""Input normalization (course 2 week 1): fit mean and variance on the training set only, then
apply the same transform to dev and test sets."""

from __future__ import annotations

import numpy as np

from strata import backend


class Normalizer:
    """x_norm = (x - mu) / sqrt(sigma^2 + epsilon), per feature, with mu and sigma^2 from the
    training set. ``Normalizer().fit(X_train)``; then ``transform`` any set the same way."""

    def __init__(self, epsilon: float = 1e-8):
        if not epsilon > 0:
            raise ValueError(f"Normalizer: expected epsilon > 0, got {epsilon}")
        self.epsilon = epsilon
        self.mean = self.var = None

    def fit(self, X) -> Normalizer:
        """Compute mu and sigma^2 over the examples (first axis) of the training set."""
        X = np.asarray(X)
        if X.ndim < 2 or len(X) == 0:
            raise ValueError(f"Normalizer.fit: expected a non-empty (m, ...) array, got shape "
                             f"{X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("Normalizer.fit: the training set contains NaN or infinite values")
        self.mean, self.var = X.mean(axis=0), X.var(axis=0)
        return self

    def transform(self, X) -> np.ndarray:
        """Apply the training set's normalization to X (train, dev or test)."""
        if self.mean is None:
            raise RuntimeError("Normalizer.transform: call fit(X_train) first")
        X = np.asarray(X)
        if X.shape[1:] != self.mean.shape:
            raise ValueError(f"Normalizer.transform: fitted on examples of shape "
                             f"{self.mean.shape}, got {X.shape[1:]}")
        dtype = X.dtype if X.dtype.kind == "f" else backend.get_default_dtype()
        return ((X - self.mean) / np.sqrt(self.var + self.epsilon)).astype(dtype)

    def fit_transform(self, X) -> np.ndarray:
        """fit(X) then transform(X)."""
        return self.fit(X).transform(X)
