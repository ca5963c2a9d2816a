"""strata.text: vocabularies, padding, the masked sequence loss, language-model training,
sentence probabilities and sampling."""

from __future__ import annotations

import numpy as np
import pytest

import strata
import strata.nn as nn
from strata.losses import sequence_crossentropy
from strata.text import (
    EOS,
    UNK,
    Vocabulary,
    language_model,
    pad_sequences,
    sample,
    sample_ids,
    sentence_log_probability,
    sentence_pairs,
    sentence_probability,
    stream_pairs,
    token_log_probabilities,
    tokenize,
    train_language_model,
)
from strata.text.sampling import next_ids, step


def test_character_vocabulary_round_trip_and_special_tokens():
    vocab = Vocabulary.build(["Tyrannosaurus", "Aardonyx"], lower=True)
    assert vocab.tokens[0] == EOS and vocab.eos_id == 0 and vocab.unk_id is None
    assert vocab.tokens[1:] == sorted(set("tyrannosaurusaardonyx"))
    ids = vocab.encode("Aardonyx")
    assert ids[-1] == vocab.eos_id and ids.dtype == np.int64 and len(ids) == 9
    assert vocab.decode(ids) == "aardonyx"
    assert vocab.decode(np.concatenate([ids, vocab.encode("rat")])) == "aardonyx"
    assert vocab.decode(np.concatenate([ids, vocab.encode("rat")]), stop_at_eos=False) == \
        "aardonyxrat"
    with pytest.raises(ValueError, match=r"token 'z' \(position 0\) is not in this vocabulary "
                                         r"of 11 tokens.*unk=True"):
        vocab.encode("zed")
    with pytest.raises(ValueError, match=r"ids must be integers in \[0, 11\)"):
        vocab.decode([3, 11])


def test_word_vocabulary_with_unknown_words(tmp_path):
    texts = ["the cat sat on the mat.", "the dog sat."]
    vocab = Vocabulary.build(texts, level="word", unk=True, min_count=2)
    assert vocab.tokens == [EOS, UNK, "the", ".", "sat"]  # by frequency, then alphabetically
    ids = vocab.encode("the bird sat.")
    assert ids.tolist() == [2, vocab.unk_id, 4, 3, 0]
    assert vocab.decode(ids) == "the <UNK> sat ."
    assert tokenize("it's 3 cats!", "word") == ["it", "'", "s", "3", "cats", "!"]
    loaded = Vocabulary.load(vocab.save(tmp_path / "vocab.json"))
    assert loaded.tokens == vocab.tokens and loaded.unk_id == 1 and loaded.level == "word"
    assert len(Vocabulary.build(texts, level="word", max_size=4)) == 4


def test_pad_sequences_and_pairs():
    padded, mask = pad_sequences([[4, 5, 6], [7]], value=-1)
    assert padded.tolist() == [[4, 5, 6], [7, -1, -1]]
    assert mask.tolist() == [[True] * 3, [True, False, False]]
    with pytest.raises(ValueError, match="does not fit in length 2"):
        pad_sequences([[1, 2, 3]], length=2)
    (x, y), = sentence_pairs([np.array([3, 4, 0])])
    assert x.tolist() == [0, 3, 4] and y.tolist() == [3, 4, 0]  # x<1> = <EOS>, x<t> = y<t-1>
    windows = stream_pairs(np.arange(10), 4)
    assert [w[0].tolist() for w in windows] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert windows[1][1].tolist() == [5, 6, 7, 8]


