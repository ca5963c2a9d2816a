"""Registry cases of the shape ops: reshape, transpose, permute, broadcast_to, expand_dims,
squeeze, getitem, concatenate, stack, pad and space_to_depth."""

from __future__ import annotations

import numpy as np
from op_cases_common import Case, mask, normal, torch

import strata


def _one(op, name, shape, fn, torch_fn):
    return Case(op, name, fn, torch_fn, (normal(*shape),))


def _reshape_and_transpose_cases() -> list[Case]:
    return [
        _one("reshape", "matrix", (3, 4), lambda a: strata.reshape(a, (2, 6)),
             lambda t: t.reshape(2, 6)),
        _one("reshape", "inferred_dim", (2, 3, 4), lambda a: strata.reshape(a, (4, -1)),
             lambda t: t.reshape(4, -1)),
        _one("reshape", "int_shape", (2, 3), lambda a: strata.reshape(a, 6),
             lambda t: t.reshape(6)),
        _one("reshape", "to_scalar", (1,), lambda a: strata.reshape(a, ()),
             lambda t: t.reshape(())),
        _one("reshape", "from_scalar", (), lambda a: strata.reshape(a, (1, 1)),
             lambda t: t.reshape(1, 1)),
        _one("transpose", "matrix_default", (3, 4), strata.transpose, lambda t: t.permute(1, 0)),
        _one("transpose", "rank3_default", (2, 3, 4), strata.transpose,
             lambda t: t.permute(2, 1, 0)),
        _one("transpose", "axes", (2, 3, 4), lambda a: strata.transpose(a, (1, 0, 2)),
             lambda t: t.permute(1, 0, 2)),
        _one("transpose", "negative_axes", (2, 3, 4), lambda a: strata.transpose(a, (-1, 0, 1)),
             lambda t: t.permute(2, 0, 1)),
        _one("transpose", "vector", (5,), strata.transpose, lambda t: t.permute(0)),
        _one("permute", "varargs", (2, 3, 4), lambda a: strata.permute(a, 0, 2, 1),
             lambda t: t.permute(0, 2, 1)),
        _one("permute", "tuple", (2, 3, 4), lambda a: strata.permute(a, (2, 0, 1)),
             lambda t: t.permute(2, 0, 1)),
        _one("permute", "nhwc_to_nchw", (2, 3, 2, 2), lambda a: strata.permute(a, 0, 3, 1, 2),
             lambda t: t.permute(0, 3, 1, 2)),
    ]


def _broadcast_and_dims_cases() -> list[Case]:
    return [
        _one("broadcast_to", "row", (4,), lambda a: strata.broadcast_to(a, (3, 4)),
             lambda t: t.broadcast_to(3, 4)),
        _one("broadcast_to", "column_new_axes", (3, 1), lambda a: strata.broadcast_to(a, (2, 3, 5)),
             lambda t: t.broadcast_to(2, 3, 5)),
        _one("broadcast_to", "scalar", (), lambda a: strata.broadcast_to(a, (2, 3)),
             lambda t: t.broadcast_to(2, 3)),
        _one("broadcast_to", "same_shape", (2, 3), lambda a: strata.broadcast_to(a, (2, 3)),
             lambda t: t.broadcast_to(2, 3)),
        _one("expand_dims", "front", (3, 4), lambda a: strata.expand_dims(a, 0),
             lambda t: t.unsqueeze(0)),
        _one("expand_dims", "middle", (3, 4), lambda a: strata.expand_dims(a, 1),
             lambda t: t.unsqueeze(1)),
        _one("expand_dims", "negative", (3, 4), lambda a: strata.expand_dims(a, -1),
             lambda t: t.unsqueeze(-1)),
        _one("expand_dims", "tuple", (3, 4), lambda a: strata.expand_dims(a, (0, 2)),
             lambda t: t.unsqueeze(0).unsqueeze(2)),
        _one("squeeze", "all", (3, 1, 4, 1), strata.squeeze,
             lambda t: t.squeeze()),
        _one("squeeze", "axis", (3, 1, 4, 1), lambda a: strata.squeeze(a, 1),
             lambda t: t.squeeze(1)),
        _one("squeeze", "negative_axis", (3, 1, 4, 1), lambda a: strata.squeeze(a, -1),
             lambda t: t.squeeze(-1)),
        _one("squeeze", "axes_tuple", (3, 1, 4, 1), lambda a: strata.squeeze(a, (1, 3)),
             lambda t: t.squeeze((1, 3))),
        _one("squeeze", "to_scalar", (1, 1), strata.squeeze, lambda t: t.reshape(())),
    ]


def _index(name, index, torch_fn, shape=(5, 4)):
    """strata.getitem(a, index); ``torch_fn`` selects the same elements of a torch tensor."""
    return _one("getitem", name, shape, lambda a: strata.getitem(a, index), torch_fn)


def _as_torch(array):
    return torch.from_numpy(array)


