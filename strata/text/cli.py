"""``strata lm``: train a character (or word) language model, sample from it, score texts."""

from __future__ import annotations

import argparse

from strata.cli import _positive

LM_HELP = """Language models of course 5 week 1: train one on a corpus, then sample novel text
from it or score sentences.

examples:
  strata lm train                                  # the dinosaur names (RNN, 50 units)
  strata lm train --dataset shakespeare --out runs/lm-shakespeare
  strata lm train --dataset names.txt --cell gru --units 64 --steps 3000
  strata lm sample runs/lm-dinos --n 10 --temperature 0.8
  strata lm score runs/lm-dinos tyrannosaurus velociraptor
"""

TRAIN_HELP = """Train a language model and write a run folder: model.safetensors, vocab.json,
config.json, loss.csv, loss.png, metrics.json, samples.txt and report.md.

--dataset dinos (one name per line, lower-cased, as in the course), shakespeare (the sonnets
as one text cut into --seq-length windows) or the path of a UTF-8 text file (one sequence per
line; --mode stream for running text). Options left out take the corpus's preset.

examples:
  strata lm train --steps 3000 --cell lstm --units 64
  strata lm train --dataset shakespeare --units 256 --layers 2 --embedding 64
"""


def run_lm_train(args) -> int:
    """Train a language model as the options say and write its run folder."""
    from strata.text.runs import LMConfig, train

    config = LMConfig(dataset=args.dataset, mode=args.mode, level=args.level, cell=args.cell,
                      units=args.units, layers=args.layers, embedding=args.embedding,
                      steps=args.steps, batch_size=args.batch_size, lr=args.lr, clip=args.clip,
                      seq_length=args.seq_length, seed=args.seed)
    named = config.dataset in ("dinos", "shakespeare")
    out = args.out or f"runs/lm-{config.dataset if named else 'text'}"
    # The default folder is replaced by each new run; an explicit --out only with --overwrite.
    metrics = train(config, out, verbose=0 if args.quiet else 1,
                    overwrite=args.overwrite or not args.out)
    dev = metrics["dev_loss"]
    print(f"loss {metrics['unit']}: {metrics['train_loss_before']:.3f} before training, "
          f"{metrics['train_loss_after']:.3f} after" + ("" if dev is None else
                                                          f" (dev {dev:.3f})"))
    print(f"Run written to {out}/ (model.safetensors, vocab.json, config.json, loss.csv, "
          f"samples.txt, report.md)")
    return 0


def run_lm_sample(args) -> int:
    """Print samples of a trained language model, one per line (or block)."""
    import strata
    from strata.text.runs import load_run
    from strata.text.sampling import sample

    _, vocab, model = load_run(args.run)
    strata.seed(args.seed)
    texts = sample(model, vocab, n=args.n, temperature=args.temperature,
                   max_length=args.max_length, prefix=args.prefix)
    separator = "\n---\n" if any("\n" in t for t in texts) else "\n"
    print(separator.join(texts))
    return 0


def run_lm_score(args) -> int:
    """Print log P(text) (natural log) and the per-token average for each text."""
    from strata.text.lm import token_log_probabilities
    from strata.text.runs import load_run

    _, vocab, model = load_run(args.run)
    for text in args.texts:
        log_probs = token_log_probabilities(model, vocab, text)
        print(f"{text}\tlog P = {log_probs.sum():.4f}\tper token {log_probs.mean():.4f}")
    return 0


def add_lm_parser(sub) -> None:
    """Add ``lm train``, ``lm sample`` and ``lm score`` to the ``strata`` command."""
    lm = sub.add_parser("lm", help="language models: train, sample, score", description=LM_HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    lm_sub = lm.add_subparsers(dest="lm_command", required=True)
    _add_train(lm_sub)
    sample = lm_sub.add_parser("sample", help="sample novel text from a trained model")
    sample.add_argument("run", help="run folder written by strata lm train")
    sample.add_argument("--n", type=_positive(int), default=10, help="number of samples")
    sample.add_argument("--temperature", type=float, default=1.0,
                        help="softmax temperature (0: always the most likely token)")
    sample.add_argument("--max-length", type=_positive(int), default=50,
                        help="stop a sample after this many tokens without <EOS>")
    sample.add_argument("--prefix", default="", help="text the samples start with")
    sample.add_argument("--seed", type=int, default=0)
    sample.set_defaults(handler=run_lm_sample)
    score = lm_sub.add_parser("score", help="log-probability of texts under a trained model")
    score.add_argument("run", help="run folder written by strata lm train")
    score.add_argument("texts", nargs="+", help="texts (sentences, names) to score")
    score.set_defaults(handler=run_lm_score)


def _add_train(lm_sub) -> None:
    train = lm_sub.add_parser("train", help="train a language model and write a run folder",
                              description=TRAIN_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--dataset", default="dinos",
                       help="dinos, shakespeare, or the path of a text file (default dinos)")
    train.add_argument("--mode", choices=["lines", "stream"],
                       help="one sequence per line, or windows of one running text")
    train.add_argument("--level", choices=["char", "word"], default="char")
    train.add_argument("--cell", choices=["rnn", "gru", "lstm"])
    train.add_argument("--units", type=_positive(int), help="hidden units n_a per layer")
    train.add_argument("--layers", type=_positive(int), default=1, help="stacked layers")
    train.add_argument("--embedding", type=_positive(int),
                       help="embedding size (default: one-hot inputs, as in the course)")
    train.add_argument("--steps", type=_positive(int), help="mini-batch updates")
    train.add_argument("--batch-size", type=_positive(int), default=32)
    train.add_argument("--lr", type=_positive(float), default=0.01, help="Adam's learning rate")
    train.add_argument("--clip", type=_positive(float), default=5.0,
                       help="clip the gradients' global norm to this (default 5)")
    train.add_argument("--seq-length", type=_positive(int), default=64,
                       help="window length T_x of --mode stream")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", help="run folder (default runs/lm-DATASET, replaced by each "
                       "run)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the finished run in --out")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=run_lm_train)
