"""Neural style transfer (course 4 week 4; Gatys et al., 2015): the content and style costs on
activations, and the optimization of the generated image G's pixels with the network frozen.

Activations are NHWC (m, n_H, n_W, n_C). The course works on one image (m = 1); for m > 1 each
cost is the mean over the m examples of the course's cost, so m = 1 gives the course's value.

    J_content = 1 / (4 n_H n_W n_C) sum (a_C - a_G)^2
    G = A A^T, with A the activations unrolled to (n_C, n_H n_W)       (gram_matrix)
    J_style_layer = 1 / (4 n_C^2 (n_H n_W)^2) sum (G_S - G_G)^2
    J_style = sum over layers of lambda_l J_style_layer                  (STYLE_LAYERS)
    J = alpha J_content + beta J_style                                   (total_cost)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from strata import ops
from strata.autograd import ShapeError
from strata.tensor import Tensor

#: The course's style layers and their weights lambda_l: conv1_1 ... conv5_1, 0.2 each.
STYLE_LAYERS = (("conv1_1", 0.2), ("conv2_1", 0.2), ("conv3_1", 0.2), ("conv4_1", 0.2),
                ("conv5_1", 0.2))
#: The course's content layer (the TF1 assignment's; the Keras one uses block5_conv4).
CONTENT_LAYER = "conv4_2"


def _activations(a, name: str, where: str) -> Tensor:
    a = a if isinstance(a, Tensor) else Tensor(np.asarray(a))
    if a.ndim != 4 or 0 in a.shape:
        raise ShapeError(f"{where}: expected {name} as NHWC activations (m, n_H, n_W, n_C), "
                         f"received shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{where}: expected floating {name}, received dtype {a.dtype}")
    return a


def _pair(a, b, names: tuple, where: str) -> tuple[Tensor, Tensor]:
    a, b = _activations(a, names[0], where), _activations(b, names[1], where)
    if a.shape != b.shape:
        raise ShapeError(f"{where}: expected {names[0]} and {names[1]} of the same shape, "
                         f"received {a.shape} and {b.shape}")
    return a, b


def content_cost(a_C, a_G) -> Tensor:
    """J_content = 1 / (4 n_H n_W n_C) sum (a_C - a_G)^2 (mean over m examples)."""
    a_C, a_G = _pair(a_C, a_G, ("a_C", "a_G"), "content_cost")
    m, n_H, n_W, n_C = a_G.shape
    return ops.sum((a_C - a_G) ** 2) * (1.0 / (4 * m * n_H * n_W * n_C))


def gram_matrix(A) -> Tensor:
    """The Gram matrix A A^T of A unrolled to (n_C, n_H n_W): (n_C, n_C) as the course, or
    (m, n_C, n_C) for NHWC activations (m, n_H, n_W, n_C)."""
    A = A if isinstance(A, Tensor) else Tensor(np.asarray(A))
    if A.ndim == 2:
        return ops.matmul(A, ops.transpose(A))
    A = _activations(A, "A", "gram_matrix (an (n_C, n_H n_W) matrix or")
    m, n_H, n_W, n_C = A.shape
    # NHWC rows are pixels, so the unrolled (n_C, n_H n_W) matrix is the transpose of these.
    # One 2-D product per example: NumPy sees rows.T @ rows and halves the work (BLAS syrk).
    grams = []
    for i in range(m):
        rows = ops.reshape(A[i] if m > 1 else A, (n_H * n_W, n_C))
        grams.append(ops.matmul(ops.transpose(rows), rows))
    return ops.stack(grams) if m > 1 else ops.reshape(grams[0], (1, n_C, n_C))


def style_layer_cost(a_S, a_G) -> Tensor:
    """J_style_layer = 1 / (4 n_C^2 (n_H n_W)^2) sum (G_S - G_G)^2 (mean over m examples)."""
    a_S, a_G = _pair(a_S, a_G, ("a_S", "a_G"), "style_layer_cost")
    m, n_H, n_W, n_C = a_G.shape
    difference = gram_matrix(a_S) - gram_matrix(a_G)
    return ops.sum(difference ** 2) * (1.0 / (4 * m * n_C ** 2 * (n_H * n_W) ** 2))


def _layer_weights(weights, where: str) -> list[tuple[str, float]]:
    pairs = list(weights.items()) if isinstance(weights, dict) else list(weights)
    if not pairs or not all(isinstance(p, (tuple, list)) and len(p) == 2 and isinstance(
            p[0], str) for p in pairs):
        raise ValueError(f"{where}: expected style layer weights as (name, lambda) pairs or a "
                         f"dict, e.g. {list(STYLE_LAYERS[:2])}, received {weights!r}")
    for name, w in pairs:
        if not (isinstance(w, (int, float, np.floating)) and math.isfinite(w) and w >= 0):
            raise ValueError(f"{where}: expected a weight >= 0 for layer {name!r}, received "
                             f"{w!r}")
    return [(name, float(w)) for name, w in pairs]


def style_cost(style_activations: dict, generated_activations: dict,
               weights=STYLE_LAYERS) -> Tensor:
    """J_style = sum over the layers of lambda_l J_style_layer(a_S[l], a_G[l]); ``weights``:
    (name, lambda_l) pairs or a dict (the course's STYLE_LAYERS by default)."""
    pairs = _layer_weights(weights, "style_cost")
    for what, acts in (("style", style_activations), ("generated", generated_activations)):
        missing = [name for name, _ in pairs if name not in acts]
        if missing:
            raise KeyError(f"style_cost: the {what} activations lack the layers {missing}; "
                           f"they hold {sorted(acts)}")
    J = None
    for name, w in pairs:
        term = style_layer_cost(style_activations[name], generated_activations[name]) * w
        J = term if J is None else J + term
    return J


def style_cost_from_grams(G_S: dict, generated_activations: dict, weights=STYLE_LAYERS):
    """style_cost with the style image's Gram matrices G_S = {name: (m, n_C, n_C)} computed
    once (they do not change while G is optimized): the same value, half the products."""
    J = None
    for name, w in _layer_weights(weights, "style_cost_from_grams"):
        a_G = _activations(generated_activations[name], name, "style_cost_from_grams")
        m, n_H, n_W, n_C = a_G.shape
        term = ops.sum((G_S[name] - gram_matrix(a_G)) ** 2) * (
            w / (4 * m * n_C ** 2 * (n_H * n_W) ** 2))
        J = term if J is None else J + term
    return J


def total_cost(J_content, J_style, alpha: float = 10, beta: float = 40) -> Tensor:
    """J(G) = alpha J_content(C, G) + beta J_style(S, G)."""
    for name, value in (("alpha", alpha), ("beta", beta)):
        if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value)):
            raise ValueError(f"total_cost: expected a finite number for {name}, received "
                             f"{value!r}")
    return J_content * alpha + J_style * beta


