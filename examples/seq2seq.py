"""An encoder-decoder (sequence to sequence) model written as a Model subclass, PyTorch style,
trained with Keras's fit on two inputs, saved whole and loaded back compiled.

The task: read a sequence of digits and write it reversed. The encoder LSTM reads the source
and hands its final states (a, c) to the decoder LSTM, which is trained with teacher forcing:
its input at step t is the target at step t - 1 (a start token first).

    python examples/seq2seq.py          # trains in a few seconds, saves, reloads, decodes
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import strata
from strata import nn

DIGITS, START, LENGTH = 10, 10, 5  # tokens 0-9, then the decoder's start token


@nn.register
class Seq2Seq(nn.Model):
    """Embedding -> LSTM encoder; its states start the LSTM decoder; a softmax per step."""

    def __init__(self, vocab: int = DIGITS + 1, units: int = 64, embedding: int = 16):
        self.source_embedding = nn.Embedding(vocab, embedding)
        self.target_embedding = nn.Embedding(vocab, embedding)
        self.encoder = nn.LSTM(units, return_state=True)
        self.decoder = nn.LSTM(units, return_sequences=True)
        self.head = nn.TimeDistributed(nn.Dense(DIGITS, "softmax"))

    def forward(self, source, target_in):
        _, a, c = self.encoder(self.source_embedding(source))
        states = self.decoder(self.target_embedding(target_in), initial_state=(a, c))
        return self.head(states)

    def decode(self, source: np.ndarray) -> np.ndarray:
        """Greedy decoding, one step at a time, feeding back each predicted digit."""
        out = np.full((len(source), 1), START)
        for _ in range(source.shape[1]):
            probabilities = self.predict((source, out))
            out = np.concatenate([out, probabilities[:, -1].argmax(-1)[:, None]], axis=1)
        return out[:, 1:]


def reversal_data(m: int, seed: int = 0):
    """((source, decoder input), target) for m random digit sequences and their reversal."""
    source = np.random.default_rng(seed).integers(0, DIGITS, (m, LENGTH))
    target = source[:, ::-1].copy()
    target_in = np.concatenate([np.full((m, 1), START), target[:, :-1]], axis=1)
    return (source, target_in), target


def main(folder=None, examples: int = 2000, epochs: int = 12, units: int = 64) -> float:
    """Train, save, reload and decode; returns the reloaded model's sequence accuracy."""
    strata.seed(0)
    (source, target_in), target = reversal_data(examples)
    model = Seq2Seq(units=units)
    model.compile(optimizer="adam", lr=0.01, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit((source, target_in), target, epochs=epochs, batch_size=64, verbose=0)
    model.summary()
    path = model.save(Path(folder or tempfile.mkdtemp()) / "seq2seq.safetensors")
    loaded = strata.load_model(path)  # Seq2Seq again, compiled, with Adam's state
    (test_source, _), test_target = reversal_data(200, seed=1)
    decoded = loaded.decode(test_source)
    accuracy = float((decoded == test_target).all(axis=1).mean())
    print(f"{test_source[0]} -> {decoded[0]}; whole sequences right: {accuracy:.1%}")
    return accuracy


if __name__ == "__main__":
    sys.exit(0 if main() > 0.9 else 1)
