"""A search worker process: ``python -m strata.tune.worker SEARCH_JSON STORAGE_URL [ID]``.

Start as many as you like, on this machine or others (with a PostgreSQL storage URL): each runs
trials of the same study until it holds the search's number of finished trials. SEARCH_JSON is
the ``search.json`` that ``strata tune`` writes next to its results.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import optuna

from strata.tune.config import config_from_dict
from strata.tune.study import run_worker


def main(argv=None) -> int:
    """Entry point of a worker process."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    config = config_from_dict(json.loads(Path(argv[0]).read_text()))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    worker = int(argv[2]) if len(argv) == 3 else 0

    def log(study, trial):
        print(f"worker {worker}: trial {trial.number} {trial.state.name} value {trial.value}",
              flush=True)

    run_worker(config, argv[1], worker, on_trial=log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