#: The course's VGG-19 (MatConvNet) means per RGB channel, in pixel units [0, 255].
COURSE_MEANS = (123.68, 116.779, 103.939)


@dataclass(frozen=True)
class Preprocessing:
    """How a feature extractor's weights expect images: x = (pixel - mean) / std per RGB
    channel (pixels in [0, 255]), then the channels in ``channels`` order. The course's VGG-19:
    its means, std 1, RGB; Keras's VGG: the same means, BGR; torchvision: mean (123.675,
    116.28, 103.53), std (58.395, 57.12, 57.375), RGB."""

    mean: tuple = COURSE_MEANS
    std: tuple = (1.0, 1.0, 1.0)
    channels: str = "RGB"

    def __post_init__(self):
        if self.channels not in ("RGB", "BGR") or len(self.mean) != 3 or len(self.std) != 3 \
                or min(self.std) <= 0:
            raise ValueError(f"Preprocessing: expected 3 means, 3 stds > 0 and channels RGB or "
                             f"BGR, received {self}")

    def _order(self, x: np.ndarray) -> np.ndarray:
        return x[..., ::-1] if self.channels == "BGR" else x

    def preprocess(self, rgb) -> np.ndarray:
        """RGB pixels in [0, 255] ((H, W, 3) or (m, H, W, 3)) -> float32 NHWC network input."""
        x = np.asarray(rgb)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[-1] != 3 or 0 in x.shape:
            raise ShapeError(f"preprocess: expected RGB images (H, W, 3) or (m, H, W, 3), "
                             f"received shape {np.shape(rgb)}")
        x = (x.astype(np.float32) - np.float32(self.mean)) / np.float32(self.std)
        return np.ascontiguousarray(self._order(x))

    def deprocess(self, x) -> np.ndarray:
        """Network input (m, H, W, 3) or (H, W, 3) -> RGB uint8 pixels, clipped to [0, 255]."""
        x = self._order(np.asarray(x, np.float32))
        pixels = x * np.float32(self.std) + np.float32(self.mean)
        return np.rint(np.clip(np.nan_to_num(pixels), 0, 255)).astype(np.uint8)

    def pixel_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The lowest and highest valid network input per channel (pixels 0 and 255)."""
        low = self._order((0 - np.float32(self.mean)) / np.float32(self.std))
        high = self._order((255 - np.float32(self.mean)) / np.float32(self.std))
        return low, high


def generate_noise_image(content, noise_ratio: float = 0.6, preprocessing=None, rng=None):
    """The course's initial G: uniform(-20, 20) pixel noise mixed with the preprocessed content
    image C as noise_ratio * noise + (1 - noise_ratio) * C."""
    if not (isinstance(noise_ratio, (int, float)) and 0 <= noise_ratio <= 1):
        raise ValueError(f"generate_noise_image: expected noise_ratio in [0, 1], received "
                         f"{noise_ratio!r}")
    preprocessing = preprocessing or Preprocessing()
    rng = np.random.default_rng(0) if rng is None else rng
    content = np.asarray(content, np.float32)
    noise = rng.uniform(-20, 20, content.shape).astype(np.float32)
    noise /= preprocessing._order(np.float32(preprocessing.std))  # 20 pixel units
    return noise * np.float32(noise_ratio) + content * np.float32(1 - noise_ratio)


@dataclass
class StyleTransfer:
    """The outcome of ``transfer_style``: ``image`` (H, W, 3) uint8, ``generated`` the final
    network input G, ``costs`` one dict per iteration (iteration, J, J_content, J_style)."""

    image: np.ndarray
    generated: np.ndarray
    costs: list = field(default_factory=list)


def _target_features(extractor, C, S, style_layers, content_layer):
    from strata.autograd import no_grad

    with no_grad():
        a_C = extractor(Tensor(C), [content_layer])[content_layer]
        a_S = extractor(Tensor(S), [name for name, _ in style_layers])
        G_S = {name: Tensor(gram_matrix(a).data) for name, a in a_S.items()}
    return Tensor(a_C.data), G_S


def _check_images(content, style) -> None:
    for name, image in (("content", content), ("style", style)):
        a = np.asarray(image)
        if a.ndim != 3 or a.shape[2] != 3 or min(a.shape[:2]) < 1:
            raise ShapeError(f"transfer_style: expected the {name} image as RGB pixels (H, W, "
                             f"3) in [0, 255], received shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"transfer_style: the {name} image holds NaN or inf")
    if np.shape(content) != np.shape(style):
        raise ShapeError(f"transfer_style: expected content and style images of the same size "
                         f"(resize the style image), received {np.shape(content)} and "
                         f"{np.shape(style)}")


def transfer_style(content, style, extractor=None, iterations: int = 200, lr: float = 2.0,
                   alpha: float = 10, beta: float = 40, style_layers=None, content_layer=None,
                   noise_ratio: float = 0.6, seed: int = 0, callback=None) -> StyleTransfer:
    """Generate G with the content of ``content`` and the style of ``style`` (RGB pixels (H,
    W, 3) in [0, 255], same size): Adam with learning rate ``lr`` on G's pixels (the
    preprocessed scale), the network frozen, G clipped to valid pixels after each step, from
    the course's noisy content image. ``extractor`` defaults to random multi-scale features
    (strata.vision.texture); a pretrained VGG-19 (``vgg_features``) gives the course's quality.
    ``callback(iteration, G, costs)`` runs after each iteration (staged images)."""
    from strata.optim import Adam

    _check_images(content, style)
    if not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise ValueError(f"transfer_style: expected iterations >= 0, received {iterations!r}")
    if extractor is None:
        from strata.vision.texture import random_features

        extractor = random_features(seed=seed)
    prep = extractor.preprocessing
    style_layers = _layer_weights(style_layers or extractor.style_layers, "transfer_style")
    content_layer = content_layer or extractor.content_layer
    unknown = [n for n, _ in style_layers if n not in extractor.layer_names]
    if content_layer not in extractor.layer_names or unknown:
        raise KeyError(f"transfer_style: the extractor has no layer(s) "
                       f"{unknown or [content_layer]}; it has {list(extractor.layer_names)}")
    C, S = prep.preprocess(content), prep.preprocess(style)
    a_C, G_S = _target_features(extractor, C, S, style_layers, content_layer)
    G = Tensor(generate_noise_image(C, noise_ratio, prep, np.random.default_rng(seed)),
               requires_grad=True)
    low, high = prep.pixel_bounds()
    optimizer, costs = Adam([G], lr=lr), []
    layers = list(dict.fromkeys([content_layer, *(n for n, _ in style_layers)]))
    for i in range(iterations):
        a_G = extractor(G, layers)
        J_content = content_cost(a_C, a_G[content_layer])
        J_style = style_cost_from_grams(G_S, a_G, style_layers)
        J = total_cost(J_content, J_style, alpha, beta)
        optimizer.zero_grad()
        J.backward()
        optimizer.step()
        np.clip(G.data, low, high, out=G.data)
        costs.append({"iteration": i, "J": J.item(), "J_content": J_content.item(),
                      "J_style": J_style.item()})
        if not math.isfinite(costs[-1]["J"]):
            raise FloatingPointError(f"transfer_style: the cost became {costs[-1]['J']} at "
                                     f"iteration {i}; lower lr (received {lr})")
        if callback is not None:
            callback(i, G.data, costs)
    return StyleTransfer(prep.deprocess(G.data[0]), G.data.copy(), costs)
