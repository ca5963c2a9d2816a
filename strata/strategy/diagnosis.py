"""Bias, variance, data mismatch and overfitting to the dev set (course 3, weeks 1-2).

Human-level error stands in for Bayes error. Each gap between consecutive errors is one problem:

    human-level --(avoidable bias)--> training --(variance)--> training-dev
                --(data mismatch)--> dev --(overfitting to the dev set)--> test

Without a training-dev set the course's week-1 reading applies: variance = dev - training (and
data mismatch cannot be told apart from it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The gaps in the order the course reads them, each with its recommended next actions.
ACTIONS = {
    "avoidable bias": [
        "train a bigger model (more hidden units or layers)",
        "train longer, or use a better optimization algorithm (momentum, RMSprop, Adam)",
        "search for a better architecture and hyperparameters",
    ],
    "variance": [
        "get more training data",
        "add regularization (L2, dropout, data augmentation)",
        "search for a better architecture and hyperparameters",
    ],
    "data mismatch": [
        "carry out manual error analysis to understand how training and dev/test data differ",
        "make the training data more like the dev/test data (artificial data synthesis), or "
        "collect more data like the dev/test data",
    ],
    "overfitting to the dev set": [
        "get a bigger dev set (the dev set has been tuned to)",
    ],
}
GAPS = tuple(ACTIONS)


def _rate(value, name: str, required: bool = False):
    if value is None:
        if required:
            raise ValueError(f"diagnose: the {name} error is required, got None")
        return None
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"diagnose: expected the {name} error as a fraction in [0, 1] "
                         f"(0.08 for 8 %), got {value}")
    return value


@dataclass(frozen=True)
class Diagnosis:
    """The errors of a model on its sets, the gaps between them and the course's reading."""

    human: float | None
    train: float
    train_dev: float | None
    dev: float
    test: float | None = None
    tolerance: float = 0.005

    @property
    def bayes(self) -> float:
        """The Bayes-error proxy: human-level error, or 0 when none was given."""
        return 0.0 if self.human is None else self.human

    @property
    def avoidable_bias(self) -> float:
        """Training error - human-level error."""
        return self.train - self.bayes

    @property
    def variance(self) -> float:
        """Training-dev error - training error (dev - training without a training-dev set)."""
        return (self.dev if self.train_dev is None else self.train_dev) - self.train

    @property
    def data_mismatch(self) -> float | None:
        """Dev error - training-dev error (None without a training-dev set)."""
        return None if self.train_dev is None else self.dev - self.train_dev

    @property
    def dev_overfitting(self) -> float | None:
        """Test error - dev error: the degree of overfitting to the dev set (None without test)."""
        return None if self.test is None else self.test - self.dev

    @property
    def gaps(self) -> dict:
        """Problem name -> size, for the problems these errors can measure."""
        sizes = dict(zip(GAPS, (self.avoidable_bias, self.variance, self.data_mismatch,
                                self.dev_overfitting)))
        return {name: gap for name, gap in sizes.items() if gap is not None}

    @property
    def dominant(self) -> str | None:
        """The largest gap's name; None when every gap is within ``tolerance``."""
        name, gap = max(self.gaps.items(), key=lambda item: item[1])
        return name if gap > self.tolerance else None

    @property
    def actions(self) -> list:
        """The course's next actions for the dominant problem."""
        return list(ACTIONS[self.dominant]) if self.dominant else [
            "the errors are close to human level: improvements from here are slow; look at "
            "error analysis or a better human-level estimate"]

    def notes(self) -> list:
        """Caveats of this reading: missing sets, errors below human level."""
        notes = []
        if self.human is None:
            notes.append("no human-level error given: Bayes error taken as 0 %")
        if self.train_dev is None:
            notes.append("no training-dev set: variance is dev - training error, and data "
                         "mismatch cannot be told apart from it")
        if self.human is not None and self.train < self.human:
            notes.append("training error is below human level: Bayes error is lower than this "
                         "proxy, and the usual ways to progress get harder")
        return notes

    def to_dict(self) -> dict:
        """Errors, gaps, the dominant problem and the actions, as plain values (for JSON)."""
        return {"errors": {k: getattr(self, k) for k in
                           ("human", "train", "train_dev", "dev", "test")},
                "gaps": self.gaps, "dominant": self.dominant, "actions": self.actions,
                "notes": self.notes()}

    def _rows(self):
        names = {"human": "human-level (proxy for Bayes)", "train": "training",
                 "train_dev": "training-dev", "dev": "dev", "test": "test"}
        gap_after = {"train": "avoidable bias", "train_dev": "variance",
                     "dev": "data mismatch" if self.train_dev is not None else "variance",
                     "test": "overfitting to the dev set"}
        for key, label in names.items():
            value = getattr(self, key)
            if value is None:
                continue
            gap = gap_after.get(key)
            size = self.gaps.get(gap) if gap else None
            if key == "dev" and self.train_dev is None:
                size = self.variance
            yield label, value, (gap if size is not None else ""), size

    def to_markdown(self) -> str:
        """The reading as a Markdown section (the training report's)."""
        lines = ["| error | value | gap above the previous | size |", "|---|---|---|---|"]
        for label, value, gap, size in self._rows():
            shown = "" if size is None else f"{size:.2%}"
            lines.append(f"| {label} error | {value:.2%} | {gap} | {shown} |")
        lines += ["", self._verdict(), "", *[f"- {a}" for a in self.actions]]
        if self.notes():
            lines += ["", *[f"Note: {n}." for n in self.notes()]]
        return "\n".join(lines) + "\n"

    def _verdict(self) -> str:
        if self.dominant is None:
            return "Focus: no gap above tolerance; the model is close to human level."
        return (f"Focus on {self.dominant} ({self.gaps[self.dominant]:.2%}, the largest gap). "
                f"Next actions:")

    def __str__(self) -> str:
        lines = []
        for label, value, gap, size in self._rows():
            tail = "" if size is None else f"   {gap} {size:.2%}"
            lines.append(f"{label + ' error':<40}{value:>7.2%}{tail}")
        lines += ["", self._verdict(), *[f"  - {a}" for a in self.actions]]
        lines += [f"Note: {n}." for n in self.notes()]
        return "\n".join(lines)


