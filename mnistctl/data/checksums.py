"""SHA-256 checks of the MNIST files: each file hashed at most once per process, and remembered across them.

    python -c "from mnistctl.data.mnist_files import prepare_root; prepare_root(None)"

Hashing the four files reads 55 MB, and a command asks for the data several times (the CLI's early
check, `prepare_data`, `setup`, the test after fit). A file whose hash matched is remembered by its
identity: device, inode, size, mtime and ctime (nanoseconds). In this process it is a set; across
processes it is `verified.json` in the cache folder (mnistctl's own folder, never the user's). A file
is hashed again as soon as any of the five differs. Any change made through the file system (a
write, a truncation, a copy or rename over it, even one that puts the old mtime back with `touch`)
changes the ctime or the inode, which no system call can set back; only a change beneath the file
system (a failing disk, a write to the raw device) or a clock set back goes unseen. Deleting
`verified.json` makes the next command hash every file again.

Files are opened non-blocking and checked to be regular before any read: a FIFO or a device put in
place of a file is reported by kind instead of hanging the command.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import stat
from pathlib import Path
from typing import BinaryIO

from mnistctl.atomic import atomic_write, kind_name

log = logging.getLogger(__name__)

STAMP_NAME = "verified.json"
STAMP_ENTRIES = 64  # the newest files kept in the stamp: the cache's four, and a few --data.data_dir copies
_verified_here: set[tuple[str, tuple[int, ...]]] = set()  # (real path, identity) of files hashed in this process


class NotRegularFile(OSError):
    """A path that is a FIFO, socket, device, folder or broken link; the message says which."""


def kind_of(path: str | os.PathLike) -> str | None:
    """None for a regular file (or a link to one); else what the path is, without opening it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if os.path.islink(path) else "missing"
    except OSError as err:  # a symbolic-link loop, a name too long, no permission on the folder
        return "a symbolic link loop" if err.errno == errno.ELOOP else f"not accessible ({err.strerror})"
    return None if stat.S_ISREG(mode) else kind_name(mode)


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open `path` for reading only if it is a regular file; a FIFO never blocks (O_NONBLOCK)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"{path} is {kind_name(mode)}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_verified(path: Path, expected: str, stamp: Path | None = None) -> tuple[bytes | None, str | None]:
    """Read `path` whole; return (its bytes, None) when its SHA-256 is `expected`, else (None, what is wrong).

    The bytes returned are the bytes checked: nothing can change between the check and their use.
    """
    return _check(path, expected, stamp, keep=True)


def check_file(path: Path, expected: str, stamp: Path | None = None) -> str | None:
    """None when `path` is a regular file whose SHA-256 is `expected` (hashed only if not known); else why not."""
    return _check(path, expected, stamp, keep=False)[1]


def _check(path: Path, expected: str, stamp: Path | None, keep: bool) -> tuple[bytes | None, str | None]:
    kind = kind_of(path)
    if kind is not None:
        return None, f"is {kind}" if kind != "missing" else "is missing"
    real = os.path.realpath(path)
    try:
        with open_regular(path) as f:
            before = identity(os.fstat(f.fileno()))
            known = (real, before) in _verified_here or _stamped(stamp, real, before, expected)
            if known and not keep:
                _verified_here.add((real, before))
                return None, None
            data = f.read()  # the whole file (47 MB at most): what is hashed is what the caller gets
            after = identity(os.fstat(f.fileno()))
    except OSError as err:
        return None, f"cannot be read ({err.strerror or err})"
    if known and before == after:
        _verified_here.add((real, before))
        return data, None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        return (
            None,
            f"is corrupted or truncated: SHA-256 {actual[:16]}... does not match the expected {expected[:16]}...",
        )
    if before == after:  # not written to while it was read: this identity is proven good
        _verified_here.add((real, before))
        _record(stamp, real, before, expected)
    return (data if keep else None), None


def forget() -> None:
    """Drop this process's memory of verified files (tests use it to act as a new process)."""
    _verified_here.clear()


def _load_stamp(stamp: Path) -> dict:
    try:
        with open_regular(stamp) as f:
            entries = json.loads(f.read().decode())
        return entries if isinstance(entries, dict) else {}
    except (OSError, ValueError):  # none yet, unreadable, not JSON, not a file: it only saves time
        return {}


def _stamped(stamp: Path | None, real: str, ident: tuple[int, ...], expected: str) -> bool:
    if stamp is None:
        return False
    entry = _load_stamp(stamp).get(real)
    return isinstance(entry, dict) and entry.get("identity") == list(ident) and entry.get("sha256") == expected


def _record(stamp: Path | None, real: str, ident: tuple[int, ...], sha256: str) -> None:
    if stamp is None:
        return
    entries = _load_stamp(stamp)
    entries.pop(real, None)
    entries[real] = {"identity": list(ident), "sha256": sha256}
    entries = dict(list(entries.items())[-STAMP_ENTRIES:])
    try:
        with atomic_write(stamp) as f:
            json.dump(entries, f, indent=1)
    except OSError as err:  # a read-only or full cache: the next command hashes again, nothing else is lost
        log.debug("could not record verified MNIST files in %s: %s", stamp, err)
