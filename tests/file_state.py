"""Test helpers for "nothing changed": a fingerprint of every file under a folder, and a process that
cannot write where the file permissions say no (even when the tests run as root)."""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
from pathlib import Path

PR_CAPBSET_DROP = 24
# CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER: what lets root write into a folder without write permission.
ROOT_FILE_CAPABILITIES = (1, 2, 3)


def fingerprint(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file (and symlink target) under folder, hidden ones included."""
    found = {}
    for path in sorted(Path(folder).rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            found[rel] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[rel] = "dir"
    return found


def obey_file_permissions() -> None:
    """preexec_fn for subprocess: the child cannot bypass file permissions, even as root.

    Dropping the capabilities from the bounding set before exec leaves root's new program without them.
    As an ordinary user there is nothing to drop (and no permission to): file permissions apply anyway.
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in ROOT_FILE_CAPABILITIES:
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def read_only(folder: Path) -> None:
    """Take write permission away from folder and everything in it."""
    for path in [Path(folder), *Path(folder).rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~0o222)


def writable(folder: Path) -> None:
    for path in [Path(folder), *Path(folder).rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)


def run_obeying_permissions(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m mnistctl ARGS` in a process for which read-only files and folders are read-only."""
    return subprocess.run(
        [sys.executable, "-m", "mnistctl", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=obey_file_permissions,
    )
