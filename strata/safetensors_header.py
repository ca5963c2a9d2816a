"""The header of a safetensors file, read and checked before anything is allocated for its
tensors: an 8-byte little-endian header length, then a JSON object
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}``,
then the tensors' bytes, packed in offset order with no gaps or overlaps.

``read_header`` refuses a header that is too long for the file, names a dtype it does not know,
gives a shape that is not a list of non-negative ints, or offsets that disagree with the dtype
size times the number of values, overlap, leave gaps or run past the end of the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

#: Bytes per value of the dtypes NumPy can hold (safetensors' names).
DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "I32": 4, "U32": 4,
               "F32": 4, "I64": 8, "U64": 8, "F64": 8}
#: The longest header accepted (safetensors' own limit).
MAX_HEADER = 100_000_000


class TensorInfo(NamedTuple):
    """One tensor as the header describes it; offsets are relative to the data section."""

    dtype: str
    shape: tuple
    begin: int
    end: int


class HeaderError(ValueError):
    """A file whose safetensors header is malformed; the message says what and where."""


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise HeaderError(f"the header names {sorted(k for k in set(keys) if keys.count(k) > 1)}"
                          f" more than once")
    return dict(pairs)


def _raw_header(path: Path) -> tuple[dict, int]:
    """The header's JSON object and the size of the data section after it."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise HeaderError(f"expected an 8-byte header length, got a file of {size} bytes")
        n = int.from_bytes(prefix, "little")
        if n > min(size - 8, MAX_HEADER):
            raise HeaderError(f"the header claims {n:,} bytes, but the file has "
                              f"{size - 8:,} bytes after the length (at most "
                              f"{MAX_HEADER:,} allowed)")
        raw = f.read(n)
    try:
        text = raw.decode("utf-8")
        if not text.startswith("{"):
            raise HeaderError(f"expected the header to be a JSON object, got {text[:20]!r}")
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise HeaderError("the header is not UTF-8 text") from None
    except RecursionError:
        raise HeaderError("the header's JSON is nested too deeply") from None
    except json.JSONDecodeError as e:
        raise HeaderError(f"the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise HeaderError(f"expected the header to be a JSON object, got "
                          f"{type(header).__name__}")
    return header, size - 8 - n


def _tensor(name: str, spec) -> TensorInfo:
    where = f"tensor {name!r}"
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        raise HeaderError(f"{where}: expected an object with dtype, shape and data_offsets, "
                          f"got {spec!r:.120}")
    dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    if dtype not in DTYPE_SIZES:
        raise HeaderError(f"{where}: expected a dtype among {', '.join(DTYPE_SIZES)}, got "
                          f"{dtype!r:.40}")
    if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise HeaderError(f"{where}: expected a shape that is a list of ints >= 0, got "
                          f"{shape!r:.120}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in offsets):
        raise HeaderError(f"{where}: expected data_offsets [begin, end] of ints >= 0, got "
                          f"{offsets!r:.120}")
    begin, end = offsets
    nbytes = math.prod(shape) * DTYPE_SIZES[dtype]
    if end - begin != nbytes:
        raise HeaderError(f"{where}: dtype {dtype} and shape {tuple(shape)} need {nbytes:,} bytes, "
                          f"but its data_offsets [{begin}, {end}] span {end - begin:,}")
    return TensorInfo(dtype, tuple(shape), begin, end)


def _check_layout(tensors: dict, data_size: int) -> None:
    """Tensors packed back to back from offset 0 to the end of the file, as safetensors
    requires: no overlap, no gap, nothing past the end and nothing left over."""
    position = 0
    for name, info in sorted(tensors.items(), key=lambda item: (item[1].begin, item[1].end)):
        if info.begin != position:
            problem = "overlaps the previous tensor" if info.begin < position else "leaves a gap"
            raise HeaderError(f"tensor {name!r}: data_offsets [{info.begin}, {info.end}] "
                              f"{problem} (expected it to start at byte {position})")
        position = info.end
    if position != data_size:
        raise HeaderError(f"the tensors' data_offsets end at byte {position:,}, but the file "
                          f"holds {data_size:,} bytes of data after the header")


def read_header(path) -> tuple[dict, dict]:
    """({name: TensorInfo}, metadata) of the safetensors file at ``path``, checked; raises
    HeaderError (a ValueError) on a malformed header. Reads only the header's bytes."""
    header, data_size = _raw_header(Path(path))
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(v, str) for v in metadata.values()):
        raise HeaderError(f"expected __metadata__ to map names to strings, got "
                          f"{metadata!r:.120}")
    tensors = {name: _tensor(name, spec) for name, spec in header.items()}
    _check_layout(tensors, data_size)
    return tensors, metadata
