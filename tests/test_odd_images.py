"""Odd files in `--data.predict_dir`: 16-bit PNGs, stray alpha, FIFOs, sockets, broken links, huge images."""

from __future__ import annotations

import os
import socket
import struct
import threading
import tracemalloc
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile

from mnistctl.data.images import MAX_PIXELS, load_digit_folder
from mnistctl.errors import UsageError


@pytest.fixture(scope="module")
def digit() -> np.ndarray:
    """An MNIST test digit (a 2), upscaled 4x: (112, 112) uint8, white on black."""
    from mnistctl.data.mnist_files import load_split, prepare_root

    images, _ = load_split(prepare_root(None), train=False)
    big = F.interpolate(images[1].float()[None, None], scale_factor=4, mode="bilinear")[0, 0]
    return big.clamp(0, 255).round().to(torch.uint8).numpy()


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MNISTCTL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mnist-cache"))


def load_in_thread(path, timeout: float = 60.0):
    """load_digit_folder, failing (instead of hanging the test run) if it blocks, e.g. on a FIFO."""
    result: dict = {}

    def work():
        try:
            result["value"] = load_digit_folder(path)
        except BaseException as err:  # noqa: BLE001 - handed to the test
            result["error"] = err

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"load_digit_folder({path}) blocked for {timeout} s"
    if "error" in result:
        raise result["error"]
    return result["value"]


def by_name(path):
    images, names, skipped = load_in_thread(path)
    return {os.path.basename(n): im.int() for n, im in zip(names, images, strict=True)}, dict(skipped)


def test_16_bit_pngs_keep_their_full_range(tmp_path, digit):
    # Bug: convert("L") clips 16-bit values to 0..255: white-on-black digits come out as solid blobs (every
    # faint edge saturates) and a dark-on-light scan (paper 60000, ink 6000) is all "paper": skipped, no digit.
    ink = digit.astype(np.float64) / 255
    Image.fromarray(digit).save(tmp_path / "eight_bit.png")
    Image.fromarray((ink * 65535).round().astype(np.uint16)).save(tmp_path / "white_on_black16.png")
    scan = 60000 - ink * (60000 - 6000)
    Image.fromarray(scan.round().astype(np.uint16)).save(tmp_path / "dark_on_light16.png")
    assert Image.open(tmp_path / "dark_on_light16.png").mode == "I;16"  # really a 16-bit greyscale PNG
    images, skipped = by_name(tmp_path)
    assert skipped == {}
    reference = images["eight_bit.png"]
    for name in ("white_on_black16.png", "dark_on_light16.png"):
        assert (images[name] - reference).abs().max() <= 2, name
        assert (images[name] > 0).sum() == (reference > 0).sum(), name  # no fattening: the same ink pixels


def test_one_translucent_pixel_does_not_make_a_transparent_canvas(tmp_path, digit):
    # Bug: any pixel with alpha < 255 made the alpha channel the ink: an opaque black-on-white digit with one
    # pixel at alpha 254 (or a see-through corner) was read as a blank canvas and skipped as "no digit".
    paper = 255 - digit
    Image.fromarray(paper).save(tmp_path / "opaque.png")
    rgba = np.stack([paper, paper, paper, np.full_like(paper, 255)], axis=-1)
    rgba[50, 50, 3] = 254
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha254.png")
    rgba[:6, :6] = 0  # a fully transparent corner (black, alpha 0) in the same opaque picture
    Image.fromarray(rgba, "RGBA").save(tmp_path / "see_through_corner.png")
    canvas = np.zeros((*digit.shape, 4), dtype=np.uint8)
    canvas[..., 3] = digit  # the other case still holds: black ink on a transparent canvas
    Image.fromarray(canvas, "RGBA").save(tmp_path / "transparent_canvas.png")
    images, skipped = by_name(tmp_path)
    assert skipped == {}
    for name in ("alpha254.png", "see_through_corner.png", "transparent_canvas.png"):
        assert (images[name] - images["opaque.png"]).abs().max() <= 1, name


