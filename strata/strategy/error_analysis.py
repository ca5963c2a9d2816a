"""Error analysis (course 3 week 2): look at a sample of misclassified dev examples, tag each by
what went wrong, and count. The course's spreadsheet gives, per category, the share of errors it
explains and so the ceiling on what fixing it can gain; a column for incorrectly labelled
examples tells whether relabelling the dev set is worth it.

Two ways to tag: write a CSV template (``write_tag_template``), fill it in a spreadsheet, and read
it back (``error_analysis(..., tags="errors.csv")``); or give predicate functions
``f(x, y_true, y_pred) -> bool`` (``error_analysis(..., predicates={...}, X=X_dev)``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from strata import backend
from strata.metrics import _as_classes

MISLABELED = "incorrectly labeled"
TRUE_WORDS = {"1", "x", "y", "yes", "true", "t"}
FALSE_WORDS = {"", "0", "n", "no", "false", "f", "-"}
FIXED_COLUMNS = ("id", "true", "predicted", "comments")


def misclassified(y_true, y_pred, threshold: float = 0.5) -> np.ndarray:
    """Indices of the examples whose predicted class differs from the label."""
    t = _as_classes(y_true, "y_true", "misclassified", threshold)
    p = _as_classes(y_pred, "y_pred", "misclassified", threshold)
    if len(t) != len(p):
        raise ValueError(f"misclassified: y_true has {len(t)} examples but y_pred {len(p)}")
    return np.flatnonzero(t != p)


def sample_errors(y_true, y_pred, n: int = 100, rng=None) -> np.ndarray:
    """A random sample (sorted indices) of up to ``n`` misclassified examples, drawn with the
    shared seeded generator; all of them when there are fewer than ``n``."""
    wrong = misclassified(y_true, y_pred)
    if len(wrong) <= n:
        return wrong
    return np.sort((backend.rng() if rng is None else rng).choice(wrong, n, replace=False))


def write_tag_template(path, ids, categories, y_true=None, y_pred=None) -> Path:
    """A CSV to fill in: one row per sampled example (id, label, prediction), one column per
    category plus "incorrectly labeled" and "comments". Mark a tag with 1 or x."""
    from strata.io import write_text_atomic

    categories = [c for c in categories if c != MISLABELED] + [MISLABELED]
    t = None if y_true is None else _as_classes(y_true, "y_true", "write_tag_template", 0.5)
    p = None if y_pred is None else _as_classes(y_pred, "y_pred", "write_tag_template", 0.5)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "true", "predicted", *categories, "comments"])
    for i in ids:
        writer.writerow([int(i), "" if t is None else t[i], "" if p is None else p[i],
                         *[""] * len(categories), ""])
    return write_text_atomic(path, out.getvalue())


def _flag(value: str, where: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{where}: expected a tag mark (1, x, yes / empty, 0, no), got {value!r}")


def read_tags(path) -> tuple[np.ndarray, dict]:
    """(ids, {category: bool array}) from a filled-in tag CSV; errors name the file's line."""
    path = Path(path)
    rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    if not rows or "id" not in [h.strip().lower() for h in rows[0]]:
        raise ValueError(f"{path}, line 1: expected a header with an 'id' column, got "
                         f"{rows[0] if rows else 'an empty file'}")
    header = [h.strip() for h in rows[0]]
    id_col = [h.lower() for h in header].index("id")
    categories = [h for h in header if h.lower() not in FIXED_COLUMNS and h]
    ids, flags = [], {c: [] for c in categories}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise ValueError(f"{path}, line {line}: {len(row)} cells but the header has "
                             f"{len(header)} columns")
        row = row + [""] * (len(header) - len(row))
        try:
            ids.append(int(row[id_col]))
        except ValueError:
            raise ValueError(f"{path}, line {line}: expected an example id (an integer), got "
                             f"{row[id_col]!r}") from None
        for c in categories:
            flags[c].append(_flag(row[header.index(c)], f"{path}, line {line}, column {c!r}"))
    return np.array(ids, dtype=np.int64), {c: np.array(v, dtype=bool) for c, v in flags.items()}


def tag_with(predicates: dict, ids, X, y_true, y_pred) -> dict:
    """{category: bool array} from predicates ``f(x, y_true, y_pred) -> bool`` per example."""
    t = _as_classes(y_true, "y_true", "tag_with", 0.5)
    p = _as_classes(y_pred, "y_pred", "tag_with", 0.5)
    return {name: np.array([bool(f(X[i], t[i], p[i])) for i in ids], dtype=bool)
            for name, f in predicates.items()}


