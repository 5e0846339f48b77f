"""Image decoding with PIL: EXIF orientation applied, every mode turned into 8-bit RGB, bombs refused."""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image, ImageOps


class ImageTooLarge(ValueError):
    """More pixels than the decompression-bomb limit allows."""


def decode_image(path: str, max_pixels: int) -> np.ndarray:
    """Decode `path` to uint8 (H, W, 3) RGB, in display orientation."""
    # Our size check below is the guard. PIL's own (process-global MAX_IMAGE_PIXELS, which a library must not
    # change) stays a backstop: it raises DecompressionBombError at twice its default limit.
    try:
        with warnings.catch_warnings():
            # PIL's warning between 1x and 2x its limit is redundant: our check decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(str(e)) from e
    with im:
        w, h = im.size
        if w * h > max_pixels:
            raise ImageTooLarge(f"{w}x{h} = {w * h} pixels > limit {max_pixels}")
        im.seek(0)  # animated GIF/WebP/TIFF: first frame
        im = ImageOps.exif_transpose(im)
        rgb = to_rgb(im)
    return np.asarray(rgb, dtype=np.uint8)


def to_rgb(im: Image.Image) -> Image.Image:
    """Explicit conversion per mode; PIL's convert("RGB") clips 16-bit and drops alpha onto black."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        im = Image.fromarray(((a - lo) * scale).round().astype(np.uint8), mode="L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Composite on white: transparent regions of logos/icons are meant to be background, not black.
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return im
