"""Your own digit images, prepared the way MNIST itself was made, for `mnistctl predict`.

    mnistctl predict --ckpt_path best --data.predict_dir my_digits/

Each PNG/JPEG/BMP (any size, colour or polarity) becomes one (28, 28) uint8 image, white digit on
black: converted to grey (a transparent background counts as ink-free), inverted when the digit is
dark on a light background (judged by the border), cropped to the digit, scaled into a 20x20 box
keeping its aspect ratio, and placed in 28x28 with its centre of mass at pixel (14, 14), as LeCun
et al. describe for MNIST. Files that cannot be read are skipped and reported, not fatal.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mnistctl.errors import UsageError

log = logging.getLogger(__name__)

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
BOX = 20  # MNIST digits were scaled to fit a 20x20 box ...
SIZE = 28  # ... inside a 28x28 image
CENTRE = 14.0  # ... with the centre of mass here (index coordinates; MNIST's own mean is 14.0 +- 0.3)
INK = 0.25  # after background removal, pixels at least this bright count as digit for the bounding box


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
        files = sorted(
            p
            for p in root.rglob("*")
            if p.suffix.lower() in EXTENSIONS
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        if not files:
            raise UsageError(
                f"--data.predict_dir {path}: no {'/'.join(e[1:].upper() for e in EXTENSIONS)} files in this folder "
                "or below it"
            )
    elif root.is_file():
        files = [root]
    else:
        raise UsageError(f"--data.predict_dir {path} does not exist; give a folder of images or one image file")
    images, names, skipped = [], [], []
    for file in files:
        try:
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
        with Image.open(file) as img:
            img.load()  # decode now: a truncated file fails here, inside the try
            img = ImageOps.exif_transpose(img)
            if img.mode == "P" or "transparency" in img.info:
                img = img.convert("RGBA")
            alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255 if img.mode in ("RGBA", "LA") else None
            grey = np.asarray(img.convert("L"), dtype=np.float32) / 255  # ITU-R 601 luma
    except UnidentifiedImageError:
        raise UnreadableImage("not an image file PIL can decode") from None
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise UnreadableImage(f"unreadable image ({type(err).__name__}: {str(err)[:120]})") from None
    if alpha is not None and alpha.min() < 1.0:
        # A digit drawn on a transparent canvas: the ink is wherever the canvas is opaque, whatever its colour.
        return torch.from_numpy(alpha.copy())
    return torch.from_numpy(grey.copy())


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
