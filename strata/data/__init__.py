"""Datasets and data handling. Generated datasets need no files."""

from strata.data.generated import planar_flower

__all__ = ["planar_flower"]