def diagnose(human=None, train=None, train_dev=None, dev=None, test=None,
             tolerance: float = 0.005) -> Diagnosis:
    """Read the errors (fractions: 0.08 for 8 %) as the course does; train and dev required.

    >>> diagnose(human=0.01, train=0.08, dev=0.10).dominant
    'avoidable bias'
    >>> diagnose(human=0.075, train=0.08, dev=0.10).dominant
    'variance'
    """
    return Diagnosis(_rate(human, "human-level"), _rate(train, "training", True),
                     _rate(train_dev, "training-dev"), _rate(dev, "dev", True),
                     _rate(test, "test"), float(tolerance))


def classification_error(model, X, Y) -> float:
    """1 - accuracy of ``model.predict(X)`` against Y (probabilities, logits or class rows)."""
    from strata.metrics import accuracy

    out = np.asarray(model.predict(X))
    if getattr(model, "_to_probabilities", False):
        out = 1 / (1 + np.exp(-out))  # the model was compiled with a binary loss on logits
    return 1.0 - accuracy(Y, out)


def diagnose_model(model, human_error=None, train=None, train_dev=None, dev=None, test=None,
                   error=classification_error, tolerance: float = 0.005) -> Diagnosis:
    """Compute the model's error on each (X, Y) set given and diagnose them.

    ``error(model, X, Y) -> float`` defaults to the classification error (1 - accuracy).
    """
    errors = {}
    for name, part in (("train", train), ("train_dev", train_dev), ("dev", dev),
                       ("test", test)):
        if part is None:
            continue
        if not isinstance(part, (tuple, list)) or len(part) != 2:
            raise ValueError(f"diagnose_model: expected {name}=(X, Y), got "
                             f"{type(part).__name__}")
        errors[name] = error(model, *part)
    return diagnose(human=human_error, tolerance=tolerance, **errors)
