"""``strata style CONTENT STYLE --out DIR``: neural style transfer into a run folder:
config.json, content.png and style.png (as optimized), stages/iteration_NNNN.png every
--save-every iterations, result.png, panel.png (content, style, result), costs.csv, costs.png
and report.md."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from strata.cli import _positive

STYLE_HELP = """Neural style transfer of course 4 week 4: an image with the content of CONTENT
and the style of STYLE, by Adam on its pixels (the network frozen).

Without --weights the features are random multi-scale filters: they transfer colours and
textures, but style transfer with a pretrained VGG-19 (the course's imagenet-vgg-verydeep-19.mat,
or a Keras/safetensors VGG-19 file) gives the course's quality.

examples:
  strata style louvre_small.jpg monet.jpg --out runs/louvre-monet
  strata style content.jpg style.jpg --weights imagenet-vgg-verydeep-19.mat --iterations 200 \\
      --size 400x300 --out runs/vgg
"""


@dataclass
class StyleConfig:
    """Everything that defines a style-transfer run; saved as config.json."""

    content: str = ""
    style: str = ""
    weights: str | None = None
    iterations: int = 200
    size: list | None = None  # [width, height]; None: the content image's, longest side <= 400
    lr: float = 2.0
    alpha: float = 10.0
    beta: float = 40.0
    noise_ratio: float = 0.6
    save_every: int = 20
    seed: int = 0


def _size(text: str) -> list:
    """"400x300" (width x height) or "400" (the longest side)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts, default=0) < 1:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 400x300, or the "
                                         f"longest side such as 400, got {text!r}")
    return parts


def read_rgb(path, size=None) -> np.ndarray:
    """An image file as RGB pixels (H, W, 3) float32 in [0, 255], resized (bicubic) to
    ``size`` = (width, height) when given."""
    from strata.vision.draw import _pillow

    Image, _, _ = _pillow("strata style")
    try:
        with Image.open(path) as picture:
            picture = picture.convert("RGB")
            if size is not None and tuple(size) != picture.size:
                picture = picture.resize(tuple(int(s) for s in size), Image.BICUBIC)
            return np.asarray(picture, np.float32)
    except (OSError, Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: expected an image file Pillow can read (PNG, JPEG, ...): "
                         f"{e}") from None


def _target_size(config: StyleConfig, content_path) -> tuple:
    if config.size and len(config.size) == 2:
        return tuple(config.size)
    width, height = read_rgb(content_path).shape[1::-1]
    longest = config.size[0] if config.size else min(400, max(width, height))
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def save_rgb(pixels, path) -> None:
    """RGB pixels (H, W, 3) in [0, 255] as a PNG, through strata's atomic write."""
    from strata.vision.draw import _pillow, save_png, to_rgb8

    Image, _, _ = _pillow("strata style")
    save_png(Image.fromarray(to_rgb8(np.asarray(pixels, np.float32) / 255)), path)


def panel(images, titles, path, gap: int = 6) -> None:
    """Pictures side by side, each titled above (the content, style, result panel)."""
    from strata.vision.draw import _font, _pillow, save_png, to_rgb8

    Image, ImageDraw, ImageFont = _pillow("strata style")
    tiles = [Image.fromarray(to_rgb8(np.asarray(im, np.float32) / 255)) for im in images]
    height = max(t.size[1] for t in tiles)
    width = sum(t.size[0] for t in tiles) + gap * (len(tiles) - 1)
    canvas = Image.new("RGB", (width, height + 22), (255, 255, 255))
    draw, font, x = ImageDraw.Draw(canvas), _font(ImageFont, 14), 0
    for tile, title in zip(tiles, titles):
        canvas.paste(tile, (x, 22))
        draw.text((x + 2, 3), title, fill=(0, 0, 0), font=font)
        x += tile.size[0] + gap
    save_png(canvas, path)


def plot_style_costs(costs, path) -> None:
    """J, alpha J_content and beta J_style per iteration, log scale (costs.png)."""
    from strata.plots import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    its = [c["iteration"] for c in costs]
    for key, label in (("J", "J (total)"), ("J_content", "J_content"), ("J_style", "J_style")):
        ax.plot(its, [max(c[key], 1e-30) for c in costs], label=label)
    ax.set_yscale("log")
    ax.set_xlabel("iterations")
    ax.set_ylabel("cost")
    ax.set_title("Style transfer: J = alpha J_content + beta J_style")
    ax.legend()
    _save(fig, path)


def _extractor(config: StyleConfig):
    from strata.vision.texture import random_features, vgg_features

    if config.weights is None:
        return random_features(seed=config.seed)
    if not Path(config.weights).is_file():
        raise FileNotFoundError(f"--weights {config.weights}: no such file (expected a VGG-19 "
                                f"weight file: imagenet-vgg-verydeep-19.mat, .h5 or "
                                f".safetensors)")
    return vgg_features(weights=config.weights)


def stylize(config: StyleConfig, out_dir, verbose: int = 1, overwrite: bool = False) -> dict:
    """Run style transfer as ``config`` says and publish the run folder ``out_dir``; returns
    the summary (final costs, seconds, features used)."""
    from strata.files import write_text_atomic
    from strata.runfolder import RunFolder

    for name in ("content", "style"):
        if not Path(getattr(config, name)).is_file():
            raise FileNotFoundError(f"{name} image {getattr(config, name)}: no such file")
    with RunFolder(out_dir, overwrite=overwrite, purpose="strata style") as run:
        write_text_atomic(run.path / "config.json", json.dumps(asdict(config), indent=2) + "\n")
        summary = _stylize_into(run.path, config, verbose)
        run.publish()
    return summary


