"""What deep ConvNets learn (course 4 week 4; Zeiler and Fergus, 2013): for chosen units of
chosen layers, the 9 image patches of a dataset that activate each unit most, cropped to the
unit's receptive field, drawn as one PNG grid per layer.

Receptive fields follow each layer's geometry: a unit at output position o of a layer with
window f, stride s and padding p (before) sees layer-input positions o s - p ... o s - p + f - 1,
so, from the image (first = 0, jump = 1, size = 1):

    first_out = first_in - p jump_in,  jump_out = s jump_in,  size_out = size_in + (f - 1) jump_in
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from strata.ops.conv import padding_amounts


@dataclass(frozen=True)
class ReceptiveField:
    """Where the units of a layer look, per spatial axis (rows, columns): ``size`` pixels,
    ``jump`` pixels between neighbouring units, ``first`` the image pixel where unit 0's field
    starts (negative inside the zero padding); ``shape`` the layer's output (n_H, n_W)."""

    size: tuple
    jump: tuple
    first: tuple
    shape: tuple

    def box(self, i: int, j: int) -> tuple:
        """(top, left, bottom, right) image pixels (bottom, right exclusive) seen by unit
        (i, j); may reach outside the image."""
        top, left = self.first[0] + i * self.jump[0], self.first[1] + j * self.jump[1]
        return top, left, top + self.size[0], left + self.size[1]


def _window(layer):
    """(f, s, padding) of a layer that moves windows, None for one that keeps the geometry,
    and False for one that ends it (Flatten, Dense, global pooling)."""
    name = type(layer).__name__
    if hasattr(layer, "kernel_size") and hasattr(layer, "strides"):
        return layer.kernel_size, layer.strides, layer.padding
    if hasattr(layer, "pool_size"):
        return layer.pool_size, layer.strides, layer.padding
    if name == "ZeroPadding2D":
        return layer.pads
    if name in ("Flatten", "Dense", "GlobalAveragePooling2D", "GlobalMaxPooling2D") or \
            getattr(layer, "layers", None):
        return False
    return None  # activations, batch norm, dropout: unit for unit


def receptive_fields(model, input_shape) -> list:
    """The ReceptiveField of each layer of a Sequential ConvNet for images of ``input_shape``
    (n_H, n_W[, n_C]); None from the first layer that is not spatial (Flatten, Dense...)."""
    first, jump, size = [0, 0], [1, 1], [1, 1]
    n = [int(input_shape[0]), int(input_shape[1])]
    fields, spatial = [], True
    for layer in getattr(model, "layers", []):
        geometry = _window(layer) if spatial else False
        if geometry is False:
            spatial = False
            fields.append(None)
            continue
        if isinstance(geometry, tuple) and len(geometry) == 2:  # ZeroPadding2D's pads
            for a in range(2):
                first[a] -= geometry[a][0] * jump[a]
                n[a] += sum(geometry[a])
        elif geometry is not None:
            f, s, padding = geometry
            for a in range(2):
                before, after = padding_amounts(padding, n[a], f, s)
                first[a] -= before * jump[a]
                size[a] += (f - 1) * jump[a]
                jump[a] *= s
                n[a] = (n[a] + before + after - f) // s + 1
        fields.append(ReceptiveField(tuple(size), tuple(jump), tuple(first), tuple(n)))
    return fields


def layer_index(model, layer) -> int:
    """The position of ``layer`` (an index, or a name of a model with ``layer_names``)."""
    names = list(getattr(model, "layer_names", None) or [])
    count = len(model.layers)
    if isinstance(layer, str) and layer in names:
        return names.index(layer)
    try:
        index = int(layer)
    except (TypeError, ValueError):
        index = None
    if index is None or not -count <= index < count:
        raise ValueError(f"visualize: no layer {layer!r}; expected an index in 0..{count - 1}"
                         + (f" or a name ({', '.join(names)})" if names else ""))
    return index % count


def crop(image, box, fill=0.0) -> np.ndarray:
    """The pixels of ``image`` (H, W, C) inside ``box`` (top, left, bottom, right), with
    ``fill`` where the box reaches outside the image (the zero padding the unit saw)."""
    top, left, bottom, right = box
    out = np.full((bottom - top, right - left, image.shape[2]), fill, image.dtype)
    t, lft = max(top, 0), max(left, 0)
    b, r = min(bottom, image.shape[0]), min(right, image.shape[1])
    if b > t and r > lft:
        out[t - top:b - top, lft - left:r - left] = image[t:b, lft:r]
    return out


@dataclass
class UnitPatches:
    """The top activations of one unit: for each, (activation, image index, (i, j) position,
    the receptive-field crop)."""

    layer: int
    unit: int
    activations: list
    images: list
    positions: list
    patches: list


def _activations(model, X, stop: int, batch_size: int):
    """Yield (start, outputs of every layer up to ``stop``) batch by batch, without gradients."""
    from strata.autograd import no_grad

    model.eval()
    with no_grad():
        for start in range(0, len(X), batch_size):
            x, outs = X[start:start + batch_size], []
            for layer in model.layers[:stop + 1]:
                x = layer(x)
                outs.append(x.data if hasattr(x, "data") else np.asarray(x))
            yield start, outs


