"""Sampling novel sequences from a trained language model (C5 W1's ``sample``), one step at a
time: feed x<1> = <EOS>, draw y<t> from softmax(z<t> / temperature), feed it back as x<t+1>,
until <EOS> or ``max_length`` tokens. The recurrent layers' states carry over between steps,
so each step costs one time step of the network, for a whole batch of samples at once."""

from __future__ import annotations

import numpy as np

from strata.autograd import no_grad
from strata.backend import rng
from strata.nn.recurrent import Bidirectional, Recurrent
from strata.text.vocab import Vocabulary


def _recurrent_steps(model):
    layers = list(getattr(model, "layers", [model]))
    for layer in layers:
        if any(isinstance(m, Bidirectional) for m in layer.modules()):
            raise ValueError("sample: a bidirectional layer reads the future of the sequence, "
                             "so it cannot generate one step at a time")
    return layers


def step(layers, ids, states):
    """One time step: logits (m, vocab) for token ids (m,), and the layers' new states."""
    x, new_states = ids[:, None], []
    for layer, state in zip(layers, states, strict=True):
        if isinstance(layer, Recurrent):
            x, state = layer.run(x, initial_state=state)
        else:
            x = layer(x)
        new_states.append(state)
    return x.data[:, 0], new_states


def next_ids(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Draw one id per row from softmax(logits / temperature) with the shared Generator
    (temperature 0: the most likely id, argmax)."""
    if temperature == 0:
        return logits.argmax(axis=1)
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    cdf = np.cumsum(p, axis=1)
    u = rng().random(len(p))[:, None] * cdf[:, -1:]
    # The first index whose cumulative probability exceeds u: np.random.choice(p=...) per row.
    return np.minimum((cdf <= u).sum(axis=1), p.shape[1] - 1)


def sample_ids(model, vocab: Vocabulary, n: int = 1, temperature: float = 1.0,
               max_length: int = 50, prefix: str = "") -> list[np.ndarray]:
    """``n`` sampled id sequences; each ends with <EOS> unless it reached ``max_length``
    tokens first (the course's limit is 50). ``prefix`` text is fed first and kept."""
    if not isinstance(n, int) or n < 1 or max_length < 1:
        raise ValueError(f"sample: expected n >= 1 and max_length >= 1, got {n}, {max_length}")
    if not temperature >= 0:
        raise ValueError(f"sample: expected temperature >= 0, got {temperature}")
    layers = _recurrent_steps(model)
    states = [None] * len(layers)
    given = vocab.encode(prefix, add_eos=False)
    out = np.empty((n, 0), dtype=np.int64)
    ids = np.full(n, vocab.eos_id)
    with no_grad():
        for t in range(len(given) + max_length):
            logits, states = step(layers, ids, states)
            ids = np.full(n, given[t]) if t < len(given) else next_ids(logits, temperature)
            out = np.concatenate([out, ids[:, None]], axis=1)
            finished = (out[:, len(given):] == vocab.eos_id).any(axis=1)
            if finished.all() or out.shape[1] - len(given) >= max_length:
                break
    results = []
    for row in out:
        ends = np.flatnonzero(row[len(given):] == vocab.eos_id)
        results.append(row[:len(given) + ends[0] + 1] if ends.size else row)
    return results


def sample(model, vocab: Vocabulary, n: int = 1, temperature: float = 1.0,
           max_length: int = 50, prefix: str = "") -> list[str]:
    """``n`` novel texts sampled from the model (see ``sample_ids``), without their <EOS>."""
    return [vocab.decode(ids) for ids in sample_ids(model, vocab, n, temperature, max_length,
                                                    prefix)]
