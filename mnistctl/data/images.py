"""Your own digit images, prepared the way MNIST itself was made, for `mnistctl predict`.

    mnistctl predict --ckpt_path best --data.predict_dir my_digits/

Each PNG/JPEG/BMP (any size up to MAX_PIXELS, colour, bit depth or polarity) becomes one (28, 28)
uint8 image, white digit on black: converted to grey over its full range (16-bit PNGs included; on
a transparent canvas the opaque part is the ink), inverted when the digit is dark on a light
background (judged by the border), cropped to the digit, scaled into a 20x20 box keeping its aspect
ratio, and placed in 28x28 with its centre of mass at pixel (14, 14), as LeCun et al. describe for
MNIST. Files that cannot be used are skipped with the reason, not fatal: unreadable or oversized
images, and FIFOs, sockets, devices and broken links, which are never opened (a FIFO would block).
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mnistctl.data.checksums import NotRegularFile, kind_of, open_regular
from mnistctl.errors import UsageError

log = logging.getLogger(__name__)

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
BOX = 20  # MNIST digits were scaled to fit a 20x20 box ...
SIZE = 28  # ... inside a 28x28 image
CENTRE = 14.0  # ... with the centre of mass here (index coordinates; MNIST's own mean is 14.0 +- 0.3)
INK = 0.25  # after background removal, pixels at least this bright count as digit for the bounding box
# Larger images are refused from their header, before decoding: 50 megapixels (a 50 MP camera's photo) decode
# to 200 MB as RGBA; PIL's own bomb limit (89 MP warns, 179 MP refused) lets a 13000x13000 PNG take 2.9 GB here.
MAX_PIXELS = 50_000_000
WORK_SIDE = 2048  # a decoded image is box-averaged down to at most this many pixels a side (the result is 20)


class UnreadableImage(Exception):
    """A file that is not an image we can use; the message is the reason shown to the user."""


def load_digit_folder(path: str | Path) -> tuple[torch.Tensor, list[str], list[tuple[str, str]]]:
    """Read every image under `path` (a folder, searched recursively, or one image file).

    Returns (images, names, skipped): images (N, 28, 28) uint8 in MNIST convention; names[i] is the
    file path of images[i] (the folder as given, joined with the path below it); skipped lists
    (path, reason) for files that could not be read. Raises UsageError when nothing is readable.
    """
    root = Path(path).expanduser()
    if root.is_dir():
        # Every entry with an image extension except folders, FIFOs, sockets and broken links included: they
        # are listed as skipped, with what they are. Listing never opens a file.
        files = sorted(
            p
            for p in root.rglob("*")
            if p.suffix.lower() in EXTENSIONS
            and not p.is_dir()
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        if not files:
            raise UsageError(
                f"--data.predict_dir {path}: no {'/'.join(e[1:].upper() for e in EXTENSIONS)} files in this folder "
                "or below it"
            )
    elif kind_of(root) == "missing":
        raise UsageError(f"--data.predict_dir {path} does not exist; give a folder of images or one image file")
    elif kind_of(root) is not None:
        raise UsageError(f"--data.predict_dir {path} is {kind_of(root)}; give a folder of images or one image file")
    else:
        files = [root]
    images, names, skipped = [], [], []
    for file in files:
        try:
            _check_kind(file)
            images.append(prepare_digit(read_grey(file)))
            names.append(str(file))
        except UnreadableImage as err:
            skipped.append((str(file), str(err)))
            log.warning("skipped %s: %s", file, err)
    if not images:
        shown = "; ".join(f"{name}: {reason}" for name, reason in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        raise UsageError(f"--data.predict_dir {path}: none of its {len(files)} image files is usable ({shown}{more})")
    return torch.stack(images), names, skipped


def read_grey(file: Path) -> torch.Tensor:
    """Decode an image file into a (H, W) float tensor in [0, 1], 1 = the brightest grey."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        # Opened non-blocking and checked to be a regular file first: a FIFO put here would block forever.
        with open_regular(file) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, by MAX_PIXELS
            with Image.open(f) as img:
                _check_size(*img.size)
                if img.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale when that still leaves WORK_SIDE pixels
                    img.draft(img.mode, _work_size(*img.size))
                img.load()  # decode now: a truncated file fails here, inside the try
                img = ImageOps.exif_transpose(img)
                grey, alpha = _grey_and_alpha(_shrink(img))
    except NotRegularFile as err:
        raise UnreadableImage(f"{str(err).removeprefix(f'{file} is ')}, not a regular file; not opened") from None
    except UnidentifiedImageError:
        raise UnreadableImage("not an image file PIL can decode") from None
    except Image.DecompressionBombError:
        raise UnreadableImage(f"too large: over {MAX_PIXELS // 10**6} megapixels, the limit; scale it down") from None
    except (OSError, ValueError) as err:
        raise UnreadableImage(f"unreadable image ({type(err).__name__}: {str(err)[:120]})") from None
    if alpha is None:
        return torch.from_numpy(grey)
    edge = np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])
    if np.median(edge) < 0.5:
        # A digit drawn on a transparent canvas (most of the border transparent): the ink is wherever the canvas
        # is opaque, whatever its colour.
        return torch.from_numpy(alpha)
    # An opaque picture, perhaps with a few see-through pixels: they show its background (the border's grey),
    # so one pixel at alpha 254, or a transparent hole, changes nothing.
    background = np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]]))
    return torch.from_numpy(alpha * grey + (1.0 - alpha) * background)


