"""The run folder every command writes: locked, built beside its target, published by rename.

A run writes into ``.<name>.partial`` next to its target folder, holding the lock
``.<name>.lock``; when it finishes, the partial folder replaces the target in one rename, so a
reader sees the previous complete run or the new complete run, never a mix. A run that is
killed or interrupted leaves its partial folder (with its checkpoint) for ``--resume``; the lock
dies with its process. Without an explicit output folder, runs are numbered (``runs/run-0007``)
and ``runs/latest`` is a link moved atomically to the newest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from strata.files import FolderLock, fsync_folder, publish_folder

#: The file that marks a finished run folder (every kind of run writes one).
MARKER = "config.json"
_NUMBERED = re.compile(r"^\.?run-(\d{4,})(\.partial)?$")


def partial_path(target) -> Path:
    """Where the run of ``target`` is built (and left, when interrupted, for resuming)."""
    target = Path(target)
    return target.with_name(f".{target.name}.partial")


def is_finished_run(folder) -> bool:
    """True for a published run folder (it holds config.json)."""
    return (Path(folder) / MARKER).is_file()


class RunFolder:
    """Context manager around one run's writes: ``with RunFolder(target) as run:`` write into
    ``run.path``, then call ``run.publish()``. ``overwrite`` allows replacing a finished run (and
    discards an interrupted one); ``resume`` continues an interrupted run in its partial
    folder. A second writer on the same target gets strata.files.FolderBusy. A run that fails
    leaves its partial folder only if it holds the ``checkpoint`` file (something to resume)."""

    def __init__(self, target, overwrite: bool = False, resume: bool = False,
                 purpose: str = "strata", checkpoint: str | None = None):
        self.target = Path(target)
        self.path = partial_path(self.target)
        self.overwrite, self.resume, self.checkpoint = overwrite, resume, checkpoint
        self.lock = FolderLock(self.target, purpose)

    def __enter__(self) -> RunFolder:
        self.lock.acquire()
        try:
            self._prepare()
        except BaseException:
            self.lock.release()
            raise
        return self

    def _prepare(self) -> None:
        target, partial = self.target, self.path
        if self.resume:
            if not (partial / MARKER).is_file():
                where = "a finished run" if is_finished_run(target) else "nothing"
                raise FileNotFoundError(f"nothing to resume for {target}: no interrupted run "
                                        f"in {partial} ({target} holds {where})")
            return
        if is_finished_run(target) and not self.overwrite:
            raise FileExistsError(f"{target} holds a finished run; pass --overwrite to replace "
                                  f"it, or choose another --out")
        if partial.exists():
            if not self.overwrite:
                raise FileExistsError(f"an interrupted run of {target} is in {partial}: "
                                      f"continue it with --resume, or pass --overwrite to "
                                      f"start again")
            shutil.rmtree(partial)
        partial.mkdir(parents=True)

    def publish(self) -> Path:
        """Replace the target by the finished partial folder, in one rename."""
        publish_folder(self.path, self.target)
        return self.target

    def __exit__(self, kind, error, trace) -> None:
        try:
            resumable = self.checkpoint and (self.path / self.checkpoint).is_file()
            if kind is not None and self.path.is_dir() and not resumable:
                shutil.rmtree(self.path)
        finally:
            self.lock.release()


def next_numbered(parent) -> Path:
    """``parent/run-NNNN``, one past the highest number used there (finished or partial)."""
    parent = Path(parent)
    numbers = [int(m[1]) for m in (_NUMBERED.match(p.name) for p in parent.iterdir()) if m] \
        if parent.is_dir() else []
    return parent / f"run-{max(numbers, default=0) + 1:04d}"


def numbered_run(parent) -> Path:
    """The next numbered run folder in ``parent``. A ``latest`` folder left by an older strata
    (a real folder, not a link) becomes a numbered run first, so that the link can take its
    name."""
    parent = Path(parent)
    old = parent / "latest"
    if old.is_dir() and not old.is_symlink():
        os.replace(old, next_numbered(parent))
    return next_numbered(parent)


def point_latest(run: Path) -> Path:
    """Make ``run.parent/latest`` a link to ``run``, replaced atomically."""
    link = run.parent / "latest"
    tmp = run.parent / f".latest.{os.getpid()}.link"
    tmp.unlink(missing_ok=True)
    os.symlink(run.name, tmp)
    os.replace(tmp, link)
    fsync_folder(run.parent)
    return link


def read_settings(folder, cls, kind: str, command: str, foreign=None):
    """The dataclass ``cls`` rebuilt from ``folder``/config.json, every problem an error that
    names the file: a folder that is no run of this ``kind`` (or whose run was interrupted:
    continue it with ``command --resume``), bad JSON, unknown settings, invalid values.
    ``foreign(raw)`` may name another kind of run the settings belong to (its message is
    raised)."""
    folder = Path(folder)
    path = folder / MARKER
    if not path.is_file():
        if (partial_path(folder) / MARKER).is_file():
            raise FileNotFoundError(f"{folder} has not finished: its run was interrupted; "
                                    f"continue it with {command} --resume {folder}")
        raise FileNotFoundError(f"{folder} is not a {kind} run folder (no config.json)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); expected the settings {command} "
                         f"writes") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object of run settings, got "
                         f"{type(raw).__name__}")
    if foreign is not None and (other := foreign(raw)):
        raise ValueError(other)
    own = list(cls.__dataclass_fields__)
    if unknown := sorted(raw.keys() - set(own)):
        raise ValueError(f"{path}: unknown settings {unknown}; a {command} run has "
                         f"{', '.join(own)}")
    try:
        return cls(**raw)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None
