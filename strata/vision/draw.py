"""Drawing detections with Pillow: boxes with class names and scores, one colour per class,
and a grid of evaluation images with predicted (solid) and true (dashed) boxes. PNG files are
written through strata's atomic write."""

from __future__ import annotations

import io

import numpy as np

#: One colour per class (matplotlib's tab10, then tab20's lighter tones).
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
           (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150),
           (197, 176, 213), (196, 156, 148), (247, 182, 210), (199, 199, 199))
TRUTH_COLOUR = (255, 255, 255)


def _pillow(where: str):
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise ImportError(f"{where} needs Pillow: pip install strata[vision] (or pip install "
                          f"pillow)") from None
    return Image, ImageDraw, ImageFont


def colour(class_id: int) -> tuple:
    """The RGB colour of a class."""
    return PALETTE[int(class_id) % len(PALETTE)]


def to_rgb8(image, where: str = "draw_detections") -> np.ndarray:
    """An (H, W, 3) uint8 copy of a grey or RGB image: (H, W), (H, W, 1) or (H, W, 3), floats
    in [0, 1] or uint8."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3) or 0 in a.shape:
        raise ValueError(f"{where}: expected an image (H, W), (H, W, 1) or (H, W, 3), received "
                         f"shape {np.shape(image)}")
    if a.dtype != np.uint8:
        a = np.rint(np.clip(np.nan_to_num(a.astype(np.float64)), 0, 1) * 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a)


def _as_boxes(boxes, where: str) -> np.ndarray:
    shape = np.shape(boxes)
    if np.size(boxes) == 0:
        return np.zeros((0, 4))
    if len(shape) != 2 or shape[1] != 4:
        raise ValueError(f"{where}: expected boxes of shape (k, 4) as corners (x1, y1, x2, y2), "
                         f"received shape {shape}")
    return np.asarray(boxes, dtype=np.float64)


def _label(class_id, score, class_names) -> str:
    name = (class_names[int(class_id)] if class_names is not None and 0 <= int(class_id) <
            len(class_names) else str(int(class_id)))
    return name if score is None else f"{name} {float(score):.2f}"


def _dashed_rectangle(draw, box, fill, width: int, dash: int = 4) -> None:
    x1, y1, x2, y2 = box
    for (ax, ay), (bx, by) in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)),
                               ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = max(abs(bx - ax), abs(by - ay))
        for start in np.arange(0, length, 2 * dash):
            t0, t1 = start / max(length, 1), min(start + dash, length) / max(length, 1)
            draw.line([(ax + (bx - ax) * t0, ay + (by - ay) * t0),
                       (ax + (bx - ax) * t1, ay + (by - ay) * t1)], fill=fill, width=width)


def _font(ImageFont, size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _draw_boxes(draw, font, boxes, classes, scores, class_names, scale, dashed=False,
                fixed_colour=None) -> None:
    for i, box in enumerate(boxes):
        c = 0 if classes is None else int(classes[i])
        fill = fixed_colour or colour(c)
        xy = [float(v) * scale for v in box]
        xy[2], xy[3] = max(xy[2] - 1, xy[0]), max(xy[3] - 1, xy[1])  # x2, y2: one past the last
        if dashed:
            _dashed_rectangle(draw, xy, fill, width=1)
            continue
        draw.rectangle(xy, outline=fill, width=2 if scale >= 2 else 1)
        if classes is None and scores is None:
            continue
        text = _label(c, None if scores is None else scores[i], class_names)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        w, h = right - left + 2, bottom - top + 2
        x = max(0, min(xy[0], draw.im.size[0] - w))  # the label stays inside the picture
        y = xy[1] - h if xy[1] >= h else xy[1]
        draw.rectangle([x, y, x + w, y + h], fill=fill)
        draw.text((x + 1 - left, y + 1 - top), text, fill=(255, 255, 255), font=font)


def _render(image, boxes, classes, scores, class_names, scale, where, truths=None):
    Image, ImageDraw, ImageFont = _pillow(where)
    pixels = to_rgb8(image, where)
    picture = Image.fromarray(pixels)
    if scale != 1:
        picture = picture.resize((pixels.shape[1] * scale, pixels.shape[0] * scale),
                                 Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    font = _font(ImageFont, 10 if scale < 2 else 11)
    if truths is not None:
        _draw_boxes(draw, font, _as_boxes(truths["boxes"], where), truths.get("classes"), None,
                    class_names, scale, dashed=True, fixed_colour=TRUTH_COLOUR)
    _draw_boxes(draw, font, boxes, classes, scores, class_names, scale)
    return picture


def save_png(picture, path) -> None:
    """Write a Pillow image as PNG through strata's atomic write."""
    from strata.files import atomic_write

    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    atomic_write(path, buffer.getvalue())


