"""The op registry: every name in ``strata.ops.__all__`` -> the cases that exercise it.

A case (see op_cases_common.Case) is a strata function of Tensors, float64 inputs from a fixed
seed kept away from kinks, ties and singularities, and the same computation in PyTorch. The
cases live in op_cases_math.py (elementwise, activations, matmul, reductions),
op_cases_shape.py (shape ops), op_cases_nn.py (dropout, batch_norm), op_cases_conv.py
(conv2d, pools) and op_cases_recurrent.py (rnn, lstm, gru, their cells, embedding);
tests/test_ops.py checks that no op is left without one.
"""

from __future__ import annotations

from op_cases_common import Case, case_id
from op_cases_conv import conv_cases
from op_cases_math import math_cases
from op_cases_nn import nn_cases
from op_cases_recurrent import recurrent_cases
from op_cases_shape import shape_cases

ALL_CASES: list[Case] = (math_cases() + shape_cases() + nn_cases() + conv_cases()
                         + recurrent_cases())

REGISTRY: dict[str, list[Case]] = {}
for _case in ALL_CASES:
    REGISTRY.setdefault(_case.op, []).append(_case)

#: Cases whose float64 gradient can be checked against numerical differences.
GRADCHECK_CASES: list[Case] = [c for c in ALL_CASES if c.gradcheck]

__all__ = ["ALL_CASES", "GRADCHECK_CASES", "REGISTRY", "Case", "case_id"]
