"""Text and language models (course 5 week 1): vocabularies with <EOS> and <UNK>, character
or word language models, the probability of a sentence, and sampling novel text."""

from strata.text.corpora import load_dinos, load_shakespeare, load_text
from strata.text.lm import (
    batch,
    evaluate_language_model,
    language_model,
    sentence_log_probability,
    sentence_pairs,
    sentence_probability,
    stream_pairs,
    token_log_probabilities,
    train_language_model,
)
from strata.text.sampling import sample, sample_ids
from strata.text.vocab import EOS, UNK, Vocabulary, pad_sequences, tokenize

__all__ = [
    "EOS", "UNK", "Vocabulary", "tokenize", "pad_sequences",
    "language_model", "sentence_pairs", "stream_pairs", "batch", "train_language_model",
    "evaluate_language_model", "token_log_probabilities", "sentence_log_probability",
    "sentence_probability", "sample", "sample_ids",
    "load_dinos", "load_shakespeare", "load_text",
]