def draw_detections(image, boxes, classes=None, scores=None, class_names=None, path=None,
                    scale: int = 1):
    """The image (grey or RGB, floats in [0, 1] or uint8) with its boxes (k, 4) drawn, each in
    its class's colour with "name score" above it; enlarged ``scale`` times (nearest
    neighbour). Saved as PNG to ``path`` when given; returns the Pillow image."""
    where = "draw_detections"
    boxes = _as_boxes(boxes, where)
    for name, values in (("classes", classes), ("scores", scores)):
        if values is not None and len(values) != len(boxes):
            raise ValueError(f"{where}: expected {len(boxes)} {name} (one per box), received "
                             f"{len(values)}")
    if not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"{where}: expected an integer scale >= 1, received {scale!r}")
    picture = _render(image, boxes, classes, scores, class_names, int(scale), where)
    if path is not None:
        save_png(picture, path)
    return picture


def detection_grid(images, predictions, truths, path, class_names=None, columns: int = 4,
                   scale: int = 2, max_images: int = 16, gap: int = 4):
    """A grid of up to ``max_images`` images, each with its predicted boxes ({"boxes",
    "scores", "classes"}: solid, class colours, labelled) and true boxes ({"boxes", "classes"}:
    dashed white); saved as PNG to ``path``; returns the Pillow image."""
    where = "detection_grid"
    Image, _, _ = _pillow(where)
    n = min(len(images), max_images)
    if n == 0 or len(predictions) < n or len(truths) < n:
        raise ValueError(f"{where}: expected images with one prediction and one truth each, "
                         f"received {len(images)} images, {len(predictions)} predictions, "
                         f"{len(truths)} truths")
    tiles = [_render(images[i], _as_boxes(predictions[i]["boxes"], where),
                     predictions[i].get("classes"), predictions[i].get("scores"), class_names,
                     scale, where, truths=truths[i]) for i in range(n)]
    w, h = tiles[0].size
    cols = min(columns, n)
    rows = -(-n // cols)
    grid = Image.new("RGB", (cols * w + (cols - 1) * gap, rows * h + (rows - 1) * gap),
                     (64, 64, 64))
    for i, tile in enumerate(tiles):
        grid.paste(tile, ((i % cols) * (w + gap), (i // cols) * (h + gap)))
    save_png(grid, path)
    return grid


def read_image(path, size: int, invert: str = "auto"):
    """An image file (PNG, JPEG, ...) as the model expects it: grey, padded to a square (black
    right and bottom) and resized to ``size``; returns (model input (size, size, 1) in [0, 1],
    the original picture as an RGB array, the scale from model to original pixels).
    ``invert``: "yes" for dark ink on a light background, "auto" when the mean is above 0.5."""
    Image, _, _ = _pillow("read_image")
    try:
        with Image.open(path) as picture:
            rgb = np.asarray(picture.convert("RGB"))
            grey = np.asarray(picture.convert("L"), np.float32) / 255
    except (OSError, Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: expected an image file Pillow can read (PNG, JPEG, ...): "
                         f"{e}") from None
    if invert == "yes" or (invert == "auto" and grey.mean() > 0.5):
        grey = 1 - grey
    side = max(grey.shape)
    square = np.zeros((side, side), np.float32)
    square[:grey.shape[0], :grey.shape[1]] = grey
    resized = Image.fromarray(square).resize((size, size), Image.BILINEAR)
    return np.clip(np.asarray(resized, np.float32), 0, 1)[..., None], rgb, side / size
