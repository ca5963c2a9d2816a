"""Language-model runs for ``strata lm``: build the vocabulary and training pairs of a corpus,
train, and write a run folder (model, vocabulary, config, loss curve, samples, report)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

import strata
from strata.io import write_text_atomic
from strata.text import corpora
from strata.text.lm import (
    evaluate_language_model,
    language_model,
    sentence_pairs,
    stream_pairs,
    train_language_model,
)
from strata.text.sampling import sample
from strata.text.vocab import Vocabulary

#: Per-corpus defaults: the dinosaur names are short sequences, one per line, lower-cased as in
#: the course (27 tokens with <EOS>), and 1000 steps of 32 names see about as many names as the
#: course's 35000 single-name iterations; Shakespeare is one long text cut into windows (its
#: dev loss per character was lowest near 800 steps: 1.72, against 1.91 after 1500).
PRESETS = {
    "dinos": {"mode": "lines", "lower": True, "cell": "rnn", "units": 50, "steps": 1000},
    "shakespeare": {"mode": "stream", "lower": False, "cell": "lstm", "units": 128,
                    "steps": 800},
}
FILE_PRESET = {"mode": "lines", "lower": False, "cell": "lstm", "units": 128, "steps": 2000}
#: The losses in metrics.json are measured on (at most) this many training and dev sequences.
EVALUATED = 1000


@dataclass
class LMConfig:
    """Everything that defines a language-model run; saved as config.json. None fields take
    the corpus's preset (PRESETS; a text file gets FILE_PRESET)."""

    dataset: str = "dinos"
    mode: str | None = None  # "lines": one sequence per line; "stream": windows of the text
    level: str = "char"
    lower: bool | None = None
    cell: str | None = None
    units: int | None = None
    layers: int = 1
    embedding: int | None = None
    steps: int | None = None
    batch_size: int = 32
    lr: float = 0.01
    clip: float = 5.0
    seq_length: int = 64
    dev_fraction: float = 0.05
    seed: int = 0

    def __post_init__(self):
        preset = PRESETS.get(self.dataset, FILE_PRESET)
        for name, value in preset.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.mode not in ("lines", "stream"):
            raise ValueError(f"expected mode 'lines' or 'stream', got {self.mode!r}")
        if not 0 <= self.dev_fraction < 1:
            raise ValueError(f"expected 0 <= dev_fraction < 1, got {self.dev_fraction}")


def corpus(config: LMConfig):
    """The run's texts: a list of lines, or one text for "stream" mode."""
    if config.dataset == "dinos":
        text = "\n".join(corpora.load_dinos())
    elif config.dataset == "shakespeare":
        text = corpora.load_shakespeare()
    else:
        text = corpora.load_text(config.dataset)
    if config.mode == "stream":
        return text
    return [line.strip() for line in text.splitlines() if line.strip()]


def pairs(config: LMConfig, vocab: Vocabulary, texts):
    """The (x, y) training pairs of the corpus, shuffled with the run's seed, and the dev
    pairs held out (``dev_fraction`` of them)."""
    if config.mode == "stream":
        all_pairs = stream_pairs(vocab.encode(texts, add_eos=False), config.seq_length)
    else:
        all_pairs = sentence_pairs([vocab.encode(t) for t in texts], start=vocab.eos_id)
    order = np.random.default_rng(config.seed).permutation(len(all_pairs))
    n_dev = int(len(all_pairs) * config.dev_fraction)
    return [all_pairs[i] for i in order[n_dev:]], [all_pairs[i] for i in order[:n_dev]]


def train(config: LMConfig, out_dir, verbose: int = 1, overwrite: bool = False) -> dict:
    """Train as ``config`` says and publish the run folder ``out_dir`` (built in a locked
    partial folder beside it, see strata.runfolder); returns the metrics."""
    from strata.runfolder import RunFolder

    with RunFolder(out_dir, overwrite=overwrite, purpose="strata lm train") as run:
        metrics = _train_into(run.path, config, verbose)
        run.publish()
    return metrics


