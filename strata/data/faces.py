"""The AT&T (ORL) Database of Faces for course 4 week 4: 40 people, 10 grey 92 x 112 photos each.

The file ``faces/att_faces.tar`` of the data directory (``strata.data.data_dir()``) is read in
memory, member by member, and never extracted. Its SHA-256 is checked by ``fetch`` against the
table of known files (strata/data/download.py).
"""

from __future__ import annotations

import io
import re
import tarfile

import numpy as np

from strata import backend

#: Where the archive is kept, relative to the data directory.
ATT_FACES = "faces/att_faces.tar"
#: The original files: a folder of PGM files in a public repository (see SOURCES.md).
ATT_SOURCE = ("https://github.com/surabhiiyer/CreepyTeddy-/tree/"
              "f51a35f3ca03032a0e22edff354bb513028e57a3/att_faces")
_MEMBER = re.compile(r"^(?:\./)?att_faces/s(\d+)/(\d+)\.pgm$")
PEOPLE, PER_PERSON, HEIGHT, WIDTH = 40, 10, 112, 92


def _archive_path():
    """The checked path of the archive; a clear error when it is not in the data directory."""
    from strata.data.download import DownloadError, data_dir, fetch

    path = data_dir() / ATT_FACES
    if not path.is_file():
        # The original is a folder of PGM files, not one downloadable tar: say what to do.
        raise DownloadError(
            f"load_att_faces: {path} is missing. It is a plain tar of att_faces/README and "
            f"att_faces/s1/1.pgm ... att_faces/s40/10.pgm (the AT&T Database of Faces, "
            f"originally served by AT&T Laboratories Cambridge; a copy of the files is at "
            f"{ATT_SOURCE}); place it at {path}, or set STRATA_DATA to a folder that holds "
            f"{ATT_FACES}")
    return fetch(ATT_FACES)


def _read_pgm(data: bytes, name: str) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("load_att_faces needs Pillow: pip install 'strata[vision]'") from e
    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image.convert("L"))
    if pixels.shape != (HEIGHT, WIDTH):
        raise ValueError(f"load_att_faces: expected {HEIGHT}x{WIDTH} grey images, got "
                         f"{name} of shape {pixels.shape}")
    return pixels


def load_att_faces():
    """The AT&T faces ``(X, Y)``: X (400, 112, 92, 1) in [0, 1] (default float dtype), NHWC
    grey images ordered by person then photo number; Y (400,) int64 person labels 0..39
    (folder s1 is person 0). Raises a clear error when the archive is missing, corrupt, or
    not the expected 40 x 10 images."""
    path = _archive_path()
    images: dict[tuple[int, int], np.ndarray] = {}
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                match = _MEMBER.match(member.name)
                if member.isfile() and match:
                    key = (int(match[1]), int(match[2]))
                    images[key] = _read_pgm(tar.extractfile(member).read(), member.name)
    except tarfile.TarError as e:
        raise ValueError(f"load_att_faces: {path} is not a readable tar ({e})") from e
    expected = {(p, i) for p in range(1, PEOPLE + 1) for i in range(1, PER_PERSON + 1)}
    if set(images) != expected:
        missing = sorted(expected - set(images))[:5]
        raise ValueError(f"load_att_faces: expected att_faces/s1..s{PEOPLE}/1..{PER_PERSON}.pgm "
                         f"in {path}, got {len(images)} images (missing e.g. {missing})")
    keys = sorted(expected)
    dtype = backend.get_default_dtype()
    X = np.stack([images[k] for k in keys]).astype(dtype)[..., None] / dtype.type(255)
    Y = np.array([p - 1 for p, _ in keys], dtype=np.int64)
    return X, Y