def test_fifos_sockets_and_broken_links_are_listed_as_skipped_and_never_opened(tmp_path, digit):
    # Bug: they were silently dropped from the folder listing (no line in skipped.txt); and a FIFO, if ever
    # opened for reading, blocks until a writer appears: load_in_thread fails instead of hanging.
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(digit).save(folder / "good.png")
    os.mkfifo(folder / "pipe.png")
    server = socket.socket(socket.AF_UNIX)
    server.bind("in/sock.png")  # relative (the test runs in tmp_path): socket paths are limited to 108 bytes
    os.symlink(tmp_path / "nowhere.png", folder / "gone.png")
    os.symlink("loop.png", folder / "loop.png")
    os.symlink("pipe.png", folder / "link_to_pipe.jpg")
    try:
        images, skipped = by_name(folder)
    finally:
        server.close()
    assert list(images) == ["good.png"]
    assert {os.path.basename(p): r for p, r in skipped.items()} == {
        "pipe.png": "a FIFO (named pipe), not a regular file; not opened",
        "link_to_pipe.jpg": "a FIFO (named pipe), not a regular file; not opened",
        "sock.png": "a socket, not a regular file; not opened",
        "gone.png": "a broken symbolic link, not a regular file; not opened",
        "loop.png": "a symbolic link loop, not a regular file; not opened",
    }
    # Given on its own, a FIFO is a one-line usage error, not a hang.
    with pytest.raises(UsageError, match=r"pipe.png is a FIFO \(named pipe\); give a folder"):
        load_in_thread(folder / "pipe.png")
    with pytest.raises(UsageError, match="gone.png is a broken symbolic link"):
        load_in_thread(folder / "gone.png")


def write_blank_png(path, width: int, height: int) -> None:
    """A valid greyscale PNG of any size, written row by row: a huge one costs little memory to make."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pack = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then black pixels
    idat = b"".join(pack.compress(row) for _ in range(height)) + pack.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_a_13000_pixel_square_png_is_refused_from_its_header(tmp_path, digit, monkeypatch):
    # Bug: PIL only warns below 179 megapixels, so the 169-megapixel image was decoded (2.9 GB here).
    decoded = []
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or load(self))
    write_blank_png(tmp_path / "huge.png", 13000, 13000)
    Image.fromarray(digit).save(tmp_path / "good.png")
    images, skipped = by_name(tmp_path)
    assert list(images) == ["good.png"]
    assert skipped[str(tmp_path / "huge.png")] == (
        "too large: 13000x13000 pixels (169 megapixels) is over the 50-megapixel limit; scale it down"
    )
    assert (13000, 13000) not in decoded and MAX_PIXELS == 50_000_000


def test_a_large_photo_under_the_limit_gives_the_same_digit_in_bounded_memory(tmp_path, digit):
    # Bug: without the shrink, a 30-megapixel photo became several 120 MB float arrays (numpy's allocations are
    # traced by tracemalloc; PIL's own decode buffer is not, and is bounded by MAX_PIXELS instead).
    ink = F.interpolate(torch.from_numpy(digit).float()[None, None], scale_factor=30, mode="bilinear")[0, 0]
    page = np.full((5000, 6000), 230, dtype=np.uint8)  # 30 megapixels, grey paper
    page[1000 : 1000 + ink.shape[0], 2000 : 2000 + ink.shape[1]] = (230 - ink * 200 / 255).round().numpy()
    Image.fromarray(page).save(tmp_path / "photo.png")
    Image.fromarray(page).save(tmp_path / "photo.jpg", quality=95)
    Image.fromarray(255 - digit).save(tmp_path / "small.png")
    tracemalloc.start()
    try:
        images, skipped = by_name(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert skipped == {} and peak < 80e6, peak
    for name in ("photo.png", "photo.jpg"):
        assert (images[name] - images["small.png"]).abs().max() <= 40, name
        assert (images[name] - images["small.png"]).abs().float().mean() < 3, name