def top_patches(model, X, layers, units=None, top: int = 9, batch_size: int = 64) -> dict:
    """{layer index: [UnitPatches per unit]}: for each unit, the ``top`` images whose largest
    activation of it is highest (one patch per image, as Zeiler and Fergus), each cropped to
    the unit's receptive field around the position of that activation. ``units``: indices
    (default: every unit, at most 16)."""
    X = np.asarray(X)
    if X.ndim != 4 or len(X) == 0:
        raise ValueError(f"visualize: expected images (m, n_H, n_W, n_C), received shape "
                         f"{X.shape}")
    fields = receptive_fields(model, X.shape[1:])
    indices = [layer_index(model, layer) for layer in layers]
    for i in indices:
        if fields[i] is None:
            raise ValueError(f"visualize: layer {i} ({type(model.layers[i]).__name__}) is not "
                             f"spatial; choose a convolution or pooling layer")
    best = {}  # layer -> (m, n_C) max activation per image, and its flat position
    for _, outs in _activations(model, X.astype(np.float32), max(indices), batch_size):
        for i in indices:
            a = outs[i].reshape(len(outs[i]), -1, outs[i].shape[-1])
            where, value = a.argmax(axis=1), a.max(axis=1)
            old = best.get(i, (np.zeros((0, a.shape[2])), np.zeros((0, a.shape[2]), int)))
            best[i] = (np.concatenate([old[0], value]), np.concatenate([old[1], where]))
    result = {}
    for i in indices:
        values, where = best[i]
        chosen = list(range(min(values.shape[1], 16))) if units is None else list(units)
        bad = [u for u in chosen if not 0 <= int(u) < values.shape[1]]
        if bad:
            raise ValueError(f"visualize: layer {i} has units 0..{values.shape[1] - 1}, "
                             f"received {bad}")
        result[i] = [_unit(i, int(u), values[:, u], where[:, u], fields[i], X, top)
                     for u in chosen]
    return result


def _unit(layer, unit, values, where, field, X, top) -> UnitPatches:
    order = np.argsort(-values, kind="stable")[:top]
    positions = [divmod(int(where[n]), field.shape[1]) for n in order]
    patches = [crop(X[n], field.box(*p)) for n, p in zip(order, positions)]
    return UnitPatches(layer, unit, [float(values[n]) for n in order], [int(n) for n in order],
                       positions, patches)


def unit_grid(units: list, path, low: float = 0.0, high: float = 1.0, per_row: int = 4,
              title: str = "") -> None:
    """One PNG for a layer: per unit, its top patches in a 3 x 3 block (enlarged to >= 48
    pixels), labelled "unit u", blocks ``per_row`` to a row; pixel values ``low``..``high``."""
    from strata.vision.draw import _font, _pillow, save_png, to_rgb8

    Image, ImageDraw, ImageFont = _pillow("visualize")
    if not units:
        raise ValueError("visualize: no units to draw")
    side = max(max(p.shape[:2]) for u in units for p in u.patches)
    scale, gap, label = max(1, -(-48 // side)), 2, 16
    cell = side * scale
    block = 3 * cell + 2 * gap
    cols = min(per_row, len(units))
    rows = -(-len(units) // cols)
    head = label if title else 0
    canvas = Image.new("RGB", (cols * (block + 8) - 8, head + rows * (block + label + 8)),
                       (255, 255, 255))
    draw, font = ImageDraw.Draw(canvas), _font(ImageFont, 12)
    if title:
        draw.text((2, 1), title, fill=(0, 0, 0), font=font)
    for k, unit in enumerate(units):
        x0 = (k % cols) * (block + 8)
        y0 = head + (k // cols) * (block + label + 8)
        draw.text((x0 + 2, y0 + 1), f"unit {unit.unit}", fill=(0, 0, 0), font=font)
        for n, patch in enumerate(unit.patches[:9]):
            pixels = to_rgb8((patch - low) / (high - low or 1.0), "visualize")
            tile = Image.fromarray(pixels).resize((pixels.shape[1] * scale,
                                                   pixels.shape[0] * scale), Image.NEAREST)
            canvas.paste(tile, (x0 + (n % 3) * (cell + gap), y0 + label + (n // 3) * (cell + gap)))
    save_png(canvas, path)


def visualize_units(model, X, layers, out_dir, units=None, top: int = 9) -> dict:
    """Write ``units_<layer>.png`` (a grid of each unit's top patches) for each layer in
    ``out_dir`` and return top_patches's result."""
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    found = top_patches(model, X, layers, units, top)
    low, high = float(np.min(X)), float(np.max(X))
    names = list(getattr(model, "layer_names", None) or [])
    fields = receptive_fields(model, np.shape(X)[1:])
    for i, unit_patches in found.items():
        name = names[i] if names else f"{i}_{type(model.layers[i]).__name__}"
        f = fields[i]
        unit_grid(unit_patches, out / f"units_{name}.png", low, high,
                  title=f"layer {name}: receptive field {f.size[0]}x{f.size[1]}, "
                        f"stride {f.jump[0]}")
    return found