def test_sequence_loss_ignores_padding_and_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, 5, 4))
    labels = rng.integers(0, 4, (3, 5))
    labels[1, 3:] = -1
    labels[2, 1:] = -1
    Z = strata.tensor(z, requires_grad=True)
    loss = sequence_crossentropy(Z, labels)
    loss.backward()
    zt = torch.from_numpy(z).requires_grad_()
    expected = torch.nn.functional.cross_entropy(zt.reshape(-1, 4), torch.from_numpy(
        labels.reshape(-1)), ignore_index=-1)
    expected.backward()
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-12)
    np.testing.assert_allclose(Z.grad, zt.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert np.all(Z.grad[1, 3:] == 0)
    per_name = sequence_crossentropy(z, labels, reduction="sequence").item()
    np.testing.assert_allclose(per_name, expected.item() * (labels != -1).sum() / 3)
    mask = labels != -1
    np.testing.assert_allclose(sequence_crossentropy(z, np.where(mask, labels, 0),
                                                     mask=mask).item(), loss.item())
    with pytest.raises(ValueError, match=r"class indices in \[0, 4\) or -1"):
        sequence_crossentropy(z, np.full((3, 5), 4))
    with pytest.raises(ValueError, match="every step is padding"):
        sequence_crossentropy(z, np.full((3, 5), -1))


def _periodic_model(cell="gru", steps=150):
    """A model that learned the lines "abcabc", "bcab", ...: each letter follows its
    predecessor, and a line ends after 6 letters."""
    strata.seed(0)
    vocab = Vocabulary.build("abc")
    lines = ["abcabc", "bcabca", "cabcab"] * 4
    model = language_model(len(vocab), cell, units=16)
    losses = train_language_model(model, sentence_pairs([vocab.encode(t) for t in lines]),
                                  steps=steps, batch_size=6, lr=0.03)
    return model, vocab, losses


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_language_model_learns_a_pattern_and_samples_it(cell):
    model, vocab, losses = _periodic_model(cell)
    assert losses[0] > 6 * np.log(3) * 0.9 and np.mean(losses[-10:]) < 1.5
    greedy = sample(model, vocab, n=3, temperature=0)
    assert set(greedy) <= {"abcabc", "bcabca", "cabcab"}
    assert sample(model, vocab, n=1, temperature=0, prefix="ca") == ["cabcab"]


def test_sampling_is_reproducible_and_stops_at_eos_or_max_length():
    model, vocab, _ = _periodic_model(steps=40)
    strata.seed(3)
    first = sample_ids(model, vocab, n=20, max_length=8)
    strata.seed(3)
    again = sample_ids(model, vocab, n=20, max_length=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    for ids in first:
        assert (ids[-1] == vocab.eos_id and (ids[:-1] != vocab.eos_id).all()) or len(ids) == 8
    head = model.layers[-1].layer
    head.b.data[vocab.eos_id] = 50  # <EOS> now always wins: every sample is empty
    assert sample(model, vocab, n=4) == [""] * 4
    head.b.data[vocab.eos_id] = -50  # <EOS> never comes: samples stop at max_length
    assert [len(s) for s in sample(model, vocab, n=4, max_length=11)] == [11] * 4


def test_temperature_draws_from_the_softmax_and_approaches_argmax():
    logits = np.array([[1.0, 2.0, 0.5]] * 20000)
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    strata.seed(0)
    counts = np.bincount(next_ids(logits, 1.0), minlength=3) / len(logits)
    np.testing.assert_allclose(counts, p, atol=0.01)
    hot = np.bincount(next_ids(logits, 2.0), minlength=3) / len(logits)
    assert hot[1] < counts[1]  # a higher temperature flattens the distribution
    cold = next_ids(logits, 0.05)
    assert (cold == 1).mean() > 0.999
    assert (next_ids(logits, 0) == 1).all()


def test_sentence_log_probability_is_the_sum_of_step_log_softmax():
    model, vocab, _ = _periodic_model(cell="lstm", steps=30)
    text = "abca"
    log_p = sentence_log_probability(model, vocab, text)
    # Independently: feed the tokens one at a time through the state-carrying step.
    layers, states, total = model.layers, [None] * len(model.layers), 0.0
    previous = vocab.eos_id
    with strata.no_grad():
        for token in vocab.encode(text):
            logits, states = step(layers, np.array([previous]), states)
            z = logits[0].astype(np.float64)
            total += z[token] - np.log(np.exp(z - z.max()).sum()) - z.max()
            previous = token
    np.testing.assert_allclose(log_p, total, rtol=1e-5)
    assert token_log_probabilities(model, vocab, text).shape == (5,)  # 4 letters + <EOS>
    np.testing.assert_allclose(sentence_probability(model, vocab, text), np.exp(log_p))


def test_model_fit_trains_a_padded_many_to_many_model():
    """The Keras path: padded labels of -1 and the "sequence_crossentropy" loss. Only the
    first letter is uncertain (log 2 over 4 tokens: 0.17 per token at best)."""
    strata.seed(1)
    vocab = Vocabulary.build("xyz")
    pairs = sentence_pairs([vocab.encode(t) for t in ["xyz", "zy"] * 16])
    X, _ = pad_sequences([p[0] for p in pairs])
    Y, _ = pad_sequences([p[1] for p in pairs], value=-1)
    model = nn.Sequential([nn.Embedding(len(vocab), 8), nn.LSTM(16, return_sequences=True),
                           nn.TimeDistributed(nn.Dense(len(vocab)))])
    model.compile(optimizer="adam", lr=0.02, loss="sequence_crossentropy")
    history = model.fit(X, Y, epochs=30, batch_size=8, verbose=0)
    assert history["loss"][0] > 1.0 and history["loss"][-1] < 0.4


def test_sampling_refuses_a_bidirectional_model():
    vocab = Vocabulary.build("ab")
    model = nn.Sequential([nn.OneHot(3), nn.Bidirectional(nn.GRU(2, return_sequences=True)),
                           nn.TimeDistributed(nn.Dense(3))])
    model(np.zeros((1, 2), np.int64))
    with pytest.raises(ValueError, match="bidirectional"):
        sample(model, vocab)
