"""The course's text data: dinosaur names (C5 W1, "Dinosaur Island") and Shakespeare's
sonnets (the "Writing like Shakespeare" model), read through strata.data.fetch (the data
directory, or a checksummed download)."""

from __future__ import annotations

from pathlib import Path

from strata.data.download import fetch


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def load_dinos() -> list[str]:
    """The 1536 dinosaur names of dinos.txt, one per line, as written (mixed case)."""
    return [line.strip() for line in _read(fetch("dinos/dinos.txt")).splitlines()
            if line.strip()]


def load_shakespeare() -> str:
    """The text of shakespeare.txt (the sonnets), newlines included."""
    return _read(fetch("shakespeare/shakespeare.txt"))


def load_text(path) -> str:
    """A UTF-8 text file, refused with a clear message when missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no text file at {path}")
    text = _read(path)
    if not text.strip():
        raise ValueError(f"{path} holds no text")
    return text