@dataclass
class ErrorAnalysis:
    """The course's error-analysis spreadsheet for a sample of misclassified dev examples."""

    ids: np.ndarray
    tags: dict
    dev_error: float
    mislabeled: str = MISLABELED

    @property
    def rows(self) -> list:
        """Per category: count, share of the sampled errors, and the ceiling on improvement
        (share x dev error: what the dev error would drop by if that category were fixed)."""
        n = max(len(self.ids), 1)
        out = []
        for name, flags in self.tags.items():
            share = float(np.sum(flags)) / n
            out.append({"category": name, "count": int(np.sum(flags)), "percent": 100 * share,
                        "ceiling": share * self.dev_error})
        return sorted(out, key=lambda r: -r["count"])

    @property
    def mislabeled_share(self) -> float | None:
        """Fraction of the sampled errors due to incorrect labels (None if not tagged)."""
        flags = self.tags.get(self.mislabeled)
        return None if flags is None or len(flags) == 0 else float(np.mean(flags))

    @property
    def decomposition(self) -> dict:
        """Overall dev error = errors due to incorrect labels + errors due to other causes."""
        share = self.mislabeled_share or 0.0
        return {"overall dev error": self.dev_error,
                "errors due to incorrect labels": share * self.dev_error,
                "errors due to other causes": (1 - share) * self.dev_error}

    def to_csv(self, path) -> Path:
        """The table as CSV (category, count, percent of errors, ceiling), written atomically."""
        from strata.io import write_text_atomic

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["category", "count", "percent_of_errors", "ceiling"])
        for r in self.rows:
            writer.writerow([r["category"], r["count"], f"{r['percent']:.1f}",
                             f"{r['ceiling']:.4f}"])
        return write_text_atomic(path, out.getvalue())

    def to_markdown(self) -> str:
        """The table, the decomposition of the dev error and the course's advice, in Markdown."""
        lines = [f"Error analysis of {len(self.ids)} misclassified dev examples (dev error "
                 f"{self.dev_error:.2%}).", "",
                 "| category | count | % of errors | ceiling (dev error drop) |",
                 "|---|---|---|---|"]
        lines += [f"| {r['category']} | {r['count']} | {r['percent']:.1f} % | "
                  f"{r['ceiling']:.2%} |" for r in self.rows]
        if self.mislabeled_share is not None:
            lines += ["", *[f"- {k}: {v:.2%}" for k, v in self.decomposition.items()],
                      "", self._label_advice()]
        return "\n".join(lines) + "\n"

    def _label_advice(self) -> str:
        d = self.decomposition
        if d["errors due to incorrect labels"] >= d["errors due to other causes"] / 3:
            return ("Incorrect labels are a large share of the dev error: fix the dev (and "
                    "test) labels, looking at examples the model got right as well as wrong.")
        return ("Incorrect labels are a small share of the dev error: work on the largest "
                "category first; relabelling can wait.")

    def __str__(self) -> str:
        return self.to_markdown()


def error_analysis(y_true, y_pred, tags=None, predicates=None, X=None, n: int = 100,
                   ids=None, mislabeled: str = MISLABELED) -> ErrorAnalysis:
    """The error-analysis table of dev predictions: tags from a filled-in CSV (``tags``: its
    path) or from ``predicates`` applied to a sample (``ids``, or ``n`` drawn at random)."""
    wrong = misclassified(y_true, y_pred)
    dev_error = len(wrong) / len(np.asarray(y_true))
    if (tags is None) == (predicates is None):
        raise ValueError("error_analysis: expected either tags (a filled-in CSV) or predicates")
    if tags is not None:
        ids, flags = read_tags(tags)
        stray = sorted(set(ids.tolist()) - set(wrong.tolist()))
        if stray:
            raise ValueError(f"error_analysis: {tags}: examples {stray[:5]} are not "
                             f"misclassified dev examples (ids index the dev set)")
    else:
        if X is None:
            raise ValueError("error_analysis: predicates need the dev examples X")
        ids = sample_errors(y_true, y_pred, n) if ids is None else np.asarray(ids)
        flags = tag_with(predicates, ids, X, y_true, y_pred)
    return ErrorAnalysis(np.asarray(ids), flags, dev_error, mislabeled)


def plot_errors(X, ids, y_true, y_pred, path, tags: dict | None = None, cols: int = 8) -> Path:
    """A grid PNG of the sampled misclassified images, titled "id: label -> prediction" and
    their first tag."""
    from strata.plots import plot_image_grid

    t = _as_classes(y_true, "y_true", "plot_errors", 0.5)
    p = _as_classes(y_pred, "y_pred", "plot_errors", 0.5)
    titles = []
    for k, i in enumerate(ids):
        marks = [name for name, flags in (tags or {}).items() if flags[k]]
        titles.append(f"{i}: {t[i]}->{p[i]}" + (f"\n{marks[0]}" if marks else ""))
    return plot_image_grid(np.asarray(X)[np.asarray(ids)], titles, path, cols)