def _stylize_into(out: Path, config: StyleConfig, verbose: int) -> dict:
    from tqdm.auto import tqdm

    from strata.files import write_text_atomic
    from strata.vision.style import transfer_style
    from strata.vision.texture import RANDOM_FEATURES_NOTE

    size = _target_size(config, config.content)
    content, style = read_rgb(config.content, size), read_rgb(config.style, size)
    save_rgb(content, out / "content.png")
    save_rgb(style, out / "style.png")
    extractor = _extractor(config)
    (out / "stages").mkdir()
    bar = tqdm(total=config.iterations, unit="it", dynamic_ncols=True, disable=verbose == 0)

    def staged(i, G, costs):
        bar.set_postfix({"J": f"{costs[-1]['J']:.4g}"}, refresh=False)
        bar.update(1)
        if (i + 1) % config.save_every == 0 and i + 1 < config.iterations:
            save_rgb(extractor.preprocessing.deprocess(G[0]), out / "stages" /
                     f"iteration_{i + 1:04d}.png")

    started = time.perf_counter()
    with bar:
        result = transfer_style(content, style, extractor, config.iterations, config.lr,
                                config.alpha, config.beta, noise_ratio=config.noise_ratio,
                                seed=config.seed, callback=staged)
    seconds = time.perf_counter() - started
    save_rgb(result.image, out / "result.png")
    panel([content, style, result.image], ["content", "style", "result"], out / "panel.png")
    lines = ["iteration,J,J_content,J_style"] + [
        f"{c['iteration']},{c['J']:.9g},{c['J_content']:.9g},{c['J_style']:.9g}"
        for c in result.costs]
    write_text_atomic(out / "costs.csv", "\n".join(lines) + "\n")
    if result.costs:
        plot_style_costs(result.costs, out / "costs.png")
    features = (f"VGG-19 from {config.weights}" if config.weights else RANDOM_FEATURES_NOTE)
    summary = {"features": features, "seconds": seconds, "size": list(size),
               **(result.costs[-1] if result.costs else {})}
    write_text_atomic(out / "report.md", _report(config, summary))
    return summary


def _report(config: StyleConfig, summary: dict) -> str:
    final = (f"- final costs (iteration {summary['iteration']}): J {summary['J']:.6g}, "
             f"J_content {summary['J_content']:.6g}, J_style {summary['J_style']:.6g}"
             if "J" in summary else "- no iterations")
    return "\n".join([
        "# strata style run", "",
        f"- content {config.content}, style {config.style}, {summary['size'][0]}x"
        f"{summary['size'][1]} pixels",
        f"- features: {summary['features']}",
        f"- Adam on the pixels: lr {config.lr}, {config.iterations} iterations, alpha "
        f"{config.alpha}, beta {config.beta}, noise ratio {config.noise_ratio}, seed "
        f"{config.seed}; {summary['seconds']:.1f} s", final, "",
        "![content, style, result](panel.png)", "", "![costs](costs.png)", ""])


def run_style(args) -> int:
    """Style transfer as the options say, into the run folder --out."""
    from strata.vision.texture import RANDOM_FEATURES_NOTE

    config = StyleConfig(content=args.content, style=args.style, weights=args.weights,
                         iterations=args.iterations, size=args.size, lr=args.lr,
                         alpha=args.alpha, beta=args.beta, noise_ratio=args.noise_ratio,
                         save_every=args.save_every, seed=args.seed)
    if args.weights is None:
        print(f"strata style: {RANDOM_FEATURES_NOTE}")
    summary = stylize(config, args.out, verbose=0 if args.quiet else 1,
                      overwrite=args.overwrite)
    if "J" in summary:
        print(f"J {summary['J']:.6g} (J_content {summary['J_content']:.6g}, J_style "
              f"{summary['J_style']:.6g}) after {config.iterations} iterations, "
              f"{summary['seconds']:.1f} s")
    print(f"Run written to {args.out}/ (result.png, panel.png, stages/, costs.csv, costs.png, "
          f"report.md)")
    return 0


def add_style_parser(sub) -> None:
    """Add ``style`` to ``strata``."""
    p = sub.add_parser("style", help="neural style transfer of two images",
                       description=STYLE_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("content", help="the content image (PNG, JPEG, ...)")
    p.add_argument("style", help="the style image (resized to the content's size)")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--weights", help="a VGG-19 weight file (imagenet-vgg-verydeep-19.mat, "
                   "Keras .h5 or .safetensors); default: random multi-scale features")
    p.add_argument("--iterations", type=_positive(int), default=200)
    p.add_argument("--size", type=_size, help="WIDTHxHEIGHT, or the longest side (default: "
                   "the content image's size, longest side at most 400)")
    p.add_argument("--lr", type=_positive(float), default=2.0,
                   help="Adam's learning rate on the pixels (0-255 scale)")
    p.add_argument("--alpha", type=_positive(float), default=10.0, help="content weight")
    p.add_argument("--beta", type=_positive(float), default=40.0, help="style weight")
    p.add_argument("--noise-ratio", type=float, default=0.6,
                   help="noise share of the initial image (the course's 0.6)")
    p.add_argument("--save-every", type=_positive(int), default=20,
                   help="write a staged image every N iterations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_style)
