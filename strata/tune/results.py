"""What a search leaves behind: the trials as a table (CSV), the best trials as text, and one
plot per hyperparameter of the score against its value (log axis where the space is log-scaled;
beta on the 1 - beta axis, as the course looks at it)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from strata.tune.space import Space


def trials_table(study, space: Space) -> list:
    """One dict per trial: number, state, value, round, seconds and the hyperparameters."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = t.user_attrs.get("seconds")  # set where the trial ran elsewhere (Ray)
        if seconds is None and t.datetime_complete and t.datetime_start:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append({"number": t.number, "state": t.state.name, "value": t.value,
                     "round": t.user_attrs.get("round", ""), "seconds": seconds,
                     **space.decode(t.params)})
    return rows


def write_csv(rows: list, path) -> Path:
    """The trials table as CSV, written atomically."""
    from strata.io import write_text_atomic

    columns = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, out.getvalue())


def best_trials(rows: list, k: int = 5, maximize: bool = True) -> list:
    """The ``k`` best complete trials, best first."""
    done = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    return sorted(done, key=lambda r: r["value"], reverse=maximize)[:k]


def format_trials(rows: list, names: list) -> str:
    """A fixed-width text table of trials (value and hyperparameters)."""
    def show(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    header = ["trial", "value", *names]
    lines = [[str(r["number"]), show(r["value"]), *[show(r.get(n, "")) for n in names]]
             for r in rows]
    widths = [max(len(c) for c in col) for col in zip(header, *lines)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths))
                     for line in [header, *lines])


def plot_scores(rows: list, space: Space, out_dir, metric: str = "score") -> list:
    """One PNG per hyperparameter: score against value, coloured by round; returns the paths."""
    from strata.plots import _pyplot, _save

    plt = _pyplot()
    done = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    paths = []
    for d in space:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        x = [r[d.name] for r in done]
        if d.kind == "one_minus_log":
            x, label = [1 - v for v in x], f"1 - {d.name}"
        else:
            label = d.name
        rounds = np.array([r["round"] if r["round"] != "" else 0 for r in done])
        if d.kind == "choice":
            ticks = list(d.choices)
            x = [ticks.index(v) if v in ticks else -1 for v in x]
            ax.set_xticks(range(len(ticks)), [str(c) for c in ticks])
        ax.scatter(x, [r["value"] for r in done], c=rounds, cmap="viridis", s=22,
                   edgecolors="k", linewidths=0.4)
        if d.log_scale:
            ax.set_xscale("log")
        elif d.kind == "pow2":
            ax.set_xscale("log", base=2)
        ax.set_xlabel(label + (" (log scale)" if d.log_scale or d.kind == "pow2" else ""))
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} vs {label} ({len(done)} trials; colour: round)")
        paths.append(_save(fig, Path(out_dir) / f"score_vs_{d.name}.png"))
    return paths
