"""The MNIST files: a bad cache file repaired from the bundled copy, yours never touched, FIFOs never read,
and each file hashed once per process at most, not at all when the cache's stamp proves it unchanged."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import threading
from pathlib import Path

import pytest

from conftest import TINY, run_main
from mnistctl.data import checksums
from mnistctl.data.mnist_files import SHA256, bundled_dir, load_split, prepare_root, raw_dir
from mnistctl.errors import UsageError

LABELS = "t10k-labels-idx1-ubyte"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private, freshly unpacked cache; this process's memory of verified files starts empty."""
    monkeypatch.setenv("MNISTCTL_CACHE_DIR", str(tmp_path / "cache"))
    checksums.forget()
    root = prepare_root(None)
    checksums.forget()  # as if the next call came from a new process: only the stamp file remembers
    return root


@pytest.fixture
def hashes(monkeypatch) -> list[int]:
    """The size of every buffer SHA-256 is computed over, in order."""
    seen: list[int] = []
    real = hashlib.sha256

    def counting(data=b""):
        seen.append(len(data))
        return real(data)

    monkeypatch.setattr(checksums.hashlib, "sha256", counting)
    return seen


def flip_a_byte_keeping_size_and_mtime(path: Path) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last label: 9 becomes 8
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_a_corrupted_cache_file_is_restored_from_the_bundled_copy(cache, caplog):
    # Bugs: the cache was only checked, never repaired ("delete it and run again"); and a stamp keyed on
    # size and mtime alone would miss this edit, which puts the old mtime back (the ctime still changes).
    labels = raw_dir(cache) / LABELS
    flip_a_byte_keeping_size_and_mtime(labels)
    with caplog.at_level(logging.INFO, logger="mnistctl"):
        assert prepare_root(None) == cache
    assert hashlib.sha256(labels.read_bytes()).hexdigest() == SHA256[LABELS]
    warnings = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r.getMessage() for r in warnings] == [
        f"restored MNIST cache file(s) in {raw_dir(cache)} from {bundled_dir()}: {LABELS} (corrupted or truncated)"
    ]
    _, test_labels = load_split(cache, train=False)
    assert test_labels[-1] == 6  # the real last label of the MNIST test set


def test_a_bad_cache_file_is_repaired_during_a_real_fit(cache, capsys):
    (raw_dir(cache) / "train-images-idx3-ubyte").write_bytes(b"truncated")
    assert run_main("fit", *TINY, "--trainer.limit_train_batches", "1", "--test_after_fit", "false") == 0
    err = capsys.readouterr().err
    assert err.count("restored MNIST cache file(s)") == 1 and "train-images-idx3-ubyte (corrupted" in err
    assert (raw_dir(cache) / "train-images-idx3-ubyte").stat().st_size == 47_040_016


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_a_corrupted_file_in_your_data_dir_is_an_error_and_left_as_it_is(tmp_path, cache, layout):
    # Bug this guards against: "repairing" a user's own copy would overwrite their data.
    mine = tmp_path / "mine" if layout == "flat" else tmp_path / "mine" / "MNIST" / "raw"
    shutil.copytree(raw_dir(cache), mine)
    flip_a_byte_keeping_size_and_mtime(mine / LABELS)
    before = (mine / LABELS).read_bytes()
    with pytest.raises(UsageError, match=rf"MNIST file {mine / LABELS} is corrupted or truncated: SHA-256"):
        prepare_root(tmp_path / "mine")
    assert (mine / LABELS).read_bytes() == before


