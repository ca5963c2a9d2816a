"""``strata demo``: course 1 week 3's planar-data network written directly with the engine
(tensors and autograd, no layers), gradient-checked, then trained by batch gradient descent."""

from __future__ import annotations

import numpy as np

import strata
from strata.cli import _positive
from strata.data import planar_flower
from strata.losses import binary_crossentropy_from_logits


def shallow_network(n_x: int, n_h: int, n_y: int, scale: float = 0.01) -> dict:
    """The course's parameters dictionary for a 2-layer net, batch first (W1 is (n_x, n_h))."""
    rng = strata.rng()
    return {
        "W1": strata.tensor(rng.standard_normal((n_x, n_h)) * scale, requires_grad=True,
                            dtype=strata.get_default_dtype()),
        "b1": strata.tensor(np.zeros(n_h), requires_grad=True, dtype=strata.get_default_dtype()),
        "W2": strata.tensor(rng.standard_normal((n_h, n_y)) * scale, requires_grad=True,
                            dtype=strata.get_default_dtype()),
        "b2": strata.tensor(np.zeros(n_y), requires_grad=True, dtype=strata.get_default_dtype()),
    }


def forward(params: dict, X) -> strata.Tensor:
    """Z2 = tanh(X W1 + b1) W2 + b2: the output layer's logits (sigmoid applied in the cost)."""
    A1 = strata.tanh(X @ params["W1"] + params["b1"])
    return A1 @ params["W2"] + params["b2"]


def run_demo(args) -> int:
    """Build, gradient-check and train the course's planar-data network."""
    strata.seed(args.seed)
    X, Y = planar_flower(m=400)
    params = shallow_network(X.shape[1], args.hidden, 1)
    print(f"Planar flower data: X {X.shape}, Y {Y.shape}; network 2-{args.hidden}-1 "
          f"(tanh hidden layer, sigmoid output)")

    # Checked at unit-scale weights: with the 0.01-scale training init the gradients are so
    # small that rounding in the numerical estimate dominates the relative difference.
    probe = shallow_network(X.shape[1], args.hidden, 1, scale=1.0)
    print("\nGradient check of the network's backward pass (float64, two-sided differences):")
    report = strata.check_model_gradients(
        lambda: binary_crossentropy_from_logits(forward(probe, X), Y), probe)
    print(report)
    if not report.passed:
        return 1

    print(f"\nTraining with batch gradient descent, learning rate {args.lr}:")
    for i in range(args.iterations + 1):
        cost = binary_crossentropy_from_logits(forward(params, X), Y)
        if i % args.print_every == 0:
            print(f"Cost after iteration {i}: {cost.item():f}")
        if i == args.iterations:
            break
        cost.backward()
        with strata.no_grad():
            for p in params.values():
                p.data -= args.lr * p.grad
                p.grad = None

    with strata.no_grad():
        predictions = forward(params, X).data > 0
    accuracy = float(np.mean(predictions == (Y > 0.5))) * 100
    print(f"\nTraining accuracy: {accuracy:.1f} %")
    return 0


def add_demo_parser(sub) -> None:
    """Add ``demo`` to ``strata``."""
    demo = sub.add_parser("demo", help="gradient-check and train a small engine-built network")
    demo.add_argument("--iterations", type=_positive(int), default=10000)
    demo.add_argument("--lr", type=_positive(float), default=1.2, help="learning rate alpha")
    demo.add_argument("--hidden", type=_positive(int), default=4, help="hidden units n_h")
    demo.add_argument("--print-every", type=_positive(int), default=1000)
    demo.add_argument("--seed", type=int, default=2)
    demo.set_defaults(handler=run_demo)
