"""Write files so that a kill at any moment leaves the old complete file or the new one, never half.

    python -c "from mnistctl.atomic import atomic_write as aw; exec('with aw(\"x.txt\") as f: f.write(\"hi\")')"

The new content goes into a file without a name (Linux `O_TMPFILE`) in the target's folder; only once
it is complete and fsynced does it get a name and replace the target. A kill -9 or a full disk on the
way leaves nothing behind: no half file, no temporary file. Where unnamed files are not supported (other
systems, some file systems) a hidden `.name.XXXX.tmp` is used instead and removed on any error.
"""

from __future__ import annotations

import errno
import os
import stat
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


def _new_file(path: Path) -> tuple[int, Path | None]:
    """A file to write `path`'s content into: unnamed (tmp None), or where there are none a hidden `tmp`."""
    fd = _unnamed_file(path.parent)
    if fd is not None:
        return fd, None
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    return fd, Path(name)


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
    make_folders(path.parent)
    fd, tmp = _new_file(path)
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


_KINDS = {
    stat.S_IFREG: "a file",
    stat.S_IFDIR: "a folder",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def kind_name(mode: int) -> str:
    """What a file-system entry is, from its st_mode: "a file", "a folder", "a FIFO (named pipe)", ..."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def nearest_existing(path: Path) -> Path:
    """`path` if it exists (a dangling link counts), else its nearest ancestor that does."""
    return next(p for p in [path, *path.absolute().parents] if os.path.lexists(p))


def no_folder_kind(path: Path) -> str:
    """What `path`, found where a folder should be, is instead: "a file", "a symbolic link to no folder", ..."""
    return "a symbolic link to no folder" if path.is_symlink() else kind_name(os.lstat(path).st_mode)


def make_folders(folder: Path, made: list[Path] | None = None) -> None:
    """`mkdir -p folder`, appending each folder it makes to `made` (parents first).

    A file (or a link to no folder) in the way is NotADirectoryError, naming it: Path.mkdir(exist_ok=True)
    says FileExistsError there, which atomic_write(replace=False)'s callers read as "the target is taken".
    """
    missing = []
    for parent in [folder, *folder.parents]:
        if os.path.isdir(parent):
            break
        missing.append(parent)
    for parent in reversed(missing):
        try:
            parent.mkdir()
        except FileExistsError:
            if parent.is_dir():  # another process made it meanwhile
                continue
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(parent)) from None
        if made is not None:
            made.append(parent)


def write_all(files: dict[Path, bytes], *, replace: bool = True) -> None:
    """Write several files so that all of them appear or none does (on an error; a kill -9 between two
    names can still leave some): each is written complete and fsynced before the first one gets its name.
    A name that existed before and was already replaced when the error came keeps the new content.

    The folders they need are made, and removed again if the writing fails. replace=False never writes
    over an existing name: FileExistsError instead, and the files named before it are removed again.
    """
    made: list[Path] = []
    staged: list[tuple[Path, int | None, Path | None]] = []  # (target, unnamed file's fd | hidden temporary file)
    named: list[Path] = []  # names this call gave that did not exist before
    try:
        for path, data in files.items():
            make_folders(path.parent, made)
            staged.append((path, *_staged(path, data)))
        for path, fd, tmp in staged:
            new = not os.path.lexists(path)
            if tmp is None:
                _name(fd, path, replace)
            else:
                _publish(tmp, path, replace)
            if new:
                named.append(path)
    except BaseException:
        for path in named:
            path.unlink(missing_ok=True)
        for _, _, tmp in staged:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:  # something else was put in it meanwhile: it stays
                pass
        raise
    finally:
        for _, fd, _ in staged:
            if fd is not None:
                os.close(fd)


def _staged(path: Path, data: bytes) -> tuple[int | None, Path | None]:
    """`data` written and fsynced for `path`: an unnamed file's fd, or (where there are none) a hidden file."""
    fd, tmp = _new_file(path)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.fchmod(fd, _file_mode())
    except BaseException:
        os.close(fd)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    if tmp is not None:
        os.close(fd)
        return None, tmp
    return fd, None