def in_thread(function, timeout: float = 60.0):
    """function(), failing (instead of hanging the test run) if it blocks, e.g. opening a FIFO."""
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(value=function()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"blocked for {timeout} s"
    return result["value"]


def test_a_fifo_in_the_cache_is_replaced_not_read(cache, caplog):
    # Bug: a FIFO in place of a cached file (or of the stamp) made every command block forever in open().
    labels = raw_dir(cache) / LABELS
    labels.unlink()
    os.mkfifo(labels)
    (cache / checksums.STAMP_NAME).unlink()
    os.mkfifo(cache / checksums.STAMP_NAME)
    with caplog.at_level(logging.WARNING, logger="mnistctl"):
        _, test_labels = in_thread(lambda: load_split(prepare_root(None), train=False))
    assert test_labels[-1] == 6 and f"{LABELS} (a FIFO (named pipe))" in caplog.text
    assert labels.is_file() and hashlib.sha256(labels.read_bytes()).hexdigest() == SHA256[LABELS]


def test_a_fifo_or_folder_where_a_file_belongs_is_one_line(tmp_path, cache, capsys):
    mine = tmp_path / "mine"
    shutil.copytree(raw_dir(cache), mine)
    (mine / LABELS).unlink()
    os.mkfifo(mine / LABELS)  # in your own folder: refused, not replaced
    assert run_main("fit", *TINY, "--data.data_dir", str(mine)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"mnistctl: error: MNIST file {mine / LABELS} is a FIFO (named pipe); point --data.data_dir at a good copy, "
        "or drop it to use the copy bundled with mnistctl"
    ]
    assert (mine / LABELS).exists() and not (mine / LABELS).is_file()  # still the user's FIFO
    (raw_dir(cache) / LABELS).unlink()
    (raw_dir(cache) / LABELS).mkdir()  # a folder in the cache may hold someone's files: refused, not deleted
    (raw_dir(cache) / LABELS / "notes.txt").write_text("mine")
    assert run_main("fit", *TINY) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"MNIST cache entry {raw_dir(cache) / LABELS} is a folder" in err[0], err
    assert (raw_dir(cache) / LABELS / "notes.txt").read_text() == "mine"


def test_each_file_is_hashed_at_most_once_per_process_and_not_at_all_when_stamped(tmp_path, monkeypatch, hashes):
    # Bug: prepare_root hashed all 55 MB on every call, and a fit calls it four times (CLI check, prepare_data,
    # setup, and prepare_data again for the test after fit).
    from mnistctl.data.datamodule import MNISTDataModule

    monkeypatch.setenv("MNISTCTL_CACHE_DIR", str(tmp_path / "cache"))
    checksums.forget()
    data = MNISTDataModule()
    prepare_root(None)  # first use: unpack, then hash each file once
    assert sorted(hashes) == sorted(os.path.getsize(raw_dir(tmp_path / "cache") / n) for n in SHA256)
    data.prepare_data()
    data.setup("fit")
    data.prepare_data()
    assert len(hashes) == 4 and len(data.splits["train"][0]) == 55_000
    checksums.forget()  # a new process: the stamp proves the files unchanged, nothing is hashed
    prepare_root(None)
    MNISTDataModule().setup("fit")
    assert len(hashes) == 4
    checksums.forget()
    labels = raw_dir(tmp_path / "cache") / LABELS
    os.utime(labels)  # touched: its identity changed, so it (and only it) is hashed again
    prepare_root(None)
    assert hashes[4:] == [10_008]
    checksums.forget()
    (tmp_path / "cache" / checksums.STAMP_NAME).unlink()  # the documented way to force a full check
    prepare_root(None)
    assert len(hashes) == 9


def test_a_gz_copy_in_your_data_dir_is_unpacked_into_the_cache_and_checked(tmp_path, cache):
    mine = tmp_path / "gz"
    shutil.copytree(bundled_dir(), mine)
    root = prepare_root(mine)
    assert root.is_relative_to(cache) and load_split(root, train=False)[1][-1] == 6
    labels = mine / f"{LABELS}.gz"
    labels.write_bytes(gzip.compress(b"\0" * 100))
    checksums.forget()
    (raw_dir(root) / LABELS).write_bytes(b"stale")  # the cache copy is repaired from your archive: now wrong too
    with pytest.raises(UsageError, match=f"MNIST archive {labels} unpacks to a file that is corrupted.*a good copy$"):
        prepare_root(mine)
