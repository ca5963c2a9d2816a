"""Language models (C5 W1): the network, its training pairs, training with cross-entropy over
every time step, and the probability of a sentence.

A sequence of token ids y<1>..y<T> (ending with <EOS>) is learned from the inputs
x<1> = <EOS>, x<t> = y<t-1>: the network reads the sentence so far and its softmax at step t is
P(y<t> | y<1>..y<t-1>). The course feeds a zero vector as x<1>; <EOS> plays that role here (the
end of a previous sentence), which also lets an embedding layer take it.
P(sentence) = P(y<1>) P(y<2> | y<1>) ... P(y<T> | ...), computed as a sum of log-probabilities.
"""

from __future__ import annotations

import numpy as np

from strata import nn, ops
from strata.autograd import no_grad
from strata.backend import rng
from strata.losses import sequence_crossentropy
from strata.optim import clip_grad_norm, clip_grad_value, get_optimizer
from strata.text.vocab import Vocabulary, pad_sequences

CELLS = {"rnn": nn.SimpleRNN, "gru": nn.GRU, "lstm": nn.LSTM}


def language_model(vocab_size: int, cell: str = "lstm", units: int = 128, layers: int = 1,
                   embedding: int | None = None) -> nn.Sequential:
    """Inputs one-hot (``embedding=None``, the course's x<t>) or an Embedding of that size,
    ``layers`` stacked recurrent layers (cell "rnn", "gru" or "lstm") of ``units``, and a
    Dense output at every step giving the logits of y_hat<t> (m, T, vocab_size)."""
    if cell not in CELLS:
        raise ValueError(f"language_model: expected cell among {sorted(CELLS)}, got {cell!r}")
    if not isinstance(layers, int) or layers < 1:
        raise ValueError(f"language_model: expected layers >= 1, got {layers!r}")
    first = (nn.OneHot(vocab_size) if embedding is None
             else nn.Embedding(vocab_size, embedding))
    recurrent = [CELLS[cell](units, return_sequences=True) for _ in range(layers)]
    return nn.Sequential([first, *recurrent, nn.TimeDistributed(nn.Dense(vocab_size))])


def sentence_pairs(sequences, start: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(x, y) per sequence of ids y (ending with <EOS>): x = [start, y<1>, ..., y<T-1>]."""
    pairs = []
    for y in sequences:
        y = np.asarray(y, dtype=np.int64)
        if y.size == 0:
            continue
        pairs.append((np.concatenate([[start], y[:-1]]), y))
    return pairs


def stream_pairs(ids, length: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Consecutive windows of one long text: x = ids[i : i + length], y = x shifted by one."""
    ids = np.asarray(ids, dtype=np.int64)
    if length < 1 or len(ids) < length + 1:
        raise ValueError(f"stream_pairs: need a text longer than length {length}, got "
                         f"{len(ids)} tokens")
    starts = range(0, len(ids) - length, length)
    return [(ids[s:s + length], ids[s + 1:s + length + 1]) for s in starts]


def batch(pairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, Y, mask) of a list of (x, y) pairs, right-padded: X with id 0, Y with -1."""
    X, mask = pad_sequences([x for x, _ in pairs])
    Y, _ = pad_sequences([y for _, y in pairs], value=-1)
    return X, Y, mask


def _build(model, pairs) -> None:
    """Create every lazily-sized weight before the optimizer collects the parameters."""
    with no_grad():
        model(batch(pairs[:1])[0])


def train_language_model(model, pairs, steps: int, batch_size: int = 32, optimizer="adam",
                         lr: float = 0.01, clip_norm: float | None = 5.0,
                         clip_value: float | None = None, reduction: str = "sequence",
                         callback=None) -> list[float]:
    """Train on random mini-batches of (x, y) pairs for ``steps`` updates; returns the loss of
    every step. The loss is the cross-entropy summed over the steps of each sequence and
    averaged over the batch (``reduction="sequence"``, the course's loss per name; "token"
    averages over tokens). Gradients are clipped by global norm (``clip_norm``) and/or by
    value (``clip_value``, the course's clip(gradients, maxValue)). ``callback(step, loss)``
    is called after every step."""
    if not pairs:
        raise ValueError("train_language_model: got no training pairs")
    _build(model, pairs)
    opt = get_optimizer(optimizer, model.parameters(), lr=lr)
    order, position, losses = rng().permutation(len(pairs)), 0, []
    for step in range(steps):
        if position >= len(order):  # a new epoch: reshuffle
            order, position = rng().permutation(len(pairs)), 0
        chosen = order[position:position + batch_size]
        position += batch_size
        X, Y, mask = batch([pairs[i] for i in chosen])
        opt.zero_grad()
        loss = sequence_crossentropy(model(X, mask=mask), Y, reduction=reduction)
        loss.backward()
        if clip_norm is not None:
            clip_grad_norm(model, clip_norm)
        if clip_value is not None:
            clip_grad_value(model, clip_value)
        opt.step()
        losses.append(loss.item())
        if callback is not None:
            callback(step, losses[-1])
    model.eval()
    return losses


def evaluate_language_model(model, pairs, reduction: str = "sequence",
                            batch_size: int = 256) -> float:
    """The loss over all ``pairs`` (per sequence or per token, as in training)."""
    total = count = 0.0
    with no_grad():
        for i in range(0, len(pairs), batch_size):
            X, Y, mask = batch(pairs[i:i + batch_size])
            logits = model(X, mask=mask)
            loss = sequence_crossentropy(logits, Y, reduction=reduction).item()
            weight = len(X) if reduction == "sequence" else int(mask.sum())
            total, count = total + loss * weight, count + weight
    return total / count


def token_log_probabilities(model, vocab: Vocabulary, text: str) -> np.ndarray:
    """log P(y<t> | y<1>..y<t-1>) for every token of ``text`` and its final <EOS>."""
    y = vocab.encode(text)
    x = np.concatenate([[vocab.eos_id], y[:-1]])
    with no_grad():
        log_probs = ops.log_softmax(model(x[None]), axis=-1).data[0]
    return log_probs[np.arange(len(y)), y].astype(np.float64)


def sentence_log_probability(model, vocab: Vocabulary, text: str) -> float:
    """log P(sentence): the sum of the log-probabilities of its tokens and <EOS>."""
    return float(token_log_probabilities(model, vocab, text).sum())


def sentence_probability(model, vocab: Vocabulary, text: str) -> float:
    """P(sentence) = P(y<1>) P(y<2> | y<1>) ... P(<EOS> | ...) (underflows for long texts:
    prefer ``sentence_log_probability``)."""
    return float(np.exp(sentence_log_probability(model, vocab, text)))