def _getitem_cases() -> list[Case]:
    repeated = np.array([0, 2, 0, 0])
    matrix = np.array([[1, 1], [3, 1]])
    rows, cols = np.array([0, 1, 1, 1]), np.array([2, 3, 2, 3])  # (1, 3) picked twice
    full_mask, row_mask = mask(5, 4), mask(5)
    return [
        _index("slice", slice(1, 4), lambda t: t[1:4]),
        _index("int", 1, lambda t: t[1]),
        _index("negative_int_and_step", (-1, slice(None, None, 2)), lambda t: t[-1, ::2]),
        _index("reversed", slice(None, None, -1), lambda t: t.flip(0)),
        _index("negative_steps", (slice(3, 0, -2), slice(None, None, -1)),
               lambda t: t.flip(1)[[3, 1]]),
        _index("new_axis", (None, slice(1, 3)), lambda t: t[None, 1:3]),
        _index("ellipsis_int", (Ellipsis, 2), lambda t: t[..., 2], shape=(2, 3, 4)),
        _index("ellipsis_new_axis", (Ellipsis, None), lambda t: t[..., None], shape=(2, 3)),
        _index("scalar", (1, 2), lambda t: t[1, 2]),
        _index("repeated_ints", repeated, lambda t: t[_as_torch(repeated)]),
        _index("int_matrix", matrix, lambda t: t[_as_torch(matrix)]),
        _index("paired_arrays_repeated", (rows, cols), lambda t: t[_as_torch(rows),
                                                                   _as_torch(cols)]),
        _index("slice_and_list", (slice(None), [3, 3, 0]), lambda t: t[:, [3, 3, 0]]),
        _index("boolean_mask", full_mask, lambda t: t[_as_torch(full_mask)]),
        _index("row_mask_and_slice", (row_mask, slice(1, None)),
               lambda t: t[_as_torch(row_mask), 1:]),
        _index("tensor_mask", strata.tensor(full_mask), lambda t: t[_as_torch(full_mask)]),
        _index("rank3_mixed", (slice(None), [2, 0, 2], slice(None, None, -1)),
               lambda t: t.flip(2)[:, [2, 0, 2]], shape=(2, 3, 4)),
    ]


def _joined(op, name, shapes, axis=None):
    """concatenate/stack of several tensors (``axis=None``: the op's default, axis 0)."""
    join = getattr(strata, op)
    kwargs = {} if axis is None else {"axis": axis}
    torch_name = "cat" if op == "concatenate" else op
    return Case(op, name, lambda *ts: join(list(ts), **kwargs),
                lambda *ts: getattr(torch, torch_name)(ts, dim=0 if axis is None else axis),
                tuple(normal(*s) for s in shapes))


def _pad(name, shape, pad_width, torch_pad, value=None):
    """``torch_pad`` lists (before, after) pairs from the last axis to the first, as F.pad."""
    kwargs = {} if value is None else {"value": value}
    return _one("pad", name, shape, lambda a: strata.pad(a, pad_width, **kwargs),
                lambda t: torch.nn.functional.pad(t, torch_pad, value=value or 0.0))


def _joining_cases() -> list[Case]:
    return [
        _joined("concatenate", "default_axis", [(2, 3), (1, 3), (4, 3)]),
        _joined("concatenate", "axis_1", [(2, 3), (2, 1)], axis=1),
        _joined("concatenate", "negative_axis", [(2, 3, 1), (2, 3, 2)], axis=-1),
        _joined("concatenate", "middle_axis", [(2, 1, 4), (2, 3, 4)], axis=1),
        _joined("concatenate", "single", [(3, 2)], axis=0),
        _joined("stack", "default_axis", [(3, 4), (3, 4)]),
        _joined("stack", "axis_1", [(3, 4), (3, 4)], axis=1),
        _joined("stack", "negative_axis", [(3, 4), (3, 4), (3, 4)], axis=-1),
        _joined("stack", "negative_middle_axis", [(3, 4), (3, 4), (3, 4)], axis=-2),
        _joined("stack", "scalars", [(), (), ()], axis=0),
        _pad("per_axis", (3, 4), ((1, 2), (0, 3)), (0, 3, 1, 2)),
        _pad("int", (3, 4), 1, (1, 1, 1, 1)),
        _pad("one_pair", (2, 3), (2, 1), (2, 1, 2, 1)),
        _pad("rank3_value", (2, 3, 2), ((0, 1), (2, 0), (1, 1)), (1, 1, 2, 0, 0, 1), value=1.5),
    ]


def _torch_space_to_depth(block, order="tensorflow"):
    """strata's NHWC space_to_depth through torch's pixel_unshuffle (NCHW, channels ordered
    (c, dy, dx)), its channels regrouped to (dy, dx, c); "darknet" reads the NCHW buffers
    before and after as pjreddie's reorg_cpu does (see strata/ops/space.py)."""
    def fn(t):
        m, h, w, c = t.shape
        b, b2 = block, block * block
        if order == "darknet":
            t = t.permute(0, 3, 1, 2).reshape(m, c // b2, h * b, w * b).permute(0, 2, 3, 1)
            h, w, c = h * b, w * b, c // b2
        out = torch.nn.functional.pixel_unshuffle(t.permute(0, 3, 1, 2), b)
        out = out.reshape(m, c, b2, h // b, w // b).transpose(1, 2).reshape(m, b2 * c, h // b,
                                                                             w // b)
        if order == "darknet":
            out = out.reshape(m, c * b2 * b2, h // b2, w // b2)
        return out.permute(0, 2, 3, 1)
    return fn


def _space_cases() -> list[Case]:
    def case(name, shape, block, order="tensorflow"):
        return _one("space_to_depth", name, shape,
                    lambda a: strata.space_to_depth(a, block, order),
                    _torch_space_to_depth(block, order))
    return [case("block_2", (2, 4, 6, 3), 2), case("block_3", (1, 6, 3, 2), 3),
            case("block_1", (2, 3, 2, 2), 1), case("darknet_block_2", (2, 4, 6, 8), 2),
            case("darknet_block_3", (1, 3, 6, 9), 3)]


def shape_cases() -> list[Case]:
    """All cases of this module."""
    return (_reshape_and_transpose_cases() + _broadcast_and_dims_cases() + _getitem_cases()
            + _joining_cases() + _space_cases())
