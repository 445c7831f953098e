"""Find, verify and unpack the MNIST IDX files that torchvision's `MNIST` reader loads.

    python -c "from mnistctl.data.mnist_files import prepare_root; print(prepare_root(None))"

The package ships the four gzip files (CC BY-SA 3.0, Y. LeCun, C. Cortes, C. J. C. Burges). On first
use they are unpacked into a user cache folder laid out as torchvision expects (`<root>/MNIST/raw/`),
because site-packages may be read-only. Every load checks the SHA-256 of the uncompressed files, so
a truncated or corrupted copy is reported by name before any training starts.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from importlib import resources
from pathlib import Path

from mnistctl.errors import UsageError
from mnistctl.layout import cache_root  # where the bundled copy is unpacked

# SHA-256 of the uncompressed IDX files, as listed in mnistctl/data/mnist/SHA256SUMS.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def bundled_dir() -> Path:
    return Path(str(resources.files("mnistctl.data") / "mnist"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_raw_dir(raw: Path) -> None:
    """Raise UsageError naming the first file whose checksum does not match."""
    for name, expected in SHA256.items():
        path = raw / name
        try:
            actual = sha256_of(path)
        except OSError as err:
            raise UsageError(f"cannot read MNIST file {path}: {err.strerror}") from None
        if actual != expected:
            raise UsageError(
                f"MNIST file {path} is corrupted or truncated: SHA-256 {actual[:16]}... "
                f"does not match the expected {expected[:16]}...; delete it and run again "
                "(the bundled copy is unpacked anew) or point --data.data_dir at a good copy"
            )


def _unpack_gz_dir(src: Path, root: Path) -> None:
    """Unpack `src/<name>.gz` into `root/MNIST/raw/<name>`, each file written then renamed."""
    from torchvision.datasets.utils import extract_archive

    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in SHA256:
        target = raw / name
        if target.exists() and sha256_of(target) == SHA256[name]:
            continue
        gz = src / f"{name}.gz"
        if not gz.is_file():
            raise UsageError(
                f"MNIST archive {gz} is missing; point --data.data_dir at a folder with the four MNIST files"
            )
        with tempfile.TemporaryDirectory(dir=raw) as tmp:
            try:
                unpacked = Path(extract_archive(str(gz), tmp))
            except (OSError, EOFError) as err:
                raise UsageError(
                    f"MNIST archive {gz} cannot be unpacked ({err}); it is truncated or corrupted"
                ) from None
            os.replace(unpacked, target)


def _has_raw(raw: Path) -> bool:
    return all((raw / name).is_file() for name in SHA256)


def prepare_root(data_dir: str | os.PathLike | None, download: bool = False) -> Path:
    """Return a verified torchvision root (a folder holding `MNIST/raw/`).

    Args:
        data_dir: None for the bundled copy; else a torchvision root, or a folder with the four
            files (plain or `.gz`) directly in it.
        download: fetch through torchvision when nothing is found (needs network).
    """
    if data_dir is None:
        root = cache_root()
        if not _has_raw(root / "MNIST" / "raw"):
            _unpack_gz_dir(bundled_dir(), root)
        verify_raw_dir(root / "MNIST" / "raw")
        return root

    given = Path(data_dir).expanduser()
    if _has_raw(given / "MNIST" / "raw"):
        root = given
    elif _has_raw(given):
        # A flat folder of raw files: torchvision wants <root>/MNIST/raw, so verify and use a cache view.
        verify_raw_dir(given)
        root = cache_root() / "linked" / hashlib.sha256(str(given.resolve()).encode()).hexdigest()[:12]
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for name in SHA256:
            if not (raw / name).exists():
                os.symlink((given / name).resolve(), raw / name)
    elif all((given / f"{name}.gz").is_file() for name in SHA256):
        root = cache_root() / "unpacked" / hashlib.sha256(str(given.resolve()).encode()).hexdigest()[:12]
        _unpack_gz_dir(given, root)
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
    verify_raw_dir(root / "MNIST" / "raw")
    return root
