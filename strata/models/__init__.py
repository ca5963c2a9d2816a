"""Ready-made models. course: the networks of courses 1 and 2."""

from strata.models.course import deep_network, logistic_regression, shallow_network

__all__ = ["logistic_regression", "shallow_network", "deep_network"]
