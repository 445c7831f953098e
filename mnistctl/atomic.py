"""Write files so that a kill at any moment leaves the old complete file or the new one, never half.

    python -c "from mnistctl.atomic import atomic_write as aw; exec('with aw(\"x.txt\") as f: f.write(\"hi\")')"

The new content goes into a file without a name (Linux `O_TMPFILE`) in the target's folder; only once
it is complete and fsynced does it get a name and replace the target. A kill -9 or a full disk on the
way leaves nothing behind: no half file, no temporary file. Where unnamed files are not supported (other
systems, some file systems) a hidden `.name.XXXX.tmp` is used instead and removed on any error.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _file_mode() -> int:
    """The permissions of a normal new file under the current umask (mkstemp would make it 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _unnamed_file(folder: Path) -> int | None:
    if not hasattr(os, "O_TMPFILE") or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600)
    except OSError:  # the file system does not support it (EOPNOTSUPP, EISDIR on old kernels, ...)
        return None


def _link(fd: int, path: Path) -> None:
    """Give the unnamed file `fd` the name `path` (FileExistsError if taken)."""
    # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd/N; os.link uses it only when given a dir fd.
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(f"/proc/self/fd/{fd}", path.name, dst_dir_fd=folder, follow_symlinks=True)
    finally:
        os.close(folder)


def _name(fd: int, path: Path, replace: bool) -> None:
    """Give the complete unnamed file `fd` the name `path` (atomically replacing it, or never over one)."""
    try:
        if not replace:
            _link(fd, path)  # FileExistsError if something has the name meanwhile
            return
        tmp = path.parent / f".{path.name}.{os.urandom(4).hex()}.tmp"  # named for the rename only
        _link(fd, tmp)
    except FileExistsError:
        raise
    except OSError:  # this system cannot name an unnamed file after all (e.g. /proc hidden): copy it instead
        tmp = _named_copy(fd, path)
    _publish(tmp, path, replace)


def _named_copy(fd: int, path: Path) -> Path:
    """A hidden named copy of the content of `fd`, beside `path`, fsynced."""
    copy_fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        offset = 0
        while block := os.pread(fd, 1 << 20, offset):
            offset += os.write(copy_fd, block)
        os.fsync(copy_fd)
        os.fchmod(copy_fd, _file_mode())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    finally:
        os.close(copy_fd)
    return Path(name)


def _publish(tmp: Path, path: Path, replace: bool) -> None:
    """Rename the complete file `tmp` to `path` (or link it, never over an existing file), removing `tmp`."""
    try:
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", *, replace: bool = True, **open_kwargs) -> Iterator[IO]:
    """Open a new file for `path`; on success fsync it and give it the name `path`.

    replace=False never writes over an existing file: it raises FileExistsError instead.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _unnamed_file(path.parent)
    tmp = None
    if fd is None:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        tmp = Path(name)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), _file_mode())
            if tmp is None:
                _name(f.fileno(), path, replace)
        if tmp is not None:
            _publish(tmp, path, replace)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
