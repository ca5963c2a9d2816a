"""Safe files: the one atomic-write path every file strata writes goes through, the lock that
keeps two writers out of one run folder, and publishing a finished folder by rename.

An atomic write never shows a half-written file and leaves nothing behind on a crash: the data
goes to an unnamed file (Linux's O_TMPFILE) that the kernel frees if the process dies, is
fsynced, then linked under a temporary name and renamed over the target, and the folder is
fsynced so the rename survives a power cut. Where O_TMPFILE is unsupported, a named temporary
file carrying the writer's process id is used, and such files of dead processes are swept on the
next write into the same folder. Files get the user's umask, as ``open`` would give them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import re
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<host>[\w.-]*)\.(?P<n>\d+)\.tmp$")
_counter = 0


def _temp_name(path: Path) -> Path:
    global _counter
    _counter += 1
    host = re.sub(r"[^\w.-]", "", socket.gethostname())
    return path.with_name(f".{path.name}.{os.getpid()}.{host}.{_counter}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_temporary_files(folder: Path) -> list[Path]:
    """Remove the temporary files that writers on this machine left in ``folder`` when they
    were killed (their process is gone); returns the removed paths."""
    removed, host = [], re.sub(r"[^\w.-]", "", socket.gethostname())
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            match = _TMP.match(entry.name)
            if match and match["host"] == host and not _alive(int(match["pid"])):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def fsync_folder(folder: Path) -> None:
    """Make a rename or creation inside ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_unnamed(folder: Path) -> int | None:
    try:
        return os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o666)
    except (AttributeError, OSError) as e:  # no O_TMPFILE here, or the filesystem refuses it
        if isinstance(e, OSError) and e.errno not in (errno.EOPNOTSUPP, errno.EISDIR,
                                                      errno.EINVAL, errno.ENOENT):
            raise
        return None


def _link_unnamed(fd: int, name: Path) -> None:
    """Give the unnamed file ``fd`` the name ``name``. A directory fd makes os.link use linkat
    with AT_SYMLINK_FOLLOW (plain link() would link the /proc symlink itself)."""
    folder = os.open(name.parent, os.O_RDONLY)
    try:
        os.link(f"/proc/self/fd/{fd}", name.name, dst_dir_fd=folder, follow_symlinks=True)
    finally:
        os.close(folder)


def atomic_write(path, data: bytes | Callable[[str], object]) -> Path:
    """Write ``path`` atomically: ``data`` is the bytes to write, or a callable given a file
    path to write to (e.g. ``lambda p: fig.savefig(p)``). Readers see the old file or the new
    one, never a mix; nothing is left behind if the process dies at any point."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_temporary_files(path.parent)
    fd = _open_unnamed(path.parent)
    named = None
    if fd is None:
        named = _temp_name(path)
        fd = os.open(named, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)
    try:
        if isinstance(data, (bytes, bytearray, memoryview)):
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        else:
            data(str(named) if named else f"/proc/self/fd/{fd}")
        os.fsync(fd)
        if named is None:
            named = _temp_name(path)
            _link_unnamed(fd, named)
        os.replace(named, path)
        named = None
        fsync_folder(path.parent)
    finally:
        os.close(fd)
        if named is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(named)
    return path


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through ``atomic_write``."""
    return atomic_write(path, text.encode("utf-8"))


class FolderBusy(RuntimeError):
    """Another live process holds the lock of the folder being written."""


class FolderLock:
    """An exclusive lock on ``target`` (a folder, existing or not), held through a lock file
    ``.<name>.lock`` beside it. The kernel releases it when the holder dies, so a killed run never
    keeps it; the file names the holder so that the error can say who it is."""

    def __init__(self, target, purpose: str = "strata"):
        self.target = Path(target)
        self.path = self.target.with_name(f".{self.target.name}.lock")
        self.purpose, self.fd = purpose, None

    def acquire(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise FolderBusy(f"{self.target} is being written by {holder}; wait for it to "
                             f"finish or stop it, then try again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({self.purpose})\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing drops the flock; the empty file may stay for reuse
            self.fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def publish_folder(partial: Path, target: Path) -> None:
    """Make the finished folder ``partial`` appear as ``target`` in one rename: a reader sees the
    previous complete folder or the new one. An existing ``target`` is replaced (the caller
    decides whether that is allowed) and then deleted."""
    partial, target = Path(partial), Path(target)
    if target.is_symlink() or not target.exists():
        os.replace(partial, target)
    elif _exchange(partial, target):  # now partial holds the old folder
        shutil.rmtree(partial)
    else:  # no atomic exchange: a short moment with no target, never a mix
        old = target.with_name(f".{target.name}.old.{os.getpid()}")
        os.replace(target, old)
        os.replace(partial, target)
        shutil.rmtree(old)
    fsync_folder(target.parent)
