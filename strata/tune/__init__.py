"""Hyperparameter search (course 2 week 3): spaces on the course's scales, random search
coarse to fine, panda and caviar modes, on Optuna studies kept in SQLite or PostgreSQL, and on
Ray clusters. Needs the ``tune`` extra (Optuna; ``cluster`` adds Ray)."""

from strata.extras import require

require("optuna", "tune", "strata.tune (hyperparameter search)")

# ruff: noqa: E402 -- the check above comes first, so a missing Optuna names its extra

from strata.tune.config import SearchConfig, SpaceFileError, load_search
from strata.tune.panda import Panda
from strata.tune.search import search
from strata.tune.space import KINDS, Dimension, Space
from strata.tune.study import open_study, run_worker, storage_url

__all__ = [
    "Dimension", "Space", "KINDS", "SearchConfig", "SpaceFileError", "load_search",
    "search", "open_study", "run_worker", "storage_url", "Panda",
]
