"""Vocabularies (C5 W1): tokens <-> integer ids, with the <EOS> and <UNK> tokens, and padding
of variable-length sequences into a batch with its mask."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from strata.io import write_text_atomic

EOS = "<EOS>"
UNK = "<UNK>"
LEVELS = ("char", "word")
_WORD = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str, level: str = "char") -> list[str]:
    """Characters of ``text``, or its words and punctuation marks ("it's" -> it ' s)."""
    if level not in LEVELS:
        raise ValueError(f"tokenize: expected level 'char' or 'word', got {level!r}")
    return list(text) if level == "char" else _WORD.findall(text)


class Vocabulary:
    """Tokens and their ids: <EOS> is id 0 (the course's "\\n" ends a dinosaur name and is
    its index 0), then <UNK> (id 1) when ``unk=True``, then the tokens in order.

    ``encode`` maps an unknown token to <UNK> when the vocabulary has it and raises otherwise;
    ``decode`` stops at <EOS>. ``lower=True`` lower-cases text before tokenizing (the course
    does so for the dinosaur names).

    >>> vocab = Vocabulary.build(["ab", "ba"])
    >>> vocab.tokens, vocab.encode("ba").tolist(), vocab.decode([2, 1, 0, 1])
    (['<EOS>', 'a', 'b'], [2, 1, 0], 'ba')
    """

    def __init__(self, tokens, level: str = "char", lower: bool = False, unk: bool = False):
        if level not in LEVELS:
            raise ValueError(f"Vocabulary: expected level 'char' or 'word', got {level!r}")
        tokens = list(tokens)
        specials = [EOS] + ([UNK] if unk else [])
        clash = [t for t in tokens if t in (EOS, UNK)]
        if clash or len(set(tokens)) != len(tokens):
            raise ValueError(f"Vocabulary: tokens must be distinct and not {EOS}/{UNK}, got "
                             f"duplicates or specials {clash[:3]}")
        self.level, self.lower, self.unk = level, bool(lower), bool(unk)
        self.tokens = specials + tokens
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.eos_id = 0
        self.unk_id = 1 if unk else None

    @classmethod
    def build(cls, texts, level: str = "char", lower: bool = False, unk: bool = False,
              min_count: int = 1, max_size: int | None = None) -> Vocabulary:
        """The vocabulary of ``texts`` (a string or strings): characters in sorted order, or
        words by decreasing frequency; tokens seen fewer than ``min_count`` times, or beyond
        ``max_size`` tokens, are left out (they become <UNK> if ``unk``)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        counts = Counter(t for text in texts for t in tokenize(
            text.lower() if lower else text, level))
        kept = [t for t, c in counts.items() if c >= min_count]
        if level == "char":
            kept.sort()
        else:
            kept.sort(key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max(0, max_size - 1 - bool(unk))]
        return cls(kept, level, lower, unk)

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return (f"Vocabulary({len(self)} {self.level} tokens, lower={self.lower}, "
                f"unk={self.unk})")

    def encode(self, text: str, add_eos: bool = True) -> np.ndarray:
        """Token ids of ``text`` (int64), followed by <EOS> unless ``add_eos=False``."""
        tokens = tokenize(text.lower() if self.lower else text, self.level)
        ids = [self.index.get(t, self.unk_id) for t in tokens]
        if None in ids:
            at = ids.index(None)
            raise ValueError(f"Vocabulary.encode: token {tokens[at]!r} (position {at}) is not "
                             f"in this vocabulary of {len(self)} tokens; build it with "
                             f"unk=True to map unknown tokens to {UNK}")
        return np.array(ids + ([self.eos_id] if add_eos else []), dtype=np.int64)

    def decode(self, ids, stop_at_eos: bool = True) -> str:
        """The text of ``ids``: characters joined, or words joined by spaces; stops at the
        first <EOS> (or skips every <EOS> when ``stop_at_eos=False``)."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"Vocabulary.decode: ids must be integers in [0, {len(self)}), "
                             f"got {ids[:8].tolist()}")
        tokens = []
        for i in ids.tolist():
            if i == self.eos_id:
                if stop_at_eos:
                    break
                continue
            tokens.append(self.tokens[i])
        return ("" if self.level == "char" else " ").join(tokens)

    def to_dict(self) -> dict:
        """The vocabulary as plain JSON data."""
        specials = 1 + self.unk
        return {"tokens": self.tokens[specials:], "level": self.level, "lower": self.lower,
                "unk": self.unk}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        """Rebuild from ``to_dict``'s output."""
        return cls(data["tokens"], data["level"], data["lower"], data["unk"])

    def save(self, path) -> Path:
        """Write the vocabulary as JSON."""
        path = Path(path)
        write_text_atomic(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path) -> Vocabulary:
        """Read a vocabulary written by ``save``."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def pad_sequences(sequences, value: int = 0, length: int | None = None):
    """Right-pad integer sequences to one length: (padded (m, T) int64, mask (m, T) bool, True
    at real steps). ``length`` defaults to the longest; longer sequences are refused.

    >>> padded, mask = pad_sequences([[5, 6, 7], [8]])
    >>> padded.tolist(), mask.sum(axis=1).tolist()
    ([[5, 6, 7], [8, 0, 0]], [3, 1])
    """
    sequences = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]
    if not sequences:
        raise ValueError("pad_sequences: got no sequences")
    longest = max(len(s) for s in sequences)
    length = longest if length is None else length
    if longest > length:
        raise ValueError(f"pad_sequences: a sequence of length {longest} does not fit in "
                         f"length {length}")
    padded = np.full((len(sequences), length), value, dtype=np.int64)
    mask = np.zeros((len(sequences), length), dtype=bool)
    for i, s in enumerate(sequences):
        padded[i, :len(s)] = s
        mask[i, :len(s)] = True
    return padded, mask