def _check_kind(file: Path) -> None:
    """Skip what is not a regular file from its directory entry alone: never open a FIFO, socket or device."""
    kind = kind_of(file)
    if kind is not None:
        raise UnreadableImage(kind if kind.startswith("not accessible") else f"{kind}, not a regular file; not opened")


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise UnreadableImage(
            f"too large: {width}x{height} pixels ({width * height / 1e6:.0f} megapixels) is over the "
            f"{MAX_PIXELS // 10**6}-megapixel limit; scale it down"
        )


def _work_size(width: int, height: int) -> tuple[int, int]:
    factor = max(1, math.ceil(max(width, height) / WORK_SIDE))
    return max(1, width // factor), max(1, height // factor)


def _shrink(img):
    """Box-average a large image down to at most WORK_SIDE pixels a side (cheap, and keeps thin strokes)."""
    factor = math.ceil(max(img.size) / WORK_SIDE)
    if factor <= 1:
        return img
    if img.mode.startswith("I;16"):
        img = img.convert("I")  # PIL reduces 32-bit "I" images, not 16-bit ones; values are unchanged
    elif img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F") or "transparency" in img.info:
        img = img.convert("RGBA")  # reduce() drops a palette's or a tRNS colour's transparency: keep it as alpha
    return img.reduce(factor)


def _grey_and_alpha(img) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W) float32 grey in [0, 1] over the image's full bit depth, and its alpha in [0, 1] or None."""
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        # 16-bit PNGs (PIL mode I;16, or I once reduced): convert("L") would clip every value above 255.
        values = np.asarray(img, dtype=np.float32)
        scale = 1.0 if img.mode == "F" else 65535.0
        transparent = img.info.get("transparency")
        alpha = None if transparent is None else (values != transparent).astype(np.float32)
        return np.clip(values / scale, 0.0, 1.0), alpha
    if img.mode in ("P", "PA") or "transparency" in img.info:
        img = img.convert("RGBA")
    alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255 if img.mode in ("RGBA", "LA") else None
    grey = np.asarray(img.convert("L"), dtype=np.float32) / 255  # ITU-R 601 luma
    return grey, alpha


def prepare_digit(grey: torch.Tensor) -> torch.Tensor:
    """(H, W) float grey in [0, 1], either polarity -> (28, 28) uint8, white digit on black, MNIST-style."""
    h, w = grey.shape
    if h < 2 or w < 2:
        raise UnreadableImage(f"too small ({w}x{h} pixels)")
    # The border is mostly background: a light border means a dark digit on a light background.
    border = torch.cat([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = border.median()
    x = grey if background <= 0.5 else 1.0 - grey
    background = min(background, 1.0 - background)
    peak = x.max()
    if peak - background < 0.1:
        raise UnreadableImage("no digit found (the image is blank or has almost no contrast)")
    x = ((x - background) / (peak - background)).clamp_(0.0, 1.0)
    rows, cols = torch.nonzero((x >= INK).any(1)).flatten(), torch.nonzero((x >= INK).any(0)).flatten()
    x = x[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # crop to the digit's bounding box
    # Scale the longer side to 20 pixels, keeping the aspect ratio; antialias averages when shrinking.
    scale = BOX / max(x.shape)
    size = (max(1, round(x.shape[0] * scale)), max(1, round(x.shape[1] * scale)))
    small = F.interpolate(x[None, None], size=size, mode="bilinear", antialias=True, align_corners=False)[0, 0]
    small = (small / small.max()).clamp_(0.0, 1.0)  # (h, w), h and w <= 20, peak ink = 1
    return _centre_by_mass(small)


def _centre_by_mass(small: torch.Tensor) -> torch.Tensor:
    """Paste (h, w) into a black 28x28 so that its centre of mass lands on pixel (14, 14)."""
    h, w = small.shape
    mass = small.sum()
    cy = (small.sum(1) * torch.arange(h)).sum() / mass
    cx = (small.sum(0) * torch.arange(w)).sum() / mass
    top, left = round(CENTRE - cy.item()), round(CENTRE - cx.item())
    top, left = min(max(top, 0), SIZE - h), min(max(left, 0), SIZE - w)  # never push the digit out of the frame
    out = torch.zeros(SIZE, SIZE)
    out[top : top + h, left : left + w] = small
    return out.mul_(255).round_().to(torch.uint8)
