"""Looking up the library's small name tables ("adam", "relu", "he", "accuracy"...)."""

from __future__ import annotations


def lookup(table: dict, value, kind: str):
    """``value`` itself when it is callable, else ``table[value]`` (case-insensitive), with an
    error that lists the valid names."""
    if callable(value):
        return value
    key = value.lower() if isinstance(value, str) else value
    try:
        return table[key]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {kind} {value!r}; valid names: "
                         f"{', '.join(sorted(table))}, or a callable") from None
