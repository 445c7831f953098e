"""Find, verify, unpack and read the MNIST IDX files (laid out as torchvision's `MNIST` reader expects).

    python -c "from mnistctl.data.mnist_files import prepare_root; print(prepare_root(None))"

The package ships the four gzip files (CC BY-SA 3.0, Y. LeCun, C. Cortes, C. J. C. Burges). On first
use they are unpacked into a user cache folder laid out as torchvision expects (`<root>/MNIST/raw/`),
because site-packages may be read-only. Every file is checked against its SHA-256 before use (hashed
once, then remembered: see checksums.py). A bad file in the cache, mnistctl's own folder, is unpacked
again from the bundled copy, with a warning; a bad file in your own `--data.data_dir` is reported by
name and nothing trains: your files are never changed.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import zlib
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from mnistctl.atomic import atomic_write
from mnistctl.data.checksums import STAMP_NAME, NotRegularFile, check_file, open_regular, read_verified
from mnistctl.errors import UsageError
from mnistctl.layout import cache_root  # where the bundled copy is unpacked

log = logging.getLogger(__name__)

# SHA-256 of the uncompressed IDX files, as listed in mnistctl/data/mnist/SHA256SUMS.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
CACHE_HINT = "set MNISTCTL_CACHE_DIR to a writable folder"


def bundled_dir() -> Path:
    return Path(str(resources.files("mnistctl.data") / "mnist"))


def _stamp() -> Path:
    return cache_root() / STAMP_NAME


def raw_dir(root: Path) -> Path:
    return root / "MNIST" / "raw"


def verify_raw_dir(raw: Path) -> None:
    """Raise UsageError naming the first file that is not the MNIST file it should be (never changes it)."""
    for name, expected in SHA256.items():
        problem = check_file(raw / name, expected, _stamp())
        if problem:
            raise UsageError(
                f"MNIST file {raw / name} {problem}; point --data.data_dir at a good copy, "
                "or drop it to use the copy bundled with mnistctl"
            )


def _unpack_one(gz: Path, target: Path) -> None:
    """Unpack `gz` into `target` through a temporary file renamed over it: a kill never leaves half a file."""
    try:
        with open_regular(gz) as compressed, gzip.GzipFile(fileobj=compressed) as src:
            with atomic_write(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    except FileNotFoundError:
        raise UsageError(
            f"MNIST archive {gz} is missing; point --data.data_dir at a folder with the four MNIST files"
        ) from None
    except NotRegularFile as err:
        raise UsageError(
            f"MNIST archive {err}, not a file; point --data.data_dir at a folder with the four MNIST files"
        ) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise UsageError(f"MNIST archive {gz} cannot be unpacked ({err}); it is truncated or corrupted") from None
    except IsADirectoryError:
        raise UsageError(f"MNIST cache entry {target} is a folder; move it away, or {CACHE_HINT}") from None
    except OSError as err:
        raise UsageError(f"cannot unpack {gz} into {target.parent}: {err.strerror or err}; {CACHE_HINT}") from None


def _unpack_gz_dir(src: Path, root: Path) -> None:
    """Make `root/MNIST/raw/` hold the four good files, unpacking from `src/<name>.gz` each one that is not.

    `root` is inside mnistctl's cache: a missing file is unpacked quietly, a bad one (corrupted,
    truncated, a FIFO, a broken link) is replaced by a fresh copy, with one warning naming them.
    """
    raw = raw_dir(root)
    try:
        raw.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the MNIST cache folder {raw}: {err.strerror or err}; {CACHE_HINT}") from None
    repaired = []
    for name, expected in SHA256.items():
        problem = check_file(raw / name, expected, _stamp())
        if problem is None:
            continue
        _unpack_one(src / f"{name}.gz", raw / name)
        if problem != "is missing":
            repaired.append(f"{name} ({problem.split(':')[0].removeprefix('is ')})")
        again = check_file(raw / name, expected, _stamp())
        if again:
            fix = "reinstall mnistctl" if src == bundled_dir() else "point --data.data_dir at a good copy"
            raise UsageError(f"MNIST archive {src / f'{name}.gz'} unpacks to a file that {again}; {fix}")
    if repaired:
        log.warning("restored MNIST cache file(s) in %s from %s: %s", raw, src, ", ".join(repaired))


def _has_raw(raw: Path) -> bool:
    # lexists: a FIFO or a broken link still counts as "there", so the check names it instead of ignoring it.
    return all(os.path.lexists(raw / name) for name in SHA256)


def prepare_root(data_dir: str | os.PathLike | None, download: bool = False) -> Path:
    """Return a verified torchvision root (a folder holding `MNIST/raw/`).

    Args:
        data_dir: None for the bundled copy; else a torchvision root, or a folder with the four
            files (plain or `.gz`) directly in it.
        download: fetch through torchvision when nothing is found (needs network).
    """
    if data_dir is None:
        root = cache_root()
        _unpack_gz_dir(bundled_dir(), root)  # verifies each file, and repairs it if needed
        return root

    given = Path(data_dir).expanduser()
    if _has_raw(raw_dir(given)):
        root = given
    elif _has_raw(given):
        # A flat folder of raw files: torchvision wants <root>/MNIST/raw, so verify and use a cache view.
        verify_raw_dir(given)
        root = cache_root() / "linked" / hashlib.sha256(str(given.resolve()).encode()).hexdigest()[:12]
        _link_view(given, raw_dir(root))
    elif all((given / f"{name}.gz").is_file() for name in SHA256):
        root = cache_root() / "unpacked" / hashlib.sha256(str(given.resolve()).encode()).hexdigest()[:12]
        _unpack_gz_dir(given, root)
        return root
    elif download:
        from torchvision.datasets import MNIST

        given.mkdir(parents=True, exist_ok=True)
        for train in (True, False):
            MNIST(str(given), train=train, download=True)
        root = given
    else:
        raise UsageError(
            f"no MNIST files in --data.data_dir {given}: expected MNIST/raw/ or the four IDX files "
            "(plain or .gz); drop --data.data_dir to use the bundled copy, or add --data.download true "
            "to fetch MNIST (needs network)"
        )
    verify_raw_dir(raw_dir(root))
    return root


def _link_view(given: Path, raw: Path) -> None:
    """Symbolic links in the cache to the files of a flat folder, each made fresh and renamed into place."""
    try:
        raw.mkdir(parents=True, exist_ok=True)
        for name in SHA256:
            target = (given / name).resolve()
            if os.path.islink(raw / name) and Path(os.readlink(raw / name)) == target:
                continue
            tmp = raw / f".{name}.{os.getpid()}.link"
            tmp.unlink(missing_ok=True)
            os.symlink(target, tmp)
            os.replace(tmp, raw / name)
    except OSError as err:
        raise UsageError(
            f"cannot link {given} into the cache folder {raw}: {err.strerror or err}; {CACHE_HINT}"
        ) from None


def load_split(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 28, 28) uint8 images and (N,) int64 labels of a verified root, read once and checked as read."""
    prefix = "train" if train else "t10k"
    images = _read_idx(raw_dir(root) / f"{prefix}-images-idx3-ubyte", ndim=3)
    labels = _read_idx(raw_dir(root) / f"{prefix}-labels-idx1-ubyte", ndim=1)
    return images, labels.long()


def _read_idx(path: Path, ndim: int) -> torch.Tensor:
    """An unsigned-byte IDX file (LeCun's format: 0x0000 08 <ndim>, big-endian sizes, then the bytes)."""
    data, problem = read_verified(path, SHA256[path.name], _stamp())
    if problem:
        raise UsageError(f"MNIST file {path} {problem} (it changed after it was checked); run the command again")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    pixels = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return torch.from_numpy(pixels.reshape(shape).copy())