def _train_into(out: Path, config: LMConfig, verbose: int) -> dict:
    texts = corpus(config)
    vocab = Vocabulary.build(texts, level=config.level, lower=config.lower)
    train_pairs, dev_pairs = pairs(config, vocab, texts)
    print(f"Data: {data_summary(config, texts, len(train_pairs), len(dev_pairs))}")
    strata.seed(config.seed)
    model = language_model(len(vocab), config.cell, config.units, config.layers,
                           config.embedding)
    reduction = "sequence" if config.mode == "lines" else "token"
    model(np.zeros((1, 2), dtype=np.int64))  # create the weights
    probe = train_pairs[:EVALUATED]  # already shuffled: a random subset
    before = evaluate_language_model(model, probe, reduction)
    bar = _progress(config.steps) if verbose else None
    losses = train_language_model(
        model, train_pairs, config.steps, config.batch_size, lr=config.lr,
        clip_norm=config.clip, reduction=reduction,
        callback=None if bar is None else lambda step, loss: _advance(bar, loss))
    if bar is not None:
        bar.close()
    metrics = {"unit": "per name" if reduction == "sequence" else "per character",
               "train_loss_before": before,
               "train_loss_after": evaluate_language_model(model, probe, reduction),
               "dev_loss": (evaluate_language_model(model, dev_pairs[:EVALUATED], reduction)
                            if dev_pairs else None),
               "vocab_size": len(vocab), "train_sequences": len(train_pairs)}
    _write(out, config, model, vocab, losses, metrics)
    return metrics


def data_summary(config: LMConfig, texts, n_train: int, n_dev: int) -> str:
    """The line that says what a run trains on: corpus, sequences per set, source."""
    source = {"dinos": "the course's dinos.txt", "shakespeare": "the course's shakespeare.txt"
              }.get(config.dataset, config.dataset)
    if config.mode == "stream":
        kind, whole = "windows", f"{len(texts)} characters in windows of {config.seq_length}"
    else:
        kind, whole = "lines", f"{len(texts)} lines"
    return (f"{config.dataset}: train {n_train} / dev {n_dev} {kind} (a seeded "
            f"{100 * (1 - config.dev_fraction):g}/{100 * config.dev_fraction:g} split of "
            f"{source}, {whole})")


def _progress(steps: int):
    from tqdm.auto import tqdm

    return tqdm(total=steps, unit="step", dynamic_ncols=True)


def _advance(bar, loss: float) -> None:
    bar.update(1)
    if bar.n % 20 == 0:
        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)


def _write(out: Path, config, model, vocab, losses, metrics) -> None:
    from strata.plots import plot_costs

    out.mkdir(parents=True, exist_ok=True)
    strata.save_model(model, out / "model.safetensors")
    vocab.save(out / "vocab.json")
    write_text_atomic(out / "config.json", json.dumps(asdict(config), indent=2) + "\n")
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    table = io.StringIO()
    csv.writer(table).writerows([("step", "loss"), *enumerate(losses)])
    write_text_atomic(out / "loss.csv", table.getvalue())
    plot_costs(losses, out / "loss.png", per="step", learning_rate=config.lr)
    strata.seed(config.seed)
    samples = sample(model, vocab, n=10, max_length=200 if config.mode == "stream" else 50)
    separator = "\n---\n" if config.mode == "stream" else "\n"  # names: one per line
    write_text_atomic(out / "samples.txt", separator.join(samples) + "\n")
    write_text_atomic(out / "report.md", _report(config, metrics, samples))


def _report(config: LMConfig, metrics: dict, samples: list[str]) -> str:
    unit = metrics["unit"]
    dev = metrics["dev_loss"]
    lines = [f"# strata language model: {config.dataset}", "",
             f"- {config.cell} x {config.layers}, {config.units} units, "
             f"{'one-hot inputs' if config.embedding is None else f'embedding {config.embedding}'}"
             f", vocabulary {metrics['vocab_size']} {config.level} tokens",
             f"- {config.steps} steps of Adam, lr {config.lr}, batch {config.batch_size}, "
             f"gradient norm clipped at {config.clip}",
             f"- cross-entropy {unit}: {metrics['train_loss_before']:.3f} before training, "
             f"{metrics['train_loss_after']:.3f} after"
             + ("" if dev is None else f"; dev {dev:.3f}"), "",
             "![loss](loss.png)", "", "Samples (temperature 1):", ""]
    lines += ["    " + s.replace("\n", "\n    ") for s in samples[:10]]
    return "\n".join(lines) + "\n"


def load_run(run_dir):
    """(config, vocabulary, model) of a finished language-model run folder."""
    run = Path(run_dir)
    if not (run / "vocab.json").is_file() or not (run / "config.json").is_file():
        raise FileNotFoundError(f"{run} is not a strata language-model run folder (no "
                                f"vocab.json or config.json)")
    known = {f.name for f in fields(LMConfig)}
    raw = json.loads((run / "config.json").read_text())
    config = LMConfig(**{k: v for k, v in raw.items() if k in known})
    return config, Vocabulary.load(run / "vocab.json"), strata.load_model(
        run / "model.safetensors")
